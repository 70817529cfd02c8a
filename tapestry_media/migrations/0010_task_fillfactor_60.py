"""PostgreSQL: the task table's pages keep 40 % free room at insert (0007 set 30 %).

A task's row grows by about half when its result arrives (output, URL, times), and the update
is HOT only if the new version fits on the row's page. At fillfactor 70, 88 % of first
deliveries were HOT under the peers benchmark (16 concurrent connections, deliveries in
primary-key order, so neighbours on one page finish together); at 60, 99.5 %
(docs/performance.md). The price: new task pages start 60 % full, about 17 % more pages than at
70. Only pages written from now on keep the room. Nothing to do on other databases.
"""

import importlib

from django.db import migrations

#: 0007's wrapper: ``database_operations`` on PostgreSQL, ``state_operations`` elsewhere.
PostgreSQLConcurrently = importlib.import_module(
    "tapestry_media.migrations.0007_drop_unused_indexes"
).PostgreSQLConcurrently


class Migration(migrations.Migration):
    dependencies = [
        ("tapestry_media", "0009_task_remote_id_first"),
    ]

    operations = [
        PostgreSQLConcurrently(
            database_operations=[
                migrations.RunSQL(
                    'ALTER TABLE "tapestry_media_task" SET (fillfactor = 60)',
                    'ALTER TABLE "tapestry_media_task" SET (fillfactor = 70)',
                    elidable=False,
                ),
            ],
            state_operations=[],
        ),
    ]
