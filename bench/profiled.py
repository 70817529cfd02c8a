"""Run a module under cProfile with a wall or a CPU clock, writing the stats when it exits,
also on SIGTERM (the way the benchmarks stop workers).

    python -m bench.profiled --clock cpu --out worker.prof -m django db_worker ...
"""

from __future__ import annotations

import argparse
import cProfile
import runpy
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--out", required=True)
    parser.add_argument("-m", dest="module", required=True)
    args, rest = parser.parse_known_args()
    timer = time.process_time if args.clock == "cpu" else time.perf_counter
    profiler = cProfile.Profile(timer)
    sys.argv = [args.module, *rest]
    profiler.enable()
    try:
        runpy.run_module(args.module, run_name="__main__", alter_sys=True)
    except SystemExit:
        pass  # db_worker leaves with sys.exit on SIGTERM; the stats are still written
    finally:
        profiler.disable()
        profiler.dump_stats(args.out)


if __name__ == "__main__":
    main()
