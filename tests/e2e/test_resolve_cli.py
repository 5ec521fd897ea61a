"""`smolmix resolve` (dig) through the local network's exit to the demo zone's server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cli_net import smolmix, start_network

ZONE = "demo.smolmix.test"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from start_network(tmp_path_factory.mktemp("net"))


def test_every_demo_record_type_in_one_run_as_rfc8427(net: Path) -> None:
    questions = [
        (ZONE, "A"),
        (ZONE, "AAAA"),
        (ZONE, "MX"),
        (ZONE, "TXT"),
        (ZONE, "NS"),
        (ZONE, "SOA"),
        (ZONE, "CAA"),
        (ZONE, "HTTPS"),
        (f"_http._tcp.{ZONE}", "SRV"),
        (f"www.{ZONE}", "CNAME"),
        (f"big.{ZONE}", "TXT"),  # larger than a UDP answer: TC, then TCP
    ]
    args = [token for pair in questions for token in pair]
    result = smolmix(net, "resolve", *args, "--json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == len(questions)
    for (name, qtype), record in zip(questions, records, strict=True):
        assert record["RCODEname"] == "NOERROR"
        assert record["questionRRs"][0]["NAME"] == name + "."
        assert record["questionRRs"][0]["TYPEname"] == qtype
        assert qtype in {rr["TYPEname"] for rr in record["answerRRs"]}, (name, qtype)
    a = records[0]["answerRRs"][0]
    assert a["RDATAHEX"] == "C6120001" and a["rdataA"] == "198.18.0.1"
    assert len(records[-1]["answerRRs"]) > 10


def test_dig_text_short_reverse_tcp_and_truncation(net: Path) -> None:
    short = smolmix(net, "resolve", ZONE, "MX", "+short", "-x", "198.18.0.1")
    assert short.returncode == 0, short.stderr
    assert short.stdout.decode().splitlines() == ["10 mail.demo.smolmix.test.", f"{ZONE}."]
    text = smolmix(net, "resolve", ZONE, "AAAA", "+tcp").stdout.decode()
    assert ";; ANSWER SECTION:" in text and "2001:2::1" in text and "(TCP)" in text
    assert "status: NOERROR" in text
    big = smolmix(net, "resolve", f"big.{ZONE}", "TXT").stdout.decode()
    assert "(TCP)" in big  # the UDP answer came back truncated: dig's TCP fallback


def test_nxdomain_exits_zero_like_dig(net: Path) -> None:
    result = smolmix(net, "resolve", f"nope.{ZONE}")
    assert result.returncode == 0
    assert "status: NXDOMAIN" in result.stdout.decode()
    short = smolmix(net, "resolve", f"nope.{ZONE}", "+short")
    assert short.returncode == 0 and short.stdout == b""


def test_no_reply_exits_nine(net: Path) -> None:
    # 10.0.0.1 is the exit itself: UDP port unreachable, so every try fails fast
    result = smolmix(net, "resolve", ZONE, "@10.0.0.1", "+time=1", "+tries=1")
    assert result.returncode == 9, result.stderr
    assert result.stdout.endswith(b"\n;; no servers could be reached\n")  # dig's words
    assert b"Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["a..b.test"],
        [ZONE, "@1.2.3.4:99999"],
        [ZONE, "+nosuchoption"],
        ["-p", "x", ZONE],
        [ZONE, "-Z"],
        [ZONE, "@ftp://1.1.1.1"],
    ],
)
def test_usage_errors_exit_one_with_one_line(net: Path, args: list[str]) -> None:
    result = smolmix(net, "resolve", *args)
    assert result.returncode == 1, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and b"Traceback" not in result.stderr
