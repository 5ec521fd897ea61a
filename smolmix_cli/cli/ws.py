"""`smolmix ws URL`: websocat over the mixnet.

Line mode: each stdin line is one message, each received message is printed
on its own line; Ctrl-D (end of stdin) closes with 1000 unless -n. Binary mode
(-b) is websocat's: each read of stdin goes out as one binary message as it is
(no splitting at newlines) and messages received are written back to back, so
a file sent to an echo server comes back byte for byte. `-1` sends all of
stdin as one message, prints one reply and closes. Every wait is bounded:
the close handshake by --close-timeout of silence (after stdin ends, replies
still arriving are read and printed, as websocat does), a silent peer by the
ping keepalive (--ping-interval/--ping-timeout, sized for mixnet round trips).
Exit 0 after a normal close (1000/1001), 12 for any other close code, curl's
numbers for transport failures (7, 28, 35, 60), 22 when the upgrade is refused.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import stat
import sys
from dataclasses import dataclass, field
from typing import IO, Any

import anyio
import click

from smolmix_cli.apps import ws as ws_app
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
    binary: bool = False
    one_message: bool = False
    no_close: bool = False
    headers: list[HeaderEdit] = field(default_factory=list)
    protocols: list[str] = field(default_factory=list)
    origin: str | None = None
    ping_interval: float = ws_app.DEFAULT_PING_INTERVAL
    ping_timeout: float = ws_app.DEFAULT_PING_TIMEOUT
    connect_timeout: float = ws_app.DEFAULT_CONNECT_TIMEOUT
    close_timeout: float = 10.0
    jsonl: bool = False
    insecure: bool = False
    cacert: str | None = None


class Printer:
    """Messages to stdout (raw lines, raw bytes with -b, or JSON events with --jsonl)."""

    def __init__(self, out: IO[bytes], jsonl: bool, binary: bool = False) -> None:
        self.jsonl = jsonl
        self.out = out
        self.separator = b"" if binary else b"\n"

    def event(self, record: dict[str, Any]) -> None:
        if self.jsonl:
            self.out.write(json.dumps(record).encode() + b"\n")
            self.out.flush()

    def message(self, message: str | bytes) -> None:
        if self.jsonl:
            if isinstance(message, str):
                self.event({"event": "message", "type": "text", "data": message})
            else:
                data = base64.b64encode(message).decode()
                self.event({"event": "message", "type": "binary", "data_base64": data})
            return
        raw = message.encode() if isinstance(message, str) else message
        self.out.write(raw + self.separator)
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

    async def read_all(self) -> bytes:
        chunks = []
        while chunk := await self.read():
            chunks.append(chunk)
        return b"".join(chunks)


def _payload(line: bytes, binary: bool) -> str | bytes:
    return line if binary else line.decode("utf-8", "replace")


async def run_ws(env: CliEnv, args: WsArgs, globals_: GlobalOptions) -> int:
    from smolmix_cli.session import open_tunnel

    printer = Printer(env.stdout, args.jsonl, args.binary)
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
        closed: WsClosed | None = None

        async def close() -> None:
            nonlocal closed_by_us
            closed_by_us = True
            await conn.close(1000, "", timeout=args.close_timeout)  # bounded by server silence

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
                    if args.one_message:
                        await close()
            except WsClosed as exc:
                closed = exc
            tg.cancel_scope.cancel()

        async def sender() -> None:
            if args.one_message:
                await conn.send(_payload(await stdin.read_all(), args.binary))
                return
            pending = b""
            while True:
                chunk = await stdin.read()
                if not chunk:
                    break
                if args.binary:  # websocat -b: one read, one message, bytes untouched
                    await conn.send(chunk)
                    continue
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    await conn.send(_payload(line.removesuffix(b"\r"), args.binary))
            if pending:
                await conn.send(_payload(pending, args.binary))
            if not args.no_close:
                await flush()
                await close()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(receiver, tg)
                tg.start_soon(sender)
                if args.ping_interval > 0:
                    tg.start_soon(conn.keepalive, args.ping_interval, args.ping_timeout)
        except* WsClosed as group:
            closed = closed or group.exceptions[0]  # type: ignore[assignment]
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
    "-1",
    "--one-message",
    is_flag=True,
    help="Send all of stdin as one message, print one reply, close. Example: -1",
)
@click.option(
    "-n",
    "--no-close",
    is_flag=True,
    help="Keep the connection open after stdin ends (until the server closes). Example: -n",
)
@click.option("-E", "exit_on_eof", is_flag=True, hidden=True, help="Accepted for websocat scripts.")
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
    help="One JSON event per line on stdout: open, message, close (code, reason). Example: --jsonl",
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

    Each stdin line is one message; each message received is printed on its own
    line (embedded newlines split messages); with -b bytes go out as read and
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
        args = WsArgs(
            url=url,
            binary=bool(kw["binary"]),
            one_message=bool(kw["one_message"]),
            no_close=bool(kw["no_close"]),
            headers=[parse_header_arg(h) for h in kw["headers"]],
            protocols=list(kw["protocols"]),
            origin=kw["origin"],
            ping_interval=kw["ping_interval"],
            ping_timeout=kw["ping_timeout"],
            connect_timeout=kw["connect_timeout"],
            close_timeout=kw["close_timeout"],
            jsonl=bool(kw["jsonl"]),
            insecure=bool(kw["insecure"]),
            cacert=kw["cacert"],
        )
        if kw["binary"] and kw["text_mode"]:
            raise UsageError("use only one of -t and -b")
        ws_app.parse_ws_url(url)
        return anyio.run(run_ws, cli_env(ctx), args, global_options(ctx))

    sys.exit(run_reported(body))
