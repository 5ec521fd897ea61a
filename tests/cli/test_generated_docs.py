"""smolmix_cli/completions/ and smolmix_cli/man/ are generated from the click definitions,
kept in step, and reachable from an installed package (`smolmix completion`, `smolmix man`)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import click
from click.testing import CliRunner

from smolmix_cli.cli.main import cli

REPO = Path(__file__).resolve().parents[2]


def gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", REPO / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_files_are_up_to_date() -> None:
    stale = gen_docs().stale()
    assert stale == [], "run `python scripts/gen_docs.py`; stale: " + ", ".join(map(str, stale))


def test_every_command_has_a_man_page_naming_each_option() -> None:
    pages = gen_docs().man_pages()
    assert set(pages) == {"smolmix.1"} | {f"smolmix-{n}.1" for n in cli.commands}
    root = click.Context(cli, info_name="smolmix")
    for name, command in cli.commands.items():
        text = pages[f"smolmix-{name}.1"]
        assert text.startswith(f'.TH "SMOLMIX-{name.upper()}" "1"')
        ctx = click.Context(command, info_name=name, parent=root)
        for param in command.get_params(ctx):
            if isinstance(param, click.Option) and not param.hidden:
                assert param.opts[0].replace("-", "\\-") in text, (name, param.opts)
    for param in cli.params:
        if isinstance(param, click.Option):
            assert param.opts[0].replace("-", "\\-") in pages["smolmix.1"]


def test_roff_escapes_leading_dots_and_backslashes() -> None:
    module = gen_docs()
    assert module.roff(".x -y \\n") == "\\&.x \\-y \\en"


def _complete(shell: str, words: str, cword: str) -> str:
    env = {**os.environ, "_SMOLMIX_COMPLETE": f"{shell}_complete", "COMP_WORDS": words}
    env["COMP_CWORD"] = cword
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "smolmix_cli"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    ).stdout


def test_completion_scripts_complete_commands_and_options() -> None:
    assert "plain,fetch" in _complete("bash", "smolmix fe", "1").splitlines()
    assert "plain,--max-redirs" in _complete("bash", "smolmix fetch --max-r", "2").splitlines()
    assert _complete("fish", "smolmix re", "re").startswith("plain,resolve")
    for shell, name in (("bash", "smolmix.bash"), ("zsh", "smolmix.zsh"), ("fish", "smolmix.fish")):
        script = (REPO / "smolmix_cli" / "completions" / name).read_text()
        assert f"_SMOLMIX_COMPLETE={shell}_complete" in script
        printed = CliRunner().invoke(cli, ["completion", shell])
        assert printed.exit_code == 0 and printed.output == script


def test_man_prints_a_commands_page_off_a_terminal() -> None:
    pages = REPO / "smolmix_cli" / "man"
    result = CliRunner().invoke(cli, ["man", "fetch"])
    assert result.exit_code == 0 and result.output == (pages / "smolmix-fetch.1").read_text()
    assert CliRunner().invoke(cli, ["man"]).output == (pages / "smolmix.1").read_text()
    missing = CliRunner().invoke(cli, ["man", "curl"])
    assert missing.exit_code == 2 and "no manual page for 'curl'" in missing.output


def test_the_package_ships_completions_and_man_pages_and_one_version() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    tool = project["tool"]["setuptools"]
    assert project["project"]["dynamic"] == ["version"]  # smolmix_cli.__version__ alone
    assert "version" not in project["project"]
    assert tool["dynamic"]["version"] == {"attr": "smolmix_cli.__version__"}
    assert {"completions/*", "man/*.1"} <= set(tool["package-data"]["smolmix_cli"])
    assert tool["data-files"] == {"share/man/man1": ["smolmix_cli/man/*.1"]}
