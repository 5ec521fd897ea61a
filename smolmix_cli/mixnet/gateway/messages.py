"""JSON control messages of the gateway WebSocket protocol (spec §3.3), both directions.

The wire shape is whatever Rust's serde makes of Nym's enums, so we reproduce its
quirks exactly: an internal `type` tag in camelCase, snake_case fields (camelCase only
inside authenticateV2), byte vectors and ed25519 keys as JSON integer arrays, padded
standard base64 only for authenticateV2's ciphertext and nonce, `"type"` first and the
other fields in declaration order, compact separators. Parsing is as strict as serde
(types, ranges, missing fields, duplicate keys) but ignores unknown extra fields like it.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from smolmix_cli.mixnet.errors import MalformedData

I64_MIN = -(2**63)
I64_MAX = 2**63 - 1
U64_MAX = 2**64 - 1

ED25519_PUBLIC_LEN = 32
ED25519_SIGNATURE_LEN = 64


class MalformedMessage(MalformedData):
    """Text that is not a well-formed control message for this direction."""


class UnknownMessageType(MalformedMessage):
    """A well-formed JSON object whose `type` this side does not know."""


# --------------------------------------------------------------------------- encoding


def _dumps(obj: dict[str, Any]) -> str:
    # serde_json: compact, UTF-8 kept as is, lowercase \u00XX for control characters.
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _Message:
    TYPE: ClassVar[str]

    def _fields(self) -> dict[str, Any]:
        return {}

    def to_json(self) -> str:
        return _dumps({"type": self.TYPE, **self._fields()})


# --------------------------------------------------------------------------- field readers


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise MalformedMessage(f"duplicate field {key!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise MalformedMessage(f"{name} is not valid JSON")


def _load_object(text: str | bytes) -> dict[str, Any]:
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedMessage(f"control message is not UTF-8: {exc}") from None
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except MalformedMessage:
        raise
    except (ValueError, RecursionError) as exc:
        raise MalformedMessage(f"control message is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise MalformedMessage("control message must be a JSON object")
    return obj


_MISSING = object()


def _get(obj: dict[str, Any], key: str, default: Any = _MISSING) -> Any:
    if key in obj:
        return obj[key]
    if default is _MISSING:
        raise MalformedMessage(f"missing field {key!r}")
    return default


def _int(obj: dict[str, Any], key: str, lo: int, hi: int, default: Any = _MISSING) -> int:
    value = _get(obj, key, default)
    if type(value) is not int:
        raise MalformedMessage(f"field {key!r} must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise MalformedMessage(f"field {key!r} = {value} outside [{lo}, {hi}]")
    return value


def _u8(obj: dict[str, Any], key: str, default: Any = _MISSING) -> int:
    return _int(obj, key, 0, 255, default)


def _i64(obj: dict[str, Any], key: str) -> int:
    return _int(obj, key, I64_MIN, I64_MAX)


def _u64(obj: dict[str, Any], key: str) -> int:
    return _int(obj, key, 0, U64_MAX)


def _bool(obj: dict[str, Any], key: str, default: Any = _MISSING) -> bool:
    value = _get(obj, key, default)
    if type(value) is not bool:
        raise MalformedMessage(f"field {key!r} must be a boolean, got {type(value).__name__}")
    return value


def _str(obj: dict[str, Any], key: str) -> str:
    value = _get(obj, key)
    if not isinstance(value, str):
        raise MalformedMessage(f"field {key!r} must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedMessage(f"field {key!r} holds a lone surrogate") from None
    return value


def _bytes(obj: dict[str, Any], key: str, length: int | None = None) -> bytes:
    value = _get(obj, key)
    if not isinstance(value, list):
        raise MalformedMessage(f"field {key!r} must be an array of integers")
    for item in value:
        if type(item) is not int or not 0 <= item <= 255:
            raise MalformedMessage(f"field {key!r} holds {item!r}, not a byte 0..255")
    if length is not None and len(value) != length:
        raise MalformedMessage(f"field {key!r} must hold {length} bytes, got {len(value)}")
    return bytes(value)


def _base64(obj: dict[str, Any], key: str) -> bytes:
    value = _str(obj, key)
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise MalformedMessage(f"field {key!r} is not padded standard base64") from None
    if _b64(raw) != value:  # non-canonical trailing bits, as Rust's base64 rejects them
        raise MalformedMessage(f"field {key!r} is not canonical base64")
    return raw


# --------------------------------------------------------------------------- both directions


@dataclass(frozen=True)
class HandshakePayload(_Message):
    """One registration handshake step; also the client's registration request."""

    TYPE: ClassVar[str] = "handshakePayload"
    protocol_version: int
    data: bytes

    def _fields(self) -> dict[str, Any]:
        return {"protocol_version": self.protocol_version, "data": list(self.data)}

    @classmethod
    def _parse(cls, obj: dict[str, Any]) -> HandshakePayload:
        return cls(_u8(obj, "protocol_version", 0), _bytes(obj, "data"))


