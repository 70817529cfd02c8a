"""The submissions/tasks API, included by ``tapestry_media.urls`` under ``api/``."""

from django.urls import path, re_path

from . import direct_uploads, views

data_urlpatterns = [
    path("submissions/", views.SubmissionList.as_view(), name="submission-list"),
    path(
        "submissions/uploads/",
        direct_uploads.UploadTarget.as_view(),
        name="submission-upload-target",
    ),
    path(
        "submissions/<str:public_id>/",
        views.SubmissionDetail.as_view(),
        name="submission-detail",
    ),
    path("tasks/", views.TaskList.as_view(), name="task-list"),
    path("tasks/<uuid:uuid>/", views.TaskDetail.as_view(), name="task-detail"),
]

urlpatterns = [
    *data_urlpatterns,
    path("schema/", views.SchemaView.as_view(patterns=data_urlpatterns), name="api-schema"),
    # Last: every other path under the prefix gets the API's JSON 404.
    re_path(r"", views.NotFound.as_view()),
]
