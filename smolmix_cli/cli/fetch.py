"""`smolmix fetch URL...`: curl over the mixnet.

Everything the user typed is checked before the tunnel boots (a typo should
not cost a mixnet round trip): URLs, headers, data sources, output names.
Then one tunnel and one HTTP client (keep-alive pool per origin) serve every
URL in order. Body bytes go to stdout or the -o file untouched; headers (-i,
-I), -v diagnostics and the progress bar go where curl puts them.
Failures print one line (unless -s without -S) and exit with curl's number;
with several URLs the last failure's number is the exit status, as in curl.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

import anyio
import click

from smolmix_cli.apps import http_data
from smolmix_cli.apps.errors import (
    AppError,
    CaFileError,
    MalformedUrl,
    ReadError,
    UsageError,
    WriteError,
)
from smolmix_cli.apps.http import FetchOptions, HttpClient, RequestHead, ResponseHead, Transfer
from smolmix_cli.apps.http_body import (
    Body,
    BytesBody,
    FileBody,
    MultipartBody,
    StreamBody,
    parse_form_arg,
)
from smolmix_cli.apps.http_headers import HeaderEdit, parse_header_arg
from smolmix_cli.apps.http_url import parse_url
from smolmix_cli.apps.http_writeout import render
from smolmix_cli.cli.env import CliEnv, cli_env
from smolmix_cli.cli.errors import Report, run_reported
from smolmix_cli.cli.options import global_options
from smolmix_cli.errors_map import classify
from smolmix_cli.exit_codes import CliError, ExitCode
from smolmix_cli.options import GlobalOptions

PROGRESS_MIN_BYTES = 1 << 20
"""Downloads to stdout get a bar only from this size on (curl: bar off on a terminal body)."""


@dataclass
class Output:
    """Where one URL's body goes: stdout, or a file opened at the first byte."""

    path: Path | None
    stdout: IO[bytes]
    append: bool = False
    handle: IO[bytes] | None = None
    written: int = 0

    def write(self, data: bytes) -> None:
        if self.path is None:
            self.stdout.write(data)
        else:
            if self.handle is None:
                self.handle = open(self.path, "ab" if self.append else "wb")  # noqa: SIM115
            self.handle.write(data)
        self.written += len(data)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        elif self.path is None:
            self.stdout.flush()


def dump_header(env: CliEnv, dump: Path, raw: bytes) -> None:
    """-D: the response head to stdout ('-') or appended to the file."""
    if str(dump) == "-":
        env.stdout.write(raw)
    else:
        with open(dump, "ab") as handle:
            handle.write(raw)


def write_out(env: CliEnv, fmt: str, transfer: Transfer, extra: dict[str, object]) -> None:
    """-w: the format rendered for one transfer, each piece to the stream it names."""
    out = render(fmt, transfer, extra)
    for stream, text in out.pieces:
        if stream == "stderr":
            env.stderr.write(text)
            env.stderr.flush()
        else:
            env.stdout.write(text.encode())
            env.stdout.flush()


def show_request(env: CliEnv, head: RequestHead) -> None:
    """-v: the request line and headers exactly as they went on the wire."""
    env.echo(f"> {head.method} {head.target} HTTP/1.1", err=True)
    for name, value in head.headers:
        env.echo(f"> {name}: {value}", err=True)
    env.echo(">", err=True)


def show_response(env: CliEnv, head: ResponseHead) -> None:
    """-v: the status line and headers as they came back."""
    env.echo(f"< HTTP/{head.http_version} {head.status} {head.reason}".rstrip(), err=True)
    for name, value in head.headers:
        env.echo(f"< {name}: {value}", err=True)
    env.echo("<", err=True)


class Progress:
    """A rich bar on stderr; only built when stderr is a terminal."""

    def __init__(self, env: CliEnv) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=env.console(stderr=True),
            transient=True,
        )
        self._task: Any = None
        self._bar.start()

    def start(self, total: int | None) -> None:
        if self._task is None:
            self._task = self._bar.add_task("fetch", total=total)

    def advance(self, n: int) -> None:
        if self._task is not None:
            self._bar.advance(self._task, n)

    def stop(self) -> None:
        self._bar.stop()


def progress_bar(env: CliEnv, head: ResponseHead, output: Output) -> Progress | None:
    """A started bar for this 2xx body, or None: the body goes to a file, or it is large
    and stdout is not the terminal the bar draws on (never over a body that scrolls)."""
    if not 200 <= head.status < 300:
        return None
    length = head.header("content-length")
    total = int(length) if length and length.isdigit() else None
    to_file = output.path is not None
    large = (total or 0) >= PROGRESS_MIN_BYTES and not env.stdout_isatty
    if not (to_file or large):
        return None
    progress = Progress(env)
    progress.start(total)
    return progress


@dataclass
class Job:
    url: str
    output: Output
    options: FetchOptions


