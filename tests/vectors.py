"""Locate the shared reference data (`/work/shared`) for vector tests.

The vectors live outside the repository, so a clean CI clone may not have them;
tests then skip with a reason instead of failing on a missing file.
Order: env var SMOLMIX_SHARED, then `<repo root>/../shared`, then the nearest
ancestor directory holding `shared/vectors` (git worktrees sit one level deeper).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path | None:
    """The shared directory, or None when it cannot be found."""
    env = os.environ.get("SMOLMIX_SHARED")
    if env:
        path = Path(env)
        return path if path.is_dir() else None
    candidate = REPO_ROOT.parent / "shared"
    if (candidate / "vectors").is_dir():
        return candidate
    for parent in REPO_ROOT.parents:
        if (parent / "shared" / "vectors").is_dir():
            return parent / "shared"
    return None


def shared_path(*parts: str) -> Path:
    """Path of a file under the shared directory; skips the calling test if absent."""
    base = shared_dir()
    if base is None:
        pytest.skip("shared reference data not found (set SMOLMIX_SHARED to the shared dir)")
    path = base.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared reference file missing: {path}")
    return path


def vector_path(*parts: str) -> Path:
    """Path of a file under `shared/vectors`; skips the calling test if absent."""
    return shared_path("vectors", *parts)


def load_json(*parts: str) -> Any:
    """Parsed JSON of a file under `shared/vectors`; skips the calling test if absent."""
    with vector_path(*parts).open(encoding="utf-8") as f:
        return json.load(f)


def spec_text(name: str) -> str:
    """Text of a spec file under `shared/spec`; skips the calling test if absent."""
    return shared_path("spec", name).read_text(encoding="utf-8")
