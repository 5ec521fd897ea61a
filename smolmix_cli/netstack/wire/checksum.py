"""Internet checksum (RFC 1071): a C sum where it was built, else one big-integer reduction.

2**16 is congruent to 1 modulo 0xFFFF, so the ones'-complement sum of the
16-bit words of a buffer equals the buffer read as one big-endian integer
modulo 0xFFFF. CPython does that reduction in C, which makes it far faster
than a Python loop over words, but it still costs ~3 us per full segment, and
every segment is summed when sent and when received. `_checksum.c` (an
optional extension: installs without a compiler skip it) does it in ~0.3 us.
Both give the same values (tests/netstack/test_checksum.py).
"""

from __future__ import annotations

from collections.abc import Callable


def py_ones_complement_sum(*parts: bytes | bytearray | memoryview) -> int:
    """Fold the parts (each of even length, except possibly the last) into a 16-bit sum.

    Returns a value in 0..0xFFFF where a non-zero multiple of 0xFFFF is 0xFFFF,
    as the ones'-complement arithmetic requires (only all-zero input sums to 0).
    """
    total = 0
    for part in parts:
        value = int.from_bytes(part, "big")
        if len(part) & 1:
            value <<= 8  # an odd tail is padded with one zero byte
        total += value
    if total == 0:
        return 0
    return total % 0xFFFF or 0xFFFF


ones_complement_sum: Callable[..., int]
try:
    from smolmix_cli.netstack.wire._checksum import ones_complement_sum as _c_sum
except ImportError:  # built without a compiler: the pure-Python form
    ones_complement_sum = py_ones_complement_sum
else:
    ones_complement_sum = _c_sum

ACCELERATED = ones_complement_sum is not py_ones_complement_sum


def internet_checksum(*parts: bytes | bytearray | memoryview) -> int:
    """The checksum to write into a header: the complement of the ones'-complement sum."""
    return (~ones_complement_sum(*parts)) & 0xFFFF


def is_valid(*parts: bytes | bytearray | memoryview) -> bool:
    """True when the parts, checksum field included, sum to all ones."""
    return ones_complement_sum(*parts) == 0xFFFF