@dataclass
class Settings:
    """What the command line asked for, already validated."""

    jobs: list[Job]
    include: bool
    head_only: bool
    dump_header: Path | None
    write_out: str | None
    silent: bool
    show_error: bool
    verbose: bool
    fail_early: bool
    max_time: float | None
    insecure: bool
    cacert: str | None
    progress: bool
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def errors_shown(self) -> bool:
        return not self.silent or self.show_error


def remote_name(url: str) -> str:
    """-O: the URL path's last segment, without directories or a leading dot."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    name = name.replace("\\", "_").replace("\x00", "")
    if not name or name in (".", "..") or name.startswith("."):
        raise WriteError(f"Remote file name has no usable name: {url}")
    return name


async def _stdin_chunks(stdin: IO[bytes]) -> AsyncIterator[bytes]:
    reader: Any = stdin
    while True:
        chunk = bytes(await anyio.to_thread.run_sync(reader.read1, 65536))
        if not chunk:
            return
        yield chunk


def build_body(
    data: tuple[str, ...],
    data_raw: tuple[str, ...],
    data_binary: tuple[str, ...],
    data_urlencode: tuple[str, ...],
    json_args: tuple[str, ...],
    form: tuple[str, ...],
    upload: str | None,
    stdin: IO[bytes],
) -> tuple[bytes | None, Body | None, list[HeaderEdit]]:
    """(-G query data or None, request body, extra header edits) from the data options."""
    read_stdin = stdin.read
    pieces = [http_data.data_ascii(a, read_stdin) for a in data]
    pieces += [http_data.data_raw(a) for a in data_raw]
    pieces += [http_data.data_binary(a, read_stdin) for a in data_binary]
    pieces += [http_data.data_urlencode(a, read_stdin) for a in data_urlencode]
    kinds = sum(bool(x) for x in (pieces or json_args, form, upload))
    if kinds > 1:
        raise UsageError("use only one of -d/--data*/--json, -F and -T")
    if json_args:
        if pieces:
            raise UsageError("--json cannot be combined with -d/--data*")
        body_bytes = http_data.join_json([http_data.json_data(a, read_stdin) for a in json_args])
        return (
            body_bytes,
            BytesBody(body_bytes, http_data.JSON_CONTENT_TYPE),
            [HeaderEdit("Accept", http_data.JSON_ACCEPT)],
        )
    if pieces:
        joined = http_data.join_form(pieces)
        return joined, BytesBody(joined, http_data.FORM_CONTENT_TYPE), []
    if form:
        return None, MultipartBody([parse_form_arg(f) for f in form]), []
    if upload == "-":
        return None, StreamBody(functools.partial(_stdin_chunks, stdin)), []
    if upload is not None:
        if not os.access(upload, os.R_OK) or not Path(upload).is_file():
            raise ReadError(f"Failed to open/read local data from file {upload}")
        return None, FileBody(upload), []
    return None, None, []


def upload_url(url: str, upload: str | None) -> str:
    """curl -T: a URL ending in `/` gets the file's name appended."""
    if upload is None or upload == "-":
        return url
    base, q, rest = url.partition("?")
    if urlsplit(base).path.endswith("/"):
        return f"{base}{Path(upload).name}{q}{rest}"
    return url


