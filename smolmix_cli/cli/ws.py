"""`smolmix ws URL`: websocat over the mixnet, byte for byte where scripts look.

stdin and stdout follow websocat 1.13 (the rules, with their sources, are in
apps/ws_stdio.py): in line mode each stdin line is one text message sent with
its newline, and each message received is printed on one line; -0 uses NUL
instead of newline; -b sends each read of stdin as one binary message and
writes messages back to back, so a file sent to an echo server comes back
byte for byte; --base64 prints binary messages as base64 lines; -1 sends the
first message only and prints at most one; --jsonl is JSON message events both
ways. End of stdin closes with 1000 unless -n; -E leaves at end of stdin
without waiting for replies. Every wait is bounded: the close handshake by
--close-timeout of silence (after stdin ends, replies still arriving are read
and printed, as websocat does), a silent peer by the ping keepalive
(--ping-interval/--ping-timeout, sized for mixnet round trips).
Exit 0 after a normal close (1000/1001), 12 for any other close code, curl's
numbers for transport failures (7, 28, 35, 60), 22 when the upgrade is refused.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import IO, Any

import anyio
import click

from smolmix_cli.apps import ws as ws_app
from smolmix_cli.apps import ws_stdio
from smolmix_cli.apps.errors import OperationTimeout, UsageError, WsClosed
from smolmix_cli.apps.http_headers import HeaderEdit, parse_header_arg
from smolmix_cli.cli.env import CliEnv, cli_env
from smolmix_cli.cli.errors import run_reported
from smolmix_cli.cli.options import global_options
from smolmix_cli.errors_map import classify
from smolmix_cli.options import GlobalOptions

READ_SIZE = 65536


@dataclass
class WsArgs:
    url: str
    mode: ws_stdio.StdioMode = field(default_factory=ws_stdio.StdioMode)
    one_message: bool = False
    no_close: bool = False
    exit_on_eof: bool = False
    headers: list[HeaderEdit] = field(default_factory=list)
    protocols: list[str] = field(default_factory=list)
    origin: str | None = None
    ping_interval: float = ws_app.DEFAULT_PING_INTERVAL
    ping_timeout: float = ws_app.DEFAULT_PING_TIMEOUT
    connect_timeout: float = ws_app.DEFAULT_CONNECT_TIMEOUT
    close_timeout: float = 10.0
    insecure: bool = False
    cacert: str | None = None


EOF_CLOSE_TIMEOUT = 1.0
"""-E: how long the close reply may take once stdin ended (websocat does not wait at all)."""


class Printer:
    """Messages to stdout as websocat writes them (apps.ws_stdio), or JSON events with --jsonl."""

    def __init__(self, out: IO[bytes], mode: ws_stdio.StdioMode) -> None:
        self.mode = mode
        self.out = out

    def event(self, record: dict[str, Any]) -> None:
        if self.mode.jsonl:
            self.out.write(ws_stdio.render_event(record))
            self.out.flush()

    def message(self, message: str | bytes) -> None:
        self.out.write(ws_stdio.render(message, self.mode))
        self.out.flush()


class StdinReader:
    """stdin without threads: the event loop waits on the descriptor (pipes, terminals);
    regular files and /dev/null are read directly, they never block. A stdin without
    a descriptor (an env's BytesIO) is read whole, once."""

    def __init__(self, env: CliEnv) -> None:
        self._stdin = env.stdin
        self._drained = False
        try:
            self.fd: int | None = self._stdin.fileno()
        except (AttributeError, OSError, ValueError):  # no descriptor (embedded, tests)
            self.fd = None
            self.pollable = False
            return
        mode = os.fstat(self.fd).st_mode
        self.pollable = not (stat.S_ISREG(mode) or (stat.S_ISCHR(mode) and not env.stdin_isatty))

    async def read(self) -> bytes:
        if self.fd is None:  # one blocking read of whatever stdin object there is
            if self._drained:
                return b""
            self._drained = True
            return bytes(self._stdin.read())
        if self.pollable:
            await anyio.wait_readable(self.fd)
        return os.read(self.fd, READ_SIZE)


async def _messages(stdin: StdinReader, mode: ws_stdio.StdioMode) -> AsyncIterator[str | bytes]:
    """stdin as websocat cuts it into messages, the tail sent at EOF."""
    splitter = ws_stdio.MessageSplitter(mode)
    while chunk := await stdin.read():
        for message in splitter.feed(chunk):
            yield message
    for message in splitter.finish():
        yield message


async def run_ws(env: CliEnv, args: WsArgs, globals_: GlobalOptions) -> int:
    from smolmix_cli.session import open_tunnel

    printer = Printer(env.stdout, args.mode)
    async with open_tunnel(globals_) as session:
        stdin = StdinReader(env)
        cafile = None if args.insecure else session.cafile(args.cacert)
        options = ws_app.WsOptions(
            header_edits=args.headers,
            subprotocols=args.protocols,
            origin=args.origin,
            verify=not args.insecure,
            cafile=cafile,
            connect_timeout=args.connect_timeout,
        )
        conn = await ws_app.connect(session.tunnel, args.url, options)
        printer.event({"event": "open", "url": args.url, "protocol": conn.subprotocol})
        closed_by_us = False
        ended_by_eof = False  # -E: stdin ended, we leave without waiting for the server
        closed: WsClosed | None = None
        bad_input: ws_stdio.StdinFormatError | None = None
        close_lock = anyio.Lock()

        async def close(timeout: float = args.close_timeout, idle: bool = True) -> None:
            nonlocal closed_by_us
            async with close_lock:  # -1 closes from both tasks; the second one just waits
                if closed_by_us:
                    return
                closed_by_us = True
                await conn.close(1000, "", timeout=timeout, idle=idle)

        async def flush() -> None:
            """A ping as a barrier: its pong comes after every reply the server already sent,
            so replies to the last lines are printed before our close frame goes out."""
            with (
                anyio.move_on_after(args.ping_timeout),
                contextlib.suppress(OperationTimeout, WsClosed),
            ):
                await conn.ping(timeout=args.ping_timeout)

        async def receiver(tg: anyio.abc.TaskGroup) -> None:
            nonlocal closed
            try:
                while True:
                    printer.message(await conn.receive())
                    if args.one_message:  # websocat -1: one message each way, the rest unread
                        await close()
                        break
            except WsClosed as exc:
                closed = exc
            tg.cancel_scope.cancel()

        async def sender(tg: anyio.abc.TaskGroup) -> None:
            nonlocal ended_by_eof, bad_input
            try:
                async for message in _messages(stdin, args.mode):
                    await conn.send(message)
                    if args.one_message:
                        break  # websocat -1 sends the first message only, then acts as at EOF
            except ws_stdio.StdinFormatError as exc:
                bad_input = exc
                tg.cancel_scope.cancel()
                return
            if args.exit_on_eof:
                ended_by_eof = True
                tg.cancel_scope.cancel()
                return
            if not args.no_close:
                await flush()
                await close()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(receiver, tg)
                tg.start_soon(sender, tg)
                if args.ping_interval > 0:
                    tg.start_soon(conn.keepalive, args.ping_interval, args.ping_timeout)
        except* WsClosed as group:
            closed = closed or group.exceptions[0]  # type: ignore[assignment]
        if bad_input is not None or (ended_by_eof and closed is None):
            if not args.no_close:
                await close(EOF_CLOSE_TIMEOUT, idle=False)
            if bad_input is not None:
                raise UsageError(str(bad_input))
            if not args.no_close:  # -n -E: no close frame went out, so no close event
                printer.event({"event": "close", "code": 1000, "reason": "", "by": "client"})
            return 0
        if closed is None:
            closed = conn.closed or WsClosed(1006, "connection lost")
        assert closed is not None
        printer.event(
            {
                "event": "close",
                "code": closed.code,
                "reason": closed.reason,
                "by": "client" if (closed.local or closed_by_us) else "server",
            }
        )
        if closed_by_us and closed.code in (1000, 1001):
            return 0
        text = f"connection closed: {closed.code}" + (f" {closed.reason}" if closed.reason else "")
        env.echo(f"smolmix: {text}", err=True)
        return 0 if closed.normal else int(classify(closed).code)


@click.command(name="ws")
@click.argument("url")
@click.option(
    "-t", "--text", "text_mode", is_flag=True, help="Send text messages (the default). Example: -t"
)
@click.option(
    "-b",
    "--binary",
    is_flag=True,
    help="Binary mode: each read of stdin is one binary message, sent as it is; messages "
    "received are written without separators. Example: -b < file.bin",
)
@click.option(
    "-0",
    "--null-terminated",
    "null",
    is_flag=True,
    help="NUL instead of newline ends each message, on stdin and on stdout. "
    "Example: find . -print0 | smolmix ws -0 URL",
)
@click.option(
    "--base64",
    "base64_mode",
    is_flag=True,
    help="Print binary messages as one base64 line each; with -b, also decode each stdin "
    "line from base64 (a line that is not base64 goes out as it is). Example: -b --base64",
)
@click.option(
    "--linemode-strip-newlines",
    "strip_newlines",
    is_flag=True,
    help="Send each line without its trailing newline (websocat sends it). "
    "Example: --linemode-strip-newlines",
)
@click.option(
    "-1",
    "--one-message",
    is_flag=True,
    help="Send only the first message (the first line, newline included), print at most one "
    "reply, close. Example: -1",
)
@click.option(
    "-n",
    "--no-close",
    is_flag=True,
    help="Keep the connection open after stdin ends (until the server closes). Example: -n",
)
@click.option(
    "-E",
    "--exit-on-eof",
    "exit_on_eof",
    is_flag=True,
    help="Leave as soon as stdin ends (after sending it and a close frame, unless -n), "
    "without waiting for replies. Example: -E",
)
@click.option(
    "-H",
    "--header",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="Extra handshake header; repeatable. Example: -H 'Authorization: Bearer x'",
)
@click.option(
    "--protocol",
    "protocols",
    multiple=True,
    metavar="NAME",
    help="Offer a subprotocol (Sec-WebSocket-Protocol); repeatable. Example: --protocol echo",
)
@click.option(
    "--origin", metavar="URL", help="Origin header. Example: --origin https://example.com"
)
@click.option(
    "--ping-interval",
    type=click.FloatRange(min=0.0),
    default=ws_app.DEFAULT_PING_INTERVAL,
    show_default=True,
    help="Seconds between keepalive pings (0: none). Example: --ping-interval 30",
)
@click.option(
    "--ping-timeout",
    type=click.FloatRange(min=0.1),
    default=ws_app.DEFAULT_PING_TIMEOUT,
    show_default=True,
    help="Seconds a pong may take before the connection counts as dead (exit 28). "
    "Example: --ping-timeout 60",
)
@click.option(
    "--connect-timeout",
    type=click.FloatRange(min=0.1),
    default=ws_app.DEFAULT_CONNECT_TIMEOUT,
    show_default=True,
    help="Seconds for TCP, TLS and the upgrade. Example: --connect-timeout 60",
)
@click.option(
    "--close-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds the server may stay silent while we wait for its close reply (replies "
    "still arriving are read and printed). Example: --close-timeout 5",
)
@click.option(
    "--jsonl",
    "--json",
    "jsonl",
    is_flag=True,
    help="One JSON event per line on stdout (open, message, close with code and reason); "
    "stdin is read as the same message events, so a recorded session replays unchanged. "
    'Example: echo \'{"type": "text", "data": "hi"}\' | smolmix ws --jsonl URL',
)
@click.option(
    "-k", "--insecure", is_flag=True, help="Do not verify the wss:// certificate. Example: -k"
)
@click.option(
    "--cacert",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Also trust the CAs in this PEM file. Example: --cacert ca.pem",
)
@click.pass_context
def ws(ctx: click.Context, /, url: str, **kw: Any) -> None:
    """Talk to a WebSocket (ws:// or wss://) through the mixnet, like websocat.

    As websocat 1.13: each stdin line is one text message, newline included;
    each message received is printed on one line (its own newlines become
    spaces); -0 uses NUL instead of newline; with -b bytes go out as read and
    come back without separators. Ctrl-D closes cleanly. Exit: 0 on
    a normal close, 12 on an abnormal close code (shown on stderr), 22 when the
    upgrade is refused, curl's numbers for transport failures.

    \b
    Examples:
      smolmix --network testnet ws ws://demo.smolmix.test:8080/
      echo hello | smolmix ws -1 wss://echo.example.org/
      smolmix ws --jsonl -n --protocol chat wss://example.org/socket < script.txt
    """

    def body() -> int:
        if kw["binary"] and kw["text_mode"]:
            raise UsageError("use only one of -t and -b")
        mode = ws_stdio.StdioMode(
            binary=bool(kw["binary"]),
            null=bool(kw["null"]),
            strip_newlines=bool(kw["strip_newlines"]),
            base64=bool(kw["base64_mode"]),
            jsonl=bool(kw["jsonl"]),
        )
        args = WsArgs(
            url=url,
            mode=mode,
            one_message=bool(kw["one_message"]),
            no_close=bool(kw["no_close"]),
            exit_on_eof=bool(kw["exit_on_eof"]),
            headers=[parse_header_arg(h) for h in kw["headers"]],
            protocols=list(kw["protocols"]),
            origin=kw["origin"],
            ping_interval=kw["ping_interval"],
            ping_timeout=kw["ping_timeout"],
            connect_timeout=kw["connect_timeout"],
            close_timeout=kw["close_timeout"],
            insecure=bool(kw["insecure"]),
            cacert=kw["cacert"],
        )
        ws_app.parse_ws_url(url)
        return anyio.run(run_ws, cli_env(ctx), args, global_options(ctx))

    sys.exit(run_reported(body))
