"""IPR requests and responses, versions 8, 9 and 10 (spec §5.1-5.4, §12).

v8, v9 and v10 share one layout; only the version byte differs, except that a
v10 ConnectSuccess carries a trailing `mtu` varint. Requests start with the
2-byte Protocol header `[version, service provider type = 1]`, responses with a
single version byte. The version byte says how a payload travels: v9 and up
only inside an LP frame, v8 and below only raw.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from ipaddress import IPv4Address, IPv6Address
from typing import TypeVar

from smolmix_cli.ipr.bincode import Reader, Writer
from smolmix_cli.ipr.errors import BincodeError, MalformedIprMessage, UnsupportedVersion

V8 = 8
V9 = 9
V10 = 10
MAX_NON_STREAM_VERSION = 8
SPHINX_STREAM_VERSION_THRESHOLD = 9
SUPPORTED_VERSIONS = frozenset({V8, V9, V10})
MTU_VERSION = V10  # first version whose ConnectSuccess reports the exit's MTU
MAX_U64 = (1 << 64) - 1
_E = TypeVar("_E", bound=enum.IntEnum)


class ServiceProviderType(enum.IntEnum):
    NETWORK_REQUESTER = 0
    IP_PACKET_ROUTER = 1
    AUTHENTICATOR = 2


# --- the timestamp: time 0.3's OffsetDateTime as a 9-field tuple ----------------------------


def days_in_year(year: int) -> int:
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 366 if leap else 365


@dataclass(frozen=True, slots=True)
class OffsetDateTime:
    """The request timestamp exactly as it travels: (year, day of year, h, m, s, ns, offset h/m/s)."""

    year: int
    ordinal: int
    hour: int
    minute: int
    second: int
    nanosecond: int
    offset_hours: int = 0
    offset_minutes: int = 0
    offset_seconds: int = 0

    def __post_init__(self) -> None:
        # the ranges time 0.3 enforces when it deserializes (default ±9999 year range)
        checks = (
            -9999 <= self.year <= 9999,
            1 <= self.ordinal <= days_in_year(self.year),
            0 <= self.hour < 24,
            0 <= self.minute < 60,
            0 <= self.second < 60,
            0 <= self.nanosecond < 1_000_000_000,
            -25 <= self.offset_hours <= 25,
            -59 <= self.offset_minutes <= 59,
            -59 <= self.offset_seconds <= 59,
        )
        if not all(checks):
            raise MalformedIprMessage(f"timestamp field out of range: {self!r}")

    @classmethod
    def from_datetime(cls, moment: datetime, *, whole_milliseconds: bool = False) -> OffsetDateTime:
        """From an aware datetime; the published client sends whole milliseconds."""
        if moment.tzinfo is None:
            raise MalformedIprMessage("timestamp needs a timezone")
        offset = moment.utcoffset() or timedelta(0)
        total = int(offset.total_seconds())
        sign = -1 if total < 0 else 1
        hours, rest = divmod(abs(total), 3600)
        minutes, seconds = divmod(rest, 60)
        micros = moment.microsecond
        if whole_milliseconds:
            micros -= micros % 1000
        return cls(
            moment.year,
            moment.timetuple().tm_yday,
            moment.hour,
            moment.minute,
            moment.second,
            micros * 1000,
            sign * hours,
            sign * minutes,
            sign * seconds,
        )

    def to_datetime(self) -> datetime:
        """As an aware datetime (sub-microsecond digits dropped)."""
        offset = timedelta(
            hours=self.offset_hours, minutes=self.offset_minutes, seconds=self.offset_seconds
        )
        try:
            day = datetime(self.year, 1, 1, tzinfo=timezone(offset)) + timedelta(
                days=self.ordinal - 1
            )
        except (ValueError, OverflowError) as exc:
            raise MalformedIprMessage(f"timestamp not representable: {exc}") from None
        return day.replace(
            hour=self.hour,
            minute=self.minute,
            second=self.second,
            microsecond=self.nanosecond // 1000,
        )

    def write(self, w: Writer) -> None:
        w.i32(self.year)
        w.u16(self.ordinal)
        w.u8(self.hour)
        w.u8(self.minute)
        w.u8(self.second)
        w.u32(self.nanosecond)
        w.i8(self.offset_hours)
        w.i8(self.offset_minutes)
        w.i8(self.offset_seconds)

    @classmethod
    def read(cls, r: Reader) -> OffsetDateTime:
        return cls(r.i32(), r.u16(), r.u8(), r.u8(), r.u8(), r.u32(), r.i8(), r.i8(), r.i8())


def utc_timestamp(moment: datetime) -> OffsetDateTime:
    """The timestamp the published client puts in a request: UTC, whole milliseconds."""
    return OffsetDateTime.from_datetime(moment.astimezone(UTC), whole_milliseconds=True)


def _check_u64(value: int, what: str) -> None:
    if not 0 <= value <= MAX_U64:
        raise MalformedIprMessage(f"{what} must fit in u64")


# --- requests ---------------------------------------------------------------------------------


class RequestKind(enum.IntEnum):
    """IpPacketRequestData variants."""

    DATA = 0
    CONTROL = 1


class ControlRequestKind(enum.IntEnum):
    CONNECT = 0
    DISCONNECT = 1
    PING = 2
    HEALTH = 3


@dataclass(frozen=True, slots=True)
class DataRequest:
    """IP packets, as one MultiIpPacketCodec bundle (see `bundle.py`)."""

    ip_packets: bytes


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """Ask for an address pair; `buffer_timeout` (ms) sets the exit's reply bundling period."""

    request_id: int
    timestamp: OffsetDateTime
    buffer_timeout: int | None = None

    def __post_init__(self) -> None:
        _check_u64(self.request_id, "request id")
        if self.buffer_timeout is not None:
            _check_u64(self.buffer_timeout, "buffer timeout")


