"""`smolmix fetch`'s options, each written once, without click.

fetch.py makes its click command from this table, and cli/fast_argv.py reads the
same table to parse an attached fetch's command line without importing click (about
a fifth of that command's CPU). So an option added here exists in both, and
tests/cli/test_fast_argv.py checks that both parse every command line alike.
"""

from __future__ import annotations

from typing import NamedTuple

# How a value is typed (click's type in fetch.py, the same conversion in fast_argv.py).
TEXT = "text"
INT = "int"  # an integer in [low, high]
FLOAT = "float"  # a number in [low, high]
FILE = "file"  # a file name, kept as str; an existing directory is refused
FILE_PATH = "file path"  # the same as a pathlib.Path
PATH = "path"  # a pathlib.Path; a directory is allowed


class FetchOption(NamedTuple):  # not a dataclass: that costs an attached fetch 1 ms to build
    opts: tuple[str, ...]  # "-o", "--output"
    dest: str  # the parameter's name in the command's keywords
    help: str
    flag: bool = False
    multiple: bool = False
    kind: str = TEXT
    low: float | None = None
    high: float | None = None
    default: int | None = None
    show_default: bool = False
    metavar: str | None = None


OPTIONS: tuple[FetchOption, ...] = (
    FetchOption(
        ("--url",),
        "url_options",
        multiple=True,
        metavar="URL",
        help="A URL to fetch (as a positional one; also what url = ... in a -K file sets). "
        "Example: --url https://example.com/",
    ),
    FetchOption(
        ("-K", "--config"),
        "configs",
        multiple=True,
        kind=FILE,
        metavar="FILE",
        help="Read options from FILE in curl's config syntax ('-' = stdin). Example: -K opts.txt",
    ),
    FetchOption(
        ("-X", "--request"),
        "method",
        metavar="METHOD",
        help="Request method. Example: -X DELETE",
    ),
    FetchOption(
        ("-H", "--header"),
        "headers",
        multiple=True,
        metavar="'NAME: VALUE'",
        help="Add or replace a header; 'Name:' removes it, 'Name;' sends it empty. Repeatable. "
        "Example: -H 'Accept: text/plain'",
    ),
    FetchOption(
        ("-d", "--data"),
        "data",
        multiple=True,
        metavar="DATA",
        help="POST urlencoded data; @file reads a file without CR/LF/NUL, @- stdin; repeats are "
        "joined with &. Example: -d a=1 -d @form.txt",
    ),
    FetchOption(
        ("--data-raw",),
        "data_raw",
        multiple=True,
        metavar="DATA",
        help="Like -d, @ has no meaning. Example: --data-raw @x",
    ),
    FetchOption(
        ("--data-binary",),
        "data_binary",
        multiple=True,
        metavar="DATA",
        help="POST data verbatim; @file and @- (stdin) read bytes as they are. Example: "
        "--data-binary @blob.bin",
    ),
    FetchOption(
        ("--data-urlencode",),
        "data_urlencode",
        multiple=True,
        metavar="DATA",
        help="POST data percent-encoded (content, =content, name=content, @file, name@file). "
        "Example: --data-urlencode 'q=a b'",
    ),
    FetchOption(
        ("--json",),
        "json_args",
        multiple=True,
        metavar="DATA",
        help="POST JSON (Content-Type and Accept application/json); @file, @-; repeats "
        "concatenate. Example: --json '{\"k\": 1}'",
    ),
    FetchOption(
        ("-F", "--form"),
        "form",
        multiple=True,
        metavar="NAME=VALUE",
        help="multipart/form-data field; name=@file uploads a file, name=<file sends its text. "
        "Example: -F file=@a.png",
    ),
    FetchOption(
        ("-G", "--get"),
        "get",
        flag=True,
        help="Put the -d data in the URL query and GET. Example: -G -d q=x",
    ),
    FetchOption(
        ("-T", "--upload-file"),
        "upload_file",
        metavar="FILE",
        help="PUT a file ('-' = stdin, chunked); a URL ending in / gets the file name. Example: "
        "-T notes.txt",
    ),
    FetchOption(
        ("-o", "--output"),
        "outputs",
        multiple=True,
        kind=PATH,
        metavar="FILE",
        help="Write the body to FILE instead of stdout; repeat once per URL, in order; #1, #2... "
        "name a globbed URL's values. Example: -o 'page_#1.html'",
    ),
    FetchOption(
        ("-O", "--remote-name"),
        "remote_name",
        flag=True,
        help="Write each body to a file named like the URL's last path segment. Example: -O",
    ),
    FetchOption(
        ("--create-dirs",),
        "create_dirs",
        flag=True,
        help="Create missing directories for -o. Example: --create-dirs",
    ),
    FetchOption(
        ("-i", "--include"),
        "include",
        flag=True,
        help="Put the response headers before the body. Example: -i",
    ),
    FetchOption(
        ("-I", "--head"),
        "head",
        flag=True,
        help="Send HEAD and print only the response headers. Example: -I",
    ),
    FetchOption(
        ("-D", "--dump-header"),
        "dump_header",
        kind=FILE_PATH,
        metavar="FILE",
        help="Write the response headers to FILE ('-' = stdout). Example: -D headers.txt",
    ),
    FetchOption(
        ("-L", "--location"),
        "location",
        flag=True,
        help="Follow redirects (curl's method rules). Example: -L",
    ),
    FetchOption(
        ("--max-redirs",),
        "max_redirs",
        kind=INT,
        low=-1,
        default=50,
        show_default=True,
        help="Redirects -L may follow (-1: no limit; 50 as in curl). Example: --max-redirs 10",
    ),
    FetchOption(
        ("-s", "--silent"),
        "silent",
        flag=True,
        help="No progress bar and no error text. Example: -s",
    ),
    FetchOption(
        ("-S", "--show-error"),
        "show_error",
        flag=True,
        help="With -s, still print errors. Example: -sS",
    ),
    FetchOption(
        ("-v", "--verbose"),
        "verbose",
        flag=True,
        help="Request and response headers plus tunnel phases on stderr. Example: -v",
    ),
    FetchOption(
        ("-w", "--write-out"),
        "write_out",
        metavar="FORMAT",
        help="Print FORMAT after each transfer: %{http_code}, %{size_download}, %{time_total}, "
        "%{time_connect}, %{time_starttransfer}, %{json}, %header{name}, %{time_tunnel}, "
        "%{exit_gateway}... Example: -w '%{http_code}\\n'",
    ),
    FetchOption(
        ("-f", "--fail"),
        "fail",
        flag=True,
        help="HTTP >= 400: no body, exit 22. Example: -f",
    ),
    FetchOption(
        ("--fail-with-body",),
        "fail_with_body",
        flag=True,
        help="HTTP >= 400: keep the body, exit 22. Example: --fail-with-body",
    ),
    FetchOption(
        ("--fail-early",),
        "fail_early",
        flag=True,
        help="Stop at the first URL that fails. Example: --fail-early",
    ),
    FetchOption(
        ("-m", "--max-time"),
        "max_time",
        kind=FLOAT,
        low=0.001,
        metavar="SECONDS",
        help="Cap on the whole operation, tunnel boot included (exit 28). Example: -m 120",
    ),
    FetchOption(
        ("--connect-timeout",),
        "connect_timeout",
        kind=FLOAT,
        low=0.001,
        metavar="SECONDS",
        help="Cap on name lookup, TCP and TLS through the tunnel (exit 28). Example: "
        "--connect-timeout 30",
    ),
    FetchOption(
        ("--retry",),
        "retry",
        kind=INT,
        low=0,
        default=0,
        show_default=True,
        help="Retry transient failures (timeouts, HTTP 408/429/500/502/503/504). Example: "
        "--retry 3",
    ),
    FetchOption(
        ("--retry-delay",),
        "retry_delay",
        kind=FLOAT,
        low=0.0,
        metavar="SECONDS",
        help="Fixed delay between retries (default: 1 s doubling). Example: --retry-delay 2",
    ),
    FetchOption(
        ("--retry-max-time",),
        "retry_max_time",
        kind=FLOAT,
        low=0.0,
        metavar="SECONDS",
        help="No retry after this much time. Example: --retry-max-time 60",
    ),
    FetchOption(
        ("--retry-all-errors",),
        "retry_all_errors",
        flag=True,
        help="Retry on every error, not only transient ones. Example: --retry-all-errors",
    ),
    FetchOption(
        ("-k", "--insecure"),
        "insecure",
        flag=True,
        help="Do not verify TLS certificates (warns). Example: -k",
    ),
    FetchOption(
        ("--cacert",),
        "cacert",
        kind=FILE,
        metavar="FILE",
        help="Also trust the CAs in this PEM file (beside certifi's roots). Example: --cacert "
        "ca.pem",
    ),
    FetchOption(
        ("-A", "--user-agent"),
        "user_agent",
        metavar="TEXT",
        help="User-Agent to send (default: a common curl string, never smolmix's). Example: -A "
        "'x/1'",
    ),
    FetchOption(
        ("-e", "--referer"),
        "referer",
        metavar="URL",
        help="Referer header. Example: -e https://example.com/",
    ),
    FetchOption(
        ("-u", "--user"),
        "user",
        metavar="USER:PASSWORD",
        help="Basic authentication. Example: -u alice:secret",
    ),
    FetchOption(
        ("--compressed",),
        "compressed",
        flag=True,
        help="Ask for gzip/deflate and decode the body. Example: --compressed",
    ),
    FetchOption(
        ("-r", "--range"),
        "byte_range",
        metavar="A-B",
        help="Byte range to request. Example: -r 0-1023",
    ),
    FetchOption(
        ("-C", "--continue-at"),
        "continue_at",
        metavar="OFFSET|-",
        help="Resume from a byte offset, or '-' after the bytes already in the -o file. Example: "
        "-C - -o f.iso",
    ),
    FetchOption(
        ("-b", "--cookie"),
        "cookies",
        multiple=True,
        metavar="DATA|FILE",
        help="Send cookies: 'a=1; b=2' as is, or read a cookie file (turns the jar on). Example: "
        "-b cookies.txt",
    ),
    FetchOption(
        ("-c", "--cookie-jar"),
        "cookie_jar",
        kind=FILE,
        metavar="FILE",
        help="Keep received cookies and write them to FILE at the end ('-' = stdout). Example: "
        "-c cookies.txt",
    ),
    FetchOption(
        ("-j", "--junk-session-cookies"),
        "junk_session_cookies",
        flag=True,
        help="Drop session cookies read from -b files. Example: -j -b cookies.txt",
    ),
    FetchOption(
        ("-Z", "--parallel"),
        "parallel",
        flag=True,
        help="Fetch the URLs at once over the one tunnel. Example: -Z -o a -o b URL1 URL2",
    ),
    FetchOption(
        ("--parallel-max",),
        "parallel_max",
        kind=INT,
        low=1,
        high=300,
        default=50,
        show_default=True,
        help="At most this many -Z transfers at a time. Example: --parallel-max 4",
    ),
    FetchOption(
        ("--resolve",),
        "resolve",
        multiple=True,
        metavar="HOST:PORT:ADDR",
        help="Connect to ADDR for HOST:PORT instead of asking the tunnel's resolver. Example: "
        "--resolve example.com:443:93.184.215.14",
    ),
    FetchOption(
        ("--connect-to",),
        "connect_to",
        multiple=True,
        metavar="H1:P1:H2:P2",
        help="Connect to H2:P2 whenever the URL says H1:P1 (URL, Host and TLS name unchanged). "
        "Example: --connect-to example.com:443:backup.example.com:8443",
    ),
    FetchOption(
        ("-g", "--globoff"),
        "globoff",
        flag=True,
        help="Take {} and [] in URLs literally (no globbing). Example: -g 'http://[::1]/'",
    ),
    FetchOption(
        ("--url-query",),
        "url_query",
        multiple=True,
        metavar="DATA",
        help="Add to the URL query, encoded like --data-urlencode ('+' prefix: as is). Example: "
        "--url-query 'q=a b'",
    ),
    FetchOption(
        ("-z", "--time-cond"),
        "time_cond",
        metavar="DATE|FILE",
        help="Only if modified since DATE (or FILE's mtime); '-DATE': unmodified since. Example: "
        "-z 'Sat, 01 Jan 2000 00:00:00 GMT'",
    ),
    FetchOption(
        ("--etag-save",),
        "etag_save",
        kind=FILE,
        metavar="FILE",
        help="Save the response's ETag to FILE. Example: --etag-save etag.txt",
    ),
    FetchOption(
        ("--etag-compare",),
        "etag_compare",
        kind=FILE,
        metavar="FILE",
        help="Send If-None-Match with the ETag in FILE. Example: --etag-compare etag.txt",
    ),
    FetchOption(
        ("--limit-rate",),
        "limit_rate",
        metavar="RATE",
        help="Cap the download speed in bytes/s (k, M, G suffixes). Example: --limit-rate 200k",
    ),
    FetchOption(
        ("--http1.1",),
        "http11",
        flag=True,
        help="Use HTTP/1.1 (always the case; accepted for curl scripts). Example: --http1.1",
    ),
)
