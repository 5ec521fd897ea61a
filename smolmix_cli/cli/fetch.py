"""`smolmix fetch URL...`: curl over the mixnet.

Everything the user typed is checked before the tunnel boots (a typo should
not cost a mixnet round trip; fetch_settings.py). Then one tunnel and one HTTP
client (keep-alive pool per origin) serve every URL in order. Body bytes go to
stdout or the -o file untouched; headers (-i, -I, -D), -v diagnostics, -w and
the progress bar go where curl puts them (fetch_output.py).
Failures print one line (unless -s without -S) and exit with curl's number;
with several URLs the last transfer's number is the exit status, as in curl
(`curl bad good` exits 0). -w runs after every transfer, failed ones included,
the one -m cut short too.
"""

from __future__ import annotations

import functools
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import click

from smolmix_cli import __version__
from smolmix_cli.apps.errors import AppError, UsageError
from smolmix_cli.apps.http_client import HttpClient
from smolmix_cli.apps.http_transfer import ResponseHead, Transfer
from smolmix_cli.cli.env import CliEnv, cli_env
from smolmix_cli.cli.errors import Report, run_reported
from smolmix_cli.cli.fetch_config import with_configs
from smolmix_cli.cli.fetch_output import (
    Progress,
    dump_header,
    progress_bar,
    show_request,
    show_response,
    write_out,
)
from smolmix_cli.cli.fetch_settings import Job, Settings, parse_settings
from smolmix_cli.cli.options import global_options
from smolmix_cli.errors_map import classify
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
                    _save_cookies(env, settings)
    except TimeoutError:  # -m: curl's own words for it, and -w for the transfer it cut
        ms = (time.monotonic() - start) * 1000
        text = f"Operation timed out after {ms:.0f} milliseconds"
        if current is not None and current.started:  # past the boot: curl's transfer words
            text += f" with {current.size_download} bytes received"
        error = CliError(text, ExitCode.TIMEOUT)
        reporter(env, settings.errors_shown)(error)
        if current is not None and settings.write_out is not None:
            current.time_total = current.elapsed() if current.started else ms / 1000
            _failed(current, error)
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


def _save_cookies(env: CliEnv, settings: Settings) -> None:
    """-c: the jar after the last transfer, in curl's file format."""
    jar = settings.jobs[0].options.cookie_jar
    if settings.cookie_jar is None or jar is None:
        return
    if str(settings.cookie_jar) == "-":
        env.stdout.write(jar.dump().encode())
    else:
        try:
            jar.save(settings.cookie_jar)
        except AppError as exc:
            reporter(env, settings.errors_shown)(classify(exc))


def _failed(transfer: Transfer, error: CliError) -> None:
    """The -w values of a transfer that failed: curl's exit number and message."""
    transfer.exitcode = int(error.code)
    transfer.errormsg = str(error)
    transfer.url_effective = transfer.url_effective or transfer.url


async def _one(
    env: CliEnv, client: HttpClient, job: Job, settings: Settings, transfer: Transfer
) -> int:
    """One URL: its body, heads and -w; returns its exit number (0 on success)."""
    dump = settings.dump_header
    progress: Progress | None = None
    head_out = job.output
    try:

        async def on_head(head: ResponseHead) -> None:
            nonlocal progress
            if settings.verbose:
                show_response(env, head)
            raw = head.raw()
            if settings.include or settings.head_only:
                head_out.write(raw)
            if dump is not None:
                dump_header(env, dump, raw)
            if settings.etag_save is not None:  # curl leaves an empty file when there is none
                etag = head.header("etag")
                settings.etag_save.write_text(f"{etag}\n" if etag is not None else "")
            if settings.progress and progress is None:
                progress = progress_bar(env, head, job.output)

        paced = 0
        pace_start = time.monotonic()

        async def sink(data: bytes) -> None:
            nonlocal paced
            job.output.write(data)
            if progress is not None:
                progress.advance(len(data))
            if settings.limit_rate:  # --limit-rate: sleep until the average is back under it
                paced += len(data)
                ahead = paced / settings.limit_rate - (time.monotonic() - pace_start)
                if ahead > 0:
                    await anyio.sleep(ahead)

        await client.fetch(job.url, sink, job.options, on_head=on_head, transfer=transfer)
        code = 0
    except AppError as exc:  # this URL failed; curl goes on with the next one
        error = classify(exc)
        code = int(error.code)
        _failed(transfer, error)
        if progress is not None:
            progress.stop()
            progress = None
        reporter(env, settings.errors_shown)(error)
    finally:
        if progress is not None:
            progress.stop()
        try:
            job.output.close()
        except OSError as exc:
            error = CliError(f"Failure writing output: {exc}", ExitCode.WRITE_ERROR)
            reporter(env, settings.errors_shown)(error)
    if settings.write_out is not None:
        write_out(env, settings.write_out, transfer, settings.extra)
    return code


