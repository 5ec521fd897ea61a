"""`smolmix testnet up|down|status`: the local network's commands.

Finding a running network and the on-demand start behind `--network testnet`
live in network_select.py; `up` writes the pid and network files it reads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import anyio
import click

from smolmix_cli.cli.env import cli_env
from smolmix_cli.cli.errors import one_line_errors
from smolmix_cli.cli.testnet_control import COMMANDS as CONTROL_COMMANDS
from smolmix_cli.cli.testnet_control import STATE_DIR_OPTION
from smolmix_cli.config import PID_FILE, Network
from smolmix_cli.exit_codes import CliError, ExitCode, first_failure
from smolmix_cli.network_choice import NETWORK_FILE
from smolmix_cli.network_select import is_testnet_process, read_pid, running_network

STOP_TIMEOUT = 10.0
PROBE_TIMEOUT = 1.0
# the testnet's limits, kept here so `--help` does not import the network
_MAX_EXITS = 150  # network.MAX_EXITS
_MAX_MIX = 800  # shape.FIRST_DECOY_ID - shape.FIRST_MIX_ID
_MAX_DECOYS = 5000  # shape.MAX_DECOYS
_MAX_PROCESSES = 64


@click.group(name="testnet")
def testnet() -> None:
    """Run a local Nym network on loopback (directory, 3 mix layers, gateways, exit IPRs).

    Each exit gateway runs an exit IP packet router with a userspace NAT; a demo
    origin (HTTP, HTTPS, ws, wss, DNS for demo.smolmix.test) runs beside it.

    \b
    Examples:
      smolmix testnet up --mix-delay-ms 0      # foreground, Ctrl-C stops it
      smolmix testnet up --exits 3             # three exits: discovery and failover
      smolmix testnet up --processes 2         # nodes spread over two processes (cores)
      smolmix testnet up --shape mainnet       # hundreds of listed nodes, many dead or faulty
      smolmix testnet up --shape mainnet --fault silent=4 --decoys 500
      smolmix --network testnet ping           # starts one in the background if needed
      smolmix testnet status --json
      smolmix testnet node kill 201            # chaos: stop/kill/start/unlist single nodes
      smolmix testnet down
    """


for _command in CONTROL_COMMANDS:
    testnet.add_command(_command)


@testnet.command(name="up")
@click.option(
    "--mix-delay-ms",
    type=click.FloatRange(min=0.0),
    default=10.0,
    show_default=True,
    help="Mean per-hop delay advertised to clients (senders choose delays; 0 allowed).",
)
@click.option(
    "--loss",
    type=click.FloatRange(min=0.0, max=1.0, max_open=True),
    default=0.0,
    show_default=True,
    help="Fraction of packets every mix node drops (reliability tests).",
)
@STATE_DIR_OPTION
@click.option(
    "--nodes",
    type=click.IntRange(min=3, max=_MAX_MIX),
    default=None,
    help="Mix nodes in total, spread over the 3 layers (lab: 3, mainnet: 6).",
)
@click.option(
    "--exits",
    type=click.IntRange(min=1, max=_MAX_EXITS),
    default=None,
    help="Healthy exit gateways, each running an exit IP packet router (lab: 1, mainnet: 3).",
)
@click.option(
    "--shape",
    type=click.Choice(["lab", "mainnet"]),
    default="lab",
    show_default=True,
    help="lab: a few healthy nodes, pinned in the network file. mainnet: hundreds of "
    "listed nodes (decoys), faulty real ones, nothing pinned.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="KIND=N",
    callback=lambda _ctx, _param, value: _fault_counts(value),
    help="Faulty nodes of one kind (repeatable; overrides the shape's count). Exits: "
    "silent, nr-only, unroutable, v9-only, slow. Entry gateways: bad-cert, zk-nym, "
    "close-after-hello, full. Listed but dead: dead-gateway, dead-exit.",
)
@click.option(
    "--decoys",
    type=click.IntRange(min=0, max=_MAX_DECOYS),
    default=None,
    help="Listed-but-absent nodes the client's filters remove (mainnet: 230).",
)
@click.option(
    "--entry-gateways",
    type=click.IntRange(min=1, max=100),
    default=None,
    help="Healthy entry gateways (lab: 1, mainnet: 3).",
)
@click.option(
    "--slow-exit-delay",
    type=click.FloatRange(min=0.0, max=120.0),
    default=None,
    help="Seconds a slow exit waits before answering a connect (default 3).",
)
@click.option(
    "--exit-policy",
    "exit_policy",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Exit policy file, torrc style (`accept|reject[6] ADDR[/MASK]:PORTS` lines; "
    "first match wins, no match denies). Default: loopback, the demo range and "
    "global addresses.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Directory port (0: any).")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="IP address every node and the directory listen on and advertise "
    "(another address lets other hosts use the network file).",
)
@click.option(
    "--rotate-every",
    type=click.FloatRange(min=0.0, min_open=True),
    default=None,
    help="Rotate every node's Sphinx key every SECONDS (default: never).",
)
@click.option(
    "--reshuffle-every",
    type=click.FloatRange(min=0.0, min_open=True),
    default=None,
    help="Start a new epoch with the mix nodes on other layers every SECONDS (default: never).",
)
@click.option(
    "--replay-capacity",
    type=click.IntRange(min=1),
    default=None,
    help="Replay tags each node keeps per Sphinx key, oldest forgotten first (default "
    "200000, ~23 MB per node full; smaller values let a soak run see the caches full).",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1, max=_MAX_PROCESSES),
    default=1,
    show_default=True,
    help="Processes the nodes and exit IPRs run in (one per core; nodes + exits + 1 gives "
    "each its own). The directory, demo origin and control endpoints stay in the first.",
)
@click.pass_context
@one_line_errors
def up(
    ctx: click.Context,
    mix_delay_ms: float,
    loss: float,
    state_dir: Path | None,
    nodes: int | None,
    exits: int | None,
    shape: str,
    faults: dict[Any, int],
    decoys: int | None,
    entry_gateways: int | None,
    slow_exit_delay: float | None,
    exit_policy: Path | None,
    port: int,
    host: str,
    rotate_every: float | None,
    reshuffle_every: float | None,
    replay_capacity: int | None,
    processes: int,
) -> None:
    """Start the local network in the foreground until interrupted."""
    from smolmix_cli.testnet.control import Schedules
    from smolmix_cli.testnet.exit.errors import ExitPolicyError
    from smolmix_cli.testnet.exit.policy import ExitPolicy
    from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions
    from smolmix_cli.testnet.nodes.replay import DEFAULT_CAPACITY as DEFAULT_REPLAY_CAPACITY
    from smolmix_cli.testnet.shape import SHAPES
    from smolmix_cli.testnet.workers import WorkerError

    policy_text = None
    if exit_policy is not None:
        try:
            policy_text = exit_policy.read_text()
            ExitPolicy.parse(policy_text)
        except (OSError, UnicodeDecodeError, ExitPolicyError) as exc:
            raise click.BadParameter(str(exc), param_hint="--exit-policy") from None

    env = cli_env(ctx)
    state_dir = (state_dir or env.testnet_state_dir()).expanduser().resolve()
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise click.BadParameter(f"{host!r} is not an IP address", param_hint="--host") from None
    base = LocalNetworkOptions.mainnet(state_dir) if shape == "mainnet" else None
    network_shape = SHAPES[shape].with_faults(faults)
    changes: dict[str, Any] = {
        "entry_gateways": entry_gateways,
        "decoys": decoys,
        "slow_delay_s": slow_exit_delay,
    }
    try:
        network_shape = dataclasses.replace(
            network_shape, **{k: v for k, v in changes.items() if v is not None}
        )
        options = LocalNetworkOptions(
            state_dir=state_dir,
            mean_delay_ms=mix_delay_ms,
            loss=loss,
            mix_nodes=nodes if nodes is not None else (base.mix_nodes if base else 3),
            directory_port=port,
            host=host,
            exits=exits if exits is not None else (base.exits if base else 1),
            exit_policy=policy_text,
            shape=network_shape,
            schedules=Schedules(rotate_every=rotate_every, reshuffle_every=reshuffle_every),
            replay_capacity=replay_capacity or DEFAULT_REPLAY_CAPACITY,
            processes=processes,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    nodes, exits = options.mix_nodes, options.exits
    _claim_pid_file(state_dir)

    async def main() -> None:
        network = LocalNetwork(options)
        async with anyio.create_task_group() as tg:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as sigs:
                info = await tg.start(network.serve)
                env.echo(
                    f"smolmix: local network up: directory {info.api_urls[0].url}, "
                    f"{nodes} mix nodes, {exits} exit{'s' if exits > 1 else ''}, "
                    f"{_shape_text(network_shape)}, "
                    f"mean delay {mix_delay_ms:g} ms, loss {loss:g}"
                    f"{f', {processes} processes' if processes > 1 else ''}; "
                    f"network file {network.network_file} (Ctrl-C stops it)",
                    err=True,
                )
                if info.demo is not None:
                    env.echo(
                        f"smolmix: demo origin {info.demo.zone} at {info.demo.ipv4} through the "
                        f"tunnel (http, https, ws :8080, wss :8443, DNS {info.dns_resolver})",
                        err=True,
                    )
                env.echo(str(network.network_file))
                async for _ in sigs:
                    break
                tg.cancel_scope.cancel()

    try:
        anyio.run(main)
    except (OSError, BaseExceptionGroup, WorkerError) as exc:
        inner = first_failure(exc)
        if isinstance(inner, OSError):
            raise CliError(
                f"cannot start the local network: {inner.strerror or inner}",
                ExitCode.TESTNET_UNAVAILABLE,
            ) from None
        if isinstance(inner, WorkerError):
            raise CliError(
                f"the local network failed: {inner}", ExitCode.TESTNET_UNAVAILABLE
            ) from None
        raise
    finally:
        for name in (NETWORK_FILE, PID_FILE):
            path = state_dir / name
            with contextlib.suppress(OSError):
                if name != PID_FILE or path.read_text().strip() == str(os.getpid()):
                    path.unlink()
    env.echo("smolmix: local network stopped", err=True)


def _fault_counts(items: tuple[str, ...]) -> dict[Any, int]:
    from smolmix_cli.testnet.shape import parse_fault_counts

    try:
        return dict(parse_fault_counts(items))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--fault") from None


def _shape_text(shape: Any) -> str:
    faults = ", ".join(f"{k}={v}" for k, v in shape.faults.items() if v)
    text = f"{shape.name} shape"
    if shape.decoys:
        text += f", {shape.decoys} decoys"
    return f"{text} (faults: {faults})" if faults else text


def _claim_pid_file(state_dir: Path) -> None:
    """Create the pid file exclusively, so two starters cannot both run a network here."""
    path = state_dir / PID_FILE
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            other = read_pid(state_dir)
            if other is not None:
                raise CliError(
                    f"a local test network is already running in {state_dir} (pid {other})",
                    ExitCode.TESTNET_UNAVAILABLE,
                ) from None
            with contextlib.suppress(OSError):
                path.unlink()  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{os.getpid()}\n")
        return
    raise CliError(f"cannot claim {path}", ExitCode.TESTNET_UNAVAILABLE)


@testnet.command(name="down")
@STATE_DIR_OPTION
@click.pass_context
@one_line_errors
def down(ctx: click.Context, state_dir: Path | None) -> None:
    """Stop the local network started by `up` (or in the background)."""
    env = cli_env(ctx)
    state_dir = (state_dir or env.testnet_state_dir()).expanduser().resolve()
    pid = read_pid(state_dir)
    if pid is None:
        env.echo("smolmix: no local test network is running", err=True)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline and is_testnet_process(pid):
        _reap(pid)
        time.sleep(0.05)
    if is_testnet_process(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        for name in (NETWORK_FILE, PID_FILE):
            with contextlib.suppress(OSError):
                (state_dir / name).unlink()
        env.echo(f"smolmix: local network (pid {pid}) killed after {STOP_TIMEOUT:g} s", err=True)
        return
    env.echo(f"smolmix: local network (pid {pid}) stopped", err=True)


def _reap(pid: int) -> None:
    """Collect a child we started ourselves (a zombie would look alive)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


