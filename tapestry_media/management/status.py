"""The ``status`` sub-command of ``manage.py tapestry_media``: its arguments and its output.

    manage.py tapestry_media status [--json] [--max-stranded 0] [--max-failed-events 0]
        [--max-submitting-age 15m] [--max-webhook-silence off] [--max-backlog off]

Exits 0 when every threshold holds and 1 (after printing the report) when one is passed, so
cron and monitoring can alert on the exit code. ``off`` turns a threshold off.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from .. import health
from ..conf import get_settings

OFF = "off"


def add_parser(commands: Any, duration: Callable[[str], timedelta]) -> None:
    """Register ``status`` on the command's sub-parsers; ``duration`` parses 30s/10m/2h/30d."""

    def optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
        return lambda text: None if text.strip().lower() == OFF else parse(text)

    status = commands.add_parser(
        "status",
        help="Backlog, oldest waiting tasks, last webhook, failed events, stranded jobs; "
        "exit 1 when a threshold is passed.",
    )
    status.add_argument("--json", action="store_true", help="Print the report as JSON.")
    defaults = health.Thresholds()
    status.add_argument(
        "--max-stranded",
        type=optional(_count),
        default=defaults.max_stranded,
        metavar="N",
        help="Most stranded submit jobs allowed (created, due more than STALE_AFTER ago, never "
        "run). Default 0.",
    )
    status.add_argument(
        "--max-failed-events",
        type=optional(_count),
        default=defaults.max_failed_events,
        metavar="N",
        help="Most webhook events whose processing failed. Default 0.",
    )
    status.add_argument(
        "--max-submitting-age",
        type=optional(duration),
        default=defaults.max_submitting_age,
        metavar="DURATION",
        help="Longest a task may stay submitting. Default 15m.",
    )
    status.add_argument(
        "--max-webhook-silence",
        type=optional(duration),
        default=defaults.max_webhook_silence,
        metavar="DURATION",
        help="Longest since the last webhook was received. Default off.",
    )
    status.add_argument(
        "--max-backlog",
        type=optional(_count),
        default=defaults.max_backlog,
        metavar="N",
        help="Most tasks in created or submitting. Default off.",
    )


def run(command: BaseCommand, options: dict[str, Any]) -> None:
    report = health.collect(stale_after=get_settings().STALE_AFTER)
    limits = health.Thresholds(
        max_stranded=options["max_stranded"],
        max_failed_events=options["max_failed_events"],
        max_submitting_age=options["max_submitting_age"],
        max_webhook_silence=options["max_webhook_silence"],
        max_backlog=options["max_backlog"],
    )
    found = health.breaches(report, limits)
    report["ok"] = not found
    report["breaches"] = found
    if options["json"]:
        command.stdout.write(json.dumps(report, indent=2, sort_keys=True))
    else:
        command.stdout.write("\n".join(_lines(report)))
    if found:
        raise CommandError("status: " + "; ".join(found), returncode=1)


def _count(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count: use 0, 1, 2… or {OFF!r}.")
    return number


def _lines(report: dict[str, Any]) -> list[str]:
    def counts(figures: dict[str, int]) -> str:
        return ", ".join(f"{status} {n}" for status, n in figures.items() if n) or "none"

    def oldest(entry: dict[str, Any] | None) -> str:
        if entry is None:
            return "none"
        return f"task {entry['id']} since {entry['since']} ({entry['age_seconds']:.0f} s)"

    last = report["last_webhook"]
    stranded = report["stranded_jobs"]
    return [
        f"tasks: {counts(report['tasks_by_status'])}",
        f"submissions: {counts(report['submissions_by_status'])}",
        f"backlog (created + submitting): {report['backlog']}",
        f"oldest created: {oldest(report['oldest_created'])}",
        f"oldest submitting: {oldest(report['oldest_submitting'])}",
        "last webhook: "
        + (
            "never"
            if last is None
            else f"{last['received_at']} ({last['age_seconds']:.0f} s ago, {last['source']})"
        ),
        f"failed events: {report['failed_events']['count']}",
        f"stranded jobs: {stranded['count']}"
        + (f" (tasks {stranded['task_ids']})" if stranded["count"] else ""),
        "ok" if report["ok"] else "NOT OK",
    ]
