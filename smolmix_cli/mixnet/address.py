"""Client addresses (`Recipient`) and node routing addresses (NodeAddressBytes).

A Recipient names a client as `<identity>.<encryption>@<gateway identity>` (base58 of
three 32-byte keys); the Sphinx destination is the identity key. A node's Sphinx
"address" is its mix IP:port, `4|6 ‖ port u16 BE ‖ IP octets`, zero-padded to 32 bytes
inside headers and SURBs, unpadded (7/19 bytes) in MixPackets, 19-byte padded in SURB-ACKs.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from smolmix_cli.mixnet.base58 import b58encode
from smolmix_cli.mixnet.errors import InvalidKey, MalformedData
from smolmix_cli.mixnet.keys import decode_key_base58, validate_ed25519_public

RECIPIENT_LENGTH = 96
NODE_ADDRESS_LENGTH = 32
MAX_UNPADDED_LENGTH = 19
_IPV4_TAG = 4
_IPV6_TAG = 6


@dataclass(frozen=True, slots=True)
class Recipient:
    """A client address: identity (ed25519), encryption key (x25519), gateway (ed25519)."""

    identity: bytes
    encryption_key: bytes
    gateway: bytes

    def __post_init__(self) -> None:
        validate_ed25519_public(self.identity)
        if len(self.encryption_key) != 32:
            raise InvalidKey(
                f"x25519 encryption key must be 32 bytes, got {len(self.encryption_key)}"
            )
        validate_ed25519_public(self.gateway)

    @classmethod
    def parse(cls, text: str) -> Recipient:
        """From `<identity>.<encryption>@<gateway>`; MalformedData/InvalidKey say what is wrong."""
        client, at, gateway = text.strip().partition("@")
        if not at or "@" in gateway:
            raise MalformedData(f"recipient must be <identity>.<encryption>@<gateway>: {text!r}")
        identity, dot, encryption = client.partition(".")
        if not dot or "." in encryption:
            raise MalformedData(f"recipient must be <identity>.<encryption>@<gateway>: {text!r}")
        return cls(
            decode_key_base58(identity, "recipient identity key"),
            decode_key_base58(encryption, "recipient encryption key"),
            decode_key_base58(gateway, "recipient gateway identity key"),
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Recipient:
        """From the 96-byte form identity ‖ encryption ‖ gateway."""
        if len(data) != RECIPIENT_LENGTH:
            raise MalformedData(f"recipient must be {RECIPIENT_LENGTH} bytes, got {len(data)}")
        return cls(bytes(data[:32]), bytes(data[32:64]), bytes(data[64:96]))

    def to_bytes(self) -> bytes:
        return self.identity + self.encryption_key + self.gateway

    @property
    def destination(self) -> bytes:
        """The 32-byte Sphinx destination address: the identity key bytes."""
        return self.identity

    def __str__(self) -> str:
        return (
            f"{b58encode(self.identity)}.{b58encode(self.encryption_key)}@{b58encode(self.gateway)}"
        )


@dataclass(frozen=True, slots=True)
class NodeAddress:
    """A node's mix address (NymNodeRoutingAddress): IP and TCP port."""

    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 0xFFFF:
            raise MalformedData(f"port out of range: {self.port}")

    @classmethod
    def from_host_port(cls, host: str, port: int) -> NodeAddress:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            raise MalformedData(f"not an IP address: {host!r}") from None
        return cls(ip, port)

    def to_unpadded(self) -> bytes:
        """7 bytes (IPv4) or 19 bytes (IPv6): tag ‖ port BE ‖ octets.

        The IPv4 form is confirmed by captured packets; the IPv6 form follows spec §1.6
        only (unverified: the capture had no IPv6 node).
        """
        tag = _IPV4_TAG if self.ip.version == 4 else _IPV6_TAG
        return bytes([tag]) + self.port.to_bytes(2, "big") + self.ip.packed

    def to_padded(self, length: int) -> bytes:
        """The unpadded form followed by zero bytes up to `length` (19 for SURB-ACKs)."""
        raw = self.to_unpadded()
        if length < len(raw):
            raise MalformedData(f"address needs {len(raw)} bytes, {length} requested")
        return raw.ljust(length, b"\0")

    def to_bytes(self) -> bytes:
        """The 32-byte NodeAddressBytes form used inside Sphinx headers and SURBs."""
        return self.to_padded(NODE_ADDRESS_LENGTH)

    @classmethod
    def parse_prefix(cls, data: bytes) -> tuple[NodeAddress, int]:
        """Address at the start of `data` and the bytes it used (7 or 19); rest is ignored."""
        if not data:
            raise MalformedData("empty node address")
        tag = data[0]
        if tag == _IPV4_TAG:
            used = 7
        elif tag == _IPV6_TAG:
            used = 19
        else:
            raise MalformedData(f"unknown node address type {tag}")
        if len(data) < used:
            raise MalformedData(f"node address truncated: {len(data)} < {used} bytes")
        port = int.from_bytes(data[1:3], "big")
        octets = bytes(data[3:used])
        ip = ipaddress.IPv4Address(octets) if used == 7 else ipaddress.IPv6Address(octets)
        return cls(ip, port), used

    @classmethod
    def from_bytes(cls, data: bytes) -> NodeAddress:
        """From any form (unpadded, 19-byte, 32-byte); trailing padding is not inspected.

        Lenient like Nym's `try_from_bytes`, which reads the prefix it needs (padding
        content not checked there either, as far as the spec says: unverified).
        """
        return cls.parse_prefix(data)[0]

    def __str__(self) -> str:
        host = str(self.ip) if self.ip.version == 4 else f"[{self.ip}]"
        return f"{host}:{self.port}"