@dataclass(frozen=True)
class HandshakeError(_Message):
    """Either side aborting the registration handshake."""

    TYPE: ClassVar[str] = "handshakeError"
    message: str

    def _fields(self) -> dict[str, Any]:
        return {"message": self.message}

    @classmethod
    def _parse(cls, obj: dict[str, Any]) -> HandshakeError:
        return cls(_str(obj, "message"))


# --------------------------------------------------------------------------- client -> gateway


@dataclass(frozen=True)
class SupportedProtocolRequest(_Message):
    TYPE: ClassVar[str] = "supportedProtocol"

    @classmethod
    def _parse(cls, obj: dict[str, Any]) -> SupportedProtocolRequest:
        return cls()


@dataclass(frozen=True)
class ClaimFreeTestnetBandwidth(_Message):
    TYPE: ClassVar[str] = "claimFreeTestnetBandwidth"

    @classmethod
    def _parse(cls, obj: dict[str, Any]) -> ClaimFreeTestnetBandwidth:
        return cls()


@dataclass(frozen=True)
class AuthenticateV2(_Message):
    """Reconnect with a stored key (spec §3.5); the only camelCase struct on the wire."""

    TYPE: ClassVar[str] = "authenticateV2"
    protocol_version: int
    client_identity: bytes
    address_ciphertext: bytes
    nonce: bytes
    request_unix_timestamp: int
    request_signature: bytes

    def signed_bytes(self) -> bytes:
        """version ‖ identity ‖ address ciphertext ‖ nonce ‖ timestamp (u64 BE)."""
        return (
            bytes([self.protocol_version])
            + self.client_identity
            + self.address_ciphertext
            + self.nonce
            + struct.pack(">Q", self.request_unix_timestamp)
        )

    def _fields(self) -> dict[str, Any]:
        return {
            "protocolVersion": self.protocol_version,
            "clientIdentity": list(self.client_identity),
            "addressCiphertext": _b64(self.address_ciphertext),
            "nonce": _b64(self.nonce),
            "requestUnixTimestamp": self.request_unix_timestamp,
            "requestSignature": list(self.request_signature),
        }

    @classmethod
    def _parse(cls, obj: dict[str, Any]) -> AuthenticateV2:
        return cls(
            protocol_version=_u8(obj, "protocolVersion"),
            client_identity=_bytes(obj, "clientIdentity", ED25519_PUBLIC_LEN),
            address_ciphertext=_base64(obj, "addressCiphertext"),
            nonce=_base64(obj, "nonce"),
            request_unix_timestamp=_u64(obj, "requestUnixTimestamp"),
            request_signature=_bytes(obj, "requestSignature", ED25519_SIGNATURE_LEN),
        )


@dataclass(frozen=True)
class EcashCredential(_Message):
    """A zk-nym ticket; serde renames the nonce to `iv` and accepts `nonce` as alias."""

    TYPE: ClassVar[str] = "ecashCredential"
    enc_credential: bytes
    nonce: bytes

    def _fields(self) -> dict[str, Any]:
        return {"enc_credential": list(self.enc_credential), "iv": list(self.nonce)}

    @classmethod
    def _parse(cls, obj: dict[str, Any]) -> EcashCredential:
        if "iv" in obj and "nonce" in obj:
            raise MalformedMessage("duplicate field 'iv' (given as both iv and nonce)")
        return cls(_bytes(obj, "enc_credential"), _bytes(obj, "iv" if "iv" in obj else "nonce"))


@dataclass(frozen=True)
class UpgradeModeJwt(_Message):
    TYPE: ClassVar[str] = "upgradeModeJWT"
    token: str

    def _fields(self) -> dict[str, Any]:
        return {"token": self.token}

    @classmethod
    def _parse(cls, obj: dict[str, Any]) -> UpgradeModeJwt:
        return cls(_str(obj, "token"))


@dataclass(frozen=True)
class EncryptedRequest(_Message):
    TYPE: ClassVar[str] = "encryptedRequest"
    ciphertext: bytes
    nonce: bytes

    def _fields(self) -> dict[str, Any]:
        return {"ciphertext": list(self.ciphertext), "nonce": list(self.nonce)}

    @classmethod
    def _parse(cls, obj: dict[str, Any]) -> EncryptedRequest:
        return cls(_bytes(obj, "ciphertext"), _bytes(obj, "nonce"))


