"""`smolmix session start|stop|status`: the background session that keeps a tunnel warm.

One session per network (the global `--network`), on a Unix socket in the
runtime dir; `fetch`, `ws`, `resolve` and `connect` attach to it (see
session/factory.py). `start` detaches unless `--foreground`; on a terminal it
shows the boot's phases.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from typing import Any

import anyio
import click

from smolmix_cli.cli.env import CliEnv, cli_env
from smolmix_cli.cli.errors import one_line_errors
from smolmix_cli.cli.options import global_options
from smolmix_cli.exit_codes import CliError, ExitCode

STOP_TIMEOUT = 10.0
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float | None:
    """`600`, `90s`, `10m`, `1h`, `1d`; `0`, `none` or `never` mean no idle timeout (None)."""
    value = text.strip().lower()
    if value in ("none", "never", "0", "inf"):
        return None
    number = value.rstrip("smhd")
    unit = value[len(number) :]
    try:
        amount = float(number)
    except ValueError:
        raise click.BadParameter(f"not a duration: {text!r} (e.g. 600, 90s, 10m, 1h)") from None
    if unit not in _UNITS or not math.isfinite(amount) or amount < 0:
        raise click.BadParameter(f"not a duration: {text!r} (e.g. 600, 90s, 10m, 1h)")
    seconds = amount * _UNITS[unit]
    return None if seconds == 0 else seconds


def _paths(ctx: click.Context) -> Any:
    from smolmix_cli.session.paths import SessionPathError

    try:
        return cli_env(ctx).session_paths(global_options(ctx).network)
    except SessionPathError as exc:
        raise CliError(str(exc), ExitCode.FAILURE) from None


@click.group(name="session")
def session() -> None:
    """Keep one tunnel warm in the background for this network's commands.

    \b
    Examples:
      smolmix --network testnet session start --socks5 127.0.0.1:1080
      smolmix --network testnet session status --json
      smolmix --network testnet session stop
    """


@session.command(name="start")
@click.option(
    "--idle-timeout",
    default="10m",
    show_default=True,
    metavar="DURATION",
    help="Stop after this long without a command attached (600, 90s, 10m, 1h; 0 = never).",
)
@click.option(
    "--socks5",
    metavar="[HOST:]PORT",
    default=None,
    help="Also serve SOCKS5 (no authentication) here; HOST defaults to 127.0.0.1. "
    "Example: --socks5 1080",
)
@click.option("--foreground", is_flag=True, help="Run in this process (logs on stderr).")
@click.pass_context
@one_line_errors
def start(ctx: click.Context, idle_timeout: str, socks5: str | None, foreground: bool) -> None:
    """Start this network's background session (nothing to do if one runs)."""
    from smolmix_cli.session.paths import boot_lock, clear_stale, probe
    from smolmix_cli.session.socks5 import parse_listen

    idle = parse_duration(idle_timeout)
    listen = None
    if socks5 is not None:
        try:
            listen = parse_listen(socks5)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--socks5") from None
    env = cli_env(ctx)
    options = global_options(ctx)
    paths = _paths(ctx)
    if foreground:
        _run_foreground(options, paths, idle, listen)
        return
    from smolmix_cli.session.factory import spawn_session

    with boot_lock(paths, options.boot_timeout):
        if probe(paths.socket):
            env.echo(
                f"smolmix: a {paths.name} session is already running ({paths.socket})", err=True
            )
            return
        clear_stale(paths)
        pid = spawn_session(options, paths, idle_timeout=idle or 0, socks5=socks5)
    from smolmix_cli.cli.status_line import boot_status
    from smolmix_cli.session.factory import wait_attached
    from smolmix_cli.session.remote import RemoteTunnel

    remote = RemoteTunnel(paths.socket)
    status = anyio.run(wait_attached, remote, options.boot_timeout, boot_status(env))
    where = f", SOCKS5 on {status['socks5']}" if status.get("socks5") else ""
    env.echo(
        f"smolmix: {paths.name} session ready (pid {pid}, exit {status.get('exit')}, "
        f"socket {paths.socket}{where})",
        err=True,
    )


