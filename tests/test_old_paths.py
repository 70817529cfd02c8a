"""Dotted paths from before the layout change still work for one release (CHANGELOG.md,
"Upgrading"): a job queued under an old path runs, and an old backend path in settings loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.utils.module_loading import import_string

from tapestry_media import jobs
from tapestry_media.backends import get_backend
from tapestry_media.backends.dummy import DummyBackend
from tapestry_media.conf import get_settings
from tapestry_media.local.backend import LocalBackend
from tapestry_media.local.jobs import run_local_job
from tapestry_media.models import LocalJob, Task
from tapestry_media.status import Status
from tapestry_media.tasks_shim import JobDefinition

REPO = Path(__file__).resolve().parent.parent

OLD_JOB_PATHS = {
    "tapestry_media.jobs.submit_task": "tapestry_media.jobs.submit_task",  # never moved
    "tapestry_media.resync_jobs.poll_task": "tapestry_media.jobs.poll_task",
    "tapestry_media.jobs.run_local_job": "tapestry_media.local.jobs.run_local_job",
}
OLD_BACKEND_PATH = "tapestry_media.backends.local.LocalBackend"


@pytest.mark.parametrize(("old", "new"), OLD_JOB_PATHS.items())
def test_an_old_job_path_resolves_to_the_job_that_moved(old: str, new: str) -> None:
    if old == new:
        job = import_string(old)
    else:
        with pytest.deprecated_call(match=new):
            job = import_string(old)
    assert isinstance(job, JobDefinition)
    assert job is import_string(new)


@pytest.mark.parametrize(
    "path",
    [
        "tapestry_media.jobs.no_such_job",
        "tapestry_media.resync_jobs.no_such_job",
        "tapestry_media.backends.local.NoSuchBackend",
    ],
)
def test_a_shim_answers_only_for_the_name_that_moved(path: str) -> None:
    with pytest.raises(ImportError):
        import_string(path)


@pytest.mark.django_db
def test_the_old_submit_and_poll_paths_run_their_jobs() -> None:
    task = Task.objects.create(kind="video", input="https://x.test/a.mov", backend="dummy")
    assert import_string("tapestry_media.jobs.submit_task").call(task.pk) == "submitted"
    task.refresh_from_db()
    assert task.status == Status.PENDING
    DummyBackend.finish(task.remote_id, "succeeded", output={"url": "https://cdn.test/o.mp4"})
    with pytest.deprecated_call():
        poll_task = import_string("tapestry_media.resync_jobs.poll_task")
    assert poll_task.call(task.pk) == "applied"
    task.refresh_from_db()
    assert task.status == Status.SUCCEEDED


@pytest.mark.django_db
def test_the_old_local_job_path_runs_the_local_engine_job() -> None:
    job = LocalJob.objects.create(
        remote_id="task_local_oldpath",
        idempotency_key="oldpath",
        kind="image",
        input="in/never-uploaded.png",
        options={"format": "png"},
    )
    with pytest.deprecated_call():
        old = import_string("tapestry_media.jobs.run_local_job")
    assert old.call(job.pk) == "failed"  # it ran: the input is not in storage
    job.refresh_from_db()
    assert job.state == LocalJob.State.FAILED
    assert job.error["kind"] == "input_missing"


def test_the_old_backend_class_path_loads_the_local_backend() -> None:
    with pytest.deprecated_call():
        assert import_string(OLD_BACKEND_PATH) is LocalBackend


@pytest.mark.django_db
def test_the_old_backend_path_in_settings_is_the_local_backend(settings) -> None:
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, "BACKEND": OLD_BACKEND_PATH}
    with pytest.deprecated_call(match="'local'"):
        config = get_settings()
    # "local", not the dotted path: the local engine's scoped webhook key matches its tasks
    assert config.backend_name == "local"
    assert isinstance(get_backend(), LocalBackend)


SETTINGS = """\
from tests.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks_db"]  # noqa: F405
TASKS = {{"default": {{"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}}}
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {db!r}}}}}
MEDIA_ROOT = {media!r}
"""

# Queue each job, then rewrite its stored path to the one a job queued before the upgrade
# carries; then a real db_worker runs the queue.
WORKER = """\
import json

import django

django.setup()
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from tapestry_media.enqueue import enqueue, job_definition
from tapestry_media.models import LocalJob, Task

call_command("migrate", verbosity=0)
submit = Task.objects.create(kind="video", input="https://x.test/a.mov", backend="dummy")
local = LocalJob.objects.create(
    remote_id="task_local_x", idempotency_key="x", kind="image", input="in/missing.png",
    options={{"format": "png"}},
)
stored = {stored!r}
args = {{
    "tapestry_media.jobs.submit_task": submit.pk,
    "tapestry_media.resync_jobs.poll_task": submit.pk,
    "tapestry_media.jobs.run_local_job": local.pk,
    "tapestry_media.jobs.no_such_job": submit.pk,
}}
for old, new in stored.items():
    result = enqueue(job_definition(new), args[old])
    DBTaskResult.objects.filter(id=result.id).update(task_path=old)
    if old.endswith("poll_task"):  # after the submit job, which gives the task a remote id
        DBTaskResult.objects.filter(id=result.id).update(priority=-10)
call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", "--verbosity", "0")
print(json.dumps({{
    "queue": {{r.task_path: [r.status, r.return_value] for r in DBTaskResult.objects.all()}},
    "task": Task.objects.get(pk=submit.pk).status,
    "local_job": LocalJob.objects.get(pk=local.pk).state,
}}))
"""


@pytest.mark.once
def test_jobs_stored_under_old_paths_run_in_a_database_backend_worker(tmp_path) -> None:
    """django-tasks-db stores a job's dotted path and a worker resolves it with
    ``import_string``: the shims make the old paths resolve."""
    (tmp_path / "old_path_settings.py").write_text(
        SETTINGS.format(db=str(tmp_path / "db.sqlite3"), media=str(tmp_path / "media"))
    )
    stored = {
        "tapestry_media.jobs.submit_task": "tapestry_media.jobs.submit_task",
        "tapestry_media.resync_jobs.poll_task": "tapestry_media.jobs.poll_task",
        "tapestry_media.jobs.run_local_job": "tapestry_media.local.jobs.run_local_job",
        # control: a path nothing answers for fails in the worker
        "tapestry_media.jobs.no_such_job": "tapestry_media.jobs.submit_task",
    }
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "old_path_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
    }
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(WORKER.format(stored=stored))],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["queue"] == {
        "tapestry_media.jobs.submit_task": ["SUCCESSFUL", "submitted"],
        "tapestry_media.resync_jobs.poll_task": ["SUCCESSFUL", "stale"],  # polled, nothing new
        "tapestry_media.jobs.run_local_job": ["SUCCESSFUL", "failed"],
        "tapestry_media.jobs.no_such_job": ["FAILED", None],
    }
    assert outcome["task"] == Status.PENDING
    assert outcome["local_job"] == LocalJob.State.FAILED


def test_every_core_job_is_in_jobs() -> None:
    assert {jobs.submit_task.name, jobs.poll_task.name, run_local_job.name} == {
        "submit_task",
        "poll_task",
        "run_local_job",
    }
