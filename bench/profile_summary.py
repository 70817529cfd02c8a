"""Where a worker's time goes per submit job, from a cProfile of one ``db_worker`` over a run
(``bench/queues.py --profile DIR``): cumulative time of each phase ÷ the jobs it ran.

    python -m bench.profile_summary /tmp/profiles/db-1.prof
"""

from __future__ import annotations

import argparse
import pstats

#: (label, a path fragment of the function's file, the function's name). Nested labels are
#: parts of the phase above them; the last three rows cut across the phases.
PHASES: list[tuple[str, str, str]] = [
    ("db_worker: take a job (BEGIN, SELECT … SKIP LOCKED, UPDATE, COMMIT)",
     "django_tasks_db/utils.py", "exclusive_transaction"),
    ("  of which: open a database connection", "django/db/backends/base/base.py", "connect"),
    ("db_worker: close_old_connections", "django/db/__init__.py", "close_old_connections"),
    ("db_worker: run_task", "commands/db_worker.py", "run_task"),
    ("  django.tasks' started signal (a log line)", "django/tasks/signals.py", "log_task_started"),
    ("  django.tasks' finished signal (a log line)", "django/tasks/signals.py",
     "log_task_finished"),
    ("  db_worker: set_successful (UPDATE, COMMIT)", "django_tasks_db/models.py",
     "set_successful"),
    ("  submit_step.run_submit", "tapestry_media/submit_step.py", "run_submit"),
    ("    claim (UPDATE, COMMIT; SELECT)", "tapestry_media/submit_step.py", "claim"),
    ("    get_backend (cached instance)", "tapestry_media/backends/__init__.py", "get_backend"),
    ("    resolve_input", "tapestry_media/inputs.py", "resolve_input"),
    ("    backend.create (the HTTP call)", "tapestry_media/backends/ittybit.py", "create"),
    ("      of which: JSON body (payload_for)", "tapestry_media/backends/ittybit.py",
     "payload_for"),
    ("      of which: parse the reply (parse_task)", "tapestry_media/remote.py", "parse_task"),
    ("    record_reply", "tapestry_media/submit_step.py", "record_reply"),
    ("      reconcile.apply (one transaction)", "tapestry_media/reconcile.py", "apply"),
    ("      webhooks.apply_unmatched (one SELECT)", "tapestry_media/webhooks.py",
     "apply_unmatched"),
    ("idle: time.sleep between empty polls", "~", "<built-in method time.sleep>"),
    ("all: waiting for PostgreSQL (psycopg wait)", "psycopg/connection.py", "wait"),
    ("all: compiling SQL (as_sql)", "django/db/models/sql/compiler.py", "as_sql"),
]  # fmt: skip


def phases(path: str) -> tuple[int, list[tuple[str, float, int]]]:
    """(jobs, [(label, ms per job, calls)]) of one profile."""
    stats: dict[tuple[str, int, str], tuple[int, int, float, float, object]]
    stats = pstats.Stats(path).stats  # type: ignore[attr-defined]
    jobs = sum(
        calls
        for (file, _, name), (_, calls, _, _, _) in stats.items()
        if name == "run_task" and file.endswith("commands/db_worker.py")
    )
    rows = []
    for label, fragment, function in PHASES:
        seconds, calls = 0.0, 0
        for (file, _, name), (_, count, _, cumulative, _) in stats.items():
            if name == function and (fragment == "~" or fragment in file):
                seconds += cumulative
                calls += count
        rows.append((label, 1000 * seconds / max(jobs, 1), calls))
    return jobs, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile")
    args = parser.parse_args()
    jobs, rows = phases(args.profile)
    print(f"{jobs} jobs; ms per job (cumulative, profiler overhead included)")
    for label, per_job, calls in rows:
        print(f"  {label:72} {per_job:8.2f}  ({calls} calls)")


if __name__ == "__main__":
    main()
