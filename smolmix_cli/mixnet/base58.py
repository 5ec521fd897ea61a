"""Base58 with the Bitcoin alphabet, as Nym's `bs58` default uses for keys and addresses.

Written out rather than imported: it is a dozen lines and every key parse goes through it.
"""

from __future__ import annotations

from smolmix_cli.mixnet.errors import MalformedData

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}


def b58encode(data: bytes) -> str:
    """Text form of `data`; each leading zero byte becomes a leading '1'."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(ALPHABET[r])
    return "1" * zeros + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """Bytes of a base58 string; MalformedData on a character outside the alphabet."""
    n = 0
    for pos, c in enumerate(text):
        digit = _INDEX.get(c)
        if digit is None:
            raise MalformedData(f"invalid base58 character {c!r} at position {pos}")
        n = n * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + (n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b"")