@dataclass(frozen=True)
class LegacyAuthenticate(_Message):
    """v1 authentication; parsed only so the gateway can refuse it by name."""

    TYPE: ClassVar[str] = "authenticate"
    protocol_version: int | None
    address: str
    enc_address: str
    iv: str

    def _fields(self) -> dict[str, Any]:
        return {
            "protocol_version": self.protocol_version,
            "address": self.address,
            "enc_address": self.enc_address,
            "iv": self.iv,
        }

    @classmethod
    def _parse(cls, obj: dict[str, Any]) -> LegacyAuthenticate:
        version = None if obj.get("protocol_version") is None else _u8(obj, "protocol_version")
        return cls(version, _str(obj, "address"), _str(obj, "enc_address"), _str(obj, "iv"))


@dataclass(frozen=True)
class LegacyBandwidthCredential(_Message):
    """Coconut credentials (v1 and v2); no longer accepted by any gateway."""

    TYPE: ClassVar[str] = "bandwidthCredential"
    enc_credential: bytes
    iv: bytes
    v2: bool = False

    def to_json(self) -> str:
        kind = "bandwidthCredentialV2" if self.v2 else self.TYPE
        return _dumps(
            {"type": kind, "enc_credential": list(self.enc_credential), "iv": list(self.iv)}
        )

    @classmethod
    def _parse(cls, obj: dict[str, Any]) -> LegacyBandwidthCredential:
        v2 = obj["type"] == "bandwidthCredentialV2"
        return cls(_bytes(obj, "enc_credential"), _bytes(obj, "iv"), v2)


ClientMessage = (
    SupportedProtocolRequest
    | HandshakePayload
    | HandshakeError
    | AuthenticateV2
    | ClaimFreeTestnetBandwidth
    | EcashCredential
    | UpgradeModeJwt
    | EncryptedRequest
    | LegacyAuthenticate
    | LegacyBandwidthCredential
)

_CLIENT_PARSERS: dict[str, Callable[[dict[str, Any]], ClientMessage]] = {
    "supportedProtocol": SupportedProtocolRequest._parse,
    "handshakePayload": HandshakePayload._parse,
    "registerHandshakeInitRequest": HandshakePayload._parse,
    "handshakeError": HandshakeError._parse,
    "authenticateV2": AuthenticateV2._parse,
    "claimFreeTestnetBandwidth": ClaimFreeTestnetBandwidth._parse,
    "ecashCredential": EcashCredential._parse,
    "upgradeModeJWT": UpgradeModeJwt._parse,
    "encryptedRequest": EncryptedRequest._parse,
    "authenticate": LegacyAuthenticate._parse,
    "bandwidthCredential": LegacyBandwidthCredential._parse,
    "bandwidthCredentialV2": LegacyBandwidthCredential._parse,
}


# --------------------------------------------------------------------------- gateway -> client


@dataclass(frozen=True)
class SupportedProtocol(_Message):
    TYPE: ClassVar[str] = "supportedProtocol"
    version: int

    def _fields(self) -> dict[str, Any]:
        return {"version": self.version}

    @classmethod
    def _parse(cls, obj: dict[str, Any]) -> SupportedProtocol:
        return cls(_u8(obj, "version"))


@dataclass(frozen=True)
class Register(_Message):
    TYPE: ClassVar[str] = "register"
    protocol_version: int
    status: bool
    upgrade_mode: bool = False

    def _fields(self) -> dict[str, Any]:
        return {
            "protocol_version": self.protocol_version,
            "status": self.status,
            "upgrade_mode": self.upgrade_mode,
        }

    @classmethod
    def _parse(cls, obj: dict[str, Any]) -> Register:
        return cls(
            _u8(obj, "protocol_version", 0), _bool(obj, "status"), _bool(obj, "upgrade_mode", False)
        )


@dataclass(frozen=True)
class Authenticate(_Message):
    TYPE: ClassVar[str] = "authenticate"
    protocol_version: int
    status: bool
    bandwidth_remaining: int
    upgrade_mode: bool = False

    def _fields(self) -> dict[str, Any]:
        return {
            "protocol_version": self.protocol_version,
            "status": self.status,
            "bandwidth_remaining": self.bandwidth_remaining,
            "upgrade_mode": self.upgrade_mode,
        }

    @classmethod
    def _parse(cls, obj: dict[str, Any]) -> Authenticate:
        return cls(
            _u8(obj, "protocol_version", 0),
            _bool(obj, "status"),
            _i64(obj, "bandwidth_remaining"),
            _bool(obj, "upgrade_mode", False),
        )


@dataclass(frozen=True)
class Bandwidth(_Message):
    TYPE: ClassVar[str] = "bandwidth"
    available_total: int
    upgrade_mode: bool = False

    def _fields(self) -> dict[str, Any]:
        return {"available_total": self.available_total, "upgrade_mode": self.upgrade_mode}

    @classmethod
    def _parse(cls, obj: dict[str, Any]) -> Bandwidth:
        return cls(_i64(obj, "available_total"), _bool(obj, "upgrade_mode", False))


