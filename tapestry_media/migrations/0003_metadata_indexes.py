"""A GIN index on Task.metadata, on PostgreSQL only.

``TaskQuerySet.with_metadata`` filters with ``metadata @> '{"key": "value"}'`` on PostgreSQL,
which this ``jsonb_path_ops`` index serves (one index for every key). SQLite has no such index
type; there the filter is ``json_extract(...) = ...`` over the rows.

The index is built CONCURRENTLY so that migrating a large, busy table does not block writes;
that needs a migration outside a transaction (``atomic = False``).
"""

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

INDEX = "tapestry_task_metadata_gin"


def create_index(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    table = apps.get_model("tapestry_media", "Task")._meta.db_table
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} "
        f"ON {schema_editor.quote_name(table)} USING gin (metadata jsonb_path_ops)"
    )


def drop_index(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tapestry_media", "0002_localjob"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
