"""What `smolmix fetch`'s command line asks for, checked before any tunnel boots.

A typo should not cost a mixnet round trip: URLs, headers, data sources,
output names, ranges and the CA file are all validated here, and each URL
becomes a Job (its target, its body's Output, its request options). Problems
raise AppError with curl's exit number.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from smolmix_cli.apps import http_conditions as conditions
from smolmix_cli.apps import http_data
from smolmix_cli.apps import http_glob as glob
from smolmix_cli.apps import http_route as route
from smolmix_cli.apps.errors import (
    CaFileError,
    MalformedUrl,
    ReadError,
    UsageError,
    WriteError,
)
from smolmix_cli.apps.http_body import (
    Body,
    BytesBody,
    FileBody,
    MultipartBody,
    StreamBody,
    parse_form_arg,
)
from smolmix_cli.apps.http_headers import HeaderEdit, parse_header_arg
from smolmix_cli.apps.http_options import FetchOptions
from smolmix_cli.apps.http_transfer import Transfer
from smolmix_cli.apps.http_url import parse_url
from smolmix_cli.cli.env import CliEnv
from smolmix_cli.cli.fetch_output import Output

if TYPE_CHECKING:
    from smolmix_cli.apps.http_cookies import CookieJar


@dataclass
class Job:
    url: str
    output: Output
    options: FetchOptions
    urlnum: int = 0

    def transfer(self) -> Transfer:
        """A fresh -w record for this URL: what curl knows before the first byte."""
        return Transfer(
            url=self.url,
            urlnum=self.urlnum,
            filename_effective=str(self.output.path) if self.output.path is not None else "",
            referer=self.options.referer or "",
        )


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
    etag_save: Path | None = None
    parallel: bool = False
    parallel_max: int = 50
    cookie_jar: Path | None = None
    """-c FILE: where the jar goes at the end."""
    limit_rate: int | None = None
    """--limit-rate in bytes per second."""
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
    import anyio  # here: only an upload from stdin reads it in a thread

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
            [
                HeaderEdit("Content-Type", http_data.JSON_CONTENT_TYPE),
                HeaderEdit("Accept", http_data.JSON_ACCEPT),
            ],
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
    expanded = [
        (arg, url, values)
        for arg, pattern in enumerate(urls)
        for url, values in (glob.expand(pattern) if not kw["globoff"] else [(pattern, ())])
    ]
    for _arg, url, _values in expanded:
        parse_url(url)
    literal_cookies, jar = _cookies(kw, urls)
    offset = conditions.resume_offset(kw["continue_at"]) if kw["continue_at"] else None
    queries = [http_data.url_query(q, env.stdin.read) for q in kw["url_query"]]
    time_cond = conditions.time_condition(kw["time_cond"]) if kw["time_cond"] else None
    if kw["time_cond"] and time_cond is None:
        env.echo(
            "smolmix: Illegal date format for -z, --time-cond (and not a file name).", err=True
        )
    if kw["etag_compare"] is not None:
        extra_edits = [
            *extra_edits,
            HeaderEdit("If-None-Match", conditions.etag_to_send(kw["etag_compare"])),
        ]
    outputs: list[Path] = list(kw["outputs"])
    if len(outputs) > len(urls):
        raise UsageError("more -o options than URLs")
    jobs: list[Job] = []
    for arg, url, values in expanded:
        target = url
        for piece in queries:
            target = http_data.url_with_query(target, piece)
        if kw["get"] and query is not None:
            target = http_data.url_with_query(url, query)
        target = upload_url(target, kw["upload_file"])
        path: Path | None = None
        if arg < len(outputs):
            path = Path(glob.output_name(str(outputs[arg]), values))
        elif kw["remote_name"]:
            path = Path(remote_name(target))
        if path is not None and str(path) == "-":
            path = None
        if path is not None and kw["create_dirs"]:
            path.parent.mkdir(parents=True, exist_ok=True)
        resume: int | None = offset
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
            header_edits=edits + _unset(extra_edits, edits),
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
            time_condition=time_cond,
            connect_to=[route.parse_connect_to(a) for a in kw["connect_to"]],
            resolve=[route.parse_resolve(a) for a in kw["resolve"]],
            cookie=literal_cookies,
            cookie_jar=jar,
            range=kw["byte_range"],
            resume_from=resume or None,
            verify=not kw["insecure"],
            head_only=bool(kw["head"]),
        )
        if kw["user_agent"] is not None:
            options.user_agent = kw["user_agent"]
        output = Output(path, env.stdout, append=bool(resume))
        jobs.append(Job(target, output, options, urlnum=arg))  # a glob's URLs share it
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
        write_out=_write_out_format(kw["write_out"], env),
        silent=bool(kw["silent"]),
        show_error=bool(kw["show_error"]),
        verbose=bool(kw["verbose"]),
        fail_early=bool(kw["fail_early"]),
        max_time=kw["max_time"],
        insecure=bool(kw["insecure"]),
        cacert=kw["cacert"],
        progress=progress,
        etag_save=Path(kw["etag_save"]) if kw["etag_save"] else None,
        parallel=bool(kw["parallel"]),
        parallel_max=kw["parallel_max"],
        cookie_jar=Path(kw["cookie_jar"]) if kw["cookie_jar"] else None,
        limit_rate=conditions.parse_rate(kw["limit_rate"]) if kw["limit_rate"] else None,
    )


def _cookies(kw: dict[str, Any], urls: tuple[str, ...]) -> tuple[str | None, CookieJar | None]:
    """-b text (with '=') is sent as is; -b FILE and -c turn curl's cookie engine on."""
    if not kw["cookie_jar"] and all("=" in arg for arg in kw["cookies"]):
        return "; ".join(kw["cookies"]) or None, None  # no engine: its module stays unloaded
    from smolmix_cli.apps.http_cookies import CookieJar

    literal: list[str] = []
    jar = CookieJar() if kw["cookie_jar"] else None
    for arg in kw["cookies"]:
        if "=" in arg:
            literal.append(arg)
            continue
        jar = jar or CookieJar()
        try:
            text = Path(arg).read_text(errors="replace")
        except OSError:
            continue  # curl: a missing -b file still turns the engine on, silently
        host = urlsplit(urls[0]).hostname or "" if urls else ""
        jar.load(text, host, junk_session=bool(kw["junk_session_cookies"]))
    return "; ".join(literal) or None, jar


def _write_out_format(arg: str | None, env: CliEnv) -> str | None:
    """-w FORMAT, -w @file, -w @- (stdin), read once before anything is sent, as curl does."""
    if arg is None or not arg.startswith("@"):
        return arg
    name = arg[1:]
    try:
        data = env.stdin.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise ReadError(f"Failed to read {name}: {exc.strerror}") from None
    return data.decode("utf-8", "replace")


def _unset(implied: list[HeaderEdit], edits: list[HeaderEdit]) -> list[HeaderEdit]:
    """--json's headers go after the -H ones (curl's order), unless -H already set them."""
    given = {e.name.lower() for e in edits}
    return [e for e in implied if e.name.lower() not in given]


def _valid_range(text: str) -> bool:
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        if not dash or not (first or last):
            return False
        if (first and not first.isdigit()) or (last and not last.isdigit()):
            return False
    return True
