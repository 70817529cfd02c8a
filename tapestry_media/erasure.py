"""Erasure on request: everything this app holds about one user, gone.

``manage.py tapestry_media erase --user <pk|username> [--dry-run]`` and the Submission admin's
"Erase the uploaders' data" action call :func:`erase`. One transaction on the alias the router
gives these models:

1. :func:`collect` finds the user's rows: their submissions (``uploader``, or tasks whose
   ``user_id`` metadata is ``usr_<pk>``: a deleted user's uploads have ``uploader`` NULL), those
   submissions' tasks, the tasks they created through the API (``created_by``), whose metadata
   names them or whose input is one of their uploads, the local engine's jobs of those tasks
   (every attempt's remote id and idempotency key), and the webhook events of those tasks, of
   their remote ids, or unmatched ones about one of those tasks (:class:`Owner`).
2. :func:`stored_files` lists their files: uploads, outputs, and everything else under each
   submission's upload folder and each local job's output folder (earlier files of the same
   submission included). Storage API only, so S3 works as the file system does.
3. :func:`delete_rows` deletes those rows, and the user's pending ``ErasureRequest`` goes.
4. :func:`scrub_remaining` replaces the user's identifiers in every remaining row (metadata,
   inputs, outputs, errors, webhook bodies and headers) with ``[erased]``.
5. After commit, :func:`delete_files` deletes the files.

A dry run does 1, 2 and counts 4, changing nothing.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import connections, models, router, transaction
from django.db.models.functions import Cast

from . import metadata as md
from . import receivers
from .api.outputs import stored_names
from .conf import get_settings
from .database import retry_on_conflict
from .direct_uploads import DIRECT_PREFIX, owner_segment
from .models import (
    UPLOAD_PREFIX,
    ErasureRequest,
    LocalJob,
    Submission,
    Task,
    WebhookEvent,
    metadata_q,
)
from .orphans import storage_names, walk

logger = logging.getLogger("tapestry_media.erasure")

ERASED = "[erased]"
_BATCH = 2000


class UnknownUser(ValueError):
    """``--user`` names no user, and is not a pk of the user model either (a deleted user's)."""


@dataclass(frozen=True)
class Subject:
    """Whom to erase. ``user`` is ``None`` for a user the host has already deleted: their rows
    are then found by ``usr_<pk>`` alone. ``pk`` is the user model's own (an int, a UUID…)."""

    pk: Any
    user: Any = None

    @property
    def public_id(self) -> str:
        return md.user_public_id(self.pk)

    @property
    def names(self) -> tuple[str, ...]:
        """Username and email: personal data a host may have put into metadata values."""
        if self.user is None:
            return ()
        values = (self.user.get_username(), getattr(self.user, "email", "") or "")
        return tuple(v for v in values if v)


@dataclass
class Found:
    submissions: list[int] = field(default_factory=list)
    tasks: list[int] = field(default_factory=list)
    local_jobs: list[int] = field(default_factory=list)
    events: list[int] = field(default_factory=list)
    #: identifiers that, wherever they appear in a remaining row, are replaced
    tokens: set[str] = field(default_factory=set)
    #: storage folders that are the user's alone
    folders: set[str] = field(default_factory=set)
    #: storage names the rows point to
    files: set[str] = field(default_factory=set)


@dataclass
class Report:
    user_pk: Any
    dry_run: bool
    submissions: int = 0
    tasks: int = 0
    local_jobs: int = 0
    events: int = 0
    files: dict[str, int] = field(default_factory=dict)
    scrubbed: dict[str, int] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return sum(self.files.values())

    def summary(self) -> str:
        """For the operator who asked (the command's output, the admin's message)."""
        return f"usr_{self.user_pk}: {self.counts()}"

    def counts(self) -> str:
        """What was erased, naming no one: the log line."""
        deleted = "would be deleted" if self.dry_run else "deleted"
        scrubbed = ", ".join(f"{n} {label}" for label, n in sorted(self.scrubbed.items()))
        return (
            f"{self.submissions} submission(s), {self.tasks} task(s), "
            f"{self.local_jobs} local engine job(s), {self.events} webhook event(s) {deleted}; "
            f"{len(self.files)} file(s), {self.bytes} bytes {deleted}; rows scrubbed: "
            f"{scrubbed or 'none'}" + (" (dry run)" if self.dry_run else "")
        )


# --- who ----------------------------------------------------------------------------------------


def resolve_user(value: str) -> Subject:
    """``value`` is a login (the user model's ``USERNAME_FIELD``) or a pk. A pk no user has any
    more is accepted: the host may have deleted the user already, leaving their uploads with
    ``uploader`` NULL."""
    model = get_user_model()
    text = value.strip()
    user = model._default_manager.filter(**{model.USERNAME_FIELD: text}).first()
    if user is not None:
        return Subject(pk=user.pk, user=user)
    try:
        # the pk as the model stores it: "42" for an integer key, the canonical form of a UUID
        pk = model._meta.pk.to_python(text) if text else None
    except ValidationError:
        pk = None
    if pk is None:
        raise UnknownUser(f"no user has the username or pk {value!r}.")
    return subject_of(pk)


def subject_of(pk: Any) -> Subject:
    """The user whose pk is ``pk``, or, if the host has deleted them, ``usr_<pk>`` alone."""
    return Subject(pk=pk, user=get_user_model()._default_manager.filter(pk=pk).first())


# --- 1. rows ------------------------------------------------------------------------------------


def collect(subject: Subject, alias: str) -> Found:
    found = Found()
    named = metadata_q({"user_id": subject.public_id}, _vendor(alias))
    tasks_of = Task.objects.using(alias)
    submissions = (
        Submission.objects.using(alias)
        .filter(
            models.Q(uploader_id=subject.pk)
            | models.Q(pk__in=tasks_of.filter(named, submission__isnull=False).values("submission"))
        )
        .values_list("pk", "public_id", "file")
    )
    uploads: set[str] = set()
    public_ids: list[str] = []
    for pk, public_id, name in submissions:
        found.submissions.append(pk)
        public_ids.append(public_id)
        found.tokens.add(public_id)
        found.folders.add(f"{UPLOAD_PREFIX}/{public_id}")
        if name:
            uploads.add(name)
    found.files.update(uploads)
    # A task on one of the user's uploads is the user's, whoever created it: its output is
    # their media.
    tasks = tasks_of.filter(
        models.Q(submission__in=found.submissions)
        | models.Q(created_by_id=subject.pk)
        | named
        | models.Q(input__in=uploads)
    ).values_list("pk", "uuid", "attempt", "remote_id", "attempts", "backend", "output")
    remote_ids: set[str] = set()
    keys: set[str] = set()
    uuids: set[str] = set()
    for pk, key, attempt, remote_id, attempts, backend, output in tasks.iterator():
        found.tasks.append(pk)
        uuids.add(str(key))
        found.tokens.update({str(key), key.hex})
        # Task.idempotency_key of every attempt so far
        keys.update(f"{key.hex[:24]}-{n}" for n in range(1, attempt + 1))
        remote_ids.update(_remote_ids(remote_id, attempts))
        found.files.update(stored_names(backend, output))
    found.tokens.update(remote_ids | keys)
    found.tokens.add(subject.public_id)
    found.tokens.update(n for n in subject.names if "@" in n)  # emails anywhere, as a token
    _collect_local_jobs(found, alias, remote_ids, keys, named)
    # direct uploads: claimed ones (the user's submissions' files) and ones never claimed
    found.folders.add(f"{DIRECT_PREFIX}/{owner_segment(subject.pk)}")
    for folder in found.folders:  # earlier uploads of the same submission, partial outputs
        found.files.update(walk(folder))
    found.tokens.update(found.files)
    owner = Owner(
        keys={
            "user_id": {subject.public_id},
            "submission_id": set(public_ids),
            get_settings().CORRELATION_KEY: uuids,
        },
        files=token_pattern(found.files),
    )
    _collect_events(found, alias, remote_ids, owner)
    return found


def _collect_local_jobs(
    found: Found, alias: str, remote_ids: set[str], keys: set[str], named: models.Q
) -> None:
    """The local engine's jobs of the user's tasks: by remote id, by idempotency key (a job
    whose remote id never reached its task), or by the ``user_id`` they carry."""
    prefix = get_settings().LOCAL_OUTPUT_PREFIX
    jobs = LocalJob.objects.using(alias)
    matches = [named, *(models.Q(remote_id__in=c) for c in _chunks(sorted(remote_ids), _BATCH))]
    matches += [models.Q(idempotency_key__in=c) for c in _chunks(sorted(keys), _BATCH)]
    seen: set[int] = set()
    for match in matches:
        for pk, remote_id, output in jobs.filter(match).values_list("pk", "remote_id", "output"):
            if pk in seen:
                continue
            seen.add(pk)
            found.tokens.add(remote_id)
            found.folders.add(f"{prefix}/{remote_id}")
            found.files.update(storage_names(output))
    found.local_jobs = sorted(seen)


def _collect_events(found: Found, alias: str, remote_ids: set[str], owner: Owner) -> None:
    events = WebhookEvent.objects.using(alias)
    mine = set(
        events.filter(
            models.Q(task__in=found.tasks) | models.Q(remote_task_id__in=remote_ids)
        ).values_list("pk", flat=True)
    )
    unmatched = events.filter(task__isnull=True).exclude(pk__in=mine)
    for pk, body in unmatched.values_list("pk", "body").iterator():
        if owner.owns(body):
            mine.add(pk)
    found.events = sorted(mine)


@dataclass
class Owner:
    """Tells an unmatched event about one of the user's tasks (deleted: it could only ever
    match a task being deleted) from another user's that merely mentions them (kept, and
    scrubbed): the metadata it echoes says whose task it is, or it names the user's files."""

    #: metadata key → the user's values of it
    keys: dict[str, set[str]]
    files: re.Pattern[str] | None

    def owns(self, body: str) -> bool:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if any(self._owned(meta) for meta in _metadata_objects(parsed)):
            return True
        return self.files is not None and self.files.search(body) is not None

    def _owned(self, metadata: dict[str, Any]) -> bool:
        return any(metadata.get(key) in values for key, values in self.keys.items())


def _metadata_objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        for item in value:
            yield from _metadata_objects(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "metadata" and isinstance(item, dict):
                yield item
            else:
                yield from _metadata_objects(item)


def _remote_ids(remote_id: str | None, attempts: Any) -> set[str]:
    ids = {remote_id} if remote_id else set()
    for entry in attempts if isinstance(attempts, list) else []:
        old = entry.get("remote_id") if isinstance(entry, dict) else None
        if isinstance(old, str) and old:
            ids.add(old)
    return ids


# --- 2. files -----------------------------------------------------------------------------------


def stored_files(found: Found) -> dict[str, int]:
    """Every stored file of the user's rows and folders that exists, with its size."""
    sizes = {}
    refused: list[BaseException] = []
    for name in sorted(found.files):
        try:
            if default_storage.exists(name):
                sizes[name] = default_storage.size(name)
        except Exception as exc:  # a name the storage refuses (outside its root): not ours
            refused.append(exc)
    if refused:
        logger.warning(
            "erase: %d stored file(s) could not be looked at and are left in place (%s)",
            len(refused), _kinds(refused),
        )  # fmt: skip
    return sizes


def delete_files(names: Iterable[str]) -> None:
    failed: list[BaseException] = []
    for name in names:
        try:
            default_storage.delete(name)
        except Exception as exc:
            failed.append(exc)
    if failed:
        logger.error(
            "erase: %d stored file(s) could not be deleted (%s); no row points to them any "
            "more, so `prune --orphans` deletes them",
            len(failed), _kinds(failed),
        )  # fmt: skip


def _kinds(errors: list[BaseException]) -> str:
    """The exceptions' classes and counts: their messages and tracebacks may name the file,
    which the logs of an erasure must not."""
    counts = Counter(type(exc).__name__ for exc in errors)
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))


