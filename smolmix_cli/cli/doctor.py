"""`smolmix doctor`: one screen (or one JSON object) to paste into a bug report.

Reads the directory, connects one entry gateway and asks a few exits' IP packet
routers for their health, each phase bounded; the findings and the exit code are
built in smolmix_cli/doctor (see docs/exit-codes.md for the codes).
"""

from __future__ import annotations

import json

import anyio
import click

from smolmix_cli.cli.env import cli_env
from smolmix_cli.cli.errors import one_line_errors
from smolmix_cli.cli.options import global_options
from smolmix_cli.exit_codes import CliError, ExitCode

DEFAULT_EXITS = 10
DEFAULT_WIDTH = 5
DEFAULT_PROBE_TIMEOUT = 10.0


@click.command(name="doctor")
@click.option(
    "--exits",
    "exits",
    type=click.IntRange(min=1, max=1000),
    default=DEFAULT_EXITS,
    show_default=True,
    help="Exits to probe at most, in the tunnel's performance-weighted order.",
)
@click.option(
    "--width",
    type=click.IntRange(min=1, max=100),
    default=DEFAULT_WIDTH,
    show_default=True,
    help="Exits probed at a time.",
)
@click.option(
    "--probe-timeout",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_PROBE_TIMEOUT,
    show_default=True,
    help="Seconds one exit has to answer.",
)
@click.option(
    "--timeout",
    "budget",
    type=click.FloatRange(min=1.0),
    default=None,
    help="Seconds for the whole run (default: the global --boot-timeout).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of the table.")
@click.option("-v", "--verbose", is_flag=True, help="Each phase on stderr as it starts.")
@click.pass_context
@one_line_errors
def doctor(
    ctx: click.Context,
    exits: int,
    width: int,
    probe_timeout: float,
    budget: float | None,
    as_json: bool,
    verbose: bool,
) -> None:
    """Diagnose the network: directory, entry gateway, exits, in one screen.

    Counts the directory's nodes by role and build and says how many the client's
    filters keep and why; connects an entry gateway as `fetch` would (with fresh,
    unsaved keys) and shows its protocol version and any gateways skipped; then sends
    an IPR Health request to up to --exits exits, --width at a time, and shows each
    answer and round trip. Nothing secret is printed, not even our own address.

    \b
    Exit codes: 0 directory read, a gateway connected and at least one exit
    answered; 5 directory unreachable; 110 directory unusable; 111 no gateway
    connected; 97 no exit answered (or none is listed).

    \b
    Examples:
      smolmix doctor
      smolmix --network testnet doctor --json
      smolmix doctor --exits 20 --width 10 --probe-timeout 15
    """
    from smolmix_cli.doctor.render import render
    from smolmix_cli.doctor.run import DoctorSettings, run_doctor
    from smolmix_cli.session.factory import load_network, tunnel_options

    env = cli_env(ctx)
    options = global_options(ctx)
    network = load_network(options)
    config = tunnel_options(network, options).mixnet_config(network)
    settings = DoctorSettings(
        exits=exits,
        width=width,
        probe_timeout=probe_timeout,
        budget=budget if budget is not None else options.boot_timeout,
        ipr=options.ipr,
    )
    on_phase = (lambda text: env.echo(f"* {text}", err=True)) if verbose else None
    report = anyio.run(lambda: run_doctor(network, config, settings, on_phase=on_phase))
    if as_json:
        env.echo(json.dumps(report.to_json(), indent=2))
    else:
        for line in render(report):
            env.echo(line)
    code, message = report.verdict
    if code is not ExitCode.OK:
        raise CliError(message, code)