@dataclass(frozen=True, slots=True)
class DisconnectRequest:
    request_id: int
    timestamp: OffsetDateTime

    def __post_init__(self) -> None:
        _check_u64(self.request_id, "request id")


@dataclass(frozen=True, slots=True)
class PingRequest:
    request_id: int
    timestamp: OffsetDateTime

    def __post_init__(self) -> None:
        _check_u64(self.request_id, "request id")


@dataclass(frozen=True, slots=True)
class HealthRequest:
    request_id: int
    timestamp: OffsetDateTime

    def __post_init__(self) -> None:
        _check_u64(self.request_id, "request id")


ControlRequest = ConnectRequest | DisconnectRequest | PingRequest | HealthRequest
RequestBody = DataRequest | ControlRequest

_CONTROL_REQUEST_KIND: dict[type, ControlRequestKind] = {
    ConnectRequest: ControlRequestKind.CONNECT,
    DisconnectRequest: ControlRequestKind.DISCONNECT,
    PingRequest: ControlRequestKind.PING,
    HealthRequest: ControlRequestKind.HEALTH,
}


def _check_version(version: int) -> None:
    if version not in SUPPORTED_VERSIONS:
        raise UnsupportedVersion(f"IPR version {version} is not spoken here (8, 9, 10 are)")


@dataclass(frozen=True, slots=True)
class IpPacketRequest:
    """`Protocol{version, IpPacketRouter}` then the request."""

    version: int
    body: RequestBody

    def __post_init__(self) -> None:
        _check_version(self.version)

    @property
    def request_id(self) -> int | None:
        return None if isinstance(self.body, DataRequest) else self.body.request_id

    def encode(self) -> bytes:
        w = Writer()
        w.u8(self.version)
        w.variant(ServiceProviderType.IP_PACKET_ROUTER)
        body = self.body
        if isinstance(body, DataRequest):
            w.variant(RequestKind.DATA)
            w.byte_vec(body.ip_packets)
            return w.getvalue()
        w.variant(RequestKind.CONTROL)
        w.variant(_CONTROL_REQUEST_KIND[type(body)])
        w.u64(body.request_id)
        if isinstance(body, ConnectRequest):
            w.option_tag(body.buffer_timeout is not None)
            if body.buffer_timeout is not None:
                w.u64(body.buffer_timeout)
        body.timestamp.write(w)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> IpPacketRequest:
        """Parse one request; the whole payload must be consumed."""
        try:
            return cls._decode(Reader(data))
        except BincodeError as exc:
            raise MalformedIprMessage(f"bad IPR request: {exc}") from exc

    @classmethod
    def _decode(cls, r: Reader) -> IpPacketRequest:
        version = r.u8()
        _check_version(version)
        provider = r.variant()
        if provider != ServiceProviderType.IP_PACKET_ROUTER:
            raise MalformedIprMessage(f"service provider type {provider} is not IpPacketRouter")
        kind = r.variant()
        body: RequestBody
        if kind == RequestKind.DATA:
            body = DataRequest(r.byte_vec())
        elif kind == RequestKind.CONTROL:
            control = r.variant()
            request_id = r.u64()
            if control == ControlRequestKind.CONNECT:
                buffer_timeout = r.u64() if r.option_tag() else None
                body = ConnectRequest(request_id, OffsetDateTime.read(r), buffer_timeout)
            elif control == ControlRequestKind.DISCONNECT:
                body = DisconnectRequest(request_id, OffsetDateTime.read(r))
            elif control == ControlRequestKind.PING:
                body = PingRequest(request_id, OffsetDateTime.read(r))
            elif control == ControlRequestKind.HEALTH:
                body = HealthRequest(request_id, OffsetDateTime.read(r))
            else:
                raise MalformedIprMessage(f"unknown control request {control}")
        else:
            raise MalformedIprMessage(f"unknown request kind {kind}")
        r.finish()
        return cls(version, body)


