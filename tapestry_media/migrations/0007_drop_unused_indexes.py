"""Drop the indexes no query of the app uses, and those that cost more than the queries they served.

Every webhook delivery changes ``status`` and ``updated_at`` of a Task and ``status`` of its
Submission. An index on a changed column forbids a HOT update: PostgreSQL then writes a new
entry into *every* index of the row (11 on Task, 11 on Submission before this migration). Gone:

* ``Task.status``, ``Task.updated_at`` and ``(status, updated_at)`` (``tapestry_task_stale_idx``),
  ``Submission.status``: served resync's stale scan, the status command and the status filters,
  queries that read the few unfinished rows of a mostly finished table or count all rows; they
  now scan the table (docs/performance.md shows each plan at 100k tasks).
* ``Submission.source``: no query filters on it (the metadata search finds a task's source).
* The ``varchar_pattern_ops`` copies (``…_like``) PostgreSQL gets for every indexed CharField:
  they serve only ``LIKE 'x%'`` and the app runs no such query on these columns.

On PostgreSQL the task table also gets ``fillfactor`` 70 and the submission table 90: the free
room a page keeps at insert is where an update writes the row's new version, so the update
stays HOT. A task's row grows when it finishes (output, URL, times: ~380 → ~550 bytes in the
benchmark), a submission's hardly. Only pages written from now on keep that room; existing rows
are not rewritten (``VACUUM FULL`` or pg_repack would, with their locks). docs/performance.md
measures it with and without.

On PostgreSQL the indexes are dropped CONCURRENTLY (no lock on a busy table; that needs a
migration outside a transaction, ``atomic = False``) and re-created so on reverse; the ``_like``
copies exist only there and never were in the model state. Elsewhere the state change is applied
the ordinary way.
"""

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import ProjectState

#: PostgreSQL index name -> its definition as migration 0001 created it (for the reverse).
POSTGRESQL_INDEXES = {
    "tapestry_media_task_status_e3915414": "tapestry_media_task (status)",
    "tapestry_media_task_status_e3915414_like": "tapestry_media_task (status varchar_pattern_ops)",
    "tapestry_media_task_updated_at_0aa94e33": "tapestry_media_task (updated_at)",
    "tapestry_task_stale_idx": "tapestry_media_task (status, updated_at)",
    "tapestry_media_submission_status_bb40512f": "tapestry_media_submission (status)",
    "tapestry_media_submission_status_bb40512f_like": (
        "tapestry_media_submission (status varchar_pattern_ops)"
    ),
    "tapestry_media_submission_source_9c242c89": "tapestry_media_submission (source)",
    "tapestry_media_submission_source_9c242c89_like": (
        "tapestry_media_submission (source varchar_pattern_ops)"
    ),
    "tapestry_media_submission_campaign_364d3a57_like": (
        "tapestry_media_submission (campaign varchar_pattern_ops)"
    ),
    "tapestry_media_submission_public_id_66885843_like": (
        "tapestry_media_submission (public_id varchar_pattern_ops)"
    ),
    "tapestry_media_webhookevent_dedup_key_fd38053f_like": (
        "tapestry_media_webhookevent (dedup_key varchar_pattern_ops)"
    ),
    "tapestry_media_webhookevent_remote_task_id_d5c79192_like": (
        "tapestry_media_webhookevent (remote_task_id varchar_pattern_ops)"
    ),
}
POSTGRESQL_DROPPED = tuple(POSTGRESQL_INDEXES)
#: Room for HOT updates: percent of each page filled by inserts.
POSTGRESQL_FILLFACTOR = {"tapestry_media_task": 70, "tapestry_media_submission": 90}


class PostgreSQLConcurrently(migrations.SeparateDatabaseAndState):
    """``database_operations`` on PostgreSQL; elsewhere ``state_operations`` do the work, as
    they would outside this wrapper."""

    def _database(
        self, schema_editor: BaseDatabaseSchemaEditor
    ) -> migrations.SeparateDatabaseAndState:
        if schema_editor.connection.vendor == "postgresql":
            return migrations.SeparateDatabaseAndState(database_operations=self.database_operations)
        return migrations.SeparateDatabaseAndState(database_operations=self.state_operations)

    def database_forwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:  # fmt: skip
        self._database(schema_editor).database_forwards(
            app_label, schema_editor, from_state, to_state
        )

    def database_backwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:  # fmt: skip
        self._database(schema_editor).database_backwards(
            app_label, schema_editor, from_state, to_state
        )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tapestry_media", "0006_event_cursor"),
    ]

    operations = [
        PostgreSQLConcurrently(
            database_operations=[
                migrations.RunSQL(
                    [f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"' for name in POSTGRESQL_DROPPED],
                    [
                        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON {definition}'
                        for name, definition in POSTGRESQL_INDEXES.items()
                    ],
                    elidable=False,
                ),
                migrations.RunSQL(
                    [
                        f'ALTER TABLE "{table}" SET (fillfactor = {percent})'
                        for table, percent in POSTGRESQL_FILLFACTOR.items()
                    ],
                    [
                        f'ALTER TABLE "{table}" RESET (fillfactor)'
                        for table in POSTGRESQL_FILLFACTOR
                    ],
                    elidable=False,
                ),
            ],
            state_operations=[
                migrations.RemoveIndex(model_name="task", name="tapestry_task_stale_idx"),
                migrations.AlterField(
                    model_name="submission",
                    name="source",
                    field=models.CharField(blank=True, max_length=100, verbose_name="source"),
                ),
                migrations.AlterField(
                    model_name="submission",
                    name="status",
                    field=models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("processing", "Processing"),
                            ("ready", "Ready"),
                            ("partial", "Partially ready"),
                            ("failed", "Failed"),
                        ],
                        default="pending",
                        max_length=12,
                        verbose_name="status",
                    ),
                ),
                migrations.AlterField(
                    model_name="task",
                    name="status",
                    field=models.CharField(
                        choices=[
                            ("created", "Created"),
                            ("submitting", "Submitting"),
                            ("pending", "Pending"),
                            ("processing", "Processing"),
                            ("succeeded", "Succeeded"),
                            ("failed", "Failed"),
                            ("cancelled", "Cancelled"),
                            ("superseded", "Superseded"),
                        ],
                        default="created",
                        max_length=12,
                        verbose_name="status",
                    ),
                ),
                migrations.AlterField(
                    model_name="task",
                    name="updated_at",
                    field=models.DateTimeField(auto_now=True, verbose_name="updated"),
                ),
            ],
        ),
    ]
