"""Pending erasures: the admin's "Erase the uploaders' data" records each request before it
queues the job, and the erasure deletes the row when it is done (``erasure_requests``)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tapestry_media", "0011_submission_file_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="ErasureRequest",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("user_pk", models.CharField(max_length=255, unique=True, verbose_name="user pk")),
                ("requested_at", models.DateTimeField(auto_now_add=True, verbose_name="requested")),
                ("enqueued_at", models.DateTimeField(blank=True, null=True, verbose_name="queued")),
            ],
            options={
                "verbose_name": "pending erasure",
                "verbose_name_plural": "pending erasures",
                "ordering": ("requested_at", "pk"),
            },
        ),
    ]
