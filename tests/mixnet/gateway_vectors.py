"""Shared helpers for the gateway-protocol tests: the recorded transcript and its randomness.

The official client's run (vectors/official-client/gateway-handshake.json) recorded every
random value except the client's ephemeral x25519 private key. `ScriptedRng` replays the
recorded salt and nonces in the order the code draws them; `RecordedEphemeral` stands in
for the unrecorded client ephemeral with its recorded public key and X25519 result.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.vectors import h, load_vector, vector_path


def handshake_vector() -> Any:
    if not vector_path("official-client", "gateway-handshake.json").is_file():
        pytest.skip("official-client/gateway-handshake.json not available")
    return load_vector("official-client", "gateway-handshake.json")


def packets_vector() -> Any:
    if not vector_path("official-client", "sphinx-packets.json").is_file():
        pytest.skip("official-client/sphinx-packets.json not available")
    return load_vector("official-client", "sphinx-packets.json")


def client_identity() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(
        h(handshake_vector()["client"]["ed25519_identity_private"])
    )


def gateway_identity() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(
        h(handshake_vector()["gateway"]["ed25519_identity_private"])
    )


def frames(connection: str) -> list[dict[str, Any]]:
    vec = handshake_vector()
    if connection == "registration":
        return list(vec["registration"]["connection_1_frames"])
    return list(vec["authentication"]["connection_2_frames_until_second_packet"])


class ScriptedRng:
    """Hands out recorded random values in order; a wrong length means the order is wrong."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = list(chunks)

    def __call__(self, n: int) -> bytes:
        assert self._chunks, f"unexpected draw of {n} random bytes"
        chunk = self._chunks.pop(0)
        assert len(chunk) == n, f"drew {n} bytes where the recording has {len(chunk)}"
        return chunk

    @property
    def exhausted(self) -> bool:
        return not self._chunks


class RecordedEphemeral:
    """The client's ephemeral key as recorded: public key and the X25519 result only."""

    def __init__(self, public: bytes, peer: bytes, secret: bytes) -> None:
        self._public, self._peer, self._secret = public, peer, secret

    def public_bytes(self) -> bytes:
        return self._public

    def exchange(self, peer_public: bytes) -> bytes:
        assert peer_public == self._peer, "exchange with a key other than the recorded gateway's"
        return self._secret


def recorded_client_ephemeral() -> RecordedEphemeral:
    reg = handshake_vector()["registration"]
    return RecordedEphemeral(
        h(reg["step1_client_init"]["client_ephemeral_x25519_public"]),
        h(reg["step2_gateway_material"]["gateway_ephemeral_x25519_public"]),
        h(reg["step2_gateway_material"]["x25519_shared_secret"]),
    )
