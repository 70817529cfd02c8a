"""``manage.py ittybit``: the seed's CLI, against the contract server (real HTTP) and the
local engine (real ffmpeg), with no worker running."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

import tapestry_media
from tapestry_media import cli
from tapestry_media.backends.dummy import DummyBackend
from tapestry_media.models import LocalJob, Task
from tapestry_media.testing.contract_server import DEFAULT_API_KEY, ContractServer, Fault

from .media import make_clip

pytestmark = pytest.mark.django_db

SEED_URL = "https://tapestry-app.com/submissions/video-9182.mov"
SEED_METADATA = {"user_id": "usr_abc123", "submission_id": "sub_9182", "campaign": "summer-launch"}
SEED_ARGS = [
    "video", "-i", SEED_URL, "--width", "1280", "--format", "mp4",
    "--metadata", "user_id=usr_abc123", "--metadata", "submission_id=sub_9182",
    "--metadata", "campaign=summer-launch",
]  # fmt: skip


def ittybit(*args: str) -> str:
    out = io.StringIO()
    call_command("ittybit", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def ittybit_json(*args: str) -> Any:
    return json.loads(ittybit(*args, "--json"))


def configure(settings, **values: Any) -> None:
    settings.TAPESTRY_MEDIA = {**settings.TAPESTRY_MEDIA, **values}


@pytest.fixture
def cloud(cloud: ContractServer, settings) -> ContractServer:
    """The shared ``cloud`` without a WEBHOOK_URL: the seed's call sends none."""
    configure(settings, WEBHOOK_URL="")
    return cloud


