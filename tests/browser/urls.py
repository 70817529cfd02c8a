"""The example site's URLs, plus the uploaded media (``static()`` serves it only with DEBUG)."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import re_path
from django.views.static import serve
from example.urls import urlpatterns as site


def media(request: HttpRequest, path: str) -> HttpResponse:
    return serve(request, path, document_root=settings.MEDIA_ROOT)


urlpatterns = [*site, re_path(r"^media/(?P<path>.*)$", media)]
