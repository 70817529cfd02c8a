"""An index on ``Submission.file`` for the API's task input given as a stored file name.

``POST /tasks/`` takes ``input`` as a submission's public id or its file name
(``api.views.own_submission``). The file name had no index, so every such request, and every
one by public id too while the lookup was one ``public_id = … OR file = …``, read the whole
submission table on PostgreSQL (docs/performance.md, "The task input lookup"). The lookup now
tries the public id's unique index first and this index only if that finds nothing.

No webhook update writes ``file`` (``aggregate.refresh`` sets status and times), so those
updates stay HOT; only an insert and a new file generation write the index.

On PostgreSQL the index is built CONCURRENTLY (no lock that blocks writes; hence
``atomic = False``), as 0008's is; elsewhere the state operation creates it. MariaDB/MySQL:
``file`` is ``varchar(500)``, 2,000 bytes in utf8mb4, within InnoDB's 3,072-byte key limit of
the DYNAMIC row format (the default since MariaDB 10.2 and MySQL 5.7); a table kept in the
COMPACT or REDUNDANT format (767 bytes) must be converted first:
``ALTER TABLE tapestry_media_submission ROW_FORMAT=DYNAMIC``.
"""

import importlib

from django.db import migrations, models

#: 0007's wrapper: ``database_operations`` on PostgreSQL, ``state_operations`` elsewhere.
PostgreSQLConcurrently = importlib.import_module(
    "tapestry_media.migrations.0007_drop_unused_indexes"
).PostgreSQLConcurrently

NAME = "tapestry_submission_file_idx"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tapestry_media", "0010_task_fillfactor_60"),
    ]

    operations = [
        PostgreSQLConcurrently(
            database_operations=[
                migrations.RunSQL(
                    f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{NAME}" '
                    'ON "tapestry_media_submission" ("file")',
                    f'DROP INDEX CONCURRENTLY IF EXISTS "{NAME}"',
                    elidable=False,
                ),
            ],
            state_operations=[
                migrations.AddIndex(
                    model_name="submission",
                    index=models.Index(fields=["file"], name=NAME),
                ),
            ],
        ),
    ]