class FakeTime:
    """``cli.clock`` and ``cli.pause``: pausing only moves the clock on. ``on_pause`` runs
    at each pause (the server moving the task on meanwhile)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.pauses: list[float] = []
        self.on_pause: Any = None

    def clock(self) -> float:
        return self.now

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds
        if self.on_pause is not None:
            self.on_pause()


@pytest.fixture
def fake_time(monkeypatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(cli, "clock", fake.clock)
    monkeypatch.setattr(cli, "pause", fake.pause)
    return fake


# --- the cloud, over real HTTP -------------------------------------------------------------------


def test_the_seeds_call_creates_one_task_with_its_body_and_prints_it(cloud) -> None:
    printed = ittybit_json(*SEED_ARGS, "--cloud")

    assert cloud.count("POST", "/tasks") == 1
    assert cloud.tasks_created == 1
    request = cloud.last_request
    task = Task.objects.get()
    assert request.json == {
        "input": SEED_URL,
        "kind": "video",
        "options": {"width": 1280, "format": "mp4"},
        "metadata": {**SEED_METADATA, "tapestry_task": str(task.uuid)},
    }
    assert request.header("Authorization") == f"Bearer {DEFAULT_API_KEY}"
    assert request.header("Idempotency-Key") == task.idempotency_key

    assert printed["id"] == printed["remote_id"] == cloud.task_ids[0] == task.remote_id
    assert printed["uuid"] == str(task.uuid)  # what the REST API calls the task's id
    assert printed["status"] == "pending"
    assert printed["metadata"] == {**SEED_METADATA, "tapestry_task": str(task.uuid)}
    assert printed["options"] == {"width": 1280, "format": "mp4"}
    # --cloud overrides the configured backend (dummy in the test settings) for this task.
    assert printed["backend"] == task.backend == "ittybit"
    assert DummyBackend.calls == []


def test_cloud_wait_polls_until_the_task_succeeds(cloud, fake_time) -> None:
    fake_time.on_pause = lambda: cloud.complete(cloud.task_ids[0], deliver=False)
    printed = ittybit_json(*SEED_ARGS, "--cloud", "--wait")

    assert printed["status"] == "succeeded"
    assert printed["output_url"] == cloud.task(printed["id"])["output"]["url"]
    assert printed["metadata"]["campaign"] == "summer-launch"
    assert cloud.count("GET", f"/tasks/{printed['id']}") == 1
    assert fake_time.pauses == [cli.POLL_FIRST]


def test_cloud_wait_on_a_failing_task_exits_with_its_error(cloud, fake_time) -> None:
    fake_time.on_pause = lambda: cloud.fail(
        cloud.task_ids[0], {"kind": "input_invalid", "message": "moov atom not found"}
    )
    with pytest.raises(CommandError, match="failed: input_invalid: moov atom not found"):
        ittybit(*SEED_ARGS, "--cloud", "--wait")
    assert Task.objects.get().status == "failed"


def test_a_refused_create_exits_non_zero_with_the_apis_reason(cloud) -> None:
    cloud.inject(Fault.error(400, kind="request_invalid", message="width is too large"))
    with pytest.raises(CommandError, match="request_invalid: width is too large"):
        ittybit(*SEED_ARGS, "--cloud")


def test_a_transient_create_error_leaves_the_task_to_be_retried(cloud) -> None:
    cloud.inject(Fault.unavailable())
    out, err = io.StringIO(), io.StringIO()
    call_command("ittybit", *SEED_ARGS, "--cloud", "--json", stdout=out, stderr=err)

    printed = json.loads(out.getvalue())
    assert printed["status"] == "created"
    assert printed["error"]["status_code"] == "503"
    assert "not submitted yet; a task worker retries the submit" in err.getvalue()
    assert cloud.tasks_created == 0


def test_wait_backs_off_then_gives_up_saying_the_task_carries_on(cloud, fake_time) -> None:
    with pytest.raises(CommandError, match=r"gave up waiting after 30 s: .* still pending"):
        ittybit(*SEED_ARGS, "--cloud", "--wait", "--timeout", "30")
    assert fake_time.pauses[:4] == [1.0, 1.5, 2.25, 3.375]
    assert max(fake_time.pauses) <= cli.POLL_MAX
    assert sum(fake_time.pauses) == pytest.approx(30)
    assert cloud.count("GET") == len(fake_time.pauses)
    assert Task.objects.get().status == "pending"


def test_a_local_file_goes_to_the_cloud_as_its_public_url(cloud, tmp_path) -> None:
    clip = tmp_path / "sample.mov"
    clip.write_bytes(b"not really a movie")

    printed = ittybit_json("video", "-i", str(clip), "--format", "mp4", "--cloud")

    name = printed["input"]
    assert cli_files() == [name]
    assert name.endswith("/sample.mov")
    assert default_storage.open(name).read() == b"not really a movie"
    sent = cloud.last_request.json["input"]
    assert sent == f"https://tapestry-app.com/media/{name}"


def test_a_cloud_task_from_a_local_file_needs_public_base_url(cloud, settings, tmp_path):
    configure(settings, PUBLIC_BASE_URL="")
    clip = tmp_path / "sample.mov"
    clip.write_bytes(b"x")

    with pytest.raises(CommandError, match=r"TAPESTRY_MEDIA\['PUBLIC_BASE_URL'\]"):
        ittybit("video", "-i", str(clip), "--cloud")
    assert Task.objects.count() == 0
    assert cli_files() == []
    assert cloud.requests == []


def test_a_vetoed_task_is_an_error_and_its_copied_input_is_removed(tmp_path) -> None:
    from tapestry_media.signals import SubmitVetoed, task_pre_submit

    def veto(sender, **kwargs):
        raise SubmitVetoed("uploads are paused")

    clip = tmp_path / "sample.mov"
    clip.write_bytes(b"x")
    task_pre_submit.connect(veto)
    try:
        with pytest.raises(CommandError, match="vetoed"):
            ittybit("video", "-i", str(clip))
    finally:
        task_pre_submit.disconnect(veto)
    assert Task.objects.count() == 0
    assert cli_files() == []


def cli_files() -> list[str]:
    """Files the CLI copied into storage (``tapestry_media/cli/<uuid>/<name>``)."""
    root = cli.STORAGE_PREFIX
    if not default_storage.exists(root):
        return []
    return [
        f"{root}/{folder}/{name}"
        for folder in default_storage.listdir(root)[0]
        for name in default_storage.listdir(f"{root}/{folder}")[1]
    ]


# --- the local engine, real ffmpeg, no worker, no key --------------------------------------------


@pytest.mark.once
def test_local_wait_runs_the_whole_task_here(settings, tmp_path) -> None:
    configure(settings, API_KEY="")
    clip = make_clip(tmp_path / "sample.mov", size="320x240", seconds=1)

    printed = ittybit_json(
        "video", "-i", str(clip), "--width", "160", "--format", "mp4",
        "--metadata", "user_id=usr_abc123", "--local", "--wait",
    )  # fmt: skip

    assert printed["status"] == "succeeded", printed["error"]
    assert printed["backend"] == "local"
    assert printed["id"].startswith("task_local_")
    assert printed["metadata"]["user_id"] == "usr_abc123"
    assert printed["output_url"].startswith(
        "https://tapestry-app.com/media/tapestry_media/outputs/"
    )
    assert printed["output"]["width"] == 160
    assert default_storage.exists(printed["output"]["storage_name"])
    assert LocalJob.objects.get().state == "succeeded"


# --- listing -------------------------------------------------------------------------------------


def test_tasks_filters_by_metadata_exactly() -> None:
    summer = tapestry_media.submit(
        input=SEED_URL, kind="video", metadata={"campaign": "summer-launch"}
    )
    tapestry_media.submit(input=SEED_URL, kind="video", metadata={"campaign": "summer-launch-2"})
    tapestry_media.submit(input=SEED_URL, kind="image", metadata={"user_id": "usr_abc123"})

    listed = ittybit_json("tasks", "--metadata", "campaign=summer-launch")
    assert [row["uuid"] for row in listed] == [str(summer.uuid)]
    assert listed[0]["metadata"]["campaign"] == "summer-launch"

    assert len(ittybit_json("tasks", "--kind", "video")) == 2
    assert ittybit_json("tasks", "--metadata", "campaign=winter") == []
    assert ittybit_json("tasks", str(summer.pk))["uuid"] == str(summer.uuid)
    assert ittybit_json("tasks", str(summer.uuid))["id"] is None  # not submitted yet

    table = ittybit("tasks", "--status", "created", "--limit", "2")
    header = ["ID", "KIND", "STATUS", "PROGRESS", "CREATED", "METADATA"]
    assert table.splitlines()[0].split() == header
    assert len(table.splitlines()) == 3


def test_tasks_shows_one_by_remote_id(cloud) -> None:
    created = ittybit_json(*SEED_ARGS, "--cloud", "--async")
    shown = ittybit("tasks", created["id"])
    assert shown.startswith(f"{created['id']}  video  pending")
    assert "campaign=summer-launch" in shown
    with pytest.raises(CommandError, match="no task 'task_nope'"):
        ittybit("tasks", "task_nope")


# --- flags ---------------------------------------------------------------------------------------


def test_flags_map_to_api_options_numbers_as_numbers() -> None:
    ittybit(
        "video", "-i", SEED_URL, "--width", "50%", "--height", "720", "--fps", "29.97",
        "--bitrate", "2500k", "--start", "1", "--end", "2.5", "--quality", "high",
        "--fit", "cover", "--background", "FFF",
    )  # fmt: skip
    (call,) = DummyBackend.calls
    assert call.spec.options == {
        "width": "50%",
        "height": 720,
        "quality": "high",
        "fit": "cover",
        "background": "#fff",
        "fps": 29.97,
        "bitrate": 2_500_000,
        "start": 1,
        "end": 2.5,
    }


def test_task_passes_any_kind_and_its_options_through() -> None:
    printed = ittybit_json(
        "task", "subtitles", "-i", SEED_URL, "--options", '{"language": "en", "max_lines": 2}'
    )
    assert printed["kind"] == "subtitles"
    assert DummyBackend.calls[0].spec.options == {"language": "en", "max_lines": 2}


BAD = [
    (["video", "-i", SEED_URL, "--width", "wide"], "argument --width: must be pixels"),
    (["video", "-i", SEED_URL, "--local", "--cloud"], "not allowed with argument --local"),
    (["video", "-i", SEED_URL, "--wait", "--async"], "not allowed with argument --wait"),
    (["video", "-i", SEED_URL, "--wait", "--timeout", "0"], "must be seconds, a number above 0"),
    (["video", "-i", SEED_URL, "--colour", "red"], "unrecognized arguments: --colour"),
    (["audio", "-i", SEED_URL, "--width", "100"], "unrecognized arguments: --width"),
    (["video", "-i", SEED_URL, "--format", "gif"], "invalid choice: 'gif'"),
    (["video", "-i", SEED_URL, "--fps", "500"], "frames per second from 1 to 60"),
    (["task", "speech", "-i", SEED_URL, "--options", "{language: en}"], "not valid JSON"),
    (["task", "speech", "-i", SEED_URL, "--options", "[1]"], "must be a JSON object"),
    (["video", "-i", SEED_URL, "--metadata", "campaign"], "must look like key=value"),
    (["video", "-i", SEED_URL, "--metadata", "tapestry_task=x"], "set by the server"),
    (["video", "-i", "/no/such/sample.mov"], "no such file"),
    (["video", "-i", "ftp://example.com/a.mov"], r"ftp: URLs are not supported"),
    (["video", "-i", SEED_URL, "--cloud"], r"TAPESTRY_MEDIA\['API_KEY'\]"),
    (["task", "subtitles", "-i", SEED_URL, "--local"], "supported kinds: video, image, audio"),
    (["video", "-i", SEED_URL, "--local", "--codec", "vp9"], "'vp9' does not fit format 'mp4'"),
    (["video"], "the following arguments are required: -i/--input"),
    (["audio", "-i", SEED_URL, "--width", "5"], "unrecognized arguments: --width 5"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a[1:]) for a, _ in BAD])
def test_bad_flags_are_a_command_error_and_write_nothing(args, message) -> None:
    with pytest.raises(CommandError, match=message):
        ittybit(*args)
    assert Task.objects.count() == 0
    assert LocalJob.objects.count() == 0
    assert DummyBackend.calls == []


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--width", "wide"], 2, "argument --width: must be pixels"),
        (["--cloud"], 1, "TAPESTRY_MEDIA['API_KEY']"),
    ],
)
def test_bad_flags_exit_non_zero_from_the_shell(args, status, message) -> None:
    done = shell("video", "-i", SEED_URL, *args)
    assert done.returncode == status, done.stderr
    assert message in done.stderr
    assert done.stdout == ""


def test_a_flag_of_another_kind_shows_the_subcommands_usage() -> None:
    """``ittybit audio --width`` names audio's own flags, not the top-level usage."""
    done = shell("audio", "-i", SEED_URL, "--width", "5")
    assert done.returncode == 2
    assert "usage: " in done.stderr
    assert " ittybit audio " in done.stderr, done.stderr
    assert "--bitrate" in done.stderr
    assert "unrecognized arguments: --width 5" in done.stderr
    video = shell("video", "-i", SEED_URL, "--width", "wide")  # video knows --width
    assert "argument --width: must be pixels" in video.stderr
    assert "unrecognized" not in video.stderr


def shell(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    return subprocess.run(
        [sys.executable, "-m", "django", "ittybit", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=60,
    )


# --- progress on a terminal ----------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_one_updating_line_on_a_terminal_and_silent_elsewhere() -> None:
    from django.core.management.base import OutputWrapper

    task = Task(kind="video", remote_id="task_abc", status="processing", progress=40)
    terminal, pipe = Terminal(), io.StringIO()
    shown, silent = cli.ProgressLine(OutputWrapper(terminal)), cli.ProgressLine(OutputWrapper(pipe))
    for line in (shown, silent):
        line(task)
        task.progress = 45
        line(task)
        line(task)  # unchanged: not written again
        task.status, task.progress = "succeeded", 100
        line(task)
        line.close()
        task.status, task.progress = "processing", 40

    assert terminal.getvalue() == (
        "\rtask_abc: processing 40%\rtask_abc: processing 45%\rtask_abc: succeeded     \n"
    )
    assert pipe.getvalue() == ""
