"""Both checksum sums (C and big-integer) must equal the RFC 1071 word-by-word definition."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.netstack.wire import checksum
from smolmix_cli.netstack.wire.checksum import internet_checksum, is_valid, py_ones_complement_sum

Sum = Callable[..., int]
SUMS: list[Sum] = [py_ones_complement_sum]
if checksum.ACCELERATED:
    SUMS.append(checksum.ones_complement_sum)
both = pytest.mark.parametrize("osum", SUMS, ids=lambda f: f.__module__.rsplit(".", 1)[-1])


def _reference_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _reference(data: bytes) -> int:
    return (~_reference_sum(data)) & 0xFFFF


def test_accelerator_is_built_where_a_compiler_is() -> None:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler here: the pure-Python sum is the one in use")
    assert checksum.ACCELERATED, (
        "smolmix_cli/netstack/wire/_checksum.c was not built: reinstall with `pip install -e .`"
    )


@given(st.binary(max_size=3000))
def test_matches_rfc1071(data: bytes) -> None:
    assert internet_checksum(data) == _reference(data)


@both
@given(parts=st.lists(st.binary(max_size=300), max_size=5))
def test_sum_of_parts_matches_the_reference(osum: Sum, parts: list[bytes]) -> None:
    # every part starts on a 16-bit boundary: an odd part is padded with a zero byte
    padded = b"".join(p + b"\x00" * (len(p) & 1) for p in parts)
    want = _reference_sum(padded)
    assert osum(*parts) == want
    assert osum(*(bytearray(p) for p in parts)) == want
    assert osum(*(memoryview(b"xx" + p)[2:] for p in parts)) == want


@both
def test_zero_and_multiples_of_0xffff(osum: Sum) -> None:
    assert osum() == 0
    assert osum(b"\x00" * 8) == 0  # only all-zero input sums to 0
    assert osum(b"\xff\xff") == 0xFFFF
    assert osum(b"\x00\x01" * 0xFFFF) == 0xFFFF  # a non-zero multiple folds to 0xFFFF
    assert osum(b"\xff" * 100_001) == _reference_sum(b"\xff" * 100_001 + b"\x00")


@both
def test_non_buffers_are_refused(osum: Sum) -> None:
    with pytest.raises(TypeError):
        osum("text")


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