# --- responses --------------------------------------------------------------------------------


class ControlResponseKind(enum.IntEnum):
    CONNECT = 0
    DISCONNECT = 1
    UNREQUESTED_DISCONNECT = 2
    PONG = 3
    HEALTH = 4
    INFO = 5


class ConnectFailureReason(enum.IntEnum):
    CLIENT_ALREADY_CONNECTED = 0
    NO_AVAILABLE_IP = 1
    OTHER = 2  # carries a message


class DisconnectFailureReason(enum.IntEnum):
    CLIENT_NOT_CONNECTED = 0
    OTHER = 1  # carries a message


class UnrequestedDisconnectReason(enum.IntEnum):
    CLIENT_MIXNET_TRAFFIC_TIMEOUT = 0
    CLIENT_TUN_TRAFFIC_TIMEOUT = 1
    OTHER = 2  # carries a message


class InfoKind(enum.IntEnum):
    GENERIC = 0  # msg
    VERSION_MISMATCH = 1  # request_version, response_version
    EXIT_POLICY_FILTER_CHECK_FAILED = 2  # dst in msg


class InfoLevel(enum.IntEnum):
    INFO = 0
    WARN = 1
    ERROR = 2


BUILD_INFO_FIELDS = (
    "binary_name",
    "build_timestamp",
    "build_version",
    "commit_sha",
    "commit_timestamp",
    "commit_branch",
    "rustc_version",
    "rustc_channel",
    "cargo_profile",
    "cargo_triple",
)


@dataclass(frozen=True, slots=True)
class BuildInfo:
    """BinaryBuildInformationOwned: ten strings in this order."""

    binary_name: str = ""
    build_timestamp: str = ""
    build_version: str = ""
    commit_sha: str = ""
    commit_timestamp: str = ""
    commit_branch: str = ""
    rustc_version: str = ""
    rustc_channel: str = ""
    cargo_profile: str = ""
    cargo_triple: str = ""


@dataclass(frozen=True, slots=True)
class DataResponse:
    """IP packets for the client, as one bundle."""

    ip_packet: bytes


@dataclass(frozen=True, slots=True)
class ConnectSuccess:
    """The allocated pair; `mtu` is present exactly in v10 and later replies."""

    request_id: int
    ipv4: IPv4Address
    ipv6: IPv6Address
    mtu: int | None = None

    def __post_init__(self) -> None:
        _check_u64(self.request_id, "request id")
        if self.mtu is not None and not 0 <= self.mtu <= 0xFFFFFFFF:
            raise MalformedIprMessage("mtu must fit in u32")


def _check_message(reason: enum.IntEnum, other: enum.IntEnum, message: str) -> None:
    if message and reason != other:
        raise MalformedIprMessage(f"{reason.name} carries no message")


@dataclass(frozen=True, slots=True)
class ConnectFailure:
    request_id: int
    reason: ConnectFailureReason
    message: str = ""

    def __post_init__(self) -> None:
        _check_u64(self.request_id, "request id")
        _check_message(self.reason, ConnectFailureReason.OTHER, self.message)


@dataclass(frozen=True, slots=True)
class DisconnectResponse:
    """Success when `failure` is None."""

    request_id: int
    failure: DisconnectFailureReason | None = None
    message: str = ""

    def __post_init__(self) -> None:
        _check_u64(self.request_id, "request id")
        if self.failure is None:
            if self.message:
                raise MalformedIprMessage("a successful disconnect carries no message")
        else:
            _check_message(self.failure, DisconnectFailureReason.OTHER, self.message)


