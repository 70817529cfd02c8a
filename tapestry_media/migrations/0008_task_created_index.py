"""Two indexes on ``Task.created_at`` for the admin overview (``tapestry_media.overview``).

* ``tapestry_task_created_idx``: the overview reads tasks by creation time (the last 24 hours,
  the last 30 days, the unfinished ones created outside those, the oldest stuck task). No update
  ever writes ``created_at`` (``auto_now_add``), so it keeps every webhook's update of a task
  HOT on PostgreSQL (migration 0007 explains why that matters).
* ``tapestry_task_error_idx``, partial, ``WHERE error IS NOT NULL``: the failed (and
  cancelled) tasks of the last 30 days by error kind, without reading the other 98 % of the
  table. An update that leaves ``error`` as it is stays HOT; the one that records a failure
  is not (once per failed task). MySQL and MariaDB have no partial index: there is none.

On PostgreSQL the index is built CONCURRENTLY (no lock on a busy table; hence ``atomic = False``),
as migration 0007's operations are; elsewhere the state change is applied the ordinary way.
"""

import importlib

from django.db import migrations, models

PostgreSQLConcurrently = importlib.import_module(
    "tapestry_media.migrations.0007_drop_unused_indexes"
).PostgreSQLConcurrently

NAME = "tapestry_task_created_idx"
ERROR_NAME = "tapestry_task_error_idx"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tapestry_media", "0007_drop_unused_indexes"),
    ]

    operations = [
        PostgreSQLConcurrently(
            database_operations=[
                migrations.RunSQL(
                    f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{NAME}" '
                    'ON "tapestry_media_task" ("created_at")',
                    f'DROP INDEX CONCURRENTLY IF EXISTS "{NAME}"',
                    elidable=False,
                ),
                migrations.RunSQL(
                    f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{ERROR_NAME}" '
                    'ON "tapestry_media_task" ("created_at") WHERE "error" IS NOT NULL',
                    f'DROP INDEX CONCURRENTLY IF EXISTS "{ERROR_NAME}"',
                    elidable=False,
                ),
            ],
            state_operations=[
                migrations.AddIndex(
                    model_name="task",
                    index=models.Index(fields=["created_at"], name=NAME),
                ),
                migrations.AddIndex(
                    model_name="task",
                    index=models.Index(
                        fields=["created_at"],
                        condition=models.Q(error__isnull=False),
                        name=ERROR_NAME,
                    ),
                ),
            ],
        ),
    ]
