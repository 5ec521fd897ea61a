"""What a command may touch of its process: streams, terminal flags, environment, dirs.

Commands read these through `cli_env(ctx)`, never sys.std*, isatty() or
os.environ, so terminal-versus-pipe behaviour is testable in process: hand
click's runner a fake, `CliRunner().invoke(cli, args, obj=CliEnv(...))`, and the
group keeps it (in `ctx.obj["env"]`) for every command below it.
`CliEnv.from_process()` is the real one. The global options' SMOLMIX_*
variables are read by click itself (`CliRunner(env=...)` sets those), and the
layers below the CLI (session attach, `--network testnet`) keep reading the
process environment: a fake's dirs move only what the CLI layer reads itself.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import click
    from rich.console import Console

    from smolmix_cli.session.paths import SessionPaths


@dataclass(frozen=True)
class CliEnv:
    """One command's edges; beyond the streams, the defaults are a pipe's (no terminal)."""

    stdin: IO[bytes]
    stdout: IO[bytes]
    stderr: IO[str]
    stdin_isatty: bool = False
    stdout_isatty: bool = False
    stderr_isatty: bool = False
    environ: Mapping[str, str] = field(default_factory=dict)
    """TERM for the status line and the progress bar; rich reads NO_COLOR, COLUMNS... here."""
    stdout_encoding: str = "utf-8"
    stdout_errors: str = "strict"
    """How text for stdout becomes bytes (the process's: what `sys.stdout` would have done)."""
    testnet_dir: Path | None = None
    """`testnet up|down|status` without --dir; None: the XDG state dir's (config.py)."""
    runtime_dir: Path | None = None
    """Where `session start|stop|status` find the socket; None: the session layer picks
    and checks it ($SMOLMIX_RUNTIME_DIR, $XDG_RUNTIME_DIR/smolmix, /tmp/smolmix-UID).
    A detached `session start` child still picks its own: give fakes `--foreground`."""

    @classmethod
    def from_process(cls) -> CliEnv:
        """This process's streams (a missing one acts as a closed one) and environment."""
        return cls(
            stdin=_binary(sys.stdin),
            stdout=_binary(sys.stdout),
            stderr=sys.stderr if sys.stderr is not None else io.StringIO(),
            stdin_isatty=_isatty(sys.stdin),
            stdout_isatty=_isatty(sys.stdout),
            stderr_isatty=_isatty(sys.stderr),
            environ=os.environ,
            stdout_encoding=getattr(sys.stdout, "encoding", None) or "utf-8",
            stdout_errors=getattr(sys.stdout, "errors", None) or "strict",
        )

    @property
    def stderr_redraws(self) -> bool:
        """stderr is a terminal that can redraw a line in place (the status line, the bar)."""
        return self.stderr_isatty and self.environ.get("TERM") != "dumb"

    @cached_property
    def stdout_text(self) -> IO[str]:
        """Text onto stdout, encoded as the process's stdout would; writes go straight through."""
        return _TextView(
            self.stdout,
            encoding=self.stdout_encoding,
            errors=self.stdout_errors,
            write_through=True,
        )

    def echo(self, message: str, *, err: bool = False) -> None:
        """click.echo onto stdout (or stderr): one line, flushed, ANSI kept only on a terminal."""
        import click  # here: an attached fetch that prints nothing never loads it

        file, tty = self._text(err)
        click.echo(message, file=file, color=_forced(file, tty))

    def console(self, *, stderr: bool = False) -> Console:
        """A rich console on stdout (or stderr) that sees this env's terminal and variables."""
        from rich.console import Console

        file, tty = self._text(stderr)
        return Console(file=file, force_terminal=_forced(file, tty), _environ=self.environ)

    def testnet_state_dir(self) -> Path:
        from smolmix_cli.network_choice import default_testnet_dir

        return self.testnet_dir if self.testnet_dir is not None else default_testnet_dir()

    def session_paths(self, network: str | None) -> SessionPaths:
        """The socket, pid file and lock of this network's session (SessionPathError if unusable)."""
        from smolmix_cli.session.paths import SessionPaths

        return SessionPaths.for_network(network, directory=self.runtime_dir)

    def _text(self, stderr: bool) -> tuple[IO[str], bool]:
        return (
            (self.stderr, self.stderr_isatty) if stderr else (self.stdout_text, self.stdout_isatty)
        )


class _TextView(io.TextIOWrapper):
    """A text layer over a binary stream it does not own: closing it (or its collection)
    only flushes, so the stream stays open for its owner."""

    def close(self) -> None:
        if not self.buffer.closed:
            self.flush()


def cli_env(ctx: click.Context | None = None) -> CliEnv:
    """The env of the running command: the one the group keeps (a caller's `obj=CliEnv(...)`
    when one was given), else the process's. Without `ctx`, click's current context (none
    when click was never loaded: the click-free attach path, cli/fast_argv.py)."""
    if ctx is None and (click := sys.modules.get("click")) is not None:
        ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    if isinstance(obj, CliEnv):
        return obj
    if isinstance(obj, dict):
        env = obj.get("env")
        if not isinstance(env, CliEnv):
            env = obj["env"] = CliEnv.from_process()
        return env
    return CliEnv.from_process()


def _forced(stream: IO[Any], tty: bool) -> bool | None:
    """None when the stream answers isatty() as the env says, so click and rich decide as they
    always do (FORCE_COLOR, TTY_COMPATIBLE...); the flag when a fake's stream cannot say it."""
    return None if _isatty(stream) == tty else tty


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _binary(stream: Any) -> IO[bytes]:
    buffer = getattr(stream, "buffer", None)
    if buffer is None:  # no stream (fd closed at start), or one without bytes beneath it
        buffer = io.BytesIO()
        buffer.close()
    return buffer
