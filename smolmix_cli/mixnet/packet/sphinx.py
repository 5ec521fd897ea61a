"""Sphinx packets as Nym's `sphinx-packet` 0.6.0 builds and processes them (spec §1).

Sans-io: bytes in, bytes and typed results out. Senders build headers for 1..5 hops and
Lioness-layer the payload; nodes process one hop (MAC check, replay tag, routing-block shift,
key blinding with X25519, payload peel). Versions 258 (explicit 192-byte payload keys) and
259 (16-byte payload key seeds) are built and processed; anything else is `UnknownVersion`.
Randomness (ephemeral secret, final-block padding) is injectable so vectors reproduce.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.bindings import crypto_scalarmult, crypto_scalarmult_base
from nacl.exceptions import CryptoError

from smolmix_cli.mixnet.errors import IntegrityError, InvalidKey, MalformedData, ReplayDetected
from smolmix_cli.mixnet.packet.lioness import Lioness

# --- constants (spec §1.1) -------------------------------------------------------------
SECURITY_PARAMETER = 16
MAX_PATH_LENGTH = 5
NODE_ADDRESS_LENGTH = 32
DESTINATION_ADDRESS_LENGTH = 32
IDENTIFIER_LENGTH = 16
VERSION_LENGTH = 3
DELAY_LENGTH = 8
MAC_SIZE = 16
NODE_META_INFO_SIZE = 1 + VERSION_LENGTH + NODE_ADDRESS_LENGTH + DELAY_LENGTH  # 44
FINAL_NODE_META_INFO_LENGTH = 1 + VERSION_LENGTH + DESTINATION_ADDRESS_LENGTH + IDENTIFIER_LENGTH
HOP_STEP = NODE_META_INFO_SIZE + MAC_SIZE  # 60
ROUTING_INFO_SIZE = HOP_STEP * MAX_PATH_LENGTH  # 300 (beta)
TRUNCATED_ROUTING_INFO_SIZE = ROUTING_INFO_SIZE - HOP_STEP  # 240
STREAM_CIPHER_OUTPUT_LENGTH = HOP_STEP * (MAX_PATH_LENGTH + 1)  # 360
ALPHA_SIZE = 32
HEADER_SIZE = ALPHA_SIZE + MAC_SIZE + ROUTING_INFO_SIZE  # 348
PAYLOAD_KEY_SIZE = 192
PAYLOAD_KEY_SEED_SIZE = 16
EXPANDED_SHARED_SECRET_LENGTH = 288
PAYLOAD_OVERHEAD_SIZE = SECURITY_PARAMETER + 1  # 17
MIN_PAYLOAD_SIZE = 33  # Lioness needs a non-empty right half after the 32-byte left half
MAX_PAYLOAD_SIZE = 32785  # Nym's largest packet size (ExtendedPacket32); larger is refused

# Nym packet payload sizes (spec §2.1) for convenience; Sphinx takes any size >= 33.
REGULAR_PAYLOAD_SIZE = 2065
ACK_PAYLOAD_SIZE = 38
EXTENDED8_PAYLOAD_SIZE = 8209
EXTENDED16_PAYLOAD_SIZE = 16401
EXTENDED32_PAYLOAD_SIZE = 32785

FORWARD_HOP = 1
FINAL_HOP = 2

VERSION_INITIAL_LEGACY = 1
VERSION_UPDATED_LEGACY = 257
VERSION_X25519_EXPLICIT_PAYLOAD_KEYS = 258
VERSION_PAYLOAD_KEY_SEEDS = 259
SUPPORTED_VERSIONS = frozenset({VERSION_X25519_EXPLICIT_PAYLOAD_KEYS, VERSION_PAYLOAD_KEY_SEEDS})
# Spec §1.3 says clients emit 258 by default; the published client's captured packets
# (spec §9.3, vectors/official-client) send data messages, their SURB-ACKs and reply SURBs
# as 259 and only loop cover traffic as 258. The vectors win: default 259, covers pass 258.
DEFAULT_VERSION = VERSION_PAYLOAD_KEY_SEEDS

EXPANDED_SHARED_SECRET_HKDF_INFO = (
    b"Dwste mou enan moxlo arketa makru kai ena upomoxlio gia na ton topothetisw kai tha "
    b"kinisw thn gh."
)
PAYLOAD_KEY_HKDF_SALT = b"sphinx-payload-key-V01-CS01-HKDF:SHA256-SALT"
PAYLOAD_KEY_HKDF_INFO = b"sphinx-payload-key-V01-CS01-HKDF:SHA256-INFO"

_ZERO16 = bytes(16)
_ZERO_STEP = bytes(HOP_STEP)
_ZERO_STREAM = bytes(STREAM_CIPHER_OUTPUT_LENGTH)


# --- errors ----------------------------------------------------------------------------
class HeaderMacMismatch(IntegrityError):
    """The header MAC (gamma) did not verify at this hop: header bits were changed."""


class PayloadIntegrityError(IntegrityError):
    """The final payload lacks its 16 leading zero bytes or 0x01 marker: payload tampered."""


class UnknownVersion(MalformedData):
    """A routing block carries a Sphinx version this implementation does not process."""


class UnknownRoutingFlag(MalformedData):
    """A routing block's flag is neither forward (1) nor final (2)."""


