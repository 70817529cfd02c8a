"""Every benchmark and large-N scenario, then one table: ``make bench`` (``scripts/bench.sh``).

    python -m bench.run [--quick] [--only webhooks,queries,...] [--json results.json]

Parts: ``peers`` (webhook throughput, PostgreSQL CPU and HOT updates against a bare Django view
and a DRF APIView on their own minimal tables, under wrk; ``bench/peers.py``), ``inprocess`` (the
webhook path's cost without an HTTP server), ``queries`` (per webhook, per
upload save), ``submit`` (tasks/s with 1 and 2 workers), ``local`` (local engine vs plain
ffmpeg), ``storm`` (2,000 deliveries), ``scenarios`` (chaos, cloud and local), ``fuzz``
(hypothesis, thousands of examples, on PostgreSQL). Everything runs on the PostgreSQL database
``tapestry_bench`` (created if missing; its tables are emptied between parts).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from . import harness

PARTS = ("peers", "inprocess", "queries", "submit", "local", "storm", "scenarios", "fuzz")


def median(values: list[float]) -> float:
    return statistics.median(values)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def fuzz(examples: int) -> dict[str, Any]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_fuzz_webhooks.py", "-q",
         "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=harness.ROOT,
        env={**os.environ, "FUZZ_EXAMPLES": str(examples), "DATABASE_URL": harness.DATABASE_URL,
             "DJANGO_SETTINGS_MODULE": "tests.settings"},
        capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    return {
        "examples": examples,
        "passed": done.returncode == 0,
        "summary": summary,
        "seconds": time.monotonic() - started,
        "output": "" if done.returncode == 0 else done.stdout[-4000:],
    }


def table(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    if "peers" in results:
        from . import peers

        p = results["peers"]
        for line in peers.report(p):
            rows.append(("webhook peers", line, ""))
        for pair, ratio in p["ratios"].items():
            if pair == "app/bare":
                rows.append(
                    ("webhook throughput app / bare view", f"{ratio['medians']:.2f}",
                     f">= 0.80: {verdict(ratio['medians'] >= 0.80)}")
                )  # fmt: skip
                rows.append(
                    ("PostgreSQL CPU per delivery app / bare view", f"{ratio['db_cpu']:.2f}",
                     f"<= 1.5: {verdict(ratio['db_cpu'] <= 1.5)}")
                )  # fmt: skip
            if pair == "app/upload":
                rows.append(
                    ("webhook throughput app / bare view with upload status",
                     f"{ratio['medians']:.2f}",
                     f">= 0.80 (issue 12's bare-view target on this peer): "
                     f"{verdict(ratio['medians'] >= 0.80)}")
                )  # fmt: skip
                rows.append(
                    ("PostgreSQL CPU per delivery app / bare view with upload status",
                     f"{ratio['db_cpu']:.2f}", f"<= 1.5: {verdict(ratio['db_cpu'] <= 1.5)}")
                )  # fmt: skip
            if pair == "app/drf":
                rows.append(
                    ("webhook throughput app / DRF view", f"{ratio['medians']:.2f}",
                     f">= 0.92: {verdict(ratio['medians'] >= 0.92)}")
                )  # fmt: skip
        for table, share in p["hot"].get("app", {}).items():
            rows.append(
                (f"HOT updates, {table}", f"{share:.1%}", f">= 90 %: {verdict(share >= 0.9)}")
            )
    if "inprocess" in results:
        ip = results["inprocess"]
        cells = []
        for name, runs in ip["results"].items():
            wall = harness.spread([w for w, _ in runs], "{:.2f}")
            cpu = harness.spread([c for _, c in runs], "{:.2f}")
            cells.append(f"{name} {wall} ms (CPU {cpu} ms)")
        rows.append(
            (
                "webhook cost per first delivery, in-process",
                "; ".join(cells) + f"; throughput ratio app/bare {ip['ratio']:.2f}, "
                f"app/drf {ip['drf_ratio']:.2f}",
                "",
            )
        )
    if "queries" in results:
        q = results["queries"]
        for label, (count, sql) in q["webhooks"].items():
            statements = sum(1 for s in sql if s.split()[0].upper() not in ("BEGIN", "COMMIT"))
            target = ""
            if label.startswith("first delivery (by remote id)"):
                target = f"<= 6: {verdict(statements <= 6)}"
            rows.append(
                (
                    f"queries per webhook: {label}",
                    f"{statements} (+{count - statements} BEGIN/COMMIT)",
                    target,
                )
            )
        u = q["upload"]
        app_sql = [s for s in u["sql"]["app"] if s.split()[0] not in ("BEGIN", "COMMIT")]
        plain_sql = [s for s in u["sql"]["plain"] if s.split()[0] not in ("BEGIN", "COMMIT")]
        rows.append(
            (
                "upload save, app receivers vs none",
                f"{len(app_sql)} vs {len(plain_sql)} queries (+1 bulk INSERT of the tasks, +2 job"
                f" INSERTs after commit); {harness.spread(u['ms']['app'], '{:.2f}')} vs "
                f"{harness.spread(u['ms']['plain'], '{:.2f}')} ms per save"
                f" (+{u['added_ms']:.2f} ms)",
                "",
            )
        )
    if "submit" in results:
        for latency, rates in results["submit"].items():
            for workers, values in rates.items():
                note = "" if not latency else f", API answering in {latency * 1000:.0f} ms"
                rows.append(
                    (
                        f"submit throughput, {workers} db_worker(s){note}",
                        f"{harness.spread(values)} tasks/s",
                        "",
                    )
                )
    if "local" in results:
        loc = results["local"]
        for name in ("direct", "engine", "job"):
            rows.append(
                (
                    f"local engine, 1080p {loc['seconds']:g} s clip: {name}",
                    f"{harness.spread(loc['times'][name], '{:.2f}')} s",
                    "",
                )
            )
        rows.append(
            (
                "local engine / plain ffmpeg (medians)",
                f"engine {loc['engine_ratio']:.3f}; whole job {loc['job_ratio']:.3f}",
                "",
            )
        )
    if "storm" in results:
        s = results["storm"]
        load = s["load"]
        rows.append(
            (
                "webhook storm",
                f"{s['deliveries']} deliveries ({s['events']} events x3, shuffled, 16 clients) in "
                f"{load.wall:.1f} s; answers {dict(load.statuses)}; "
                f"{s['server_deliveries']} counted server side",
                f"0 5xx, 0 lost: {verdict(not s['problems'] and s['fivexx'] == 0)}",
            )
        )
    if "scenarios" in results:
        c = results["scenarios"]["cloud"]
        rows.append(
            (
                "chaos, cloud: transient create failures + SIGKILL + webhook faults",
                f"{c['tasks']} tasks, {c['creates']} creates ({c['failed_creates']} failed:"
                f" {c['failed_by_status']}, {c['replayed']} replayed by key); "
                f"{c['remote_tasks']} remote tasks; a worker SIGKILLed inside a create left"
                f" {c['stuck_after_kill']} task submitting, resync resubmitted it;"
                f" {c['dropped']} webhooks dropped, resync polled them; {c['seconds']:.0f} s",
                f"0 lost/duplicated: {verdict(not c['problems'])}",
            )
        )
        loc = results["scenarios"]["local"]
        rows.append(
            (
                "chaos, local engine: worker SIGKILLed while ffmpeg runs",
                f"{loc['jobs']} jobs; runs per job {loc['runs']}; {loc['seconds']:.0f} s",
                f"0 lost/duplicated: {verdict(not loc['problems'])}",
            )
        )
    if "fuzz" in results:
        f = results["fuzz"]
        rows.append(
            (
                "fuzzing the webhook endpoint (PostgreSQL)",
                f"{f['examples']} signed + {f['examples']} forged examples: {f['summary']}",
                f"0 5xx: {verdict(f['passed'])}",
            )
        )
    return rows


def print_table(rows: list[tuple[str, str, str]], machine: dict[str, str]) -> None:
    print()
    print("machine: " + "; ".join(f"{k} {v}" for k, v in machine.items()))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'result (median (min-max) over interleaved runs)':<60}  target")
    print("-" * (width + 80))
    for name, value, target in rows:
        print(f"{name:<{width}}  {value}  {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small N everywhere (a smoke run)")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated: {PARTS}")
    parser.add_argument("--json", help="also write the raw results here")
    args = parser.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}")
    quick = args.quick

    harness.prepare()
    machine = harness.machine()
    print("machine: " + "; ".join(f"{k} {v}" for k, v in machine.items()), flush=True)
    results: dict[str, Any] = {}
    failed = False

    if "peers" in parts:
        from . import peers

        print("== webhook peers: app endpoint vs bare Django and DRF views (wrk)", flush=True)
        results["peers"] = peers.run(rounds=2 if quick else 5, seconds=3 if quick else 8)
    if "inprocess" in parts:
        from . import inprocess

        print("== webhook cost in-process (test client, no HTTP server)", flush=True)
        results["inprocess"] = inprocess.run(
            requests=100 if quick else 300, rounds=2 if quick else 5
        )
    if "queries" in parts:
        from . import queries

        print("== queries per webhook, upload save cost", flush=True)
        results["queries"] = queries.run(saves=30 if quick else 300, rounds=2 if quick else 5)
    if "submit" in parts:
        from . import submit

        print("== submit throughput", flush=True)
        results["submit"] = {
            0.0: submit.run(tasks=100 if quick else 400, rounds=1 if quick else 3),
        }
        if not quick:
            results["submit"][0.05] = submit.run(tasks=200, rounds=1, latency=0.05)
    if "local" in parts:
        from . import local_engine

        print("== local engine vs plain ffmpeg", flush=True)
        results["local"] = local_engine.run(seconds=3 if quick else 10, runs=1 if quick else 3)
    if "storm" in parts:
        from . import storm

        print("== webhook storm", flush=True)
        results["storm"] = storm.run(tasks=60 if quick else 222)
        failed |= bool(results["storm"]["problems"])
    if "scenarios" in parts:
        from . import scenarios

        print("== chaos scenarios", flush=True)
        results["scenarios"] = {
            "cloud": scenarios.cloud(submissions=40 if quick else 200),
            "local": scenarios.local(jobs=3 if quick else 6),
        }
        for name, outcome in results["scenarios"].items():
            print(f"  {name}: " + json.dumps({k: v for k, v in outcome.items() if k != "problems"}))
            if outcome["problems"]:
                print(f"  {name} PROBLEMS: " + "; ".join(outcome["problems"]))
                failed = True
    if "fuzz" in parts:
        print("== fuzzing (pytest, PostgreSQL)", flush=True)
        results["fuzz"] = fuzz(300 if quick else 3000)
        if not results["fuzz"]["passed"]:
            print(results["fuzz"]["output"])
            failed = True

    print_table(table(results), machine)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": machine, "results": results}, handle, default=_plain, indent=1)
    raise SystemExit(1 if failed else 0)


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {k: getattr(value, k) for k in value.__dataclass_fields__}
    if isinstance(value, harness.Load):
        return {"wall": value.wall, "rate": value.rate, "statuses": dict(value.statuses)}
    return str(value)


if __name__ == "__main__":
    main()
