"""The submissions/tasks API, included by ``tapestry_media.urls`` under ``api/``."""

from django.urls import path

from . import views

data_urlpatterns = [
    path("submissions/", views.SubmissionList.as_view(), name="submission-list"),
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
    path("schema/", views.SchemaView.as_view(), name="api-schema"),
]
