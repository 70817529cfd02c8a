"""The example site's URLs plus ``/bench/bare-webhook/`` (the baseline of the webhook benchmark)."""

from django.urls import path
from example.urls import urlpatterns as site_urls

from .views import bare_webhook, bare_webhook_atomic, ping

urlpatterns = [
    path("bench/bare-webhook/", bare_webhook),
    path("bench/bare-webhook-atomic/", bare_webhook_atomic),
    path("bench/ping/", ping),
    *site_urls,
]
