"""Where `smolmix fetch` puts what it receives, where curl puts it.

The body goes to stdout or its -o/-O file untouched; -D dumps the response
head; -w prints the write-out after each transfer; -v traces the request and
response heads on stderr; the progress bar draws on stderr, and only where it
cannot scroll away with the body (see `progress_bar`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from smolmix_cli.apps.http_transfer import RequestHead, ResponseHead, Transfer
from smolmix_cli.cli.env import CliEnv

PROGRESS_MIN_BYTES = 1 << 20
"""Downloads to stdout get a bar only from this size on (curl: bar off on a terminal body)."""


@dataclass
class Output:
    """Where one URL's body goes: stdout, or a file opened at the first byte."""

    path: Path | None
    stdout: IO[bytes]
    append: bool = False
    handle: IO[bytes] | None = None
    written: int = 0

    def write(self, data: bytes) -> None:
        if self.path is None:
            self.stdout.write(data)
        else:
            if self.handle is None:
                self.handle = open(self.path, "ab" if self.append else "wb")  # noqa: SIM115
            self.handle.write(data)
        self.written += len(data)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        elif self.path is None:
            self.stdout.flush()


def dump_header(env: CliEnv, dump: Path, raw: bytes) -> None:
    """-D: the response head to stdout ('-') or appended to the file."""
    if str(dump) == "-":
        env.stdout.write(raw)
    else:
        with open(dump, "ab") as handle:
            handle.write(raw)


def write_out(env: CliEnv, fmt: str, transfer: Transfer, extra: dict[str, object]) -> None:
    """-w: the format rendered for one transfer, each piece to the stream it names."""
    from smolmix_cli.apps.http_writeout import render, unknown_warning  # with -w only

    out = render(fmt, transfer, extra)
    for name in out.unknown:  # curl warns even with -s
        env.echo(f"smolmix: {unknown_warning(name)}", err=True)
    for stream, text in out.pieces:
        if stream == "stderr":
            env.stderr.write(text)
            env.stderr.flush()
        else:
            env.stdout.write(text.encode())
            env.stdout.flush()


def show_request(env: CliEnv, head: RequestHead) -> None:
    """-v: the request line and headers exactly as they went on the wire."""
    env.echo(f"> {head.method} {head.target} HTTP/1.1", err=True)
    for name, value in head.headers:
        env.echo(f"> {name}: {value}", err=True)
    env.echo(">", err=True)


def show_response(env: CliEnv, head: ResponseHead) -> None:
    """-v: the status line and headers as they came back."""
    env.echo(f"< HTTP/{head.http_version} {head.status} {head.reason}".rstrip(), err=True)
    for name, value in head.headers:
        env.echo(f"< {name}: {value}", err=True)
    env.echo("<", err=True)


class Progress:
    """A rich bar on stderr; only built when stderr is a terminal."""

    def __init__(self, env: CliEnv) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=env.console(stderr=True),
            transient=True,
        )
        self._task: Any = None
        self._bar.start()

    def start(self, total: int | None) -> None:
        if self._task is None:
            self._task = self._bar.add_task("fetch", total=total)

    def advance(self, n: int) -> None:
        if self._task is not None:
            self._bar.advance(self._task, n)

    def stop(self) -> None:
        self._bar.stop()


def progress_bar(env: CliEnv, head: ResponseHead, output: Output) -> Progress | None:
    """A started bar for this 2xx body, or None: the body goes to a file, or it is large
    and stdout is not the terminal the bar draws on (never over a body that scrolls)."""
    if not 200 <= head.status < 300:
        return None
    length = head.header("content-length")
    total = int(length) if length and length.isdigit() else None
    to_file = output.path is not None
    large = (total or 0) >= PROGRESS_MIN_BYTES and not env.stdout_isatty
    if not (to_file or large):
        return None
    progress = Progress(env)
    progress.start(total)
    return progress
