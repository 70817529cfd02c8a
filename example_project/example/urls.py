import re

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from . import views
from .media import serve_media

site = [
    path("", views.home, name="home"),
    path("upload/", views.upload, name="upload"),
    path("submissions/", views.submissions, name="submissions"),
    path("submissions/<str:public_id>/", views.submission, name="submission"),
]

#: Uploads and outputs under MEDIA_URL, with HTTP Range so players can seek (example/media.py).
#: Like ``static()``, only with DEBUG: a real site serves media from its web server or storage.
media = [re_path(rf"^{re.escape(settings.MEDIA_URL.lstrip('/'))}(?P<path>.*)$", serve_media)]

urlpatterns = [
    path("", include((site, "example"))),
    path("favicon.ico", views.favicon),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("tapestry/", include("tapestry_media.urls")),
]
if settings.DEBUG:
    urlpatterns += media
