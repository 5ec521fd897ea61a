"""`smolmix testnet node|rotate|reshuffle`: chaos on a running local network.

Each command POSTs to the directory's control endpoints (testnet/control.py) with the token
from the network file, which is 0600 and found in the state dir as `testnet status` finds it.
Exit codes: 0 done; 1 the network refused (403 wrong token, 409 e.g. a node already stopped);
2 an unknown node or a bad value; 112 no local network running or its directory unreachable.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import click

from smolmix_cli.cli.env import cli_env
from smolmix_cli.cli.errors import one_line_errors
from smolmix_cli.config import Network
from smolmix_cli.exit_codes import CliError, ExitCode
from smolmix_cli.network_select import running_network

# testnet/control.py's NODE_ACTIONS (not imported: it would load every node module here)
NODE_ACTIONS = ("stop", "kill", "start", "restart", "unlist", "list")
TIMEOUT = 30.0  # a restart waits for a stop (up to 10 s); the exit IPR re-registers

STATE_DIR_OPTION = click.option(
    "--dir",
    "state_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="State directory (default: the XDG state dir's smolmix/testnet).",
)
"""Every `testnet` command's --dir (testnet.py uses it too)."""
_JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="The answer as JSON.")


def control_request(network: Network, path: str, params: dict[str, Any]) -> dict[str, Any]:
    """POST one control request; the answer's JSON, or CliError with the documented code."""
    control = network.extra.get("control")
    if not isinstance(control, dict) or not control.get("url") or not control.get("token"):
        raise CliError(
            "this local network has no control endpoints (restart it with this version)",
            ExitCode.TESTNET_UNAVAILABLE,
        )
    url = str(control["url"]) + path
    query = urlencode({k: v for k, v in params.items() if v is not None})
    request = urllib.request.Request(
        url + ("?" + query if query else ""),
        data=b"",
        method="POST",
        headers={"Authorization": f"Bearer {control['token']}"},
    )
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),  # loopback: a proxy from the environment must not see it
        urllib.request.HTTPSHandler(context=network.ssl_context()),
    )
    try:
        with opener.open(request, timeout=TIMEOUT) as answer:
            body: Any = json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise _refusal(exc) from None
    except (urllib.error.URLError, OSError, ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(
            f"the local network's directory did not answer: {reason}", ExitCode.TESTNET_UNAVAILABLE
        ) from None
    return body if isinstance(body, dict) else {}


def _refusal(exc: urllib.error.HTTPError) -> CliError:
    try:
        message = json.loads(exc.read()).get("message", exc.reason)
    except (ValueError, AttributeError, OSError):
        message = exc.reason
    if exc.code in (400, 404):
        return CliError(str(message), ExitCode.USAGE)
    if exc.code == 403:
        return CliError(f"refused: {message}", ExitCode.FAILURE)
    return CliError(str(message), ExitCode.FAILURE)


def _network(ctx: click.Context, state_dir: Path | None) -> Network:
    env = cli_env(ctx)
    state_dir = (state_dir or env.testnet_state_dir()).expanduser().resolve()
    network = running_network(state_dir)
    if network is None:
        raise CliError(
            f"no local test network is running in {state_dir}", ExitCode.TESTNET_UNAVAILABLE
        )
    return network


@click.command(name="node")
@click.argument("action", type=click.Choice(NODE_ACTIONS))
@click.argument("node_id", type=click.IntRange(min=0))
@click.option(
    "--down",
    type=click.FloatRange(min=0.0, max=600.0),
    default=None,
    help="restart: seconds to stay down between the stop and the start.",
)
@click.option("--kill", is_flag=True, help="restart: kill instead of a graceful stop.")
@STATE_DIR_OPTION
@_JSON_OPTION
@click.pass_context
@one_line_errors
def node(
    ctx: click.Context,
    action: str,
    node_id: int,
    down: float | None,
    kill: bool,
    state_dir: Path | None,
    as_json: bool,
) -> None:
    """Stop, kill, start, restart, unlist or list one node of the running local network.

    \b
    stop     graceful (a gateway saves its registrations); the node stays listed
    kill     abrupt: sockets dropped, no close frames, nothing saved
    start    again on the same ports with the same keys and registrations
    restart  stop (or --kill) and start, --down SECONDS in between
    unlist   drop it from the directory (skimmed, described, rewarded set); it keeps running
    list     put it back
    An exit's IPR stops and starts with its gateway. Exit codes: 0 done, 1 refused
    (e.g. already stopped), 2 unknown node, 112 no network running.
    """
    network = _network(ctx, state_dir)
    params = {"down": down, "kill": 1 if kill else None}
    answer = control_request(network, f"nodes/{node_id}/{action}", params)
    env = cli_env(ctx)
    if as_json:
        env.echo(json.dumps(answer))
        return
    listed = "listed" if answer.get("listed", True) else "unlisted"
    env.echo(f"node {node_id}: {answer.get('state', '?')}, {listed}")


@click.command(name="rotate")
@STATE_DIR_OPTION
@_JSON_OPTION
@click.pass_context
@one_line_errors
def rotate(ctx: click.Context, state_dir: Path | None, as_json: bool) -> None:
    """Start the next key rotation now: every node takes a fresh Sphinx key.

    Exit codes: 0 done, 1 refused, 112 no network running.
    """
    answer = control_request(_network(ctx, state_dir), "rotate", {})
    _echo_epoch(ctx, answer, as_json)


@click.command(name="reshuffle")
@click.option(
    "--standby",
    type=click.IntRange(min=0),
    default=None,
    help="Mix nodes to put in the standby set (default: as many as now).",
)
@STATE_DIR_OPTION
@_JSON_OPTION
@click.pass_context
@one_line_errors
def reshuffle(
    ctx: click.Context, standby: int | None, state_dir: Path | None, as_json: bool
) -> None:
    """Start a new epoch whose rewarded set puts the mix nodes on other layers.

    Exit codes: 0 done, 1 refused, 2 a standby count that leaves a layer empty, 112 no
    network running.
    """
    answer = control_request(_network(ctx, state_dir), "reshuffle", {"standby": standby})
    _echo_epoch(ctx, answer, as_json)


def _echo_epoch(ctx: click.Context, answer: dict[str, Any], as_json: bool) -> None:
    env = cli_env(ctx)
    if as_json:
        env.echo(json.dumps(answer))
        return
    env.echo(f"epoch {answer.get('epoch_id')}, key rotation {answer.get('rotation_id')}")


COMMANDS = (node, rotate, reshuffle)