async def _probe(host: str, port: int | None) -> bool | None:
    if port is None:
        return None
    try:
        with anyio.fail_after(PROBE_TIMEOUT):
            stream = await anyio.connect_tcp(host, port)
    except (OSError, TimeoutError):
        return False
    await stream.aclose()
    return True


async def collect_status(network: Network) -> dict[str, Any]:
    """Liveness of every node's ports (TCP connect) and the counters the network serves."""
    from smolmix_cli.mixnet.directory.api_urls import ApiUrl, DirectoryUnavailable
    from smolmix_cli.mixnet.directory.nym_api import NymApiClient

    served: dict[str, Any] = {}
    error = None
    if network.status_url:
        root, _, path = network.status_url.partition("/smolmix/")
        client = NymApiClient([ApiUrl(root + "/")], ssl_context=network.ssl_context(), timeout=5)
        try:
            answer = await client.get_json("smolmix/" + path)
        except DirectoryUnavailable as exc:
            error = str(exc)
        else:
            served = answer if isinstance(answer, dict) else {}
    counters = {
        n.get("node_id"): n.get("counters", {})
        for n in served.get("nodes", [])
        if isinstance(n, dict)
    }
    ipr_counters = {
        n.get("node_id"): n.get("ipr_counters", {})
        for n in served.get("nodes", [])
        if isinstance(n, dict) and "ipr_counters" in n
    }
    states = {  # what the control endpoints changed since the network file was written
        n.get("node_id"): {
            "state": n.get("state", "running"),
            "listed": n.get("listed", True),
            "standby": n.get("standby", False),
            "layer": n.get("layer"),
        }
        for n in served.get("nodes", [])
        if isinstance(n, dict)
    }
    nodes = []
    for node in network.extra.get("nodes", []):
        host = node.get("host", "127.0.0.1")
        mix = await _probe(host, node.get("mix_port"))
        ws = await _probe(host, node.get("ws_port"))
        nodes.append(
            {
                "node_id": node.get("node_id"),
                "role": node.get("role"),
                "fault": node.get("fault"),
                "layer": node.get("layer"),
                "mix_port": node.get("mix_port"),
                "ws_port": node.get("ws_port"),
                "alive": bool(mix) and ws is not False,
                "state": "running",
                "listed": True,
                "standby": False,
                **states.get(node.get("node_id"), {}),
                "counters": counters.get(node.get("node_id"), {}),
                "ipr_counters": ipr_counters.get(node.get("node_id"), {}),
            }
        )
    return {
        "running": True,
        "pid": network.extra.get("pid"),
        "directory_url": network.api_urls[0].url,
        "directory_alive": error is None,
        "directory_error": error,
        "uptime_s": served.get("uptime_s"),
        "mean_delay_ms": network.mean_delay_ms,
        "loss": network.extra.get("loss"),
        "shape": network.extra.get("shape") or {"name": "lab"},
        "rotation_id": served.get("rotation_id"),
        "epoch_id": served.get("epoch_id"),
        "network_file": str(network.file),
        "exits": [{"node_id": e.node_id, "ipr_address": e.ipr_address} for e in network.exits],
        "dns_resolver": network.dns_resolver,
        "nodes": nodes,
        "processes": served.get("processes") or network.extra.get("processes") or [],
    }