def reporter(env: CliEnv, shown: bool) -> Report:
    """curl's way: the code in the line, nothing at all with -s (unless -S)."""

    def report(error: CliError) -> None:
        if shown:
            env.echo(f"smolmix: ({int(error.code)}) {error}", err=True)

    return report


def _opt(*decls: str, **kw: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(*decls, **kw)


@click.command(name="fetch", epilog=None)
@click.argument("urls", nargs=-1, metavar="URL...")
@_opt(
    "--url",
    "url_options",
    multiple=True,
    metavar="URL",
    help="A URL to fetch (as a positional one; also what url = ... in a -K file sets). "
    "Example: --url https://example.com/",
)
@_opt(
    "-K",
    "--config",
    "configs",
    multiple=True,
    type=click.Path(dir_okay=False),  # so `config = ["~/.curlrc"]` in [fetch] is a path
    metavar="FILE",
    help="Read options from FILE in curl's config syntax ('-' = stdin). Example: -K opts.txt",
)
@_opt("-X", "--request", "method", metavar="METHOD", help="Request method. Example: -X DELETE")
@_opt(
    "-H",
    "--header",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="Add or replace a header; 'Name:' removes it, 'Name;' sends it empty. Repeatable. "
    "Example: -H 'Accept: text/plain'",
)
@_opt(
    "-d",
    "--data",
    "data",
    multiple=True,
    metavar="DATA",
    help="POST urlencoded data; @file reads a file without CR/LF/NUL, @- stdin; repeats are "
    "joined with &. Example: -d a=1 -d @form.txt",
)
@_opt(
    "--data-raw",
    multiple=True,
    metavar="DATA",
    help="Like -d, @ has no meaning. Example: --data-raw @x",
)
@_opt(
    "--data-binary",
    multiple=True,
    metavar="DATA",
    help="POST data verbatim; @file and @- (stdin) read bytes as they are. "
    "Example: --data-binary @blob.bin",
)
@_opt(
    "--data-urlencode",
    multiple=True,
    metavar="DATA",
    help="POST data percent-encoded (content, =content, name=content, @file, name@file). "
    "Example: --data-urlencode 'q=a b'",
)
@_opt(
    "--json",
    "json_args",
    multiple=True,
    metavar="DATA",
    help="POST JSON (Content-Type and Accept application/json); @file, @-; repeats concatenate. "
    "Example: --json '{\"k\": 1}'",
)
@_opt(
    "-F",
    "--form",
    multiple=True,
    metavar="NAME=VALUE",
    help="multipart/form-data field; name=@file uploads a file, name=<file sends its text. "
    "Example: -F file=@a.png",
)
@_opt(
    "-G",
    "--get",
    "get",
    is_flag=True,
    help="Put the -d data in the URL query and GET. Example: -G -d q=x",
)
@_opt(
    "-T",
    "--upload-file",
    metavar="FILE",
    help="PUT a file ('-' = stdin, chunked); a URL ending in / gets the file name. "
    "Example: -T notes.txt",
)
@_opt(
    "-o",
    "--output",
    "outputs",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Write the body to FILE instead of stdout; repeat once per URL, in order; "
    "#1, #2... name a globbed URL's values. Example: -o 'page_#1.html'",
)
@_opt(
    "-O",
    "--remote-name",
    is_flag=True,
    help="Write each body to a file named like the URL's last path segment. Example: -O",
)
@_opt(
    "--create-dirs", is_flag=True, help="Create missing directories for -o. Example: --create-dirs"
)
@_opt("-i", "--include", is_flag=True, help="Put the response headers before the body. Example: -i")
@_opt(
    "-I", "--head", is_flag=True, help="Send HEAD and print only the response headers. Example: -I"
)
@_opt(
    "-D",
    "--dump-header",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write the response headers to FILE ('-' = stdout). Example: -D headers.txt",
)
@_opt("-L", "--location", is_flag=True, help="Follow redirects (curl's method rules). Example: -L")
@_opt(
    "--max-redirs",
    type=click.IntRange(min=-1),
    default=50,
    show_default=True,
    help="Redirects -L may follow (-1: no limit; 50 as in curl). Example: --max-redirs 10",
)
@_opt("-s", "--silent", is_flag=True, help="No progress bar and no error text. Example: -s")
@_opt("-S", "--show-error", is_flag=True, help="With -s, still print errors. Example: -sS")
@_opt(
    "-v",
    "--verbose",
    is_flag=True,
    help="Request and response headers plus tunnel phases on stderr. Example: -v",
)
@_opt(
    "-w",
    "--write-out",
    metavar="FORMAT",
    help="Print FORMAT after each transfer: %{http_code}, %{size_download}, %{time_total}, "
    "%{time_connect}, %{time_starttransfer}, %{json}, %header{name}, %{time_tunnel}, "
    "%{exit_gateway}... Example: -w '%{http_code}\\n'",
)
@_opt("-f", "--fail", is_flag=True, help="HTTP >= 400: no body, exit 22. Example: -f")
@_opt(
    "--fail-with-body",
    is_flag=True,
    help="HTTP >= 400: keep the body, exit 22. Example: --fail-with-body",
)
@_opt("--fail-early", is_flag=True, help="Stop at the first URL that fails. Example: --fail-early")
@_opt(
    "-m",
    "--max-time",
    type=click.FloatRange(min=0.001),
    metavar="SECONDS",
    help="Cap on the whole operation, tunnel boot included (exit 28). Example: -m 120",
)
@_opt(
    "--connect-timeout",
    type=click.FloatRange(min=0.001),
    metavar="SECONDS",
    help="Cap on name lookup, TCP and TLS through the tunnel (exit 28). "
    "Example: --connect-timeout 30",
)
@_opt(
    "--retry",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Retry transient failures (timeouts, HTTP 408/429/500/502/503/504). Example: --retry 3",
)
@_opt(
    "--retry-delay",
    type=click.FloatRange(min=0.0),
    metavar="SECONDS",
    help="Fixed delay between retries (default: 1 s doubling). Example: --retry-delay 2",
)
@_opt(
    "--retry-max-time",
    type=click.FloatRange(min=0.0),
    metavar="SECONDS",
    help="No retry after this much time. Example: --retry-max-time 60",
)
@_opt(
    "--retry-all-errors",
    is_flag=True,
    help="Retry on every error, not only transient ones. Example: --retry-all-errors",
)
@_opt("-k", "--insecure", is_flag=True, help="Do not verify TLS certificates (warns). Example: -k")
@_opt(
    "--cacert",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Also trust the CAs in this PEM file (beside certifi's roots). Example: --cacert ca.pem",
)
@_opt(
    "-A",
    "--user-agent",
    metavar="TEXT",
    help="User-Agent to send (default: a common curl string, never smolmix's). Example: -A 'x/1'",
)
@_opt("-e", "--referer", metavar="URL", help="Referer header. Example: -e https://example.com/")
@_opt(
    "-u", "--user", metavar="USER:PASSWORD", help="Basic authentication. Example: -u alice:secret"
)
@_opt(
    "--compressed",
    is_flag=True,
    help="Ask for gzip/deflate and decode the body. Example: --compressed",
)
@_opt(
    "-r", "--range", "byte_range", metavar="A-B", help="Byte range to request. Example: -r 0-1023"
)
@_opt(
    "-C",
    "--continue-at",
    metavar="OFFSET|-",
    help="Resume from a byte offset, or '-' after the bytes already in the -o file. "
    "Example: -C - -o f.iso",
)
@_opt(
    "-b",
    "--cookie",
    "cookies",
    multiple=True,
    metavar="DATA|FILE",
    help="Send cookies: 'a=1; b=2' as is, or read a cookie file (turns the jar on). "
    "Example: -b cookies.txt",
)
@_opt(
    "-c",
    "--cookie-jar",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Keep received cookies and write them to FILE at the end ('-' = stdout). "
    "Example: -c cookies.txt",
)
@_opt(
    "-j",
    "--junk-session-cookies",
    is_flag=True,
    help="Drop session cookies read from -b files. Example: -j -b cookies.txt",
)
@_opt(
    "-Z",
    "--parallel",
    is_flag=True,
    help="Fetch the URLs at once over the one tunnel. Example: -Z -o a -o b URL1 URL2",
)
@_opt(
    "--parallel-max",
    type=click.IntRange(min=1, max=300),
    default=50,
    show_default=True,
    help="At most this many -Z transfers at a time. Example: --parallel-max 4",
)
@_opt(
    "--resolve",
    multiple=True,
    metavar="HOST:PORT:ADDR",
    help="Connect to ADDR for HOST:PORT instead of asking the tunnel's resolver. "
    "Example: --resolve example.com:443:93.184.215.14",
)
@_opt(
    "--connect-to",
    multiple=True,
    metavar="H1:P1:H2:P2",
    help="Connect to H2:P2 whenever the URL says H1:P1 (URL, Host and TLS name unchanged). "
    "Example: --connect-to example.com:443:backup.example.com:8443",
)
@_opt(
    "-g",
    "--globoff",
    is_flag=True,
    help="Take {} and [] in URLs literally (no globbing). Example: -g 'http://[::1]/'",
)
@_opt(
    "--url-query",
    multiple=True,
    metavar="DATA",
    help="Add to the URL query, encoded like --data-urlencode ('+' prefix: as is). "
    "Example: --url-query 'q=a b'",
)
@_opt(
    "-z",
    "--time-cond",
    metavar="DATE|FILE",
    help="Only if modified since DATE (or FILE's mtime); '-DATE': unmodified since. "
    "Example: -z 'Sat, 01 Jan 2000 00:00:00 GMT'",
)
@_opt(
    "--etag-save",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Save the response's ETag to FILE. Example: --etag-save etag.txt",
)
@_opt(
    "--etag-compare",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Send If-None-Match with the ETag in FILE. Example: --etag-compare etag.txt",
)
@_opt(
    "--limit-rate",
    metavar="RATE",
    help="Cap the download speed in bytes/s (k, M, G suffixes). Example: --limit-rate 200k",
)
@_opt(
    "--http1.1",
    "http11",
    is_flag=True,
    help="Use HTTP/1.1 (always the case; accepted for curl scripts). Example: --http1.1",
)
@click.pass_context
def fetch(ctx: click.Context, /, urls: tuple[str, ...], **kw: Any) -> None:
    """Fetch URLs over the mixnet with curl's options and exit codes.

    Body bytes go to stdout untouched (or to -o files); diagnostics go to stderr.
    Exit codes: curl's (3 malformed URL, 6 name, 7 connect, 22 HTTP error with -f,
    28 timeout, 35 TLS, 47 redirects, 52 empty reply, 56 receive, 60 certificate)
    plus 5 (Nym network unreachable) and 97 (exit IPR refused or silent).

    \b
    Examples:
      smolmix --network testnet fetch https://demo.smolmix.test/
      smolmix fetch -sS -o page.html -w '%{http_code} %{time_total}\\n' https://example.com/
      smolmix fetch -L --max-redirs 3 -i http://example.com/old
      smolmix fetch --json '{"a":1}' https://httpbin.org/post
      smolmix fetch -F name=value -F file=@photo.jpg https://example.com/upload
      smolmix fetch -C - -o big.iso https://example.com/big.iso
    """
    env = cli_env(ctx)

    def body() -> int:
        merged = with_configs(fetch, ctx, kw, env)
        targets = (*merged.pop("url_options"), *urls)
        if not targets:
            raise UsageError("no URL specified!")
        settings = parse_settings(targets, merged, env)
        settings.extra["curl_version"] = f"smolmix/{__version__}"  # -w's %{curl_version}
        if settings.insecure and not settings.silent:
            env.echo("smolmix: WARNING: -k: TLS certificates are not verified", err=True)
        return anyio.run(run_fetch, env, settings, global_options(ctx))

    shown = not kw["silent"] or bool(kw["show_error"])  # a -K file's -s counts from parsing on
    sys.exit(run_reported(body, reporter(env, shown)))
