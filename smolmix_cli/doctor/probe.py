"""The exit probe, sans-io: an IPR v9 Health request on its own LP stream, and its answer.

Health (not Connect) because it allocates nothing at the exit: upstream's IP packet
router answers Ping and Health for any sender, connected or not, inline on the
requesting stream (nymtech/nym daed9cd, service-providers/ip-packet-router/src/
mixnet_listener.rs `on_health_request` -> HealthResponse{build_info, routable: None},
`on_ping_request` -> Pong; `handle_stream_response` wraps the reply as LP Data seq 0),
and v9 requests are read with v8's wire format (messages/request/v9.rs). Health says
more than Ping: the build the exit really runs. Every exit at or above 1.30.0 speaks
v9, so one version is asked of all (the tunnel's v10 try is not what is probed here).

The messages mirror the tunnel's connect (spec 2.4): an empty Open frame carrying the
reply SURBs, then the request as LP Data seq 0 with a couple more, so the exit holds
more SURBs than its reserve of 10 and can answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from smolmix_cli.ipr.errors import IprError
from smolmix_cli.ipr.lp_frame import LpFrame, MsgType
from smolmix_cli.ipr.messages import (
    V9,
    HealthRequest,
    HealthResponse,
    InfoResponse,
    IpPacketRequest,
    IpPacketResponse,
    utc_timestamp,
)

OPEN_REPLY_SURBS = 10
REQUEST_REPLY_SURBS = 2


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message for the exit's IPR, repliable with this many fresh SURBs."""

    payload: bytes
    reply_surbs: int


@dataclass(frozen=True, slots=True)
class Answer:
    """What the exit said: `kind` is report.ANSWER_HEALTH or ANSWER_INFO."""

    kind: str
    detail: str
    routable: bool | None = None


class HealthProbe:
    """One exit's probe: `messages()` to send, `on_reply()` for each reply on its stream."""

    def __init__(self, rng: random.Random) -> None:
        self.stream_id = rng.getrandbits(64)
        self.request_id = rng.getrandbits(64)
        self.answer: Answer | None = None

    def messages(self, wall_clock: datetime) -> list[Outgoing]:
        request = IpPacketRequest(V9, HealthRequest(self.request_id, utc_timestamp(wall_clock)))
        return [
            Outgoing(LpFrame(self.stream_id, MsgType.OPEN, 0).encode(), OPEN_REPLY_SURBS),
            Outgoing(
                LpFrame(self.stream_id, MsgType.DATA, 0, request.encode()).encode(),
                REQUEST_REPLY_SURBS,
            ),
        ]

    def on_reply(self, content: bytes) -> bool:
        """The content of an LP Data frame on this stream; True once it answered the probe."""
        if self.answer is not None:
            return True
        try:
            response = IpPacketResponse.decode(content, layout_version=V9)
        except IprError:
            return False
        if response.request_id != self.request_id:
            return False
        body = response.body
        if isinstance(body, HealthResponse):
            build = body.build_info.build_version
            self.answer = Answer("health", f"build {build[:40]}" if build else "", body.routable)
        elif isinstance(body, InfoResponse):
            text = body.message or body.kind.name.lower()
            if body.request_version or body.response_version:
                text += f" (v{body.request_version} -> v{body.response_version})"
            self.answer = Answer("info", text[:80])
        else:
            return False
        return True


def stream_of(payload: bytes) -> tuple[int, bytes] | None:
    """(stream id, content) of a reply that is an LP Data frame; None for anything else."""
    try:
        frame = LpFrame.decode(payload)
    except IprError:
        return None
    if frame.msg_type is not MsgType.DATA:
        return None
    return frame.stream_id, frame.content
