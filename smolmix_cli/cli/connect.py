"""`smolmix connect HOST PORT`: stdin/stdout as one TCP stream through the tunnel (like `nc`).

For ssh's `ProxyCommand smolmix connect %h %p` and scripts. The end of stdin
half-closes the stream (the peer sees EOF) and the command exits when the
peer closes; the name is resolved through the tunnel.
"""

from __future__ import annotations

import os

import anyio
import anyio.abc
import click

from smolmix_cli.cli.env import CliEnv, cli_env
from smolmix_cli.cli.errors import one_line_errors
from smolmix_cli.cli.options import global_options
from smolmix_cli.options import GlobalOptions

CHUNK = 65536


async def pipe_stdio(stream: anyio.abc.ByteStream, stdin_fd: int, stdout_fd: int) -> None:
    """Copy stdin to the stream and the stream to stdout until the stream ends.

    On the descriptors, not Python's stream objects: a ProxyCommand's bytes must
    not wait in a buffer, and a blocked read must be abandonable on cancel.
    """

    async def uplink() -> None:
        while True:
            data = await anyio.to_thread.run_sync(os.read, stdin_fd, CHUNK, abandon_on_cancel=True)
            if not data:
                await stream.send_eof()
                return
            await stream.send(data)

    async with anyio.create_task_group() as tg:
        tg.start_soon(uplink)
        while True:
            try:
                data = await stream.receive(CHUNK)
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                break
            view = memoryview(data)
            while view:
                written = await anyio.to_thread.run_sync(os.write, stdout_fd, view)
                view = view[written:]
        tg.cancel_scope.cancel()


async def run_connect(env: CliEnv, globals_: GlobalOptions, host: str, port: int) -> None:
    """The env's stdin and stdout need descriptors (a test gives pipes, not BytesIO)."""
    from smolmix_cli.cli.status_line import boot_status
    from smolmix_cli.session import open_tunnel

    async with open_tunnel(globals_, status_line=boot_status(env)) as session:
        stream = await session.tunnel.open_tcp(host, port)
        async with stream:
            await pipe_stdio(stream, env.stdin.fileno(), env.stdout.fileno())


@click.command(name="connect")
@click.argument("host")
@click.argument("port", type=click.IntRange(1, 65535))
@click.pass_context
@one_line_errors
def connect(ctx: click.Context, host: str, port: int) -> None:
    """Pipe stdin/stdout to a TCP connection to HOST PORT through the mixnet.

    \b
    Examples:
      printf 'GET / HTTP/1.0\\r\\n\\r\\n' | smolmix --network testnet connect demo.smolmix.test 80
      ssh -o ProxyCommand='smolmix connect %h %p' user@example.org
    """
    anyio.run(run_connect, cli_env(ctx), global_options(ctx), host, port)
