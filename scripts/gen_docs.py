#!/usr/bin/env python3
"""Generate smolmix_cli/completions/ and smolmix_cli/man/ from the click definitions.

One option spec, three outputs. Both directories are package data: `smolmix completion`
and `smolmix man` print them, and the wheel also installs the pages under share/man.

    python scripts/gen_docs.py          # rewrite the files
    python scripts/gen_docs.py --check  # exit 1 and name the stale files (the test suite runs this)

Completions are click's own scripts (they call `smolmix` with _SMOLMIX_COMPLETE at
completion time, so they follow the installed version); man pages are rendered here
from each command's params, so `--help`, the man pages and completions cannot drift.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import click
from click.shell_completion import get_completion_class

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from smolmix_cli import __version__  # noqa: E402
from smolmix_cli.cli.main import cli  # noqa: E402
from smolmix_cli.exit_codes import ExitCode  # noqa: E402

PROG = "smolmix"
COMPLETE_VAR = "_SMOLMIX_COMPLETE"
SHELLS = {"bash": "smolmix.bash", "zsh": "smolmix.zsh", "fish": "smolmix.fish"}
COMPLETIONS = REPO / "smolmix_cli" / "completions"
MAN = REPO / "smolmix_cli" / "man"


def completion_script(shell: str) -> str:
    cls = get_completion_class(shell)
    assert cls is not None, shell
    return cls(cli, {}, PROG, COMPLETE_VAR).source().rstrip("\n") + "\n"


# -- roff -------------------------------------------------------------------------------


def roff(text: str) -> str:
    """Escape text for a roff line: backslashes, hyphens, leading control characters."""
    out = text.replace("\\", "\\e").replace("-", "\\-")
    if out.startswith((".", "'")):
        out = "\\&" + out
    return out


def paragraphs(help_text: str) -> list[list[str]]:
    """click help text into paragraphs; a `\\b` paragraph keeps its line breaks."""
    blocks: list[list[str]] = []
    for block in help_text.strip().split("\n\n"):
        lines = [line.rstrip() for line in block.splitlines()]
        blocks.append(lines)
    return blocks


def render_help(help_text: str) -> list[str]:
    out: list[str] = []
    for lines in paragraphs(help_text):
        if lines and lines[0].strip() == "\b":
            out.append(".PP")
            out.append(".nf")
            out += [roff(line) for line in lines[1:]]
            out.append(".fi")
        else:
            out.append(".PP")
            out.append(roff(" ".join(line.strip() for line in lines)))
    return out


def option_entry(ctx: click.Context, param: click.Parameter) -> list[str]:
    record = param.get_help_record(ctx)
    if record is None:
        return []
    names, help_text = record
    return [".TP", f".B {roff(names)}", roff(help_text)]


def command_page(command: click.Command, path: list[str], ctx: click.Context) -> str:
    full = " ".join(path)
    title = "-".join(path).upper()
    short = command.get_short_help_str(limit=200)
    lines = [
        f'.TH "{title}" "1" "" "smolmix {__version__}" "User Commands"',
        ".SH NAME",
        f"{roff('-'.join(path))} \\- {roff(short)}",
        ".SH SYNOPSIS",
        f".B {roff(full)}",
        roff(" ".join(command.collect_usage_pieces(ctx))),
        ".SH DESCRIPTION",
        *render_help(command.help or ""),
    ]
    options = [p for p in command.get_params(ctx) if isinstance(p, click.Option)]
    entries = [line for p in options for line in option_entry(ctx, p)]
    if entries:
        lines += [".SH OPTIONS", *entries]
    if isinstance(command, click.Group):
        lines.append(".SH COMMANDS")
        for name in sorted(command.commands):
            sub = command.commands[name]
            if sub.hidden:
                continue
            lines += [".TP", f".B {roff(name)}", roff(sub.get_short_help_str(limit=200))]
            if len(path) > 1:
                sub_ctx = click.Context(sub, info_name=name, parent=ctx)
                sub_opts = [p for p in sub.get_params(sub_ctx) if isinstance(p, click.Option)]
                for p in sub_opts:
                    lines += [
                        ".RS",
                        *option_entry(sub_ctx, p),
                        ".RE",
                    ]
    if len(path) == 1:
        lines += [".SH EXIT STATUS", "See docs/exit\\-codes.md; in short:"]
        for code in ExitCode:
            lines += [".TP", f".B {code.value}", roff(code.name.lower().replace("_", " "))]
        lines += [".SH SEE ALSO"]
        subs = sorted(n for n, c in cli.commands.items() if not c.hidden)
        lines.append(", ".join(f"\\fBsmolmix\\-{roff(n)}\\fR(1)" for n in subs))
        lines.append(".PP\ncurl(1), websocat(1), dig(1)")
    else:
        lines += [".SH SEE ALSO", "\\fBsmolmix\\fR(1) for the global options and exit codes."]
    return "\n".join(lines) + "\n"


def man_pages() -> dict[str, str]:
    root_ctx = click.Context(cli, info_name=PROG, **cli.context_settings)  # -h as the CLI has it
    pages = {f"{PROG}.1": command_page(cli, [PROG], root_ctx)}
    for name, command in sorted(cli.commands.items()):
        if command.hidden:
            continue
        ctx = click.Context(command, info_name=name, parent=root_ctx)
        pages[f"{PROG}-{name}.1"] = command_page(command, [PROG, name], ctx)
    return pages


def generated() -> dict[Path, str]:
    files = {COMPLETIONS / fname: completion_script(sh) for sh, fname in SHELLS.items()}
    files.update({MAN / name: text for name, text in man_pages().items()})
    return files


def stale() -> list[Path]:
    """Generated files whose content differs, plus man pages for commands that no longer exist."""
    files = generated()
    out = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
    if MAN.exists():
        out += [p for p in sorted(MAN.glob("*.1")) if p not in files]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    if args.check:
        bad = stale()
        for path in bad:
            print(f"stale: {path.relative_to(REPO)}", file=sys.stderr)
        if bad:
            print("run: python scripts/gen_docs.py", file=sys.stderr)
        return 1 if bad else 0
    files = generated()
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for path in sorted(MAN.glob("*.1")):
        if path not in files:
            path.unlink()
    print(f"wrote {len(files)} files", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
