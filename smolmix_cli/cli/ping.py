"""`smolmix ping`: messages through the mixnet to our own address, reported like ping(8).

Phases, each bounded: the directory (topology), the gateway (register or
authenticate), then `--count` probes `--interval` apart, then up to `--wait`
seconds for the last replies. Exit 0 when at least one reply came back, 1 when
none did (as ping(8)); failures before the first probe exit with the codes in
docs/exit-codes.md.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

import anyio
import click

from smolmix_cli.bootstrap import boot_mixnet
from smolmix_cli.cli.env import CliEnv, cli_env
from smolmix_cli.cli.errors import one_line_errors
from smolmix_cli.cli.options import global_options
from smolmix_cli.config import Network
from smolmix_cli.exit_codes import CliError, ExitCode
from smolmix_cli.mixnet.client.ping import PingTracker, Summary
from smolmix_cli.tunnel.options import for_network

if TYPE_CHECKING:
    from smolmix_cli.mixnet.client.client import ClientConfig

DEFAULT_BOOT_TIMEOUT = 30.0


def ping_config(network: Network, mean_delay_ms: float | None) -> ClientConfig:
    """The tunnel's traffic settings for this network, with ping's own `--mix-delay-ms`."""
    options = for_network(network)
    if mean_delay_ms is not None:
        options = options.replace(mean_delay_ms=mean_delay_ms)
    return options.mixnet_config(network)


class Printer:
    def __init__(self, env: CliEnv, as_json: bool) -> None:
        self.env = env
        self.as_json = as_json

    def line(self, text: str, record: dict[str, Any]) -> None:
        self.env.echo(json.dumps(record) if self.as_json else text)


async def run_ping(
    network: Network,
    *,
    count: int,
    interval: float,
    size: int,
    wait: float,
    boot_timeout: float,
    mean_delay_ms: float | None,
    out: Printer,
    stop_on_sigint: bool = False,
) -> Summary:
    tracker = PingTracker(os.urandom(8), size=size)
    config = ping_config(network, mean_delay_ms)
    async with boot_mixnet(network, config, phase_timeout=boot_timeout) as mixnet:
        client = mixnet.client
        address = str(client.address)
        out.line(
            f"PING {address} via the mixnet ({network.name}): {tracker.size} data bytes",
            {
                "type": "start",
                "address": address,
                "network": network.name,
                "size": tracker.size,
            },
        )
        done = anyio.Event()

        async def receiver() -> None:
            while True:
                message = await client.receive()
                reply = tracker.receive(message.data, time.monotonic())
                if reply is None:
                    continue
                out.line(
                    f"{reply.size} bytes from self: seq={reply.seq} time={reply.rtt_ms:.1f} ms",
                    {
                        "type": "reply",
                        "seq": reply.seq,
                        "size": reply.size,
                        "rtt_ms": round(reply.rtt_ms, 3),
                    },
                )
                if len(tracker.replies) == count:
                    done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(receiver)
            with anyio.CancelScope() as probing:
                if stop_on_sigint:
                    tg.start_soon(_cancel_on_sigint, probing)
                for seq in range(count):
                    if seq:
                        await anyio.sleep(interval)
                    await client.send(client.address, tracker.probe(seq, time.monotonic()))
                with anyio.move_on_after(wait):
                    await done.wait()
            tg.cancel_scope.cancel()
    return tracker.summary(time.monotonic())


async def _cancel_on_sigint(scope: anyio.CancelScope) -> None:
    """Ctrl-C ends the probing, not the program: the summary still prints, as ping(8)."""
    with anyio.open_signal_receiver(signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()
            return


@click.command(name="ping")
@click.option(
    "-c",
    "--count",
    type=click.IntRange(min=1, max=100_000),
    default=4,
    show_default=True,
    help="Messages to send.",
)
@click.option(
    "-i",
    "--interval",
    type=click.FloatRange(min=0.0),
    default=1.0,
    show_default=True,
    help="Seconds between messages.",
)
@click.option(
    "-s",
    "--size",
    type=click.IntRange(min=0, max=1 << 20),
    default=56,
    show_default=True,
    help="Bytes per message (at least the 25-byte probe header).",
)
@click.option(
    "-W",
    "--wait",
    type=click.FloatRange(min=0.0),
    default=10.0,
    show_default=True,
    help="Seconds to wait for replies after the last message.",
)
@click.option(
    "--timeout",
    "boot_timeout",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_BOOT_TIMEOUT,
    show_default=True,
    help="Seconds allowed for the directory and the gateway each.",
)
@click.option(
    "--mix-delay-ms",
    type=click.FloatRange(min=0.0),
    default=None,
    help="Mean per-hop delay to choose (default: the network's).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON lines: start, each reply, summary.")
@click.pass_context
@one_line_errors
def ping(
    ctx: click.Context,
    count: int,
    interval: float,
    size: int,
    wait: float,
    boot_timeout: float,
    mix_delay_ms: float | None,
    as_json: bool,
) -> None:
    """Send messages to ourselves through the mixnet and report each round trip.

    \b
    Examples:
      smolmix ping
      smolmix --network testnet ping -c 10 -i 0.2 --json
    """
    from smolmix_cli.network_select import select_network

    env = cli_env(ctx)
    network = select_network(
        global_options(ctx).network, on_phase=lambda text: env.echo(f"smolmix: {text}", err=True)
    )
    out = Printer(env, as_json)
    summary = anyio.run(
        lambda: run_ping(
            network,
            count=count,
            interval=interval,
            size=size,
            wait=wait,
            boot_timeout=boot_timeout,
            mean_delay_ms=mix_delay_ms,
            out=out,
            stop_on_sigint=threading.current_thread() is threading.main_thread(),
        )
    )
    if as_json:
        env.echo(json.dumps(summary.to_json()))
    else:
        env.echo("--- smolmix ping statistics ---")
        for line in summary.text():
            env.echo(line)
    if summary.received == 0:
        raise CliError("no reply came back through the mixnet", ExitCode.FAILURE)
