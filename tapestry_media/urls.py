"""URLs of tapestry_media. Mount them with ``path("tapestry/", include("tapestry_media.urls"))``."""

from django.urls import path

from .api.webhooks import webhook_view

app_name = "tapestry_media"

urlpatterns = [
    path("webhooks/ittybit/", webhook_view, name="webhook"),
]