@dataclass(frozen=True, slots=True)
class UnrequestedDisconnect:
    reason: UnrequestedDisconnectReason
    message: str = ""

    def __post_init__(self) -> None:
        _check_message(self.reason, UnrequestedDisconnectReason.OTHER, self.message)


@dataclass(frozen=True, slots=True)
class PongResponse:
    request_id: int

    def __post_init__(self) -> None:
        _check_u64(self.request_id, "request id")


@dataclass(frozen=True, slots=True)
class HealthResponse:
    request_id: int
    build_info: BuildInfo
    routable: bool | None = None

    def __post_init__(self) -> None:
        _check_u64(self.request_id, "request id")


@dataclass(frozen=True, slots=True)
class InfoResponse:
    """Generic (msg), VersionMismatch (two versions) or ExitPolicyFilterCheckFailed (dst in msg)."""

    request_id: int
    kind: InfoKind
    level: InfoLevel
    message: str = ""
    request_version: int = 0
    response_version: int = 0

    def __post_init__(self) -> None:
        _check_u64(self.request_id, "request id")
        if self.kind == InfoKind.VERSION_MISMATCH:
            if self.message:
                raise MalformedIprMessage("a version mismatch carries no message")
            if not (0 <= self.request_version <= 255 and 0 <= self.response_version <= 255):
                raise MalformedIprMessage("versions must fit in u8")
        elif self.request_version or self.response_version:
            raise MalformedIprMessage(f"{self.kind.name} carries no versions")


ControlResponse = (
    ConnectSuccess
    | ConnectFailure
    | DisconnectResponse
    | UnrequestedDisconnect
    | PongResponse
    | HealthResponse
    | InfoResponse
)
ResponseBody = DataResponse | ControlResponse


def _write_reason(w: Writer, reason: enum.IntEnum, other: enum.IntEnum, message: str) -> None:
    w.variant(reason)
    if reason == other:
        w.string(message)


def _read_enum(r: Reader, kind: type[_E]) -> _E:
    index = r.variant()
    try:
        return kind(index)
    except ValueError:
        raise MalformedIprMessage(f"unknown {kind.__name__} variant {index}") from None


