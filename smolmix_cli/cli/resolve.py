"""`smolmix resolve ARGS...`: dig through the tunnel, with dig's grammar and output.

Arguments are read the way dig reads them (smolmix_cli/apps/dig_args.py):
`@server`, `+[no]option`, `-p/-t/-q/-x/-f/-c`, and names each optionally
followed by a type, so `resolve a.test MX b.test AAAA +short` asks two
questions over one tunnel. Every question leaves through the exit (UDP, TCP on
truncation or with +tcp; DoT/DoH with tls:// or https:// servers) and carries
EDNS(0) padding to a 128-byte block so its size does not give the name away.
Exit codes follow dig: 0 for any answer (NXDOMAIN included), 1 usage, 8 batch
file unreadable, 9 when no server replied; tunnel failures keep their mixnet
codes (5, 97, ...). What differs from dig, and why: docs/compat.md.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import anyio
import click

from smolmix_cli.apps import dig_args, dig_output, dns, dns_format
from smolmix_cli.apps.dig_args import DigRun, Lookup
from smolmix_cli.apps.dns_transports import DnsServer, query_server
from smolmix_cli.apps.errors import AppError, DnsError
from smolmix_cli.cli.env import CliEnv, cli_env
from smolmix_cli.cli.errors import run_reported
from smolmix_cli.cli.options import global_options
from smolmix_cli.errors_map import classify
from smolmix_cli.exit_codes import ExitCode
from smolmix_cli.options import GlobalOptions

BATCH_FILE_ERROR = 8  # dig: "couldn't open specified batch file"


class BatchFileUnreadable(Exception):
    """`-f FILE` could not be read; dig exits 8 before asking anything."""


def plan_run(
    tokens: list[str],
    *,
    short: bool,
    tcp: bool,
    as_json: bool,
    timeout: float,
    tries: int,
    type_option: str | None = None,
) -> DigRun:
    """The whole command line (long options first, as defaults) and its batch files, parsed."""
    run = DigRun(short=short, json=as_json)
    qtype = dns.parse_qtype(type_option) if type_option else None
    run.default = Lookup(qtype=qtype, tcp=tcp, timeout=timeout, tries=tries)
    if short:
        dig_args.plus_option("+short", run.default, run)
    dig_args.parse_tokens(tokens, run)
    dig_args.finish(run)
    return run


def batch_lines(run: DigRun) -> list[list[str]]:
    """Every batch file's lines, read before anything is asked (dig exits 8 if one can't be)."""
    lines: list[list[str]] = []
    for path in run.batch_files:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise BatchFileUnreadable(f"{path}: {exc}") from None
        lines += dig_args.batch_tokens(text)
    return lines


def _with_port(server: DnsServer, port: int | None) -> DnsServer:
    if port is None or server.transport not in ("udp", "tcp"):
        return server
    return replace(server, port=port)


class _Printer:
    """dig's stdout: the greeting with the first reply or failure (if dig composed one);
    then each reply."""

    def __init__(self, env: CliEnv, run: DigRun, args: list[str]) -> None:
        self.out = env.stdout_text
        self.run = run
        self.args = args
        self.greeting_pending = True

    def _greeting(self, *, failed: bool) -> str:
        if not self.greeting_pending or not self.run.greeting or self.run.json:
            return ""
        self.greeting_pending = False
        if not failed and (self.run.short or not self.run.printcmd):
            return ""  # dig drops it unprinted
        return dig_output.greeting(self.args, servers_given=self.run.servers_given)

    def write(self, text: str) -> None:
        self.out.write(self._greeting(failed=False) + text)
        self.out.flush()

    def no_reply(self) -> None:
        if self.run.yaml:
            text = "- type: DIG_ERROR\n  message: |\n    no servers could be reached\n"
        else:
            text = ";; no servers could be reached\n"
        if not self.run.json:
            self.out.write(self._greeting(failed=True) + text)
            self.out.flush()

    def reply(self, result: dns.DnsResult, lookup: Lookup) -> None:
        if (
            result.truncated_fallback
            and lookup.display.comments
            and not (self.run.short or self.run.json)
        ):
            self.out.write(";; Truncated, retrying in TCP mode.\n")  # before the greeting, as dig
        if self.run.json:
            self.write(json.dumps(dns_format.rfc8427(result)) + "\n")
        elif self.run.short:
            self.write(dns_format.short_text(result) if lookup.display.answer else "")
        elif self.run.yaml:
            self.write(dig_output.yaml_text(result, lookup.display, received=time.time()))
        else:
            self.write(dig_output.message_text(result, lookup.display))


def _lookups(env: CliEnv, run: DigRun, batch: list[list[str]]) -> Iterator[Lookup]:
    """The command line's lookups, then each batch line's, parsed only when its turn comes
    (as dig does, so a line's +short or +noall reaches the lines after it, not before)."""
    yield from list(run.lookups)
    template = run.default
    for line in batch:
        seen = len(run.warnings)
        lookups = dig_args.parse_batch_line(line, run, template)
        for warning in run.warnings[seen:]:
            env.echo(warning, err=True)
        yield from lookups


async def run_resolve(
    env: CliEnv, run: DigRun, batch: list[list[str]], args: list[str], globals_: GlobalOptions
) -> int:
    from smolmix_cli.session import open_tunnel
    from smolmix_cli.session.factory import dns_server

    status = 0
    printer = _Printer(env, run, args)
    async with open_tunnel(globals_) as session:
        fallback = dns_server(globals_, session.network)
        cafile = session.cafile(None)
        for lookup in _lookups(env, run, batch):
            server = _with_port(lookup.server or fallback, run.port)
            try:
                result = await query_server(
                    session.tunnel,
                    server,
                    lookup.name,
                    lookup.qtype or dns.parse_qtype("A"),
                    tcp=lookup.tcp,
                    timeout=lookup.timeout,
                    tries=lookup.tries,
                    cafile=cafile,
                    flags=lookup.flags(),
                    pad_block=lookup.pad_block,
                )
            except AppError as exc:  # dig goes on with the next question
                env.echo(f";; {exc}", err=True)
                transport = not isinstance(exc, DnsError)  # DoT/DoH: counts as no reply
                status = int(ExitCode.DNS_NO_REPLY if transport else classify(exc).code)
                if status == ExitCode.DNS_NO_REPLY:
                    printer.no_reply()
                continue
            printer.reply(result, lookup)
    return status


@click.command(name="resolve", context_settings={"ignore_unknown_options": True})
@click.argument("tokens", nargs=-1, metavar="[@SERVER] [-p PORT] [-t TYPE] NAME [TYPE] [+opt]...")
@click.option(
    "--type",
    "type_option",
    metavar="TYPE",
    help="Record type for names given without one (dig's -t before the first name). "
    "Example: --type AAAA",
)
@click.option(
    "--short",
    is_flag=True,
    help="Only the answers' data, one per line (= +short). Example: --short",
)
@click.option("--tcp", is_flag=True, help="Ask over TCP from the start (= +tcp). Example: --tcp")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One RFC 8427 JSON object per answer, one per line (= +json). Example: --json",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=dns.DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds to wait for each try (= +time=N). Example: --timeout 10",
)
@click.option(
    "--tries",
    type=click.IntRange(min=1, max=20),
    default=dns.DEFAULT_TRIES,
    show_default=True,
    help="UDP tries per question (= +tries=N). Example: --tries 5",
)
@click.pass_context
def resolve(
    ctx: click.Context,
    tokens: tuple[str, ...],
    type_option: str | None,
    short: bool,
    tcp: bool,
    as_json: bool,
    timeout: float,
    tries: int,
) -> None:
    """Look up DNS records through the mixnet, like dig (same arguments, output, exit codes).

    Any record type dnslib knows (A, AAAA, MX, TXT, NS, SOA, CNAME, SRV, CAA,
    PTR, HTTPS, TYPEnnn...). @SERVER is an IP[:PORT], tcp://, tls://HOST (DoT)
    or https://HOST/dns-query (DoH); default: the network's resolver (mainnet:
    1.1.1.1). dig's options: -p PORT, -t TYPE, -q NAME, -x ADDR, -f FILE,
    +[no]short/cmd/comments/question/answer/authority/additional/all/stats,
    +[no]recurse/dnssec/adflag/cdflag/edns/tcp/ttlid/class/yaml,
    +time=S, +tries=N, +retry=N, +padding=N. Options before the first name
    apply to every lookup, after a name to that lookup (as in dig).
    Exit codes: 0 any answer incl. NXDOMAIN, 1 usage, 8 batch file, 9 no reply.

    \b
    Examples:
      smolmix --network testnet resolve demo.smolmix.test
      smolmix --network testnet resolve demo.smolmix.test MX +noall +answer
      smolmix resolve example.com AAAA @9.9.9.9 +tcp +dnssec
      smolmix resolve -x 1.1.1.1 --json
      smolmix resolve -f names.txt +short @tls://1.1.1.1
    """
    env = cli_env(ctx)

    def body() -> int:
        try:
            run = plan_run(
                list(tokens),
                short=short,
                tcp=tcp,
                as_json=as_json,
                timeout=timeout,
                tries=tries,
                type_option=type_option,
            )
            batch = batch_lines(run)
        except BatchFileUnreadable as exc:
            env.echo(f"smolmix: couldn't open specified batch file ({exc})", err=True)
            return BATCH_FILE_ERROR
        for warning in run.warnings:
            env.echo(warning, err=True)
        return anyio.run(run_resolve, env, run, batch, list(tokens), global_options(ctx))

    sys.exit(run_reported(body))
