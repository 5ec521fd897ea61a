"""Locating the shared reference data (spec and vectors) for tests.

The project's steering directory `../shared/` is the source of truth. A clean
clone in CI may not have it beside the repository, so a verbatim copy lives in
`tests/data/shared/`; `test_shared_copy.py` fails when the copy drifts from the
original wherever the original is present.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
IN_REPO_COPY = REPO / "tests" / "data" / "shared"


def original_shared_dir() -> Path | None:
    """The steering `shared/` directory if this checkout sits beside it."""
    env = os.environ.get("SMOLMIX_SHARED")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared")
    for candidate in candidates:
        if (candidate / "vectors").is_dir():
            return candidate
    return None


def shared_dir() -> Path:
    return original_shared_dir() or IN_REPO_COPY


def vector_path(*parts: str) -> Path:
    return shared_dir().joinpath("vectors", *parts)


@cache
def load_vector(*parts: str) -> Any:
    """Parsed JSON of a vector file, e.g. load_vector("official-client", "reply-surb.json")."""
    return json.loads(vector_path(*parts).read_text())


def spec_text(name: str) -> str:
    return shared_dir().joinpath("spec", name).read_text()


def h(hex_text: str) -> bytes:
    """Bytes from the lowercase hex the vector files use."""
    return bytes.fromhex(hex_text)
