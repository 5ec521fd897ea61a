"""ruff and mypy --strict are part of the suite, so CI enforces them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


@pytest.mark.skipif(
    shutil.which("ruff") is None and not (ROOT / ".venv").exists(), reason="ruff not installed"
)
def test_ruff_clean() -> None:
    proc = _run("ruff", "check", "smolmix_cli", "tests", "bench")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_clean() -> None:
    proc = _run("mypy", "--strict", "smolmix_cli")
    assert proc.returncode == 0, proc.stdout + proc.stderr