@dataclass(frozen=True)
class Send(_Message):
    """The gateway's answer to each forwarded binary packet."""

    TYPE: ClassVar[str] = "send"
    remaining_bandwidth: int
    upgrade_mode: bool = False

    def _fields(self) -> dict[str, Any]:
        return {"remaining_bandwidth": self.remaining_bandwidth, "upgrade_mode": self.upgrade_mode}

    @classmethod
    def _parse(cls, obj: dict[str, Any]) -> Send:
        return cls(_i64(obj, "remaining_bandwidth"), _bool(obj, "upgrade_mode", False))


@dataclass(frozen=True)
class EncryptedResponse(_Message):
    TYPE: ClassVar[str] = "encryptedResponse"
    ciphertext: bytes
    nonce: bytes

    def _fields(self) -> dict[str, Any]:
        return {"ciphertext": list(self.ciphertext), "nonce": list(self.nonce)}

    @classmethod
    def _parse(cls, obj: dict[str, Any]) -> EncryptedResponse:
        return cls(_bytes(obj, "ciphertext"), _bytes(obj, "nonce"))


@dataclass(frozen=True)
class ErrorResponse(_Message):
    """The gateway's untyped error; its text is for humans only."""

    TYPE: ClassVar[str] = "error"
    message: str

    def _fields(self) -> dict[str, Any]:
        return {"message": self.message}

    @classmethod
    def _parse(cls, obj: dict[str, Any]) -> ErrorResponse:
        return cls(_str(obj, "message"))


@dataclass(frozen=True)
class OutOfBandwidth:
    required: int
    available: int


@dataclass(frozen=True)
class TicketReplay:
    pass


@dataclass(frozen=True)
class TypedError(_Message):
    """Errors a client matches on: `out_of_bandwidth` or `ticket_replay` (snake_case)."""

    TYPE: ClassVar[str] = "typedError"
    error: OutOfBandwidth | TicketReplay = field(default_factory=TicketReplay)

    def _fields(self) -> dict[str, Any]:
        if isinstance(self.error, OutOfBandwidth):
            inner = {"required": self.error.required, "available": self.error.available}
            return {"error": {"out_of_bandwidth": inner}}
        return {"error": "ticket_replay"}

    @classmethod
    def _parse(cls, obj: dict[str, Any]) -> TypedError:
        error = _get(obj, "error")
        if error == "ticket_replay":
            return cls(TicketReplay())
        if isinstance(error, dict) and len(error) == 1 and "out_of_bandwidth" in error:
            inner = error["out_of_bandwidth"]
            if not isinstance(inner, dict):
                raise MalformedMessage("out_of_bandwidth must be an object")
            return cls(OutOfBandwidth(_i64(inner, "required"), _i64(inner, "available")))
        raise MalformedMessage(f"unknown typed error {error!r:.80}")


ServerMessage = (
    SupportedProtocol
    | Register
    | Authenticate
    | Bandwidth
    | Send
    | EncryptedResponse
    | ErrorResponse
    | TypedError
    | HandshakePayload
    | HandshakeError
)

_SERVER_PARSERS: dict[str, Callable[[dict[str, Any]], ServerMessage]] = {
    "supportedProtocol": SupportedProtocol._parse,
    "register": Register._parse,
    "authenticate": Authenticate._parse,
    "bandwidth": Bandwidth._parse,
    "send": Send._parse,
    "encryptedResponse": EncryptedResponse._parse,
    "error": ErrorResponse._parse,
    "typedError": TypedError._parse,
    "handshakePayload": HandshakePayload._parse,
    "handshakeError": HandshakeError._parse,
}


# --------------------------------------------------------------------------- entry points


def _dispatch(
    text: str | bytes, parsers: dict[str, Callable[[dict[str, Any]], Any]], side: str
) -> Any:
    obj = _load_object(text)
    kind = _get(obj, "type")
    if not isinstance(kind, str):
        raise MalformedMessage("field 'type' must be a string")
    parser = parsers.get(kind)
    if parser is None:
        raise UnknownMessageType(f"unknown {side} message type {kind!r:.60}")
    return parser(obj)


def parse_client_message(text: str | bytes) -> ClientMessage:
    """A text frame the client sent (what a gateway reads)."""
    msg: ClientMessage = _dispatch(text, _CLIENT_PARSERS, "client")
    return msg


def parse_server_message(text: str | bytes) -> ServerMessage:
    """A text frame the gateway sent (what a client reads)."""
    msg: ServerMessage = _dispatch(text, _SERVER_PARSERS, "gateway")
    return msg
