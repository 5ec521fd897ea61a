"""`smolmix resolve NAME [TYPE] [@SERVER] [+short] [+tcp]`: dig through the tunnel.

Arguments are read the way dig reads them: `@server`, `+option`, and names
each optionally followed by a type, so `resolve a.test MX b.test AAAA` asks two
questions over one tunnel. Every question leaves through the exit (UDP, TCP on
truncation or with +tcp; DoT/DoH with tls:// or https:// servers) and carries
EDNS(0) padding to a 128-byte block so its size does not give the name away.
Exit codes follow dig: 0 for any answer (NXDOMAIN included), 1 usage, 9 when
no server replied; tunnel failures keep their mixnet codes (5, 97, ...).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import anyio
import click

from smolmix_cli.apps import dns, dns_format
from smolmix_cli.apps.dns_transports import DnsServer, parse_server, query_server
from smolmix_cli.apps.errors import AppError, DnsError, DnsUsageError
from smolmix_cli.cli.env import CliEnv, cli_env
from smolmix_cli.cli.errors import run_reported
from smolmix_cli.cli.options import global_options
from smolmix_cli.errors_map import classify
from smolmix_cli.exit_codes import ExitCode
from smolmix_cli.options import GlobalOptions

UPSTREAM_DEFAULT = "1.1.1.1"  # upstream smolmix-dns's default resolver


@dataclass
class Question:
    name: str
    qtype: int


@dataclass
class Plan:
    questions: list[Question]
    server: DnsServer | None
    short: bool
    tcp: bool
    as_json: bool
    timeout: float
    tries: int


def parse_tokens(
    tokens: tuple[str, ...],
    reverse: tuple[str, ...],
    *,
    short: bool,
    tcp: bool,
    as_json: bool,
    timeout: float,
    tries: int,
    type_option: str | None,
) -> Plan:
    """dig's argument grammar; DnsUsageError (exit 1) for anything it cannot use."""
    questions: list[Question] = []
    server: DnsServer | None = None
    typed = True  # the last question already has an explicit type
    for token in tokens:
        if token.startswith("-") and len(token) > 1:
            raise DnsUsageError(f"unknown option {token!r}")
        if token.startswith("@"):
            server = parse_server(token[1:])
        elif token.startswith("+"):
            key, _, value = token[1:].lower().partition("=")
            if key == "short":
                short = True
            elif key == "noshort":
                short = False
            elif key in ("tcp", "vc"):
                tcp = True
            elif key in ("notcp", "novc"):
                tcp = False
            elif key == "json":
                as_json = True
            elif key in ("time", "timeout") and value.replace(".", "", 1).isdigit():
                timeout = max(0.1, float(value))
            elif key in ("tries", "retry") and value.isdigit():
                tries = max(1, int(value) + (1 if key == "retry" else 0))
            else:
                raise DnsUsageError(f"unknown or malformed option {token!r}")
        elif questions and not typed and _is_type(token):
            questions[-1].qtype = dns.parse_qtype(token)
            typed = True
        else:
            default_type = dns.parse_qtype(type_option) if type_option else dns.parse_qtype("A")
            questions.append(Question(dns.normalise_name(token), default_type))
            typed = False
    for address in reverse:
        questions.append(Question(dns.reverse_name(address), dns.parse_qtype("PTR")))
    if not questions:
        raise DnsUsageError("a name to look up is required (or -x ADDRESS)")
    return Plan(questions, server, short, tcp, as_json, timeout, tries)


def _is_type(token: str) -> bool:
    try:
        dns.parse_qtype(token)
    except DnsUsageError:
        return False
    return True


def default_server(globals_: GlobalOptions, session: Any) -> DnsServer:
    """The network's resolver (local networks name one), else upstream's 1.1.1.1."""
    if globals_.dns_servers:
        return parse_server(globals_.dns_servers[0])
    if session.network.dns_resolver:
        return parse_server(session.network.dns_resolver)
    return parse_server(UPSTREAM_DEFAULT)


async def run_resolve(env: CliEnv, plan: Plan, globals_: GlobalOptions) -> int:
    from smolmix_cli.session import open_tunnel

    status = 0
    out = env.stdout_text
    async with open_tunnel(globals_) as session:
        server = plan.server or default_server(globals_, session)
        cafile = session.cafile(None)
        for question in plan.questions:
            try:
                result = await query_server(
                    session.tunnel,
                    server,
                    question.name,
                    question.qtype,
                    tcp=plan.tcp,
                    timeout=plan.timeout,
                    tries=plan.tries,
                    cafile=cafile,
                )
            except AppError as exc:  # dig goes on with the next question
                env.echo(f";; {exc}", err=True)
                transport = not isinstance(exc, DnsError)  # DoT/DoH: counts as no reply
                status = int(ExitCode.DNS_NO_REPLY if transport else classify(exc).code)
                continue
            if plan.as_json:
                out.write(json.dumps(dns_format.rfc8427(result)) + "\n")
            elif plan.short:
                out.write(dns_format.short_text(result))
            else:
                out.write(dns_format.dig_text(result) + "\n")
            out.flush()
    return status


@click.command(name="resolve", context_settings={"ignore_unknown_options": True})
@click.argument("tokens", nargs=-1, metavar="NAME [TYPE] [@SERVER[:PORT]] [+short] [+tcp]...")
@click.option(
    "-x",
    "reverse",
    multiple=True,
    metavar="ADDRESS",
    help="Reverse lookup (PTR) of an IPv4 or IPv6 address; repeatable. Example: -x 198.18.0.1",
)
@click.option(
    "-t",
    "--type",
    "type_option",
    metavar="TYPE",
    help="Record type for names given without one (default A). Example: -t AAAA",
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
    reverse: tuple[str, ...],
    type_option: str | None,
    short: bool,
    tcp: bool,
    as_json: bool,
    timeout: float,
    tries: int,
) -> None:
    """Look up DNS records through the mixnet, like dig.

    Any record type dnslib knows (A, AAAA, MX, TXT, NS, SOA, CNAME, SRV, CAA,
    PTR, HTTPS, TYPEnnn...). @SERVER is an IP[:PORT], tcp://, tls://HOST (DoT)
    or https://HOST/dns-query (DoH); default: the network's resolver (mainnet:
    1.1.1.1). Exit codes: 0 any answer incl. NXDOMAIN, 1 usage, 9 no reply.

    \b
    Examples:
      smolmix --network testnet resolve demo.smolmix.test
      smolmix --network testnet resolve demo.smolmix.test MX +short
      smolmix resolve example.com AAAA @9.9.9.9 +tcp
      smolmix resolve -x 1.1.1.1 --json
      smolmix resolve example.com @tls://1.1.1.1
    """

    def body() -> int:
        plan = parse_tokens(
            tokens,
            reverse,
            short=short,
            tcp=tcp,
            as_json=as_json,
            timeout=timeout,
            tries=tries,
            type_option=type_option,
        )
        return anyio.run(run_resolve, cli_env(ctx), plan, global_options(ctx))

    sys.exit(run_reported(body))
