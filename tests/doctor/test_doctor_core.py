"""The doctor's sans-io parts: the Health probe against the real router logic, the census of
odd directory data, the verdict, and a mainnet-sized report that still fits one screen."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from smolmix_cli.doctor.census import UNKNOWN, count_described
from smolmix_cli.doctor.probe import HealthProbe, stream_of
from smolmix_cli.doctor.render import render
from smolmix_cli.doctor.report import (
    ANSWER_HEALTH,
    ANSWER_NONE,
    ANSWER_NOT_PROBED,
    DirectoryFinding,
    DoctorReport,
    ExitProbe,
    GatewayAttempt,
)
from smolmix_cli.exit_codes import ExitCode
from smolmix_cli.ipr.lp_frame import LpFrame, MsgType
from smolmix_cli.ipr.messages import (
    V9,
    BuildInfo,
    InfoKind,
    InfoLevel,
    InfoResponse,
    IpPacketResponse,
)
from smolmix_cli.ipr.router_logic import IprRouter, ReplyToClient, RouterConfig

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


def _answer_through(router: IprRouter, probe: HealthProbe, tag: bytes = b"t" * 16) -> list[bytes]:
    for out in probe.messages(NOW):
        router.on_message(tag, out.payload, out.reply_surbs, 0.0)
    return [t.payload for t in router.pop_transmits() if isinstance(t, ReplyToClient)]


def test_the_exit_router_answers_the_probe_without_a_connect() -> None:
    router = IprRouter(random.Random(1), RouterConfig(build_info=BuildInfo(build_version="1.31.0")))
    probe = HealthProbe(random.Random(2))
    replies = _answer_through(router, probe)
    assert len(replies) == 1
    found = stream_of(replies[0])
    assert found is not None and found[0] == probe.stream_id
    assert probe.on_reply(found[1])
    assert probe.answer is not None
    assert (probe.answer.kind, probe.answer.detail) == (ANSWER_HEALTH, "build 1.31.0")
    assert router.client_addresses(b"t" * 16) is None  # nothing was allocated


def test_foreign_replies_do_not_answer_the_probe() -> None:
    probe = HealthProbe(random.Random(3))
    other = HealthProbe(random.Random(4))
    router = IprRouter(random.Random(5))
    found = stream_of(_answer_through(router, other)[0])
    assert found is not None
    assert not probe.on_reply(found[1])  # another request id
    assert not probe.on_reply(b"\x09garbage")
    assert stream_of(b"not a frame") is None
    assert stream_of(LpFrame(1, MsgType.OPEN, 0).encode()) is None
    info = IpPacketResponse(
        V9, InfoResponse(probe.request_id, InfoKind.VERSION_MISMATCH, InfoLevel.WARN, "", 9, 8)
    )
    assert probe.on_reply(info.encode())
    assert probe.answer is not None and probe.answer.kind == "info"
    assert probe.answer.detail == "version_mismatch (v9 -> v8)"


ODD_DESCRIBED: list[Any] = [
    None,
    17,
    "node",
    {},
    {"description": None},
    {"description": {"declared_role": "exit", "build_information": {"build_version": 1}}},
    {"description": {"declared_role": {"exit_nr": True}, "build_information": []}},
    {"description": {"build_information": {"build_version": "9" * 5000}}},
    {
        "description": {
            "declared_role": {"mixnode": False, "entry": True, "exit_nr": True, "exit_ipr": True},
            "build_information": {"build_version": " 1.31.0 "},
        }
    },
]


def test_odd_described_entries_count_as_unknown_and_never_raise() -> None:
    finding = DirectoryFinding(["u"])
    count_described(finding, ODD_DESCRIBED)
    assert finding.described == len(ODD_DESCRIBED)
    assert finding.builds["1.31.0"] == 1 and finding.builds[UNKNOWN] == 7
    assert max(len(b) for b in finding.builds) <= 40
    assert finding.declared["network requester only"] == 1
    assert finding.declared["exit_ipr"] == 1 and finding.declared[UNKNOWN] == 7


def _report(answered: int, probed: int = 10) -> DoctorReport:
    directory = DirectoryFinding(["https://validator.nymtech.net/api/"], ok=True, seconds=2.5)
    directory.nodes, directory.described = 743, 743
    directory.by_role = Counter(
        {"Mixnode": 240, "ExitGateway": 120, "EntryGateway": 50, "Standby": 200, "Inactive": 133}
    )
    directory.builds = Counter({f"1.{n}.0": 20 + n for n in range(35)})
    directory.declared = Counter({"mixnode": 258, "entry": 477, "exit_nr": 470, "exit_ipr": 300})
    directory.topology_nodes, directory.layers, directory.gateways = 400, (80, 80, 80), 160
    directory.topology_skipped = Counter({"performance below the minimum": 300, "no IPs": 4})
    directory.exits_usable = 180
    directory.exits_skipped = Counter({"no exit_ipr role": 400, "build before 1.30.0": 100})
    report = DoctorReport("mainnet", "0.1.0", directory)
    report.gateway.ok = report.gateway.attempted = True
    report.gateway.identity, report.gateway.protocol_version = "G" * 44, 6
    report.gateway.tried = [
        GatewayAttempt(
            "A" * 44 + " at wss://a.example:9001/", "it only accepts zk-nym credentials"
        ),
        GatewayAttempt("G" * 44 + " at ws://1.2.3.4:9000/", "connected"),
    ]
    report.exits.candidates, report.exits.width, report.exits.timeout = 180, 5, 10.0
    for i in range(probed):
        probe = ExitProbe(f"x{i}.y@{'E' * 44}", "E" * 44, "1.31.0", 90)
        probe.answer = ANSWER_HEALTH if i < answered else ANSWER_NONE
        probe.rtt_ms = 812.0 if i < answered else None
        report.exits.probes.append(probe)
    return report


def test_a_mainnet_sized_report_fits_one_screen_and_round_trips_as_json() -> None:
    report = _report(answered=3)
    lines = render(report)
    assert len(lines) <= 24 and max(len(line) for line in lines) <= 130
    assert any("builds: 1.34.0: 54" in line and "31 others: 1085" in line for line in lines)
    assert sum("skipped " in line and "zk-nym" in line for line in lines) == 1
    assert lines[-1] == "result     ok: 3 of 10 exits answered (exit 0)"
    data = json.loads(json.dumps(report.to_json()))
    assert data["exits"]["answered"] == 3 and data["directory"]["builds"]["1.0.0"] == 20
    assert data["gateway"]["tried"][0]["result"].startswith("it only accepts")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda r: None, ExitCode.OK),
        (lambda r: setattr(r.directory, "ok", False), ExitCode.NETWORK_UNREACHABLE),
        (
            lambda r: (
                setattr(r.directory, "ok", False),
                setattr(r.directory, "code", ExitCode.DIRECTORY_INVALID),
            ),
            ExitCode.DIRECTORY_INVALID,
        ),
        (lambda r: setattr(r.gateway, "ok", False), ExitCode.GATEWAY_REFUSED),
        (lambda r: r.exits.probes.clear(), ExitCode.IPR_HANDSHAKE),
        (
            lambda r: [setattr(p, "answer", ANSWER_NOT_PROBED) for p in r.exits.probes],
            ExitCode.IPR_HANDSHAKE,
        ),
    ],
)
def test_the_first_failing_phase_decides_the_code(change: Any, code: ExitCode) -> None:
    report = _report(answered=1)
    change(report)
    assert report.verdict[0] is code
    assert report.to_json()["exit_code"] == int(code)
    render(report)  # renders whatever failed