# --- 3. delete ----------------------------------------------------------------------------------


def delete_rows(found: Found, alias: str) -> None:
    """Tasks are locked first, as the result path locks them (task, then submission); events
    go before their tasks, which would otherwise only unlink them."""
    list(Task.objects.using(alias).select_for_update().filter(pk__in=found.tasks).order_by("pk"))
    for chunk in _chunks(found.events, _BATCH):
        WebhookEvent.objects.using(alias).filter(pk__in=chunk).delete()
    for chunk in _chunks(found.local_jobs, _BATCH):
        LocalJob.objects.using(alias).filter(pk__in=chunk).delete()
    for chunk in _chunks(found.tasks, _BATCH):
        Task.objects.using(alias).filter(pk__in=chunk).delete()
    with receivers.files_deleted_by_caller():  # after commit, by delete_files
        for chunk in _chunks(found.submissions, _BATCH):
            Submission.objects.using(alias).filter(pk__in=chunk).delete()


# --- 4. scrub -----------------------------------------------------------------------------------

#: The columns that may hold someone's identifiers, per model; JSON columns are walked.
SCRUBBED: dict[type[models.Model], tuple[str, ...]] = {
    Submission: ("title", "campaign", "source", "metadata"),
    Task: ("input", "options", "metadata", "output", "output_url", "error", "attempts"),
    WebhookEvent: ("body", "headers", "error"),
    LocalJob: ("input", "options", "metadata", "webhook_url", "output", "error"),
}
#: JSON columns whose values are free-form host data (a username may be one of them).
_HOST_VALUES = {"metadata", "headers"}


