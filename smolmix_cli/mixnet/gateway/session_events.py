"""What crosses the sans-io boundary of both gateway session machines.

Every input to `GatewayClientSession` or `GatewayConnection` (and `handle_timeout(now)`
once `poll_deadline()` has passed) returns a list of these events; the thin shell that
owns the WebSocket carries them out. Failures travel inside `Dropped` (input discarded,
connection lives on) or `Failed` (the shell closes the socket).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from smolmix_cli.mixnet.errors import MalformedData, MixnetError
from smolmix_cli.mixnet.gateway.frames import RequestKind
from smolmix_cli.mixnet.gateway.messages import HandshakeError, OutOfBandwidth
from smolmix_cli.mixnet.gateway.shared_key import SharedKey

HANDSHAKE_STEP_TIMEOUT_S = 5.0
TIMEOUT_MESSAGE = "timed out waiting for a handshake message"


class GatewaySessionError(MixnetError):
    """A connection-level failure (the shell should close the socket)."""


class GatewayRejected(GatewaySessionError):
    """The gateway answered a control request with an error or a refusal."""


class CredentialsRequired(GatewayRejected):
    """The gateway refused free bandwidth: it takes paid zk-nym tickets only.

    nym-node answers `claimFreeTestnetBandwidth` so when its operator set
    `enforce_zk_nyms` (upstream common/credential-verification/src/error.rs,
    `OnlyCoconutCredentials`). Our key is fine; this gateway is just no use to us.
    """


ONLY_CREDENTIALS_TEXT = "only accepting coconut credentials"
"""The part of nym-node's refusal text that clients match on (the reply is untyped)."""


class UnexpectedResponse(GatewaySessionError, MalformedData):
    """A well-formed message that makes no sense in the current state."""


class HandshakeTimeout(GatewaySessionError):
    """A registration handshake step did not arrive within 5 s."""


class SessionNotReady(GatewaySessionError):
    """Packets offered before the session could forward them."""


@dataclass(frozen=True)
class SendText:
    text: str


@dataclass(frozen=True)
class SendBinary:
    data: bytes


@dataclass(frozen=True)
class Dropped:
    """Bad input that was discarded without ending the connection."""

    error: MixnetError


@dataclass(frozen=True)
class Failed:
    """The connection is finished; the shell closes the socket."""

    error: MixnetError


@dataclass(frozen=True)
class Registered:
    shared_key: SharedKey
    protocol_version: int


@dataclass(frozen=True)
class Authenticated:
    protocol_version: int
    bandwidth_remaining: int


@dataclass(frozen=True)
class BandwidthChanged:
    remaining: int


@dataclass(frozen=True)
class Ready:
    """The client may now hand over packets."""


@dataclass(frozen=True)
class MessageReceived:
    """One message the gateway pushed (an ack or a packet's payload)."""

    message: bytes


@dataclass(frozen=True)
class GatewayErrorReported:
    """A non-fatal error reply (`error` or `typedError`) while forwarding."""

    message: str
    out_of_bandwidth: OutOfBandwidth | None = None


@dataclass(frozen=True)
class ClientRegistered:
    identity: bytes


@dataclass(frozen=True)
class ClientAuthenticated:
    identity: bytes


@dataclass(frozen=True)
class ForwardPacket:
    """A MixPacket the gateway must hand to its next hop (spec §2.8)."""

    kind: RequestKind
    mix_packet: bytes
    client: bytes


ClientEvent = (
    SendText
    | SendBinary
    | Dropped
    | Failed
    | Registered
    | Authenticated
    | BandwidthChanged
    | Ready
    | MessageReceived
    | GatewayErrorReported
)
GatewayEvent = (
    SendText
    | SendBinary
    | Dropped
    | Failed
    | ClientRegistered
    | ClientAuthenticated
    | ForwardPacket
)

_Event = TypeVar("_Event")


def expire_handshake(
    deadline: float | None, now: float, fail: Callable[[MixnetError], list[_Event]]
) -> list[SendText | _Event]:
    """Both ends abort a registration step at its deadline: handshakeError, then `fail`."""
    if deadline is None or now < deadline:
        return []
    notice = SendText(HandshakeError(TIMEOUT_MESSAGE).to_json())
    return [notice, *fail(HandshakeTimeout(TIMEOUT_MESSAGE))]