@testnet.command(name="status")
@STATE_DIR_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@click.pass_context
@one_line_errors
def status(ctx: click.Context, state_dir: Path | None, as_json: bool) -> None:
    """Report each node's liveness and packet counters; exit 112 when not running."""
    env = cli_env(ctx)
    state_dir = (state_dir or env.testnet_state_dir()).expanduser().resolve()
    network = running_network(state_dir)
    if network is None:
        if as_json:
            env.echo(json.dumps({"running": False, "state_dir": str(state_dir)}))
        raise CliError(
            f"no local test network is running in {state_dir}", ExitCode.TESTNET_UNAVAILABLE
        )
    report = anyio.run(collect_status, network)
    if as_json:
        env.echo(json.dumps(report))
        return
    env.echo(
        f"local network pid {report['pid']}, directory {report['directory_url']} "
        f"({'up' if report['directory_alive'] else 'DOWN'}), mean delay "
        f"{report['mean_delay_ms']:g} ms, loss {report['loss']}, epoch {report['epoch_id']}, "
        f"key rotation {report['rotation_id']}"
    )
    shape = report["shape"]
    faults = ", ".join(f"{k}={v}" for k, v in (shape.get("faults") or {}).items())
    env.echo(
        f"shape {shape.get('name')}"
        + (f", {shape['decoys']} decoys" if shape.get("decoys") else "")
        + (f", faults: {faults}" if faults else "")
    )
    env.echo(
        f"{'node':>5} {'role':<8} {'layer':>5} {'mix':>6} {'ws':>6} {'alive':<5} "
        f"{'state':<16} {'received':>9} {'forwarded':>9} {'dropped':>8} fault"
    )
    for node in report["nodes"]:
        c = node["counters"]
        dropped = sum(v for k, v in c.items() if k.startswith("dropped_"))
        env.echo(
            f"{node['node_id']:>5} {node['role']:<8} {_layer_text(node):>5} "
            f"{node['mix_port']:>6} {node['ws_port'] or '-':>6} "
            f"{'yes' if node['alive'] else 'NO':<5} {_state_text(node):<16} "
            f"{c.get('received', 0):>9} "
            f"{c.get('forwarded', 0):>9} {dropped:>8} {node.get('fault') or '-'}"
        )
    for exit_info in report["exits"]:
        env.echo(f"exit {exit_info['node_id']}: IPR {exit_info['ipr_address']}")
    if report["dns_resolver"]:
        env.echo(f"DNS resolver (through the tunnel): {report['dns_resolver']}")
    if len(report["processes"]) > 1:
        for process in report["processes"]:
            env.echo(f"process {process['pid']}: {', '.join(process['runs'])}")
    # nodes stopped or killed on purpose are expected to be silent
    running = [n for n in report["nodes"] if n["state"] == "running"]
    if not all(n["alive"] for n in running) or not report["directory_alive"]:
        raise CliError(
            "some nodes of the local network are not answering", ExitCode.TESTNET_UNAVAILABLE
        )


def _state_text(node: dict[str, Any]) -> str:
    return str(node["state"]) + ("" if node["listed"] else ",unlisted")


def _layer_text(node: dict[str, Any]) -> str:
    if node["standby"]:
        return "stby"
    return str(node["layer"] or "-")