def token_pattern(tokens: Iterable[str]) -> re.Pattern[str] | None:
    """Any of ``tokens`` as a whole token: ``usr_1`` must not match inside ``usr_12``."""
    ordered = sorted({t for t in tokens if t}, key=len, reverse=True)
    if not ordered:
        return None
    alternatives = "|".join(re.escape(t) for t in ordered)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


@dataclass
class Scrubber:
    pattern: re.Pattern[str] | None
    #: replaced where they are a whole value of host data (metadata, headers)
    values: frozenset[str]

    def text(self, value: str, *, host: bool = False) -> str:
        if host and value in self.values:
            return ERASED
        return self.pattern.sub(ERASED, value) if self.pattern is not None else value

    def json(self, value: Any, *, host: bool = False) -> Any:
        if isinstance(value, str):
            return self.text(value, host=host)
        if isinstance(value, list):
            return [self.json(item, host=host) for item in value]
        if isinstance(value, dict):
            return {
                self.text(str(key)): self.json(item, host=host or key in ("metadata", "headers"))
                for key, item in value.items()
            }
        return value

    def body(self, value: str) -> str:
        """A webhook body: JSON is walked (so that the result stays JSON), anything else is
        text."""
        try:
            parsed = json.loads(value)
        except ValueError:
            return self.text(value)
        cleaned = self.json(parsed)
        return value if cleaned == parsed else json.dumps(cleaned, ensure_ascii=False)

    def column(self, model: type[models.Model], name: str, value: Any) -> Any:
        if value is None:
            return None
        if model is WebhookEvent and name == "body":
            return self.body(value)
        if isinstance(model._meta.get_field(name), models.JSONField):
            return self.json(value, host=name in _HOST_VALUES)
        return self.text(value, host=model is Submission)


