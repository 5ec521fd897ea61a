"""The big-integer checksum must equal the RFC 1071 word-by-word definition."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.netstack.checksum import internet_checksum, is_valid


def _reference(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


@given(st.binary(max_size=3000))
def test_matches_rfc1071(data: bytes) -> None:
    assert internet_checksum(data) == _reference(data)


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_parts_equal_concatenation_when_first_is_even(a: bytes, b: bytes) -> None:
    if len(a) % 2:
        a = a[:-1]
    assert internet_checksum(a, b) == _reference(a + b)


def test_all_zero_and_all_ones() -> None:
    assert internet_checksum(b"\x00" * 8) == 0xFFFF
    assert internet_checksum(b"\xff" * 8) == 0x0000


@given(st.binary(min_size=2, max_size=500).filter(lambda d: len(d) % 2 == 0))
def test_buffer_with_its_checksum_validates(data: bytes) -> None:
    csum = internet_checksum(data)
    assert is_valid(data, csum.to_bytes(2, "big"))
