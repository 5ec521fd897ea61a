"""Memory tracing for the soak runner's processes: what a process holds, written on SIGUSR2.

Only on PYTHONPATH of the processes the soak runner traces (tests/soak/runner.py), and only
active with SMOLMIX_SOAK_TRACE=DIR set. On SIGUSR2 the process collects garbage and writes
DIR/<label>.census.json, the label read from DIR/<pid>.next (the pid otherwise): a count of
gc-tracked objects by type and every container above 256 entries with the attribute that holds
it (`Class.attr`), so two censuses name the structures that grow. It costs nothing between
signals. With SMOLMIX_SOAK_TRACE_FRAMES=N the process also runs tracemalloc from start-up and
writes DIR/<label>.tracemalloc beside it (slow: several times the CPU per packet).
"""

from __future__ import annotations

import collections
import gc
import json
import os
import signal
import tracemalloc
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

_DIR = os.environ.get("SMOLMIX_SOAK_TRACE")
_FRAMES = int(os.environ.get("SMOLMIX_SOAK_TRACE_FRAMES", "0"))
BIG = 256


def _name(obj: object) -> str:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


def _holder(container: object, depth: int = 0) -> str:
    """`Class.attr`, `module.name` or `Class.attr[key]`: who keeps `container` alive."""
    for ref in gc.get_referrers(container):
        if isinstance(ref, dict):
            key = next((k for k, v in ref.items() if v is container), None)
            if key is None:
                continue
            for owner in gc.get_referrers(ref):
                if getattr(owner, "__dict__", None) is ref:
                    if isinstance(owner, ModuleType):
                        return f"{owner.__name__}.{key}"
                    return f"{_name(owner)}.{key}"
            if depth < 2:
                return f"{_holder(ref, depth + 1)}[{key!r}]"[:200]
        elif hasattr(type(ref), "__slots__") and not isinstance(ref, (list, tuple, set)):
            for slot in getattr(type(ref), "__slots__", ()):
                if getattr(ref, slot, None) is container:
                    return f"{_name(ref)}.{slot}"
    return "?"


def census() -> dict[str, Any]:
    gc.collect()
    objects = gc.get_objects()
    types = collections.Counter(_name(o) for o in objects)
    big = []
    for obj in objects:
        if isinstance(obj, (dict, list, set, collections.deque)) and len(obj) > BIG:
            big.append((obj, len(obj)))
    big.sort(key=lambda item: -item[1])
    held = [{"type": _name(o), "len": n, "holder": _holder(o)} for o, n in big[:30]]
    del objects, big
    return {"types": dict(types.most_common(300)), "big": held}


def _dump(signum: int, frame: FrameType | None) -> None:
    assert _DIR is not None
    base = Path(_DIR)
    try:
        label = (base / f"{os.getpid()}.next").read_text().strip()
    except OSError:
        label = str(os.getpid())
    partial = base / f"{label}.partial"
    if _FRAMES:
        tracemalloc.take_snapshot().dump(str(partial))
        partial.rename(base / f"{label}.tracemalloc")
    partial.write_text(json.dumps(census()))
    partial.rename(base / f"{label}.census.json")


if _DIR:
    if _FRAMES:
        tracemalloc.start(_FRAMES)
    signal.signal(signal.SIGUSR2, _dump)
