"""SURB-ACKs: the pre-built acknowledgement every packet carries (spec 2.3, 9.4).

The ack plaintext (21 bytes) is `IV (16) || AES-128-CTR(ack key, IV, fragment id)`;
the recipient's gateway sends the ack packet back through the mixnet to the
sender's gateway, which pushes those 21 bytes to the sender. The sender alone
holds the ack key, so nobody on the path can tell which fragment is acknowledged.
"""

from __future__ import annotations

import random

from smolmix_cli.mixnet.errors import MalformedData
from smolmix_cli.mixnet.fragment import FRAGMENT_ID_LEN, FragmentId
from smolmix_cli.mixnet.packet_size import ACK_IV_SIZE
from smolmix_cli.mixnet.payload import aes128_ctr

ACK_PLAINTEXT_SIZE = ACK_IV_SIZE + FRAGMENT_ID_LEN
ACK_KEY_SIZE = 16


class AckError(MalformedData):
    """Ack bytes that cannot be an ack (wrong length, undecodable fragment id)."""


def ack_plaintext(ack_key: bytes, fragment_id: FragmentId, iv: bytes) -> bytes:
    """The 21 bytes that travel inside the ack packet."""
    if len(iv) != ACK_IV_SIZE:
        raise AckError("ack IV must be 16 bytes")
    return iv + aes128_ctr(ack_key, fragment_id.to_bytes(), iv)


def new_ack_plaintext(ack_key: bytes, fragment_id: FragmentId, rng: random.Random) -> bytes:
    return ack_plaintext(ack_key, fragment_id, rng.randbytes(ACK_IV_SIZE))


def recover_fragment_id(ack_key: bytes, plaintext: bytes) -> FragmentId:
    """The fragment id from a pushed 21-byte ack (set id with the top bit cleared)."""
    if len(plaintext) != ACK_PLAINTEXT_SIZE:
        raise AckError(f"ack plaintext must be {ACK_PLAINTEXT_SIZE} bytes, got {len(plaintext)}")
    raw = aes128_ctr(ack_key, plaintext[ACK_IV_SIZE:], plaintext[:ACK_IV_SIZE])
    return FragmentId.from_bytes(raw)