def scrub_remaining(
    scrubber: Scrubber, alias: str, *, dry_run: bool, found: Found, needles: set[str]
) -> dict[str, int]:
    """Replace the identifiers in every row still there; the count of rows changed per model.
    Every row is read once, as text (no index covers JSON text), to pick those that mention a
    needle; those are scrubbed. A dry run skips the rows it would have deleted."""
    going: dict[type[models.Model], set[int]] = {
        Submission: set(found.submissions),
        Task: set(found.tasks),
        WebhookEvent: set(found.events),
        LocalJob: set(found.local_jobs),
    }
    counts: dict[str, int] = {}
    for model, columns in SCRUBBED.items():
        changed = 0
        pks = sorted(_mentioning(model, columns, needles, alias) - going[model])
        for pk, updates in _changes(model, columns, scrubber, alias, pks):
            changed += 1
            if not dry_run:
                model._default_manager.using(alias).filter(pk=pk).update(**updates)
        if changed:
            counts[str(model._meta.verbose_name_plural)] = changed
    return counts


def search_forms(values: Iterable[str]) -> set[str]:
    """Each value as stored: as is, and JSON-escaped (SQLite and MariaDB keep JSON as the text
    Django wrote, with non-ASCII characters as ``\\uXXXX``)."""
    forms = set()
    for value in values:
        if value:
            forms.update({value, json.dumps(value)[1:-1]})
    return forms


