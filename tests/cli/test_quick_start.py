"""cli/quick_start.py: the collector is off while a command loads and on when it runs."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from smolmix_cli.cli import fetch_run, quick_start
from smolmix_cli.cli.main import cli


@pytest.fixture
def gc_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_the_command_runs_with_the_collector_on_and_the_loaded_code_frozen(
    gc_restored: None,
) -> None:
    quick_start.pause()
    assert not gc.isenabled()
    frozen = gc.get_freeze_count()
    result = CliRunner().invoke(cli, ["completion", "bash"])
    assert result.exit_code == 0, result.output
    assert gc.isenabled()
    assert gc.get_freeze_count() > frozen


def test_without_a_pause_of_its_own_nothing_changes(gc_restored: None) -> None:
    gc.disable()  # someone else's choice: the CLI must not undo it
    result = CliRunner().invoke(cli, ["completion", "bash"])
    assert result.exit_code == 0, result.output
    assert not gc.isenabled()
    assert gc.get_freeze_count() == 0
    quick_start.resume()
    assert not gc.isenabled()


def test_the_entry_point_pauses_until_the_command_starts() -> None:
    # In a fresh interpreter, as the console script runs: off while loading, on once
    # the group callback ran (a command's own callback sees it on).
    code = (
        "import gc, smolmix_cli.cli.quick_start as q\n"
        "import smolmix_cli.cli.main as m\n"
        "seen = []\n"
        "inner = m.cli.callback\n"
        "def spy(*a, **k):\n"
        "    seen.append(gc.isenabled())\n"
        "    r = inner(*a, **k)\n"
        "    seen.append(gc.isenabled())\n"
        "    return r\n"
        "m.cli.callback = spy\n"
        "import sys; sys.argv = ['smolmix', 'completion', 'bash']\n"
        "try:\n"
        "    q.main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(seen, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stderr.strip().splitlines()[-1] == "[False, True]", done.stderr


def test_a_fetch_read_without_click_runs_with_the_collector_on(
    gc_restored: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The entry point's other road (cli/fast_argv.py): no group callback, the same resume.
    for name in [n for n in os.environ if n.startswith("SMOLMIX_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    seen: list[bool] = []

    def body(*args: object) -> None:
        seen.append(gc.isenabled())
        raise SystemExit(0)

    monkeypatch.setattr(fetch_run, "run_fetch_command", body)
    monkeypatch.setattr(sys, "argv", ["smolmix", "fetch", "-sS", "http://a.test/"])
    quick_start.pause()
    with pytest.raises(SystemExit):
        quick_start.main()
    assert seen == [True]
