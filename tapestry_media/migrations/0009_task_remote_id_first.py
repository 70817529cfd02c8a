"""The unique index on a task's remote id leads with ``remote_id``, not ``backend``.

``(backend, remote_id)`` served the scoped lookup (``backend = … AND remote_id = …``) but not
the one every unscoped webhook delivery makes, ``remote_id = …`` alone
(``reconcile.find_task``): PostgreSQL then walked the whole index, 90 buffers at 10,000 tasks
and linear in the table (docs/performance.md). ``(remote_id, backend)`` keeps the same
uniqueness and serves both, and the admin's and the CLI's search by remote id.

Numbered 0009: 0008 was reserved for another branch. On PostgreSQL the new index is built and the
old one dropped CONCURRENTLY (no lock that blocks writes; a migration outside a transaction), the
new one first, so the lookups and the uniqueness hold throughout. Elsewhere the state operations
do the work (MySQL/MariaDB has no partial unique indexes: nothing changes there).
"""

import importlib

from django.db import migrations, models

#: 0007's wrapper: ``database_operations`` on PostgreSQL, ``state_operations`` elsewhere.
PostgreSQLConcurrently = importlib.import_module(
    "tapestry_media.migrations.0007_drop_unused_indexes"
).PostgreSQLConcurrently

OLD = "tapestry_media_task_remote_id"
NEW = "tapestry_media_task_remote_id_backend"
CONDITION = 'WHERE "remote_id" IS NOT NULL'


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tapestry_media", "0008_task_created_index"),
    ]

    operations = [
        PostgreSQLConcurrently(
            database_operations=[
                migrations.RunSQL(
                    f'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "{NEW}" '
                    f'ON "tapestry_media_task" ("remote_id", "backend") {CONDITION}',
                    f'DROP INDEX CONCURRENTLY IF EXISTS "{NEW}"',
                    elidable=False,
                ),
                migrations.RunSQL(
                    f'DROP INDEX CONCURRENTLY IF EXISTS "{OLD}"',
                    f'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "{OLD}" '
                    f'ON "tapestry_media_task" ("backend", "remote_id") {CONDITION}',
                    elidable=False,
                ),
            ],
            state_operations=[
                migrations.AddConstraint(
                    model_name="task",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(("remote_id__isnull", False)),
                        fields=("remote_id", "backend"),
                        name=NEW,
                    ),
                ),
                migrations.RemoveConstraint(model_name="task", name=OLD),
            ],
        ),
    ]
