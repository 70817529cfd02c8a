from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_save, pre_delete, pre_save


class TapestryMediaConfig(AppConfig):
    name = "tapestry_media"
    verbose_name = "Tapestry media"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Here, not at the top: models and receivers can be imported only once apps are loaded.
        from . import checks, receivers
        from .models import Submission

        checks.register()
        uid = "tapestry_media"
        pre_save.connect(receivers.prepare_upload, sender=Submission, dispatch_uid=f"{uid}.pre")
        post_save.connect(receivers.submit_upload, sender=Submission, dispatch_uid=f"{uid}.post")
        # Collect output names before CASCADE removes the tasks.
        pre_delete.connect(receivers.delete_files, sender=Submission, dispatch_uid=f"{uid}.del")