def _run_foreground(
    options: Any, paths: Any, idle: float | None, listen: tuple[str, int] | None
) -> None:
    from smolmix_cli.errors_map import classify
    from smolmix_cli.options import tunnel_args
    from smolmix_cli.session.daemon import DaemonConfig, SessionDaemon, SessionDaemonError, log
    from smolmix_cli.session.factory import boot_in_process

    config = DaemonConfig(
        network_name=paths.name,
        idle_timeout=idle,
        socks5=listen,
        boot_timeout=options.boot_timeout,
        handle_signals=True,
        tunnel_args=tuple(tunnel_args(options)),
    )
    daemon = SessionDaemon(paths, config, lambda: boot_in_process(options), classify=classify)

    try:
        anyio.run(daemon.serve)
    except SessionDaemonError as exc:
        raise CliError(str(exc), ExitCode.FAILURE) from None
    except OSError as exc:  # the SOCKS5 port is taken, the runtime dir vanished...
        raise CliError(f"cannot listen: {exc.strerror or exc}", ExitCode.FAILURE) from None
    log("stopped")


@session.command(name="stop")
@click.pass_context
@one_line_errors
def stop(ctx: click.Context) -> None:
    """Stop this network's background session."""
    from smolmix_cli.session.paths import clear_stale, probe
    from smolmix_cli.session.remote import RemoteTunnel
    from smolmix_cli.session.remote_errors import SessionUnavailable

    paths = _paths(ctx)
    if not probe(paths.socket):
        stale = clear_stale(paths)
        note = " (removed a stale socket)" if stale else ""
        raise CliError(f"no {paths.name} session is running{note}", ExitCode.FAILURE)

    async def main() -> None:
        with contextlib.suppress(SessionUnavailable):
            await RemoteTunnel(paths.socket).stop()
        deadline = time.monotonic() + STOP_TIMEOUT
        while paths.socket.exists() and time.monotonic() < deadline:
            await anyio.sleep(0.05)

    anyio.run(main)
    if paths.socket.exists() and probe(paths.socket):
        raise CliError(
            f"the {paths.name} session did not stop within {STOP_TIMEOUT:g} s", ExitCode.FAILURE
        )
    cli_env(ctx).echo(f"smolmix: {paths.name} session stopped", err=True)


@session.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@click.pass_context
@one_line_errors
def status(ctx: click.Context, as_json: bool) -> None:
    """Show this network's session: exit, addresses, uptime, traffic, streams, RTT.

    Exit status 0 if a session runs, 1 if not (as `ssh -O check`).
    """
    from smolmix_cli.session.paths import probe
    from smolmix_cli.session.remote import RemoteTunnel
    from smolmix_cli.session.remote_errors import SessionUnavailable

    env = cli_env(ctx)
    paths = _paths(ctx)
    report: dict[str, Any] | None = None
    if probe(paths.socket):
        try:
            report = anyio.run(RemoteTunnel(paths.socket).status)
        except SessionUnavailable:
            report = None
    if report is None:
        if as_json:
            env.echo(json.dumps({"running": False, "session": paths.name}))
        raise CliError(f"no {paths.name} session is running", ExitCode.FAILURE)
    report = {"running": True, "session": paths.name, **report}
    if as_json:
        env.echo(json.dumps(report, indent=1))
        return
    _table(env, report)


def _table(env: CliEnv, report: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"smolmix session ({report['session']})", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = [
        ("network", report.get("network")),
        ("state", f"{report.get('state')} ({report.get('reason')})"),
        ("pid", report.get("pid")),
        ("socket", report.get("socket")),
        ("socks5", report.get("socks5") or "off"),
        ("gateway", report.get("gateway")),
        ("exit", report.get("exit")),
        ("addresses", f"{report.get('ipv4')}  {report.get('ipv6')}"),
        ("uptime", f"{report.get('uptime_s')} s (tunnel generation {report.get('generation')})"),
        ("last replaced because", report.get("last_failure")),
        ("idle timeout", f"{report.get('idle_timeout_s')} s"),
        ("mixnet RTT", f"{report.get('rtt_ms')} ms"),
        ("bytes up / down", f"{report.get('bytes_up')} / {report.get('bytes_down')}"),
        ("packets up / down", f"{report.get('packets_up')} / {report.get('packets_down')}"),
        ("streams open / total", f"{report.get('streams_open')} / {report.get('streams_total')}"),
        ("udp exchanges, resolves", f"{report.get('udp_exchanges')}, {report.get('resolves')}"),
    ]
    for name, key in (("gateways tried", "gateways_tried"), ("exits tried", "exits_tried")):
        lines = report.get(key)
        if isinstance(lines, list) and lines:
            rows.append((name, "\n".join(str(line) for line in lines)))
    for name, value in rows:
        table.add_row(name, "-" if value is None else str(value))
    env.console().print(table)