def parse_settings(urls: tuple[str, ...], kw: dict[str, Any], env: CliEnv) -> Settings:
    """Validate everything the command line says; AppError with curl's number if not.

    `env`: stdin for `@-` data, stdout for bodies, stderr's terminal for the bar.
    """
    edits = [parse_header_arg(h) for h in kw["headers"]]
    query, body, extra_edits = build_body(
        kw["data"],
        kw["data_raw"],
        kw["data_binary"],
        kw["data_urlencode"],
        kw["json_args"],
        kw["form"],
        kw["upload_file"],
        env.stdin,
    )
    if kw["get"]:
        if body is not None and query is None:
            raise UsageError("-G needs -d data, not -F or -T")
        body = None
    for url in urls:
        parse_url(url)
    if kw["continue_at"] not in (None, "-"):
        raise UsageError("-C supports only '-' (continue after the existing output)")
    outputs: list[Path] = list(kw["outputs"])
    if len(outputs) > len(urls):
        raise UsageError("more -o options than URLs")
    jobs: list[Job] = []
    for index, url in enumerate(urls):
        target = url
        if kw["get"] and query is not None:
            target = http_data.url_with_query(url, query)
        target = upload_url(target, kw["upload_file"])
        path: Path | None = None
        if index < len(outputs):
            path = outputs[index]
        elif kw["remote_name"]:
            path = Path(remote_name(target))
        if path is not None and str(path) == "-":
            path = None
        if path is not None and kw["create_dirs"]:
            path.parent.mkdir(parents=True, exist_ok=True)
        resume: int | None = None
        if kw["continue_at"] == "-":
            if path is None:
                raise UsageError("-C - needs an output file (-o or -O)")
            resume = path.stat().st_size if path.exists() else 0
        method = kw["method"]
        if method is None and kw["upload_file"] is not None:
            method = "PUT"
        if method is not None and (not method or any(c in method for c in " \r\n\t")):
            raise UsageError(f"bad request method {method!r}")
        options = FetchOptions(
            method=method,
            header_edits=extra_edits + edits,
            body=body,
            follow_redirects=bool(kw["location"]),
            max_redirects=kw["max_redirs"] if kw["max_redirs"] >= 0 else 1 << 30,
            compressed=bool(kw["compressed"]),
            connect_timeout=kw["connect_timeout"],
            max_time=kw["max_time"],
            retry=kw["retry"],
            retry_delay=kw["retry_delay"],
            retry_max_time=kw["retry_max_time"],
            retry_all_errors=bool(kw["retry_all_errors"]),
            fail=bool(kw["fail"]),
            fail_with_body=bool(kw["fail_with_body"]),
            user=kw["user"],
            referer=kw["referer"],
            range=kw["byte_range"],
            resume_from=resume or None,
            verify=not kw["insecure"],
            head_only=bool(kw["head"]),
        )
        if kw["user_agent"] is not None:
            options.user_agent = kw["user_agent"]
        jobs.append(Job(target, Output(path, env.stdout, append=bool(resume)), options))
    if kw["cacert"] is not None and not os.access(kw["cacert"], os.R_OK):
        raise CaFileError(f"cannot read CA file {kw['cacert']}")
    if kw["user"] is not None and ":" not in kw["user"]:
        raise UsageError("-u needs user:password (no password prompt off a terminal)")
    if kw["byte_range"] is not None and not _valid_range(kw["byte_range"]):
        raise MalformedUrl(f"bad range {kw['byte_range']!r} (expected a-b, a- or -n)")
    progress = not kw["silent"] and not kw["verbose"] and env.stderr_redraws
    return Settings(
        jobs=jobs,
        include=bool(kw["include"]),
        head_only=bool(kw["head"]),
        dump_header=kw["dump_header"],
        write_out=kw["write_out"],
        silent=bool(kw["silent"]),
        show_error=bool(kw["show_error"]),
        verbose=bool(kw["verbose"]),
        fail_early=bool(kw["fail_early"]),
        max_time=kw["max_time"],
        insecure=bool(kw["insecure"]),
        cacert=kw["cacert"],
        progress=progress,
    )


def _valid_range(text: str) -> bool:
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        if not dash or not (first or last):
            return False
        if (first and not first.isdigit()) or (last and not last.isdigit()):
            return False
    return True


async def run_fetch(env: CliEnv, settings: Settings, globals_: GlobalOptions) -> int:
    from smolmix_cli.cli.status_line import boot_status
    from smolmix_cli.session import open_tunnel

    phases: Callable[[str], None] | None = (
        (lambda text: env.echo(f"* {text}", err=True)) if settings.verbose else None
    )
    status = 0
    start = time.monotonic()
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
                        code = await _one(env, client, job, settings)
                        if code:
                            status = code
                            if settings.fail_early:
                                break
    except TimeoutError:  # -m: curl's own words for it
        ms = (time.monotonic() - start) * 1000
        error = CliError(f"Operation timed out after {ms:.0f} milliseconds", ExitCode.TIMEOUT)
        reporter(env, settings.errors_shown)(error)
        return int(error.code)
    return status


async def _one(env: CliEnv, client: HttpClient, job: Job, settings: Settings) -> int:
    dump = settings.dump_header
    progress: Progress | None = None
    head_out = job.output
    transfer: Transfer | None = None
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
            if settings.progress and progress is None:
                progress = progress_bar(env, head, job.output)

        async def sink(data: bytes) -> None:
            job.output.write(data)
            if progress is not None:
                progress.advance(len(data))

        transfer = await client.fetch(job.url, sink, job.options, on_head=on_head)
        code = 0
    except AppError as exc:  # this URL failed; curl goes on with the next one
        error = classify(exc)
        code = int(error.code)
        transfer = exc.transfer if isinstance(exc.transfer, Transfer) else None
        if transfer is not None:
            transfer.exitcode = code
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
    if settings.write_out is not None and transfer is not None:
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
@click.argument("urls", nargs=-1, required=True, metavar="URL...")
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
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write the body to FILE instead of stdout; repeat once per URL, in order. "
    "Example: -o page.html",
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
    default=5,
    show_default=True,
    help="Redirects -L may follow (-1: no limit). Example: --max-redirs 10",
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
    metavar="-",
    help="Resume: '-' continues after the bytes already in the -o file. Example: -C - -o f.iso",
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
        settings = parse_settings(urls, kw, env)
        if settings.insecure and not settings.silent:
            env.echo("smolmix: WARNING: -k: TLS certificates are not verified", err=True)
        return anyio.run(run_fetch, env, settings, global_options(ctx))

    shown = not kw["silent"] or bool(kw["show_error"])
    sys.exit(run_reported(body, reporter(env, shown)))
