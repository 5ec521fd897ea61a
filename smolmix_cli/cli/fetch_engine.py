"""`smolmix fetch` on the async engine: any tunnel (booted here or a session's), every option.

One tunnel and one HTTP client (keep-alive pool per origin) serve every URL in order,
or all at once with -Z. -m bounds the whole operation, the tunnel's boot included, and
-w still reports the transfer it cut short. The per-URL output is fetch_transfer.py's,
shared with the blocking attach shell (fetch_attached.py).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable

import anyio

from smolmix_cli.apps.errors import AppError
from smolmix_cli.apps.http_client import HttpClient
from smolmix_cli.apps.http_transfer import ResponseHead, Transfer
from smolmix_cli.cli.env import CliEnv
from smolmix_cli.cli.fetch_output import show_request, write_out
from smolmix_cli.cli.fetch_settings import Job, Settings
from smolmix_cli.cli.fetch_transfer import TransferRun, failed, reporter, save_cookies
from smolmix_cli.exit_codes import CliError, ExitCode
from smolmix_cli.options import GlobalOptions


async def run_fetch(env: CliEnv, settings: Settings, globals_: GlobalOptions) -> int:
    from smolmix_cli.cli.status_line import boot_status
    from smolmix_cli.session import open_tunnel

    phases: Callable[[str], None] | None = (
        (lambda text: env.echo(f"* {text}", err=True)) if settings.verbose else None
    )
    status = 0
    start = time.monotonic()
    current: Transfer | None = settings.jobs[0].transfer()
    """The transfer -m may cut short (the first one while the tunnel boots)."""
    try:
        with anyio.fail_after(settings.max_time if settings.max_time else math.inf):
            async with open_tunnel(
                globals_,
                on_phase=phases,
                status_line=boot_status(env) if settings.progress else None,
            ) as session:
                settings.extra["time_tunnel"] = round(session.boot_seconds, 6)
                settings.extra["exit_gateway"] = session.tunnel.snapshot().exit
                settings.extra["reused_tunnel"] = session.reused
                cafile = session.cafile(settings.cacert) if not settings.insecure else None
                on_request = functools.partial(show_request, env) if settings.verbose else None
                async with HttpClient(session.tunnel, on_request=on_request) as client:
                    for job in settings.jobs:
                        job.options.cafile = cafile
                    if settings.parallel:
                        current = None
                        status = await _parallel(env, client, settings)
                    else:
                        for job in settings.jobs:
                            current = job.transfer()
                            status = await _one(env, client, job, settings, current)
                            if status and settings.fail_early:
                                break
                    current = None
                    save_cookies(env, settings)
    except TimeoutError:  # -m: curl's own words for it, and -w for the transfer it cut
        ms = (time.monotonic() - start) * 1000
        text = f"Operation timed out after {ms:.0f} milliseconds"
        if current is not None and current.started:  # past the boot: curl's transfer words
            text += f" with {current.size_download} bytes received"
        error = CliError(text, ExitCode.TIMEOUT)
        reporter(env, settings.errors_shown)(error)
        if current is not None and settings.write_out is not None:
            current.time_total = current.elapsed() if current.started else ms / 1000
            failed(current, error)
            write_out(env, settings.write_out, current, settings.extra)
        return int(error.code)
    return status


async def _parallel(env: CliEnv, client: HttpClient, settings: Settings) -> int:
    """-Z: every URL at once over the one tunnel (at most --parallel-max in flight);
    the exit code is the first failure's in command-line order (curl -Z's, unlike
    its serial rule)."""
    limiter = anyio.CapacityLimiter(settings.parallel_max)
    codes = [0] * len(settings.jobs)

    async def run(index: int, job: Job) -> None:
        async with limiter:
            codes[index] = await _one(env, client, job, settings, job.transfer())

    async with anyio.create_task_group() as tg:
        for index, job in enumerate(settings.jobs):
            tg.start_soon(run, index, job)
    return next((code for code in codes if code), 0)


async def _one(
    env: CliEnv, client: HttpClient, job: Job, settings: Settings, transfer: Transfer
) -> int:
    """One URL: its body, heads and -w; returns its exit number (0 on success)."""
    run = TransferRun(env, job, settings, transfer)
    try:

        async def on_head(head: ResponseHead) -> None:
            run.on_head(head)

        paced = 0
        pace_start = time.monotonic()

        async def sink(data: bytes) -> None:
            nonlocal paced
            run.write(data)
            if settings.limit_rate:  # --limit-rate: sleep until the average is back under it
                paced += len(data)
                ahead = paced / settings.limit_rate - (time.monotonic() - pace_start)
                if ahead > 0:
                    await anyio.sleep(ahead)

        await client.fetch(job.url, sink, job.options, on_head=on_head, transfer=transfer)
    except AppError as exc:  # this URL failed; curl goes on with the next one
        run.fail(exc)
    finally:
        run.close()
    return run.write_out()
