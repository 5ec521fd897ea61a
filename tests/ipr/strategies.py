"""Hypothesis strategies for IPR values."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from hypothesis import strategies as st

from smolmix_cli.ipr.lp_frame import LpFrame, MsgType
from smolmix_cli.ipr.messages import (
    V10,
    BuildInfo,
    ConnectFailure,
    ConnectFailureReason,
    ConnectRequest,
    ConnectSuccess,
    DataRequest,
    DataResponse,
    DisconnectFailureReason,
    DisconnectRequest,
    DisconnectResponse,
    HealthRequest,
    HealthResponse,
    InfoKind,
    InfoLevel,
    InfoResponse,
    IpPacketRequest,
    IpPacketResponse,
    OffsetDateTime,
    PingRequest,
    PongResponse,
    ResponseBody,
    UnrequestedDisconnect,
    UnrequestedDisconnectReason,
    days_in_year,
)

u64 = st.integers(0, (1 << 64) - 1)
versions = st.sampled_from([8, 9, 10])
packets = st.binary(max_size=300)


@st.composite
def timestamps(draw: st.DrawFn) -> OffsetDateTime:
    year = draw(st.integers(-9999, 9999))
    hours = draw(st.integers(-25, 25))
    return OffsetDateTime(
        year,
        draw(st.integers(1, days_in_year(year))),
        draw(st.integers(0, 23)),
        draw(st.integers(0, 59)),
        draw(st.integers(0, 59)),
        draw(st.integers(0, 999_999_999)),
        hours,
        draw(st.integers(-59, 59)),
        draw(st.integers(-59, 59)),
    )


request_bodies = st.one_of(
    st.builds(DataRequest, packets),
    st.builds(ConnectRequest, u64, timestamps(), st.none() | u64),
    st.builds(DisconnectRequest, u64, timestamps()),
    st.builds(PingRequest, u64, timestamps()),
    st.builds(HealthRequest, u64, timestamps()),
)
requests = st.builds(IpPacketRequest, versions, request_bodies)

text = st.text(max_size=40)
ipv4s = st.builds(IPv4Address, st.integers(0, (1 << 32) - 1))
ipv6s = st.builds(IPv6Address, st.integers(0, (1 << 128) - 1))


def _with_message(reason: object, other: object, message: str) -> str:
    return message if reason == other else ""


@st.composite
def responses(draw: st.DrawFn) -> IpPacketResponse:
    version = draw(versions)
    request_id = draw(u64)
    kind = draw(st.integers(0, 7))
    body: ResponseBody
    if kind == 0:
        body = DataResponse(draw(packets))
    elif kind == 1:
        mtu = draw(st.integers(0, 0xFFFFFFFF)) if version >= V10 else None
        body = ConnectSuccess(request_id, draw(ipv4s), draw(ipv6s), mtu)
    elif kind == 2:
        reason = draw(st.sampled_from(ConnectFailureReason))
        message = _with_message(reason, ConnectFailureReason.OTHER, draw(text))
        body = ConnectFailure(request_id, reason, message)
    elif kind == 3:
        failure = draw(st.none() | st.sampled_from(DisconnectFailureReason))
        message = _with_message(failure, DisconnectFailureReason.OTHER, draw(text))
        body = DisconnectResponse(request_id, failure, message)
    elif kind == 4:
        why = draw(st.sampled_from(UnrequestedDisconnectReason))
        body = UnrequestedDisconnect(
            why, _with_message(why, UnrequestedDisconnectReason.OTHER, draw(text))
        )
    elif kind == 5:
        body = PongResponse(request_id)
    elif kind == 6:
        info = BuildInfo(*draw(st.lists(text, min_size=10, max_size=10)))
        body = HealthResponse(request_id, info, draw(st.none() | st.booleans()))
    else:
        info_kind = draw(st.sampled_from(InfoKind))
        level = draw(st.sampled_from(InfoLevel))
        if info_kind == InfoKind.VERSION_MISMATCH:
            a, b = draw(st.integers(0, 255)), draw(st.integers(0, 255))
            body = InfoResponse(request_id, info_kind, level, request_version=a, response_version=b)
        else:
            body = InfoResponse(request_id, info_kind, level, draw(text))
    return IpPacketResponse(version, body)


frames = st.builds(
    LpFrame,
    u64,
    st.sampled_from(MsgType),
    st.integers(0, (1 << 32) - 1),
    st.binary(max_size=64),
)
