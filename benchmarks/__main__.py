"""
``python -m benchmarks [--quick] [--json FILE] [--only NAME ...]``: run the
benchmarks, print the table, write the results as JSON.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import traceback

from benchmarks import (
    api, chaos, conversations, fanout, federation, growth, multi, ping, timelines,
)
from benchmarks.harness import ROOT, Result, Workspace, to_json

BENCHMARKS = {
    "api-read": lambda w, q, pg: api.api_read(w, q),
    "api-write": lambda w, q, pg: api.api_write(w, q, pg),
    "federation-latency": lambda w, q, pg: federation.latency(w, q),
    "catch-up": lambda w, q, pg: federation.catch_up(w, q),
    "mention-latency": lambda w, q, pg: conversations.mention_latency(w, q),
    "catch-up-mixed": lambda w, q, pg: conversations.mixed_catch_up(w, q),
    "ping-bytes": lambda w, q, pg: ping.idle_exchange(w, q),
    "ping-memory": lambda w, q, pg: ping.directory_memory(q),
    "ping-throughput": lambda w, q, pg: ping.exchange_throughput(w, q),
    "timeline-scaling": lambda w, q, pg: timelines.scaling(w, q),
    "cost-growth": lambda w, q, pg: growth.growth(w, q),
    "chaos": lambda w, q, pg: chaos.chaos(w, q),
    "two-workers": lambda w, q, pg: multi.two_workers(w, q, pg),
    "range-fetch": lambda w, q, pg: fanout.range_fetch(w, q),
    "reads-under-writes": lambda w, q, pg: fanout.reads_under_writes(w, q),
}

#: Benchmarks whose target is a correctness promise: missing it fails the run.
MUST_MEET = {"chaos"}

NOT_MEASURED: list[str] = []


def table(results: list[Result]) -> str:
    lines = [f"{'benchmark':58} {'value':>12} {'baseline':>12} {'ratio':>7}  target"]
    for r in results:
        baseline = f"{r.baseline:12.1f}" if r.baseline is not None else " " * 12
        ratio = f"{r.ratio:7.2f}" if r.ratio is not None else " " * 7
        met = {True: "met", False: "NOT met", None: ""}[r.met]
        lines.append(f"{r.name[:58]:58} {r.value:12.1f} {baseline} {ratio}  "
                     f"{r.target} {met}  [{r.unit}]")
        for key, value in r.extra.items():
            shown = f"{value:.1f}" if isinstance(value, float) else str(value)
            lines.append(f"{'':60}{key} = {shown}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="short runs (what CI does)")
    parser.add_argument("--json", default=os.path.join(ROOT, "benchmarks", "results.json"))
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS))
    parser.add_argument("--postgres", default=os.environ.get("DISTWIT_TEST_POSTGRES"),
                        help="a PostgreSQL database it may wipe, for API write")
    parser.add_argument("--minutes", type=float,
                        help="how long the chaos runs (default: 20, or 40 s with --quick)")
    args = parser.parse_args()
    results: list[Result] = []
    failed = []
    started = time.time()
    for name in args.only or list(BENCHMARKS):
        workspace = Workspace()
        print(f"running {name} ...", flush=True)
        try:
            if name == "api-write" and args.postgres:
                from tests.support import wipe_postgres

                wipe_postgres(args.postgres)
            if name == "chaos" and args.minutes:
                found = chaos.chaos(workspace, args.quick, args.minutes)
            else:
                found = BENCHMARKS[name](workspace, args.quick, args.postgres)
            results.extend(found)
            if name in MUST_MEET and any(r.met is False for r in found):
                failed.append(name)
        except Exception:
            traceback.print_exc()
            failed.append(name)
        finally:
            workspace.close()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    print()
    print(f"distwit benchmarks{' (quick)' if args.quick else ''}: commit {commit},"
          f" {os.cpu_count()} cores, Python {platform.python_version()},"
          f" {time.time() - started:.0f} s")
    print(table(results))
    if NOT_MEASURED:
        print("\nnot measured yet: " + "; ".join(NOT_MEASURED))
    with open(args.json, "w") as f:
        f.write(to_json(results))
    print(f"\nwrote {args.json}")
    if failed:
        print(f"benchmarks that failed: {', '.join(failed)}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