# --- primitives (spec §1.4, §1.5) ------------------------------------------------------
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def _hmac_states(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """Inner and outer SHA-256 states of HMAC keyed with `key` (<= 64 bytes)."""
    padded = key.ljust(64, b"\0")
    return hashlib.sha256(padded.translate(_IPAD)), hashlib.sha256(padded.translate(_OPAD))


def _hmac_with(states: tuple[hashlib._Hash, hashlib._Hash], data: bytes) -> bytes:
    # HMAC from the key's SHA-256 states: cheaper than an OpenSSL HMAC context per call
    # for the short routing blocks Sphinx MACs (1.3 against 2.0 us).
    inner = states[0].copy()
    inner.update(data)
    outer = states[1].copy()
    outer.update(inner.digest())
    return outer.digest()


# HKDF-SHA256 through cryptography's one-call HKDF (Rust): 5.5 us for the 288-byte
# expansion against 8.7 us for HMAC blocks from copied hashlib states, per hop and header.
_SHA256 = hashes.SHA256()


def expand_shared_secret(shared_secret: bytes) -> bytes:
    """E (288 bytes) = HKDF-SHA256(salt empty, shared secret, 97-byte info)."""
    return HKDF(
        _SHA256, EXPANDED_SHARED_SECRET_LENGTH, None, EXPANDED_SHARED_SECRET_HKDF_INFO
    ).derive(shared_secret)


def derive_payload_key(seed: bytes) -> bytes:
    """Version-259 payload key: HKDF-SHA256 of a 16-byte seed to 192 bytes."""
    if len(seed) != PAYLOAD_KEY_SEED_SIZE:
        raise MalformedData(f"payload key seed must be 16 bytes, got {len(seed)}")
    return HKDF(_SHA256, PAYLOAD_KEY_SIZE, PAYLOAD_KEY_HKDF_SALT, PAYLOAD_KEY_HKDF_INFO).derive(
        seed
    )


def _prg(key: bytes, data: bytes = _ZERO_STREAM) -> bytes:
    """`data` XOR the AES-128-CTR keystream (zero IV, 128-bit BE counter) of `key`."""
    return Cipher(algorithms.AES(key), modes.CTR(_ZERO16)).encryptor().update(data)


def _mac(key: bytes, data: bytes) -> bytes:
    return _hmac_with(_hmac_states(key), data)[:MAC_SIZE]


def _xor(a: bytes, b: bytes) -> bytes:
    n = len(a)
    return (int.from_bytes(a, "big") ^ int.from_bytes(b[:n], "big")).to_bytes(n, "big")


def _x25519(scalar: bytes, point: bytes) -> bytes:
    # libsodium through PyNaCl: same bytes as `cryptography`'s load-then-exchange, but no
    # key load (which derives a public key, a second scalar multiplication) per call.
    try:
        return crypto_scalarmult(scalar, point)
    except CryptoError:
        raise InvalidKey("x25519 with a low-order point (all-zero shared secret)") from None


def _private(scalar: bytes) -> bytes:
    if len(scalar) != 32:
        raise InvalidKey(f"x25519 private key must be 32 bytes, got {len(scalar)}")
    return bytes(scalar)


def version_bytes(version: int) -> bytes:
    """`[0, hi, lo]` as carried in every routing block."""
    if not 0 <= version <= 0xFFFF:
        raise UnknownVersion(f"version out of range: {version}")
    return b"\0" + version.to_bytes(2, "big")


def parse_version(data: bytes) -> int:
    """Version number of 3 version bytes; UnknownVersion unless it is 258 or 259."""
    if len(data) != VERSION_LENGTH or data[0] != 0:
        raise UnknownVersion(f"malformed version bytes {bytes(data).hex()}")
    version = int.from_bytes(data[1:3], "big")
    if version not in SUPPORTED_VERSIONS:
        # 1/257 need legacy unclamped blinding that 0.6.0 may not accept (spec §7 q2);
        # unknown values (e.g. 260) are refused (spec §7 q3: unverified what Rust does).
        raise UnknownVersion(f"unsupported Sphinx version {version}")
    return version


def _check_version(version: int) -> None:
    if version not in SUPPORTED_VERSIONS:
        raise UnknownVersion(f"cannot build Sphinx version {version}; use 258 or 259")


@dataclass(frozen=True, slots=True)
class HopKeys:
    """One hop's X25519 shared secret and its 288-byte expansion E, sliced per spec §1.4."""

    shared_secret: bytes
    expanded: bytes

    @classmethod
    def from_shared_secret(cls, shared_secret: bytes) -> HopKeys:
        return cls(shared_secret, expand_shared_secret(shared_secret))

    @property
    def stream_cipher_key(self) -> bytes:
        return self.expanded[0:16]

    @property
    def mac_key(self) -> bytes:
        return self.expanded[16:32]

    @property
    def legacy_payload_key(self) -> bytes:
        return self.expanded[32:224]

    @property
    def payload_key_seed(self) -> bytes:
        return self.expanded[32:48]

    @property
    def blinding_factor(self) -> bytes:
        return self.expanded[224:256]

    @property
    def replay_tag(self) -> bytes:
        return self.expanded[256:288]

    def payload_key(self, version: int) -> bytes:
        """The 192-byte Lioness key this hop uses under `version`."""
        if version == VERSION_PAYLOAD_KEY_SEEDS:
            return derive_payload_key(self.payload_key_seed)
        if version == VERSION_X25519_EXPLICIT_PAYLOAD_KEYS:
            return self.legacy_payload_key
        raise UnknownVersion(f"unsupported Sphinx version {version}")


# --- payload (spec §1.9) ---------------------------------------------------------------
def _check_payload_size(payload_size: int) -> None:
    if not MIN_PAYLOAD_SIZE <= payload_size <= MAX_PAYLOAD_SIZE:
        raise MalformedData(
            f"payload size must be {MIN_PAYLOAD_SIZE}..{MAX_PAYLOAD_SIZE}, got {payload_size}"
        )


def max_plaintext_size(payload_size: int) -> int:
    return payload_size - PAYLOAD_OVERHEAD_SIZE


def encode_payload(plaintext: bytes, payload_size: int) -> bytes:
    """16 zero bytes ‖ plaintext ‖ 0x01 ‖ zero fill to exactly `payload_size`."""
    _check_payload_size(payload_size)
    room = payload_size - PAYLOAD_OVERHEAD_SIZE
    if len(plaintext) > room:
        raise MalformedData(f"plaintext of {len(plaintext)} bytes exceeds payload room {room}")
    return _ZERO16 + plaintext + b"\x01" + bytes(room - len(plaintext))


def encrypt_payload(encoded: bytes, payload_keys: Sequence[bytes]) -> bytes:
    """Lioness-encrypt with the keys of route order, last hop first (every hop decrypts)."""
    block = encoded
    for key in reversed(payload_keys):
        block = Lioness(key).encrypt(block)
    return block


def recover_plaintext(payload: bytes) -> bytes:
    """Plaintext of a fully peeled payload; PayloadIntegrityError if it was tampered with.

    Lioness is not authenticated, so this zero-prefix check is where Sphinx detects a
    changed payload: at the final hop, with probability 1 - 2^-128.
    """
    if len(payload) < PAYLOAD_OVERHEAD_SIZE or any(payload[:SECURITY_PARAMETER]):
        raise PayloadIntegrityError("payload does not start with 16 zero bytes (tampered)")
    end = payload.rfind(b"\x01", SECURITY_PARAMETER)
    if end < 0:
        raise PayloadIntegrityError("payload has no 0x01 end marker")
    return bytes(payload[SECURITY_PARAMETER:end])


# --- header construction (spec §1.7) ---------------------------------------------------
@dataclass(frozen=True, slots=True)
class RouteHop:
    """One node on a route: its 32-byte NodeAddressBytes and x25519 Sphinx public key."""

    address: bytes
    public_key: bytes


@dataclass(frozen=True, slots=True)
class Destination:
    """Final destination: 32-byte address (Nym: client identity key) and 16-byte identifier."""

    address: bytes
    identifier: bytes = bytes(IDENTIFIER_LENGTH)


@dataclass(frozen=True, slots=True)
class BuiltHeader:
    """A header plus what the sender needs to finish the packet (or a SURB)."""

    header: bytes
    hop_keys: tuple[HopKeys, ...]
    version: int
    first_hop: bytes

    def payload_keys(self) -> list[bytes]:
        """192-byte Lioness keys in route order."""
        return [k.payload_key(self.version) for k in self.hop_keys]

    def payload_key_seeds(self) -> list[bytes]:
        return [k.payload_key_seed for k in self.hop_keys]


RandomBytes = Callable[[int], bytes]


# The curve's prime-order subgroup size and field prime (RFC 7748).
_ORDER = (1 << 252) + 27742317777372353535851937790883648493
_FIELD = (1 << 255) - 19
_INV8 = pow(8, -1, _ORDER)


def _clamped(scalar: bytes) -> int:
    """The integer X25519 multiplies by (RFC 7748 clamping)."""
    return (int.from_bytes(scalar, "little") & ((1 << 254) - 8)) | (1 << 254)


def _as_x25519_scalar(product: int) -> bytes | None:
    """32 bytes that clamping leaves as they are and that move any point of the curve
    to the u-coordinate of `product` (mod the order) times its prime-order part.

    Clamped scalars are multiples of 8 in [2^254, 2^255), so 8t with t = product / 8
    (mod the order) in [2^251, 2^252) is one; X25519 returns a u-coordinate, the same
    for a point and its negation, so -product serves as well. One of the two fits
    unless t lies within about 2^125 of the ends (None then: chance 2^-126).
    """
    t = product * _INV8 % _ORDER
    for candidate in (t, _ORDER - t):
        if 1 << 251 <= candidate < 1 << 252:
            return (candidate << 3).to_bytes(32, "little")
    return None


@functools.lru_cache(maxsize=4096)
def _on_curve(public_key: bytes) -> bool:
    """Whether X25519 treats this u-coordinate as a curve point (not the twist)."""
    u = (int.from_bytes(public_key, "little") & ((1 << 255) - 1)) % _FIELD
    v = (u * u * u + 486662 * u * u + u) % _FIELD
    return v == 0 or pow(v, (_FIELD - 1) // 2, _FIELD) == 1


def derive_hop_keys(
    ephemeral_secret: bytes, node_public_keys: Sequence[bytes]
) -> tuple[bytes, list[HopKeys]]:
    """alpha_0 and every hop's keys from the sender's secret x (spec §1.4).

    Hop i's secret is PK_i times x and every earlier blinding factor, each clamped as
    the nodes clamp them. Clamped scalars are multiples of the cofactor 8, so only the
    product modulo the group order matters: one X25519 call per hop with that product
    (4 for a 4-hop route instead of 1 + 2 + 3 + 4). A key on the twist, where that
    order does not hold, takes the step-by-step chain; its bytes are the same.
    """
    if not 1 <= len(node_public_keys) <= MAX_PATH_LENGTH:
        raise MalformedData(f"route must have 1..{MAX_PATH_LENGTH} hops")
    secret = _private(ephemeral_secret)
    alpha = crypto_scalarmult_base(secret)
    scalars = [secret]
    product = _clamped(secret)
    keys: list[HopKeys] = []
    for public in node_public_keys:
        one = _as_x25519_scalar(product) if len(scalars) > 1 and _on_curve(public) else None
        if one is not None:
            point = _x25519(one, public)
        else:
            point = public
            for scalar in scalars:
                point = _x25519(scalar, point)
        hop = HopKeys.from_shared_secret(point)
        keys.append(hop)
        blinding = _private(hop.blinding_factor)
        scalars.append(blinding)
        product = product * _clamped(blinding) % _ORDER
    return alpha, keys


def final_padding_length(hops: int) -> int:
    return ROUTING_INFO_SIZE - HOP_STEP * (hops - 1) - FINAL_NODE_META_INFO_LENGTH


def _normalise_delays(delays: Sequence[int], hops: int) -> list[int]:
    # Nym passes one delay per route element; the last is never encoded. Accept both.
    if len(delays) not in (hops - 1, hops):
        raise MalformedData(f"{hops} hops need {hops - 1} or {hops} delays, got {len(delays)}")
    out = [int(d) for d in delays[: hops - 1]]
    for d in out:
        if not 0 <= d < 1 << 64:
            raise MalformedData(f"delay must fit u64 nanoseconds: {d}")
    return out


def assemble_header(
    alpha: bytes,
    hop_keys: Sequence[HopKeys],
    addresses: Sequence[bytes],
    destination: Destination,
    delays: Sequence[int],
    version: int,
    final_padding: bytes,
) -> bytes:
    """alpha ‖ gamma_0 ‖ beta_0 from already derived hop keys (spec §1.7 steps 1-4).

    `addresses[i]` is hop i's NodeAddressBytes; addresses[0] is not embedded (it goes with
    the packet). Split from key derivation so a recorded packet's header can be rebuilt
    from its recorded per-hop secrets.
    """
    n = len(hop_keys)
    if not 1 <= n <= MAX_PATH_LENGTH or len(addresses) != n:
        raise MalformedData("hop keys and addresses must match, 1..5 hops")
    if len(destination.address) != DESTINATION_ADDRESS_LENGTH:
        raise MalformedData("destination address must be 32 bytes")
    if len(destination.identifier) != IDENTIFIER_LENGTH:
        raise MalformedData("destination identifier must be 16 bytes")
    for a in addresses:
        if len(a) != NODE_ADDRESS_LENGTH:
            raise MalformedData(f"node address must be 32 bytes, got {len(a)}")
    if len(final_padding) != final_padding_length(n):
        raise MalformedData(f"final padding must be {final_padding_length(n)} bytes")
    delay_list = _normalise_delays(delays, n)
    vbytes = version_bytes(version)
    streams = [_prg(k.stream_cipher_key) for k in hop_keys]

    filler = b""
    for i in range(1, n):
        filler = _xor(
            filler + _ZERO_STEP, streams[i - 1][STREAM_CIPHER_OUTPUT_LENGTH - HOP_STEP * i :]
        )

    final_block = (
        bytes((FINAL_HOP,)) + vbytes + destination.address + destination.identifier + final_padding
    )
    beta = _xor(final_block, streams[n - 1]) + filler
    gamma = _mac(hop_keys[n - 1].mac_key, beta)
    for i in range(n - 2, -1, -1):
        block = (
            bytes((FORWARD_HOP,))
            + vbytes
            + addresses[i + 1]
            + delay_list[i].to_bytes(DELAY_LENGTH, "big")
            + gamma
            + beta[:TRUNCATED_ROUTING_INFO_SIZE]
        )
        beta = _xor(block, streams[i])
        gamma = _mac(hop_keys[i].mac_key, beta)
    return alpha + gamma + beta


def build_header(
    route: Sequence[RouteHop],
    destination: Destination,
    delays: Sequence[int],
    version: int = DEFAULT_VERSION,
    *,
    ephemeral_secret: bytes | None = None,
    random_bytes: RandomBytes = os.urandom,
) -> BuiltHeader:
    """A header for `route` (1..5 hops); `ephemeral_secret` fixed for reproducible output."""
    _check_version(version)
    if not 1 <= len(route) <= MAX_PATH_LENGTH:
        raise MalformedData(f"route must have 1..{MAX_PATH_LENGTH} hops, got {len(route)}")
    secret = ephemeral_secret if ephemeral_secret is not None else random_bytes(32)
    alpha, keys = derive_hop_keys(secret, [hop.public_key for hop in route])
    header = assemble_header(
        alpha,
        keys,
        [hop.address for hop in route],
        destination,
        delays,
        version,
        random_bytes(final_padding_length(len(route))),
    )
    return BuiltHeader(header, tuple(keys), version, route[0].address)


def build_packet(
    route: Sequence[RouteHop],
    destination: Destination,
    delays: Sequence[int],
    plaintext: bytes,
    payload_size: int = REGULAR_PAYLOAD_SIZE,
    version: int = DEFAULT_VERSION,
    *,
    ephemeral_secret: bytes | None = None,
    random_bytes: RandomBytes = os.urandom,
) -> bytes:
    """A complete Sphinx packet (header ‖ payload); send it to `route[0].address`."""
    encoded = encode_payload(plaintext, payload_size)
    built = build_header(
        route,
        destination,
        delays,
        version,
        ephemeral_secret=ephemeral_secret,
        random_bytes=random_bytes,
    )
    return built.header + encrypt_payload(encoded, built.payload_keys())


# --- node processing (spec §1.8) -------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ForwardHop:
    """Processing result for a mix hop: send `packet` to `next_hop` after `delay_ns`."""

    next_hop: bytes
    delay_ns: int
    packet: bytes
    version: int
    keys: HopKeys
    payload_key: bytes

    @property
    def replay_tag(self) -> bytes:
        return self.keys.replay_tag


@dataclass(frozen=True, slots=True)
class FinalHop:
    """Processing result at the destination's gateway: the fully peeled payload."""

    destination: bytes
    identifier: bytes
    payload: bytes
    version: int
    keys: HopKeys
    payload_key: bytes

    @property
    def replay_tag(self) -> bytes:
        return self.keys.replay_tag

    def plaintext(self) -> bytes:
        """The sender's plaintext; PayloadIntegrityError if the payload was changed."""
        return recover_plaintext(self.payload)


ProcessedPacket = ForwardHop | FinalHop
ReplayCheck = Callable[[bytes], bool]


def check_packet_length(length: int) -> None:
    if length < HEADER_SIZE + MIN_PAYLOAD_SIZE:
        raise MalformedData(f"Sphinx packet too short: {length} bytes")
    if length > HEADER_SIZE + MAX_PAYLOAD_SIZE:
        raise MalformedData(f"Sphinx packet too long: {length} bytes")


class SphinxNode:
    """A node's Sphinx private key, ready to process packets one hop at a time."""

    __slots__ = ("_key", "public_key")

    def __init__(self, private_key: bytes) -> None:
        self._key = _private(private_key)
        self.public_key = crypto_scalarmult_base(self._key)

    def hop_keys(self, alpha: bytes) -> HopKeys:
        return HopKeys.from_shared_secret(_x25519(self._key, alpha))

    def process(self, packet: bytes, is_replay: ReplayCheck | None = None) -> ProcessedPacket:
        """Unwrap one layer. Raises HeaderMacMismatch, ReplayDetected (if `is_replay` says
        the tag was seen), UnknownVersion, UnknownRoutingFlag, MalformedData, InvalidKey."""
        check_packet_length(len(packet))
        if type(packet) is not bytes:
            packet = bytes(packet)
        alpha = packet[:ALPHA_SIZE]
        beta = packet[ALPHA_SIZE + MAC_SIZE : HEADER_SIZE]
        keys = self.hop_keys(alpha)
        expanded = keys.expanded
        if not hmac.compare_digest(
            _mac(expanded[16:32], beta), packet[ALPHA_SIZE : ALPHA_SIZE + MAC_SIZE]
        ):
            raise HeaderMacMismatch("Sphinx header MAC does not verify")
        if is_replay is not None and is_replay(expanded[256:288]):
            raise ReplayDetected("Sphinx replay tag already seen")
        routing = _prg(expanded[0:16], beta + _ZERO_STEP)
        flag = routing[0]
        version = parse_version(routing[1:4])
        payload_key = keys.payload_key(version)
        payload = Lioness(payload_key).decrypt(packet[HEADER_SIZE:])
        if flag == FORWARD_HOP:
            next_alpha = _x25519(expanded[224:256], alpha)
            return ForwardHop(
                next_hop=routing[4:36],
                delay_ns=int.from_bytes(routing[36:44], "big"),
                packet=next_alpha + routing[44:] + payload,
                version=version,
                keys=keys,
                payload_key=payload_key,
            )
        if flag == FINAL_HOP:
            return FinalHop(
                destination=routing[4:36],
                identifier=routing[36:52],
                payload=payload,
                version=version,
                keys=keys,
                payload_key=payload_key,
            )
        raise UnknownRoutingFlag(f"unknown Sphinx routing flag {flag}")


def process_packet(
    private_key: bytes, packet: bytes, is_replay: ReplayCheck | None = None
) -> ProcessedPacket:
    """One-shot `SphinxNode(private_key).process(packet)`."""
    return SphinxNode(private_key).process(packet, is_replay)
