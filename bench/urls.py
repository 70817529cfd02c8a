"""The example site's URLs plus the peers of the webhook benchmark (``bench/views.py``)."""

from django.urls import path
from example.urls import urlpatterns as site_urls

from .views import DRFWebhook, bare_webhook, ping, upload_webhook

urlpatterns = [
    path("bench/peer/bare/", bare_webhook),
    path("bench/peer/drf/", DRFWebhook.as_view()),
    path("bench/peer/upload/", upload_webhook),
    path("bench/ping/", ping),
    *site_urls,
]