_WORD = re.compile(r"\w+")


def anchors(needles: Iterable[str]) -> set[str]:
    """One word of each needle: its longest run of word characters that is not a word of the
    app's storage prefixes (which every row's file names share). A needle found as a whole
    token (:func:`token_pattern`) has every such run of its own as a whole word of the text,
    so a row none of whose words is an anchor holds no needle."""
    shared = set(_WORD.findall(f"{UPLOAD_PREFIX}/{get_settings().LOCAL_OUTPUT_PREFIX}"))
    found = set()
    for needle in needles:
        # an email's domain is shared by many people; its local part is theirs
        words = _WORD.findall(needle.partition("@")[0]) or _WORD.findall(needle)
        if words:
            found.add(max(words, key=lambda w: (w not in shared, len(w))))
    return found


def _mentioning(
    model: type[models.Model], columns: tuple[str, ...], needles: set[str], alias: str
) -> set[int]:
    """The pks of rows of ``model`` whose ``columns``, as text, have a word of a needle: a
    superset of the rows to scrub. The text comes from the database (JSON cast there, not
    decoded here); a word lookup in a set costs the same for 3 needles or 3,000."""
    words = anchors(needles)
    if not words:
        return set()
    rows = model._default_manager.using(alias).annotate(
        **{f"tm_text_{name}": Cast(name, models.TextField()) for name in columns}
    )
    found: set[int] = set()
    texts = rows.values_list("pk", *(f"tm_text_{name}" for name in columns))
    for pk, *values in texts.iterator(chunk_size=_BATCH):
        text = "\n".join(v for v in values if v)
        if not words.isdisjoint(_WORD.findall(text)):
            found.add(pk)
    return found


def _changes(
    model: type[models.Model],
    columns: tuple[str, ...],
    scrubber: Scrubber,
    alias: str,
    pks: list[int],
) -> Iterator[tuple[int, dict[str, Any]]]:
    for chunk in _chunks(pks, _BATCH):
        rows = model._default_manager.using(alias).filter(pk__in=chunk)
        for row in rows.order_by("pk").values_list("pk", *columns):
            updates = {}
            for name, value in zip(columns, row[1:], strict=True):
                cleaned = scrubber.column(model, name, value)
                if cleaned != value:
                    updates[name] = cleaned
            if updates:
                yield row[0], updates


# --- all together -------------------------------------------------------------------------------


def erase(
    subject: Subject, *, dry_run: bool = False, progress: Callable[[str], None] | None = None
) -> Report:
    alias = router.db_for_write(Submission)
    say = progress or (lambda text: None)

    def run() -> Report:
        with transaction.atomic(using=alias):
            found = collect(subject, alias)
            files = stored_files(found)
            report = Report(
                subject.pk,
                dry_run,
                submissions=len(found.submissions),
                tasks=len(found.tasks),
                local_jobs=len(found.local_jobs),
                events=len(found.events),
                files=files,
            )
            if not dry_run:
                delete_rows(found, alias)
                # done once this commits: the pending request (the admin's) goes with the rows
                requests = ErasureRequest.objects.using(alias)
                requests.filter(user_pk=str(subject.pk)).delete()
            scrubber = Scrubber(token_pattern(found.tokens), frozenset(subject.names))
            needles = search_forms({*found.tokens, *subject.names})
            report.scrubbed = scrub_remaining(
                scrubber, alias, dry_run=dry_run, found=found, needles=needles
            )
            if dry_run:
                for name, size in files.items():
                    say(f"would delete {name} ({size} bytes)")
            else:
                names = sorted(files)
                transaction.on_commit(lambda: delete_files(names), using=alias)
            return report

    report = retry_on_conflict(run, alias=alias)
    if not dry_run:
        # Counts only: after an erasure the logs must not name the user (pk, username, files).
        logger.info("erased a user's data: %s", report.counts())
    return report


def _vendor(alias: str) -> str:
    return connections[alias].vendor


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
