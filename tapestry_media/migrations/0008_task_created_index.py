"""An index on ``Task.created_at``, for the admin overview (``tapestry_media.overview``).

The overview reads tasks by creation time: the last 24 hours, the last 30 days, the unfinished
ones created outside those 30 days, and the oldest stuck task within its creation hour. No
update ever writes ``created_at`` (``auto_now_add``), so this index keeps every webhook's update
of a task HOT on PostgreSQL (migration 0007 explains why that matters).

On PostgreSQL the index is built CONCURRENTLY (no lock on a busy table; hence ``atomic = False``),
as migration 0007's operations are; elsewhere the state change is applied the ordinary way.
"""

import importlib

from django.db import migrations, models

PostgreSQLConcurrently = importlib.import_module(
    "tapestry_media.migrations.0007_drop_unused_indexes"
).PostgreSQLConcurrently

NAME = "tapestry_task_created_idx"


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
            ],
            state_operations=[
                migrations.AddIndex(
                    model_name="task",
                    index=models.Index(fields=["created_at"], name=NAME),
                ),
            ],
        ),
    ]