@dataclass(frozen=True, slots=True)
class IpPacketResponse:
    """`version` then the response. No service-provider byte on responses."""

    version: int
    body: ResponseBody

    def __post_init__(self) -> None:
        # any byte may arrive (see `decode`'s layout_version); `encode` is strict
        if not 0 <= self.version <= 0xFF:
            raise MalformedIprMessage("version must fit in u8")

    @property
    def request_id(self) -> int | None:
        body = self.body
        if isinstance(body, DataResponse | UnrequestedDisconnect):
            return None
        return body.request_id

    def encode(self) -> bytes:
        _check_version(self.version)
        body = self.body
        if isinstance(body, ConnectSuccess) and (body.mtu is not None) != (
            self.version >= MTU_VERSION
        ):
            raise MalformedIprMessage(f"ConnectSuccess carries an mtu exactly from v{MTU_VERSION}")
        w = Writer()
        w.u8(self.version)
        if isinstance(body, DataResponse):
            w.variant(RequestKind.DATA)
            w.byte_vec(body.ip_packet)
            return w.getvalue()
        w.variant(RequestKind.CONTROL)
        if isinstance(body, ConnectSuccess | ConnectFailure):
            w.variant(ControlResponseKind.CONNECT)
            w.u64(body.request_id)
            if isinstance(body, ConnectSuccess):
                w.variant(0)
                w.raw(body.ipv4.packed)
                w.raw(body.ipv6.packed)
                if body.mtu is not None:
                    w.u32(body.mtu)
            else:
                w.variant(1)
                _write_reason(w, body.reason, ConnectFailureReason.OTHER, body.message)
        elif isinstance(body, DisconnectResponse):
            w.variant(ControlResponseKind.DISCONNECT)
            w.u64(body.request_id)
            if body.failure is None:
                w.variant(0)
            else:
                w.variant(1)
                _write_reason(w, body.failure, DisconnectFailureReason.OTHER, body.message)
        elif isinstance(body, UnrequestedDisconnect):
            w.variant(ControlResponseKind.UNREQUESTED_DISCONNECT)
            _write_reason(w, body.reason, UnrequestedDisconnectReason.OTHER, body.message)
        elif isinstance(body, PongResponse):
            w.variant(ControlResponseKind.PONG)
            w.u64(body.request_id)
        elif isinstance(body, HealthResponse):
            w.variant(ControlResponseKind.HEALTH)
            w.u64(body.request_id)
            for name in BUILD_INFO_FIELDS:
                w.string(getattr(body.build_info, name))
            w.option_tag(body.routable is not None)
            if body.routable is not None:
                w.boolean(body.routable)
        else:
            w.variant(ControlResponseKind.INFO)
            w.u64(body.request_id)
            w.variant(body.kind)
            if body.kind == InfoKind.VERSION_MISMATCH:
                w.u8(body.request_version)
                w.u8(body.response_version)
            else:
                w.string(body.message)
            w.variant(body.level)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes, *, layout_version: int | None = None) -> IpPacketResponse:
        """Parse one response; the whole payload must be consumed.

        `layout_version` reads the body as that version whatever the version byte
        says (the published client reads every reply on its v9 path as v9).
        """
        try:
            return cls._decode(Reader(data), layout_version)
        except BincodeError as exc:
            raise MalformedIprMessage(f"bad IPR response: {exc}") from exc

    @classmethod
    def _decode(cls, r: Reader, layout_version: int | None) -> IpPacketResponse:
        if r.remaining == 0:
            raise MalformedIprMessage("empty IPR response: no version byte")
        version = r.u8()
        layout = version if layout_version is None else layout_version
        _check_version(layout)  # with an override, the received byte itself is not checked
        kind = r.variant()
        body: ResponseBody
        if kind == RequestKind.DATA:
            body = DataResponse(r.byte_vec())
        elif kind == RequestKind.CONTROL:
            body = cls._decode_control(r, layout)
        else:
            raise MalformedIprMessage(f"unknown response kind {kind}")
        r.finish()
        return cls(version, body)

    @staticmethod
    def _decode_control(r: Reader, layout: int) -> ControlResponse:
        control = _read_enum(r, ControlResponseKind)
        if control == ControlResponseKind.UNREQUESTED_DISCONNECT:
            reason = _read_enum(r, UnrequestedDisconnectReason)
            other = UnrequestedDisconnectReason.OTHER
            return UnrequestedDisconnect(reason, r.string() if reason == other else "")
        request_id = r.u64()
        if control == ControlResponseKind.CONNECT:
            reply = r.variant()
            if reply == 0:
                ipv4 = IPv4Address(r.raw(4))
                ipv6 = IPv6Address(r.raw(16))
                mtu = r.u32() if layout >= MTU_VERSION else None
                return ConnectSuccess(request_id, ipv4, ipv6, mtu)
            if reply == 1:
                failed = _read_enum(r, ConnectFailureReason)
                other_c = ConnectFailureReason.OTHER
                return ConnectFailure(request_id, failed, r.string() if failed == other_c else "")
            raise MalformedIprMessage(f"unknown connect reply {reply}")
        if control == ControlResponseKind.DISCONNECT:
            reply = r.variant()
            if reply == 0:
                return DisconnectResponse(request_id)
            if reply == 1:
                failure = _read_enum(r, DisconnectFailureReason)
                other_d = DisconnectFailureReason.OTHER
                return DisconnectResponse(
                    request_id, failure, r.string() if failure == other_d else ""
                )
            raise MalformedIprMessage(f"unknown disconnect reply {reply}")
        if control == ControlResponseKind.PONG:
            return PongResponse(request_id)
        if control == ControlResponseKind.HEALTH:
            info = BuildInfo(*(r.string() for _ in BUILD_INFO_FIELDS))
            routable = r.boolean() if r.option_tag() else None
            return HealthResponse(request_id, info, routable)
        info_kind = _read_enum(r, InfoKind)
        if info_kind == InfoKind.VERSION_MISMATCH:
            request_version, response_version = r.u8(), r.u8()
            level = _read_enum(r, InfoLevel)
            return InfoResponse(
                request_id,
                info_kind,
                level,
                request_version=request_version,
                response_version=response_version,
            )
        message = r.string()
        return InfoResponse(request_id, info_kind, _read_enum(r, InfoLevel), message)
