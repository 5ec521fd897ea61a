"""`smolmix fetch` attached to a ready background session, without an event loop.

The session holds the tunnel and the origin connections (TCP and TLS, warm ones
kept); the command only speaks HTTP over the session's Unix socket, so a blocking
shell (apps/http_blocking.py) serves it and asyncio and anyio never load: a fifth
of a warm command's start-up. It runs only what it can run exactly as the async
engine (fetch_engine.py) would; `run_attached` answers None for everything else
(no ready session, --ipr, --gateway, -Z, -m, --connect-timeout, --retry,
--limit-rate, a streamed upload), before it has written anything, and the async
engine runs the command.
"""

from __future__ import annotations

import functools
from typing import Any

from smolmix_cli.apps.errors import AppError
from smolmix_cli.apps.http_blocking import BlockingHttpClient, handles
from smolmix_cli.cli import quick_exit
from smolmix_cli.cli.env import CliEnv
from smolmix_cli.cli.fetch_output import show_request
from smolmix_cli.cli.fetch_settings import Job, Settings
from smolmix_cli.cli.fetch_transfer import TransferRun, save_cookies
from smolmix_cli.options import GlobalOptions


def runs_attached(settings: Settings, globals_: GlobalOptions) -> bool:
    """Whether the blocking shell can run these settings (if a session is ready)."""
    return (
        globals_.session in ("auto", "start")
        and not globals_.ipr  # their parsers (and --gateway's rule) run on the async path
        and not globals_.gateway
        and not settings.parallel
        and not settings.max_time
        and not settings.limit_rate
        and all(handles(job.options) for job in settings.jobs)
    )


def run_attached(env: CliEnv, settings: Settings, globals_: GlobalOptions) -> int | None:
    """The command's exit number, or None: no ready session here, the async engine runs it."""
    from smolmix_cli.session.attach import attach

    if not runs_attached(settings, globals_):
        return None
    session = attach(globals_)
    if session is None:
        return None
    from smolmix_cli.session.ca_bundle import CaBundle

    bundle = CaBundle(_network_ca(session.status, globals_), session.path.parent)
    try:
        settings.extra["time_tunnel"] = 0.0
        exit_gateway = session.status.get("exit")
        settings.extra["exit_gateway"] = exit_gateway if isinstance(exit_gateway, str) else None
        settings.extra["reused_tunnel"] = True
        cafile = bundle.path(settings.cacert) if not settings.insecure else None
        on_request = functools.partial(show_request, env) if settings.verbose else None
        client = BlockingHttpClient(session, on_request=on_request)
        try:
            for job in settings.jobs:
                job.options.cafile = cafile
            status = 0
            for job in settings.jobs:
                status = _one(env, client, job, settings)
                if status and settings.fail_early:
                    break
            save_cookies(env, settings)
        finally:
            client.close()
    finally:
        bundle.close()
    quick_exit.arm()  # every file this path opened is closed
    return status


def _network_ca(status: dict[str, Any], globals_: GlobalOptions) -> str | None:
    """The CA of the session's network, as its status reports it; from the network file
    (the session factory and the network choice: 4 ms of imports) only for a session
    that does not."""
    if "ca_pem" in status:
        ca_pem = status["ca_pem"]
        return ca_pem if isinstance(ca_pem, str) else None
    from smolmix_cli.session.factory import load_network

    return load_network(globals_).ca_pem


def _one(env: CliEnv, client: BlockingHttpClient, job: Job, settings: Settings) -> int:
    """One URL: its body, heads and -w; returns its exit number (0 on success)."""
    transfer = job.transfer()
    run = TransferRun(env, job, settings, transfer)
    try:
        client.fetch(job.url, run.write, job.options, on_head=run.on_head, transfer=transfer)
    except AppError as exc:  # this URL failed; curl goes on with the next one
        run.fail(exc)
    finally:
        run.close()
    return run.write_out()
