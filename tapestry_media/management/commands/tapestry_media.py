"""``manage.py tapestry_media resync|prune|status``: the polling fallback, event housekeeping,
and a health report (``status``, in ``tapestry_media/management/status.py``).

    manage.py tapestry_media resync [--stale-after 15m] [--failed] [--ids 1 2 …] [--wait]
    manage.py tapestry_media prune [--older-than 30d] [--orphans] [--dry-run]
    manage.py tapestry_media status [--json] [--max-stranded N] …

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

from ... import orphans, resync
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
            "--dry-run", action="store_true", help="Count what would be deleted, delete nothing."
        )
        status.add_parser(commands, duration=_duration_argument)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "status":
            return status.run(self, options)
        if options["subcommand"] == "resync":
            self.resync(options)
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
        changed = sum(1 for result in report.results.values() if result == "applied")
        done = "run" if options["wait"] else "queued"
        self.stdout.write(
            self.style.SUCCESS(
                f"resync: {len(report.polled)} polled, {len(report.resubmitted)} resubmitted, "
                f"{len(report.retried)} retried ({done}); {len(report.not_pollable)} not "
                f"pollable" + (f"; {changed} changed" if options["wait"] else "")
            )
        )

    def prune(self, options: dict[str, Any]) -> None:
        if options["older_than"] is None and not options["orphans"]:
            raise CommandError(
                "prune needs --older-than DURATION (webhook events), --orphans (files), or both."
            )
        if options["orphans"]:
            self.prune_orphans(dry_run=options["dry_run"])
        if options["older_than"] is not None:
            self.prune_events(options)

    def prune_orphans(self, *, dry_run: bool) -> None:
        found = orphans.find()
        size = sum(orphan.size for orphan in found)
        if dry_run:
            for orphan in found:
                self.stdout.write(f"would delete {orphan.name} ({orphan.size} bytes)")
            self.stdout.write(
                f"prune: {len(found)} orphan file(s) would be deleted, {size} bytes would be "
                "freed (dry run)"
            )
            return
        freed = orphans.remove(found)
        self.stdout.write(
            self.style.SUCCESS(f"prune: {len(found)} orphan file(s) deleted, {freed} bytes freed")
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
