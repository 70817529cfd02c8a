"""URLs of tapestry_media. Mount them with ``path("tapestry/", include("tapestry_media.urls"))``."""

from django.urls import include, path

from .api.webhooks import webhook_view

app_name = "tapestry_media"

urlpatterns = [
    path("webhooks/ittybit/", webhook_view, name="webhook"),
    path("api/", include("tapestry_media.api.urls")),
]
