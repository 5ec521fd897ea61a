"""TunnelStatus round-trips through the daemon's JSON and survives a peer's odd JSON."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.tunnel.status import TunnelStatus, gateway_lines


def test_round_trip_through_json_text() -> None:
    status = TunnelStatus(
        "ready",
        "via x as 10.0.0.2",
        exit="exit.key@gw",
        gateway="GwBase58",
        ipv4="10.0.0.2",
        ipv6="fc00::2",
        rtt_ms=12.5,
        sessions_started=2,
        exits_failed=("bad.exit@gw",),
        gateways_skipped=("GwA at wss://a:9001/: it only accepts zk-nym credentials",),
        exits_tried=("bad.exit@gw: no ConnectSuccess in 12 s", "exit.key@gw: connected"),
        gateways_tried=("gateway GwA at wss://a:9001/: zk-nym only", "gateway GwB at ws://b/: ok"),
        packets_up=7,
        packets_down=9,
        messages_up=7,
        ipr_dropped=1,
    )
    assert TunnelStatus.from_json(json.loads(json.dumps(status.to_json()))) == status


def test_daemon_report_keys_beyond_the_tunnel_are_ignored() -> None:
    report = {"state": "ready", "reason": "r", "pid": 1, "generation": 3, "ipv4": "10.0.0.9"}
    assert TunnelStatus.from_json(report) == TunnelStatus("ready", "r", ipv4="10.0.0.9")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


@given(st.dictionaries(st.sampled_from(list(TunnelStatus.__dataclass_fields__)), json_values))
def test_any_json_yields_a_well_typed_status(data: dict[str, object]) -> None:
    status = TunnelStatus.from_json(data)
    assert isinstance(status.state, str) and isinstance(status.reason, str)
    assert all(isinstance(v, str) for v in status.exits_failed)
    assert all(isinstance(v, str) for v in status.gateways_skipped)
    assert all(isinstance(v, str) for v in status.exits_tried + status.gateways_tried)
    for name in ("sessions_started", "packets_up", "packets_down", "messages_up", "ipr_dropped"):
        value = getattr(status, name)
        assert isinstance(value, int) and not isinstance(value, bool)
    assert status.rtt_ms is None or isinstance(status.rtt_ms, float)
    for name in ("exit", "gateway", "ipv4", "ipv6"):
        assert getattr(status, name) is None or isinstance(getattr(status, name), str)


def test_gateway_lines_name_each_gateway_once_with_every_url_tried() -> None:
    tried = [
        ("GwA at wss://a:9001/", "SSLCertVerificationError: certificate verify failed"),
        ("GwA at ws://a:9000/", "it only accepts zk-nym credentials (no free bandwidth)"),
        ("GwC at ws://c:9000/", "cannot connect to ws://c:9000/: refused"),
        ("GwB at wss://b:9001/", "connected"),
    ]
    assert gateway_lines(tried) == [
        "gateway GwA at wss://a:9001/: SSLCertVerificationError: certificate verify failed; "
        "at ws://a:9000/: it only accepts zk-nym credentials (no free bandwidth)",
        "gateway GwC at ws://c:9000/: cannot connect: refused",
        "gateway GwB at wss://b:9001/: connected",
    ]
