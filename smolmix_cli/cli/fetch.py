"""`smolmix fetch URL...`: curl over the mixnet.

Everything the user typed is checked before the tunnel boots (a typo should
not cost a mixnet round trip; fetch_settings.py). Then a ready background
session serves it without an event loop where it can (fetch_attached.py), else
the async engine (fetch_engine.py): one tunnel and one HTTP client (keep-alive
pool per origin) for every URL in order. Body bytes go to stdout or the -o file
untouched; headers (-i, -I, -D), -v diagnostics, -w and the progress bar go
where curl puts them (fetch_output.py, fetch_transfer.py).
Failures print one line (unless -s without -S) and exit with curl's number;
with several URLs the last transfer's number is the exit status, as in curl
(`curl bad good` exits 0). -w runs after every transfer, failed ones included,
the one -m cut short too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from smolmix_cli import __version__
from smolmix_cli.apps.errors import UsageError
from smolmix_cli.cli.env import cli_env
from smolmix_cli.cli.errors import run_reported
from smolmix_cli.cli.fetch_config import with_configs
from smolmix_cli.cli.fetch_settings import parse_settings
from smolmix_cli.cli.fetch_transfer import reporter
from smolmix_cli.cli.options import global_options


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
        globals_ = global_options(ctx)
        from smolmix_cli.cli.fetch_attached import run_attached

        status = run_attached(env, settings, globals_)
        if status is not None:
            return status
        import anyio

        from smolmix_cli.cli.fetch_engine import run_fetch

        return anyio.run(run_fetch, env, settings, globals_)

    shown = not kw["silent"] or bool(kw["show_error"])  # a -K file's -s counts from parsing on
    sys.exit(run_reported(body, reporter(env, shown)))
