"""Print what grew in one process between two moments of a soak run (tests/soak/runner.py).

    python tests/soak/trace_diff.py BEFORE AFTER [--top N] [--traceback]

BEFORE and AFTER are two `.census.json` files (object counts by type, big containers by the
attribute holding them) or two `.tracemalloc` snapshots (growth by allocating source line, or
by traceback); biggest growth first.
"""

from __future__ import annotations

import argparse
import json
import tracemalloc
from pathlib import Path

IGNORED = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    tracemalloc.Filter(False, "<unknown>"),
)


def census_diff(before: Path, after: Path, top: int) -> None:
    old, new = json.loads(before.read_text()), json.loads(after.read_text())
    grew = {k: n - old["types"].get(k, 0) for k, n in new["types"].items()}
    print("objects by type (count change, count now):")
    for name, diff in sorted(grew.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {diff:+8d} {new['types'][name]:9d}  {name}")
    was = {(b["holder"], b["type"]): b["len"] for b in old["big"]}
    print("containers over 256 entries (length now, change):")
    for b in new["big"][:top]:
        diff = b["len"] - was.get((b["holder"], b["type"]), 0)
        print(f"  {b['len']:9d} {diff:+8d}  {b['type']} held by {b['holder']}")


def tracemalloc_diff(before: Path, after: Path, top: int, traceback: bool) -> None:
    old = tracemalloc.Snapshot.load(str(before)).filter_traces(IGNORED)
    new = tracemalloc.Snapshot.load(str(after)).filter_traces(IGNORED)
    size = sum(s.size for s in new.statistics("filename"))
    size -= sum(s.size for s in old.statistics("filename"))
    print(f"traced total grew {size / 1024:+.1f} KiB")
    for stat in new.compare_to(old, "traceback" if traceback else "lineno")[:top]:
        print(
            f"{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  {stat.traceback[-1]}"
        )
        if traceback:
            for line in stat.traceback.format(limit=12)[:-2]:
                print("        " + line)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--traceback", action="store_true")
    opts = parser.parse_args()
    if opts.before.name.endswith(".census.json"):
        census_diff(opts.before, opts.after, opts.top)
    else:
        tracemalloc_diff(opts.before, opts.after, opts.top, opts.traceback)


if __name__ == "__main__":
    main()
