"""``manage.py tapestry_media resync|prune|status|erase``: the polling fallback, event and
storage housekeeping, a health report (``status``, in ``tapestry_media/management/status.py``)
and erasure on request (``tapestry_media/erasure.py``).

    manage.py tapestry_media resync [--stale-after 15m] [--failed] [--ids 1 2 …] [--wait]
    manage.py tapestry_media prune [--older-than 30d] [--orphans] [--outputs-superseded] [--dry-run]
    manage.py tapestry_media status [--json] [--max-stranded N] …
    manage.py tapestry_media erase --user <pk|username> [--dry-run]

All are idempotent and safe to run from cron on several machines at once.
"""

from __future__ import annotations

import argparse
import re
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet
from django.utils import timezone

from ... import erasure, orphans, resync, superseded
from ...models import WebhookEvent
from .. import status

_DURATION = re.compile(r"\s*(\d+)\s*([smhd])\s*", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``30s``, ``10m``, ``2h``, ``30d`` → timedelta; anything else is a ``CommandError``
    naming the value."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise CommandError(
            f"{text!r} is not a duration: use a whole number and a unit, e.g. 30s, 10m, 2h, 30d."
        )
    return timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2].lower()])


def _duration_argument(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except CommandError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


class Command(BaseCommand):
    help = "Resync stale tasks with the task API, prune old webhook events, or report status."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")

        sync = commands.add_parser(
            "resync",
            help="Fetch the remote state of stale tasks, resubmit stuck ones (default: 15m).",
        )
        sync.add_argument(
            "--stale-after",
            type=_duration_argument,
            default=None,
            metavar="DURATION",
            help="Only tasks untouched this long (30s, 10m, 2h, 30d). Default: STALE_AFTER, "
            "or 0s with --ids.",
        )
        sync.add_argument(
            "--failed", action="store_true", help="Also start a new attempt of failed tasks."
        )
        sync.add_argument("--ids", nargs="+", type=int, metavar="PK", help="Only these tasks.")
        sync.add_argument(
            "--wait",
            action="store_true",
            help="Run the jobs in this process instead of enqueueing them.",
        )

        prune = commands.add_parser(
            "prune", help="Delete old processed webhook events and/or orphan files."
        )
        prune.add_argument(
            "--older-than",
            type=_duration_argument,
            default=None,
            metavar="DURATION",
            help="Delete events last received before this long ago (e.g. 30d).",
        )
        prune.add_argument(
            "--orphans",
            action="store_true",
            help="Delete files under the app's upload and output prefixes that no row points "
            "to and that are older than an hour.",
        )
        prune.add_argument(
            "--outputs-superseded",
            action="store_true",
            help="Delete output files of earlier file generations and attempts that no current "
            "task points to and that are older than an hour.",
        )
        prune.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted, delete nothing."
        )
        status.add_parser(commands, duration=_duration_argument)

        erase = commands.add_parser(
            "erase",
            help="Delete a user's submissions, tasks, files and events, and their identifiers "
            "from every other row.",
        )
        erase.add_argument(
            "--user", required=True, metavar="PK_OR_USERNAME", help="The user to erase."
        )
        erase.add_argument(
            "--dry-run", action="store_true", help="Count what would be erased, change nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "status":
            return status.run(self, options)
        if options["subcommand"] == "resync":
            self.resync(options)
        elif options["subcommand"] == "erase":
            self.erase(options)
        else:
            self.prune(options)

    def resync(self, options: dict[str, Any]) -> None:
        report = resync.run(
            stale_after=options["stale_after"],
            failed=options["failed"],
            ids=options["ids"],
            wait=options["wait"],
            progress=self.stdout.write,
        )
        if report.backfilled is not None:
            self.stdout.write(f"events backfill: {report.backfilled.summary()}")
            for kind, message in report.backfilled.errors.items():
                self.stderr.write(
                    f"events backfill of {kind} stopped (next resync resumes): {message}"
                )
        if options["ids"]:
            handled = {*report.polled, *report.resubmitted, *report.retried, *report.not_pollable}
            untouched = sorted(set(options["ids"]) - handled)
            if untouched:
                self.stdout.write(f"not resynced (terminal, unknown or not stale): {untouched}")
        if report.erasures:
            self.stdout.write(
                f"pending erasures: {report.erasures - report.erasures_failed} queued again"
                + (f", {report.erasures_failed} refused by the task backend (the log says why)"
                   if report.erasures_failed else "")
            )  # fmt: skip
        changed = sum(1 for result in report.results.values() if result == "applied")
        done = "run" if options["wait"] else "queued"
        self.stdout.write(
            self.style.SUCCESS(
                f"resync: {len(report.polled)} polled, {len(report.resubmitted)} resubmitted, "
                f"{len(report.retried)} retried ({done}); {len(report.not_pollable)} not "
                f"pollable" + (f"; {changed} changed" if options["wait"] else "")
            )
        )

    def erase(self, options: dict[str, Any]) -> None:
        try:
            subject = erasure.resolve_user(options["user"])
        except erasure.UnknownUser as exc:
            raise CommandError(str(exc)) from exc
        if subject.user is None:
            self.stdout.write(f"no user has pk {subject.pk} any more: erasing usr_{subject.pk}")
        report = erasure.erase(subject, dry_run=options["dry_run"], progress=self.stdout.write)
        summary = f"erase: {report.summary()}"
        self.stdout.write(summary if options["dry_run"] else self.style.SUCCESS(summary))

    def prune(self, options: dict[str, Any]) -> None:
        if (
            options["older_than"] is None
            and not options["orphans"]
            and not options["outputs_superseded"]
        ):
            raise CommandError(
                "prune needs --older-than DURATION (webhook events), --orphans (files), "
                "--outputs-superseded (outputs of earlier generations and attempts), or some "
                "of them."
            )
        if options["outputs_superseded"]:
            self.prune_files(superseded.find(), "superseded output", options["dry_run"])
        if options["orphans"]:
            self.prune_files(orphans.find(), "orphan", options["dry_run"])
        if options["older_than"] is not None:
            self.prune_events(options)

    def prune_files(self, found: list[orphans.Orphan], label: str, dry_run: bool) -> None:
        size = sum(orphan.size for orphan in found)
        if dry_run:
            for orphan in found:
                self.stdout.write(f"would delete {orphan.name} ({orphan.size} bytes)")
            self.stdout.write(
                f"prune: {len(found)} {label} file(s) would be deleted, {size} bytes would be "
                "freed (dry run)"
            )
            return
        freed = orphans.remove(found)
        self.stdout.write(
            self.style.SUCCESS(f"prune: {len(found)} {label} file(s) deleted, {freed} bytes freed")
        )

    def prune_events(self, options: dict[str, Any]) -> None:
        cutoff = timezone.now() - options["older_than"]
        old = prunable(cutoff)
        if options["dry_run"]:
            self.stdout.write(f"prune: {old.count()} webhook event(s) would be deleted (dry run)")
            return
        deleted, _ = old.delete()
        kept = WebhookEvent.objects.filter(
            last_received_at__lt=cutoff, processed_at__isnull=True
        ).count()
        self.stdout.write(self.style.SUCCESS(f"prune: {deleted} webhook event(s) deleted"))
        if kept:
            self.stdout.write(f"kept {kept} old event(s) that were never processed (see admin)")


def prunable(cutoff: Any) -> QuerySet[WebhookEvent]:
    """Events last received before ``cutoff`` that were processed, matched or not. Events whose
    processing failed (``processed_at`` empty) are kept for a human to look at."""
    return WebhookEvent.objects.filter(last_received_at__lt=cutoff, processed_at__isnull=False)
