"""Command lines checked before any tunnel boots: the parsers and the option plumbing."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from smolmix_cli.apps.errors import (
    AppError,
    DnsUsageError,
    HttpStatusError,
    UsageError,
    WriteError,
    WsClosed,
)
from smolmix_cli.apps.http_body import FileBody, MultipartBody
from smolmix_cli.cli.env import CliEnv
from smolmix_cli.cli.fetch_settings import parse_settings, remote_name, upload_url
from smolmix_cli.cli.main import cli
from smolmix_cli.cli.options import global_options
from smolmix_cli.cli.resolve import plan_run
from smolmix_cli.config import MAINNET
from smolmix_cli.errors_map import classify
from smolmix_cli.exit_codes import ExitCode
from smolmix_cli.options import GlobalOptions, from_params
from smolmix_cli.session.factory import tunnel_options

NO_NETWORK = "/nonexistent/network.json"
PIPED = CliEnv(stdin=io.BytesIO(), stdout=io.BytesIO(), stderr=io.StringIO())


def fetch_kw(**changes: Any) -> dict[str, Any]:
    """The keyword arguments click passes to `fetch`, with its defaults."""
    ctx = cli.commands["fetch"].make_context("fetch", ["http://a.test/"])
    kw = dict(ctx.params)
    del kw["urls"]
    kw.update(changes)
    return kw


def test_settings_pair_outputs_with_urls_and_build_bodies(tmp_path: Path) -> None:
    f = tmp_path / "up.txt"
    f.write_text("x")
    s = parse_settings(
        ("http://a.test/", "http://b.test/dir/"),
        fetch_kw(outputs=(tmp_path / "one",), upload_file=str(f), headers=("X-A: 1",)),
        PIPED,
    )
    assert [j.output.path for j in s.jobs] == [tmp_path / "one", None]
    assert s.jobs[1].url == "http://b.test/dir/up.txt"  # curl -T appends the name to a "/" URL
    assert s.jobs[0].options.method == "PUT" and isinstance(s.jobs[0].options.body, FileBody)
    assert s.jobs[0].options.header_edits[0].name == "X-A"
    g = parse_settings(("http://a.test/p?x=1",), fetch_kw(data=("a=1", "b=2"), get=True), PIPED)
    assert g.jobs[0].url == "http://a.test/p?x=1&a=1&b=2" and g.jobs[0].options.body is None
    form = parse_settings(("http://a.test/",), fetch_kw(form=("n=v",)), PIPED)
    assert isinstance(form.jobs[0].options.body, MultipartBody)


def test_resume_reads_the_existing_size(tmp_path: Path) -> None:
    target = tmp_path / "part"
    target.write_bytes(b"x" * 123)
    s = parse_settings(("http://a.test/f",), fetch_kw(outputs=(target,), continue_at="-"), PIPED)
    assert s.jobs[0].options.resume_from == 123 and s.jobs[0].output.append


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"headers": ("nocolon",)}, 2),
        ({"data": ("x",), "form": ("a=b",)}, 2),
        ({"continue_at": "-"}, 2),  # -C - without an output file
        ({"continue_at": "1x"}, 2),  # neither - nor a byte offset
        ({"outputs": (Path("a"), Path("b"))}, 2),  # more -o than URLs
        ({"data_binary": ("@/nonexistent",)}, 26),
        ({"upload_file": "/nonexistent"}, 26),
        ({"byte_range": "a-b"}, 3),
        ({"user": "nopassword"}, 2),
        ({"method": "BAD METHOD"}, 2),
    ],
)
def test_bad_values_raise_curls_number(changes: dict[str, Any], code: int) -> None:
    with pytest.raises(AppError) as info:
        parse_settings(("http://a.test/",), fetch_kw(**changes), PIPED)
    assert classify(info.value).code == code


def test_remote_names_are_sanitised() -> None:
    assert remote_name("http://a.test/dir/file%20x.bin?q=1") == "file x.bin"
    for bad in ("http://a.test/", "http://a.test/.hidden", "http://a.test/%2E%2E"):
        with pytest.raises(WriteError):
            remote_name(bad)
    assert upload_url("http://a.test/x", "f") == "http://a.test/x"


def _plan(*tokens: str) -> Any:
    return plan_run(list(tokens), short=False, tcp=False, as_json=False, timeout=5, tries=3)


def test_dig_grammar_names_types_servers_and_plus_options() -> None:
    plan = _plan(
        "a.test", "MX", "b.test", "AAAA", "c.test", "TYPE65",
        "@tcp://9.9.9.9:5353", "+short", "+time=2", "-x", "10.0.0.1",
    )  # fmt: skip
    assert [(q.name, q.qtype) for q in plan.lookups] == [
        ("a.test.", 15),
        ("b.test.", 28),
        ("c.test.", 65),
        ("1.0.0.10.in-addr.arpa.", 12),
    ]
    c_test = plan.lookups[2]
    assert c_test.server is not None and (c_test.server.transport, c_test.server.port) == (
        "tcp",
        5353,
    )
    assert plan.lookups[0].server is None  # @server after a name is that lookup's only
    assert plan.short and c_test.timeout == 2.0 and plan.lookups[0].timeout == 5
    for tokens in (("a..b",), ("x.test", "+bogus"), ("x.test", "@1.1.1.1:0"), ("-p", "x")):
        with pytest.raises(DnsUsageError):
            _plan(*tokens)


def test_dig_grammar_defaults_globals_and_root_query() -> None:
    plan = _plan("+noall", "+answer", "+norec", "a.test", "+dnssec", "b.test")
    a, b = plan.lookups
    assert not plan.printcmd and a.display.answer and not a.display.question and not a.recurse
    assert a.flags().dnssec_ok and not b.flags().dnssec_ok  # after a name: that lookup's
    root = _plan("@1.1.1.1").lookups
    assert [(q.name, q.qtype) for q in root] == [(".", 2)]
    typed = plan_run(["a.test", "b.test", "TXT"], short=False, tcp=False, as_json=False,
                     timeout=5, tries=3, type_option="AAAA")  # fmt: skip
    assert [(q.name, q.qtype) for q in typed.lookups] == [("a.test.", 28), ("b.test.", 16)]
    assert [(q.name, q.qtype) for q in _plan("-t", "MX", "a.test", "TXT").lookups] == [
        ("a.test.", 15),
        ("TXT.", 15),  # a name: -t closed the type slot, and MX is the default
    ]


def test_global_options_reach_the_tunnel_options() -> None:
    seen: list[GlobalOptions] = []

    @click.command(name="probe-globals")
    @click.pass_context
    def probe(ctx: click.Context) -> None:
        seen.append(global_options(ctx))

    cli.add_command(probe)
    try:
        args = ["--ipr", "abc@def", "--no-cover", "--no-poisson", "--mix-delay-ms", "0"]
        args += ["--dns-server", "9.9.9.9", "--mtu", "1400", "--open-surbs", "20", "probe-globals"]
        result = CliRunner().invoke(cli, args)
    finally:
        del cli.commands["probe-globals"]
    assert result.exit_code == 0, result.output
    opts = tunnel_options(MAINNET, seen[0])
    assert (opts.ipr, opts.cover, opts.poisson, opts.mean_delay_ms) == (
        "abc@def",
        False,
        False,
        0.0,
    )
    assert opts.dns_servers == ("9.9.9.9",) and opts.mtu == 1400 and opts.open_reply_surbs == 20
    default = tunnel_options(MAINNET, from_params({}))
    assert default.cover and default.poisson and default.ipr is None


def test_app_errors_classify_to_their_exit_codes() -> None:
    assert classify(HttpStatusError("404", 404)).code is ExitCode.HTTP_ERROR
    assert classify(UsageError("x")).code is ExitCode.USAGE
    assert classify(WsClosed(4001, "bye")).code is ExitCode.WS_ABNORMAL_CLOSE
    assert classify(DnsUsageError("x")).code is ExitCode.FAILURE


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["fetch", "http://exa mple/"], 3),
        (["fetch", "-H", "bad", "http://a.test/"], 2),
        (["ws", "http://a.test/"], 1),
        (["resolve", "a..b"], 1),
        (["resolve", "a.test", "+bogus"], 1),
        (["resolve", "-t", "BOGUS", "a.test"], 112),  # dig warns of a bad -t type, goes on
        (["resolve", "--bogus", "a.test"], 1),
        (["resolve", "a.test", "@[::1]:70000"], 1),
        (["--ipr", "bogus", "fetch", "http://a.test/"], 2),
        (["--gateway", "notbase58", "resolve", "a.test"], 2),
        (["fetch", "http://a.test/"], 112),  # valid input: now the network file is needed
        (["resolve", "a.test"], 112),
        (["ws", "ws://a.test/"], 112),
    ],
)
def test_input_is_checked_before_the_network(args: list[str], code: int) -> None:
    result = CliRunner().invoke(cli, ["--network", NO_NETWORK, *args])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
