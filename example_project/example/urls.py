from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

from . import views

site = [
    path("", views.home, name="home"),
    path("upload/", views.upload, name="upload"),
    path("submissions/", views.submissions, name="submissions"),
    path("submissions/<str:public_id>/", views.submission, name="submission"),
]

urlpatterns = [
    path("", include((site, "example"))),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("tapestry/", include("tapestry_media.urls")),
]
urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
