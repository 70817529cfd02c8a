"""The logic behind ``manage.py ittybit``: the seed's CLI on top of ``pipeline.submit``.

    ittybit video -i <url|path> --width 1280 --format mp4 --metadata k=v [--local|--cloud] [--wait]

Everything a command line can get wrong is checked before anything is written: flag values
(argparse ``type`` functions here raise ``ArgumentTypeError``), metadata, the backend and its
key, the input, and for the local engine the options themselves. Then a local file is copied
into the default storage, the Task is created (its ``backend`` field set to the one chosen),
and its submit step runs in this process. ``wait`` runs whatever else the task needs here too
(the local engine's job; polling for the cloud), so no worker has to be running.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.files import File
from django.core.files.storage import default_storage
from django.core.management.base import CommandError, OutputWrapper
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from . import metadata as md
from . import pipeline, submit_step, webhooks
from .api.outputs import public_src
from .backends import BackendError, BaseBackend, TransientBackendError, get_backend
from .conf import get_settings
from .inputs import is_url, public_url
from .local import engine
from .local import run as local_run
from .local.backend import LocalBackend
from .models import LocalJob, Task
from .remote import public_error
from .signals import SubmitVetoed, task_updated
from .status import Status

#: Where a local file given with ``-i`` is copied, under a fresh uuid per command.
STORAGE_PREFIX = "tapestry_media/cli"
DEFAULT_TIMEOUT = 600.0
#: Polling backoff while waiting: first delay, growth factor, cap (seconds).
POLL_FIRST = 1.0
POLL_FACTOR = 1.5
POLL_MAX = 10.0
#: How waiting reads the time and pauses between polls; tests replace them.
clock: Callable[[], float] = time.monotonic
pause: Callable[[float], None] = time.sleep

FITS = ("contain", "cover", "fill")
QUALITIES = ("very_low", "low", "medium", "high", "very_high")
CODECS = ("h264", "h265", "vp9", "av1")
FORMATS: Mapping[str, tuple[str, ...]] = {
    "video": ("mp4", "webm", "mov"),
    "image": ("jpeg", "jpg", "png", "webp", "avif"),
    "audio": ("mp3", "aac", "ogg", "opus", "wav", "flac"),
}
_TASK_KIND = re.compile(r"[a-z][a-z0-9_]{0,39}")
_PIXELS = re.compile(r"\d+")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)%")
_BITRATE = re.compile(r"(\d+(?:\.\d+)?)([kKmM]?)")
_HEX = re.compile(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")


# --- flag values (argparse ``type=`` functions) ------------------------------------------------


def _bad(expected: str, text: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"must be {expected}, not {text!r}")


def length(text: str) -> int | str:
    """Pixels as a number (``1280``), or a percentage kept as text (``"50%"``)."""
    expected = "pixels such as 1280 or a percentage such as 50%"
    if _PIXELS.fullmatch(text) and int(text) > 0:
        return int(text)
    percent = _PERCENT.fullmatch(text)
    if percent and 0 < float(percent[1]) <= 100:
        return text
    raise _bad(expected, text)


def _number(text: str, expected: str) -> int | float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(expected, text) from None
    if not math.isfinite(value):
        raise _bad(expected, text)
    return int(value) if value.is_integer() and "." not in text else value


def seconds(text: str) -> int | float:
    value = _number(text, "seconds, a number of at least 0")
    if value < 0:
        raise _bad("seconds, a number of at least 0", text)
    return value


def fps(text: str) -> int | float:
    value = _number(text, "frames per second from 1 to 60")
    if not 1 <= value <= 60:
        raise _bad("frames per second from 1 to 60", text)
    return value


def bitrate(text: str) -> int:
    """Bits per second as a number; ``2500k`` and ``2.5M`` are accepted and converted."""
    match = _BITRATE.fullmatch(text.strip())
    value = float(match[1]) * {"": 1, "k": 1e3, "m": 1e6}[match[2].lower()] if match else 0
    if value < 1:
        raise _bad("bits per second such as 2500000 or 2500k", text)
    return round(value)


def colour(text: str) -> str:
    match = _HEX.fullmatch(text.strip())
    if match is None:
        raise _bad("a hex colour such as #000000", text)
    return "#" + match[1].lower()


def word(text: str) -> str:
    return text.strip().lower()


def task_kind(text: str) -> str:
    if not _TASK_KIND.fullmatch(text):
        raise _bad("a task kind such as speech or subtitles (lowercase letters, digits, _)", text)
    return text


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"is not valid JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f'must be a JSON object such as \'{{"language": "en"}}\', not {text!r}'
        )
    return value


def positive_int(text: str) -> int:
    if not _PIXELS.fullmatch(text) or int(text) < 1:
        raise _bad("a whole number of at least 1", text)
    return int(text)


def timeout(text: str) -> float:
    value = _number(text, "seconds, a number above 0")
    if value <= 0:
        raise _bad("seconds, a number above 0", text)
    return float(value)


@dataclass(frozen=True)
class Flag:
    """One option flag: ``--<name>`` sets ``options[name]``."""

    name: str
    type: Callable[[str], Any]
    help: str
    choices: tuple[str, ...] | None = None


_FLAGS = {
    flag.name: flag
    for flag in (
        Flag("width", length, "output width: pixels (1280) or a percentage of the input (50%%)"),
        Flag("height", length, "output height: pixels (720) or a percentage (50%%)"),
        Flag("format", word, "output format"),
        Flag("codec", word, "video codec (must fit the format)", CODECS),
        Flag("quality", word, "quality level", QUALITIES),
        Flag("fit", word, "how width and height make a box", FITS),
        Flag("position", word, "where cover crops / contain pads (center, top, top_left…)"),
        Flag("background", colour, "pad colour, hex (#000000)"),
        Flag("fps", fps, "frames per second, 1 to 60"),
        Flag("bitrate", bitrate, "bits per second (2500000, 2500k, 2.5M)"),
        Flag("start", seconds, "seconds into the input to start at (image: the frame time)"),
        Flag("end", seconds, "seconds into the input to stop at"),
    )
}
_KIND_FLAGS = {
    "video": tuple(_FLAGS),
    "image": ("width", "height", "format", "quality", "fit", "position", "background", "start"),
    "audio": ("format", "quality", "bitrate", "start", "end"),
}
MEDIA_KINDS = tuple(_KIND_FLAGS)


def flags_for(kind: str) -> list[Flag]:
    """The option flags of ``ittybit <kind>`` (the API's options for that kind)."""
    flags = [_FLAGS[name] for name in _KIND_FLAGS[kind]]
    return [Flag(f.name, f.type, f.help, FORMATS[kind]) if f.name == "format" else f for f in flags]


def options_from(values: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The options of the flags that were given, in the order of the API's table."""
    return {name: values[name] for name in _KIND_FLAGS[kind] if values.get(name) is not None}


# --- planning: every check, nothing written -----------------------------------------------------


@dataclass(frozen=True)
class Source:
    """The task's input: a URL, or a local file (``path``) to copy to ``name`` in storage."""

    name: str
    path: Path | None = None


@dataclass(frozen=True)
class Plan:
    kind: str
    source: Source
    options: dict[str, Any]
    metadata: dict[str, str]
    backend: str


def plan(
    *,
    kind: str,
    input: str,
    options: Mapping[str, Any],
    metadata: Sequence[str],
    local: bool = False,
    cloud: bool = False,
) -> Plan:
    """Check a command line's request; raise ``CommandError`` with the reason if it is wrong."""
    backend_name = choose_backend(local=local, cloud=cloud)
    backend = get_backend(backend_name)
    if isinstance(backend, LocalBackend):
        try:
            engine.validate_options(kind, options)
        except engine.UnsupportedOperation as exc:
            raise CommandError(f"the local engine cannot run this task: {exc}") from exc
    return Plan(
        kind=kind,
        source=plan_input(input, backend),
        options=dict(options),
        metadata=parse_metadata(metadata),
        backend=backend_name,
    )


def choose_backend(*, local: bool, cloud: bool) -> str:
    """``--local``/``--cloud`` override ``TAPESTRY_MEDIA['BACKEND']`` for one command."""
    if local and cloud:
        raise CommandError("--local and --cloud exclude each other: choose one.")
    config = get_settings()
    name = "local" if local else "ittybit" if cloud else config.backend_name
    if name == "ittybit" and not config.API_KEY:
        raise CommandError(
            "the Ittybit API (--cloud) needs an API key: set TAPESTRY_MEDIA['API_KEY'] "
            "(ITTYBIT_API_KEY in the example project), or run it with --local."
        )
    return name


def parse_metadata(pairs: Iterable[str]) -> dict[str, str]:
    try:
        metadata = md.parse_pairs(pairs)
        md.reject_reserved(metadata, for_submission=False)
    except md.MetadataError as exc:
        raise CommandError(f"--metadata: {exc}") from exc
    return metadata


def plan_input(value: str, backend: BaseBackend) -> Source:
    """A URL as it is; a local file gets a storage name, checked to be reachable by the
    backend (a cloud API needs a public URL for it) before anything is copied."""
    if is_url(value):
        return Source(value)
    path = Path(value).expanduser()
    if not path.exists():
        scheme = urlsplit(value).scheme
        if len(scheme) > 1:  # one letter is a Windows drive
            raise CommandError(
                f"-i {value!r}: give an http(s) URL or a local file ({scheme}: URLs are not "
                "supported)."
            )
        raise CommandError(f"-i {value!r}: no such file.")
    if not path.is_file():
        raise CommandError(f"-i {value!r} is not a file.")
    name = default_storage.generate_filename(f"{STORAGE_PREFIX}/{uuid.uuid4().hex}/{path.name}")
    if not backend.accepts_storage_input:
        try:
            public_url(name)
        except BackendError as exc:
            raise CommandError(
                f"-i {value!r} is a local file, and the {backend.name} backend fetches its input "
                f"by URL: {exc.message}"
            ) from exc
    return Source(name, path)


# --- doing it --------------------------------------------------------------------------------


def create(plan: Plan) -> Task:
    """Copy a local input into storage and create the Task on the chosen backend. The
    Task's input stays the storage name: the submit step turns it into a public URL for a
    cloud backend each time it submits (so a presigned URL is fresh on every attempt)."""
    name = store(plan.source) if plan.source.path else plan.source.name
    try:
        with transaction.atomic():
            task = pipeline.submit(
                input=name,
                kind=plan.kind,
                options=plan.options,
                metadata=plan.metadata,
                backend=plan.backend,
            )
    except (md.MetadataError, SubmitVetoed, ValueError) as exc:
        discard(plan.source, name)
        raise CommandError(str(exc)) from exc
    except BaseException:
        discard(plan.source, name)
        raise
    return task


def discard(source: Source, stored_name: str) -> None:
    """Remove the copy of a local input when its task could not be created."""
    if source.path is not None:
        default_storage.delete(stored_name)


def store(source: Source) -> str:
    assert source.path is not None
    with source.path.open("rb") as handle:
        return default_storage.save(source.name, File(handle, name=source.path.name))


def submit_now(task: Task) -> Task:
    """Run the submit step here (a worker that got there first makes it a no-op)."""
    submit_step.run_submit(task.pk)
    task.refresh_from_db()
    return task


def wait(
    task: Task,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Callable[[Task], None] | None = None,
) -> Task:
    """Drive ``task`` to a terminal state in this process, or until ``timeout`` seconds pass
    (then it is returned as it is: it carries on without us)."""
    report = progress or (lambda task: None)
    backend = get_backend(task.backend)
    deadline = clock() + timeout
    delay = POLL_FIRST
    with _live_progress(task.pk, report):
        task = advance(task, backend, poll=False)
        while not task.is_terminal:
            report(task)
            remaining = deadline - clock()
            if remaining <= 0:
                break
            pause(min(delay, remaining))
            delay = min(delay * POLL_FACTOR, POLL_MAX)
            task = advance(task, backend, poll=True)
    report(task)
    return task


def advance(task: Task, backend: BaseBackend, *, poll: bool) -> Task:
    """One round: submit if the task is due for it (again, after a transient error); run a
    local-engine job that no worker is running; fetch the remote state when ``poll``."""
    if task.status == Status.CREATED and (
        task.next_attempt_at is None or task.next_attempt_at <= timezone.now()
    ):
        task = submit_now(task)
    if task.remote_id and not task.is_terminal and isinstance(backend, LocalBackend):
        run_local_job(task.remote_id)
        task.refresh_from_db()
    if poll and task.remote_id and not task.is_terminal and backend.supports_get:
        fetch(task, backend)
        task.refresh_from_db()
    return task


def run_local_job(remote_id: str) -> None:
    """Run the local engine's job here; one a live worker holds is left to it."""
    runnable = LocalJob.objects.filter(
        remote_id=remote_id, state__in=[LocalJob.State.PENDING, LocalJob.State.PROCESSING]
    )
    job_pk = runnable.values_list("pk", flat=True).first()
    if job_pk is not None:
        local_run.run(job_pk)


def fetch(task: Task, backend: BaseBackend) -> None:
    assert task.remote_id
    try:
        remote = backend.get(task.remote_id)
    except TransientBackendError:
        return  # the next round asks again
    except BackendError as exc:
        raise CommandError(
            f"could not fetch task {task.remote_id} from the {backend.name} backend: {exc.message}"
        ) from exc
    webhooks.record_poll(remote, task_pk=task.pk)


@contextlib.contextmanager
def _live_progress(task_pk: int, report: Callable[[Task], None]) -> Iterator[None]:
    """Progress the local engine reports while its job runs here (``task_updated``)."""

    def receive(sender: type, task: Task, **kwargs: Any) -> None:
        if task.pk == task_pk:
            report(task)

    task_updated.connect(receive, sender=Task, weak=False)
    try:
        yield
    finally:
        task_updated.disconnect(receive, sender=Task)


def problem(task: Task, *, waited: bool, timeout: float) -> str | None:
    """Why the command should exit non-zero, or ``None``."""
    if task.status in (Status.FAILED, Status.CANCELLED):
        error = task.error or {}
        kind = error.get("kind") or task.status
        message = error.get("message") or "no reason given"
        return f"task {label(task)} {task.status}: {kind}: {message}"
    if waited and not task.is_terminal:
        return (
            f"gave up waiting after {timeout:g} s: task {label(task)} is still {task.status}. "
            f"It carries on; `manage.py ittybit tasks {task.uuid}` shows it later."
        )
    return None


# --- reading tasks -------------------------------------------------------------------------------


def select(
    *,
    status: str | None = None,
    kind: str | None = None,
    metadata: Sequence[str] = (),
) -> QuerySet[Task]:
    rows = Task.objects.select_related("submission")
    if status:
        rows = rows.filter(status=status)
    if kind:
        rows = rows.filter(kind=kind)
    if metadata:
        rows = rows.with_metadata(**parse_metadata_filter(metadata))
    return rows


def parse_metadata_filter(pairs: Iterable[str]) -> dict[str, str]:
    try:
        return md.parse_pairs(pairs)
    except md.MetadataError as exc:
        raise CommandError(f"--metadata: {exc}") from exc


def find(ident: str, rows: QuerySet[Task]) -> Task:
    """One task by its remote id, uuid or pk."""
    query = Q(remote_id=ident)
    if ident.isdigit() and len(ident) < 19:  # a bigint
        query |= Q(pk=int(ident))
    with contextlib.suppress(ValueError):
        query |= Q(uuid=uuid.UUID(ident))
    matches = list(rows.filter(query)[:2])
    if not matches:
        raise CommandError(f"no task {ident!r}: give its remote id (task_…), uuid or pk.")
    if len(matches) > 1:
        raise CommandError(f"{ident!r} matches more than one task: give its uuid.")
    return matches[0]


# --- output --------------------------------------------------------------------------------------


def label(task: Task) -> str:
    return task.remote_id or str(task.uuid)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def as_json(task: Task) -> dict[str, Any]:
    """The task object as the seed's CLI prints it (``id`` is the remote id; ``remote_id``
    says so by name) plus the local fields (``uuid`` is what the REST API calls ``id``)."""
    return {
        "id": task.remote_id,
        "remote_id": task.remote_id,
        "object": "task",
        "uuid": str(task.uuid),
        "pk": task.pk,
        "kind": task.kind,
        "status": task.status,
        "raw_status": task.raw_status or None,
        "progress": task.progress,
        "backend": task.backend,
        "input": task.input,
        "options": task.options,
        "metadata": task.metadata,
        "output": task.output,
        "output_url": public_src(task) or None,
        "error": public_error(task.error),
        "submission": task.submission.public_id if task.submission else None,
        "created_at": _iso(task.created_at),
        "updated_at": _iso(task.updated_at),
        "submitted_at": _iso(task.submitted_at),
        "started_at": _iso(task.started_at),
        "finished_at": _iso(task.finished_at),
    }


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _pairs(metadata: Mapping[str, Any], *, hide_correlation: bool) -> str:
    hidden = get_settings().CORRELATION_KEY if hide_correlation else None
    return " ".join(f"{k}={v}" for k, v in metadata.items() if k != hidden)


def summary(task: Task) -> str:
    """A few lines for a person."""
    running = task.progress is not None and not task.is_terminal
    progress = f" {task.progress}%" if running else ""
    lines = [f"{label(task)}  {task.kind}  {task.status}{progress}  ({task.backend})"]
    rows = [
        ("uuid", str(task.uuid)),
        ("input", task.input),
        ("options", json.dumps(task.options, ensure_ascii=False)),
        ("metadata", _pairs(task.metadata, hide_correlation=False)),
        ("output", public_src(task)),
    ]
    if task.error:
        rows.append(("error", f"{task.error.get('kind', '')}: {task.error.get('message', '')}"))
    lines += [f"  {name:<9} {value}" for name, value in rows if value]
    return "\n".join(lines)


def table(tasks: Sequence[Task]) -> str:
    """One line per task, like the real CLI's ``jobs``."""
    if not tasks:
        return "no tasks"
    header = ("ID", "KIND", "STATUS", "PROGRESS", "CREATED", "METADATA")
    rows = [
        (
            label(t),
            t.kind,
            t.status,
            f"{t.progress}%" if t.progress is not None else "-",
            timezone.localtime(t.created_at).strftime("%Y-%m-%d %H:%M"),
            _pairs(t.metadata, hide_correlation=True),
        )
        for t in tasks
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(
            [*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]
        ).rstrip()
        for row in [header, *rows]
    )


def progress_text(task: Task) -> str:
    text = f"{label(task)}: {task.status}"
    if task.progress is not None and not task.is_terminal:
        text += f" {task.progress}%"
    if task.status == Status.CREATED and task.error:
        text += f" (will retry: {task.error.get('message', '')})"
    return text


class ProgressLine:
    """One line on a terminal, rewritten in place; silent when the stream is not a terminal."""

    def __init__(self, stream: OutputWrapper) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.shown = ""

    def __call__(self, task: Task) -> None:
        text = progress_text(task)
        if not self.enabled or text == self.shown:
            return
        padding = " " * max(0, len(self.shown) - len(text))
        self.stream.write(f"\r{text}{padding}", style_func=str, ending="")
        self.stream.flush()
        self.shown = text

    def close(self) -> None:
        if self.shown:
            self.stream.write("", style_func=str)
            self.shown = ""


def hint(task: Task) -> str | None:
    """What happens next to a task the command did not wait for."""
    if task.is_terminal:
        return None
    if task.status in (Status.CREATED, Status.SUBMITTING):
        then = "the task is not submitted yet; a task worker retries the submit"
    elif task.backend == "local":
        then = "a task worker runs the local engine's job"
    else:
        then = "its result arrives by webhook or resync"
    return (
        f"not waiting: {then}. `manage.py ittybit tasks {label(task)}` shows it; "
        "--wait runs it to the end here."
    )
