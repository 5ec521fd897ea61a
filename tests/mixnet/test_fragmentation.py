"""Padding, splitting into (linked) sets and reassembly under loss of order and duplication."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.message.fragment import (
    LINKED_HEADER_LEN,
    MAX_FRAGMENTS_PER_SET,
    UNLINKED_HEADER_LEN,
    Fragment,
    FragmentError,
    FragmentId,
    max_one_way_linked_set_len,
    max_unlinked_set_len,
    number_of_required_fragments,
    split_into_sets,
)
from smolmix_cli.mixnet.message.message import (
    PlainMessage,
    available_plaintext_per_packet,
    decode_message,
    encode_message,
    pad_message,
    split_message,
    unpad_message,
)
from smolmix_cli.mixnet.message.reassembly import (
    INCOMPLETE_MESSAGE_TIMEOUT,
    FragmentMismatch,
    Reassembler,
    ReassemblyFull,
)
from smolmix_cli.mixnet.packet.size import PacketSize
from tests.vectors import spec_text

REGULAR = available_plaintext_per_packet(PacketSize.REGULAR)
MIB = 1 << 20


def _deliver(fragments: list[Fragment], rnd: random.Random, dup_rate: float) -> list[Fragment]:
    """Shuffled, with some fragments delivered twice (retransmissions)."""
    out = list(fragments) + [f for f in fragments if rnd.random() < dup_rate]
    rnd.shuffle(out)
    return out


def _reassemble(fragments: list[Fragment], reassembler: Reassembler) -> list[bytes]:
    done = []
    for fragment in fragments:
        result = reassembler.insert(Fragment.from_bytes(fragment.to_bytes()), now=0.0)
        if result is not None:
            done.append(result.padded)
    return done


def test_usable_bytes_per_packet_match_spec() -> None:
    section = spec_text("nym-mixnet.md").split("### 2.2", 1)[1].split("### 2.3", 1)[0]
    for size, name in (
        (PacketSize.REGULAR, "regular"),
        (PacketSize.EXTENDED8, "extended8"),
        (PacketSize.EXTENDED16, "extended16"),
        (PacketSize.EXTENDED32, "extended32"),
    ):
        assert f"{name} {available_plaintext_per_packet(size)}" in section
    section = spec_text("nym-mixnet.md").split("### 2.4", 1)[1].split("### 2.5", 1)[0]
    assert (
        f"unlinked `per_packet - {UNLINKED_HEADER_LEN}` ({REGULAR - UNLINKED_HEADER_LEN} for regular)"
        in section
    )
    assert f"linked `per_packet - {LINKED_HEADER_LEN}` ({REGULAR - LINKED_HEADER_LEN})" in section


# Spread over the whole range (plain integers() favours small values).
_SIZES = st.one_of(
    st.integers(min_value=0, max_value=20_000),
    st.tuples(st.integers(0, 1024), st.integers(0, 1023)).map(
        lambda t: min(MIB, t[0] * 1024 + t[1])
    ),
)
_BOUNDARIES = [
    max_unlinked_set_len(REGULAR) - 2,  # minus type byte and 0x01 marker: exactly one full set
    max_unlinked_set_len(REGULAR) - 1,
    2 * max_one_way_linked_set_len(REGULAR) - 2,
    2 * max_one_way_linked_set_len(REGULAR) - 1,
    MIB,
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.integers(min_value=0, max_value=MIB), seed=st.integers(0, 2**32), dup=st.floats(0, 0.5)
)
@example(size=0, seed=1, dup=0.0)
@example(size=_BOUNDARIES[0], seed=2, dup=0.1)
@example(size=_BOUNDARIES[1], seed=3, dup=0.1)
@example(size=_BOUNDARIES[2], seed=4, dup=0.1)
@example(size=_BOUNDARIES[3], seed=5, dup=0.1)
@example(size=_BOUNDARIES[4], seed=6, dup=0.3)
def test_round_trip_up_to_one_mebibyte(size: int, seed: int, dup: float) -> None:
    rnd = random.Random(seed)
    message = PlainMessage(rnd.randbytes(size))
    fragments = split_message(message, rnd)
    assert all(len(f.to_bytes()) == REGULAR for f in fragments)  # every fragment exactly full
    serialized = encode_message(message)
    assert len(fragments) == number_of_required_fragments(len(serialized) + 1, REGULAR)[0]
    sets = {f.set_id for f in fragments}
    assert len(sets) == (1 if len(serialized) + 1 <= max_unlinked_set_len(REGULAR) else len(sets))
    reassembler = Reassembler()
    done = _reassemble(_deliver(fragments, rnd, dup), reassembler)
    assert len(done) == 1
    assert decode_message(unpad_message(done[0])) == message
    assert reassembler.buffered_sets == 0 and reassembler.buffered_bytes == 0


@settings(max_examples=200, deadline=None)
@given(
    per_packet=st.integers(min_value=LINKED_HEADER_LEN + 1, max_value=40),
    size=st.integers(min_value=0, max_value=40_000),
    seed=st.integers(0, 2**32),
    dup=st.floats(0, 0.5),
)
def test_linked_set_chains_with_small_fragments(
    per_packet: int, size: int, seed: int, dup: float
) -> None:
    """Small fragment sizes make long chains of linked sets cheap to exercise."""
    rnd = random.Random(seed)
    serialized = rnd.randbytes(size)
    padded = pad_message(serialized, per_packet)
    sets = split_into_sets(padded, per_packet, rnd)
    fragments = [f for s in sets for f in s]
    assert all(len(f.to_bytes()) == per_packet for f in fragments)
    assert len(fragments) == number_of_required_fragments(size + 1, per_packet)[0]
    for i, fragment_set in enumerate(sets):
        assert len(fragment_set) <= MAX_FRAGMENTS_PER_SET
        assert len({f.set_id for f in fragment_set}) == 1
        if len(sets) > 1:
            first, last = fragment_set[0], fragment_set[-1]
            assert first.previous_set_id == (sets[i - 1][0].set_id if i > 0 else None)
            assert last.next_set_id == (sets[i + 1][0].set_id if i < len(sets) - 1 else None)
    done = _reassemble(_deliver(fragments, rnd, dup), Reassembler(max_sets=100_000))
    assert done == [padded]
    assert unpad_message(done[0]) == serialized


def test_two_interleaved_messages() -> None:
    rnd = random.Random(7)
    a = split_message(PlainMessage(rnd.randbytes(5000)), rnd)
    b = split_message(PlainMessage(rnd.randbytes(9000)), rnd)
    mixed = a + b
    rnd.shuffle(mixed)
    reassembler = Reassembler()
    done = _reassemble(mixed, reassembler)
    assert sorted(done) == sorted([b"".join(f.payload for f in a), b"".join(f.payload for f in b)])


def test_late_duplicates_after_completion_are_ignored() -> None:
    rnd = random.Random(3)
    fragments = split_message(PlainMessage(b"x" * 4000), rnd)
    reassembler = Reassembler()
    assert len(_reassemble(fragments, reassembler)) == 1
    assert _reassemble(fragments, reassembler) == []
    assert reassembler.buffered_sets == 0
    assert reassembler.stats.late_fragments == len(fragments)


def test_duplicates_counted_and_do_not_complete_twice() -> None:
    rnd = random.Random(4)
    fragments = split_message(PlainMessage(b"y" * 4000), rnd)
    reassembler = Reassembler()
    assert reassembler.insert(fragments[0], 0.0) is None
    assert reassembler.insert(fragments[0], 0.0) is None
    assert reassembler.stats.duplicates == 1
    assert _reassemble(fragments[1:], reassembler) != []


def test_stale_sets_dropped_by_explicit_time() -> None:
    rnd = random.Random(5)
    fragments = split_message(PlainMessage(b"z" * 4000), rnd)
    reassembler = Reassembler()
    reassembler.insert(fragments[0], now=100.0)
    assert reassembler.cleanup(now=100.0 + INCOMPLETE_MESSAGE_TIMEOUT - 1) == []
    assert reassembler.cleanup(now=100.0 + INCOMPLETE_MESSAGE_TIMEOUT) == [fragments[0].set_id]
    assert reassembler.buffered_bytes == 0 and reassembler.stats.stale_sets_dropped == 1
    assert all(
        reassembler.insert(f, now=200.0 + INCOMPLETE_MESSAGE_TIMEOUT) is None for f in fragments[1:]
    )


def test_limits_raise_typed_errors_without_storing() -> None:
    rnd = random.Random(6)
    first = split_message(PlainMessage(b"a" * 4000), rnd)
    second = split_message(PlainMessage(b"b" * 4000), rnd)
    by_sets = Reassembler(max_sets=1)
    by_sets.insert(first[0], 0.0)
    with pytest.raises(ReassemblyFull):
        by_sets.insert(second[0], 0.0)
    assert by_sets.buffered_sets == 1
    by_bytes = Reassembler(max_bytes=len(first[0].payload))
    by_bytes.insert(first[0], 0.0)
    with pytest.raises(ReassemblyFull):
        by_bytes.insert(first[1], 0.0)
    assert by_bytes.buffered_bytes == len(first[0].payload)


def test_fragment_count_mismatch_rejected() -> None:
    reassembler = Reassembler()
    reassembler.insert(Fragment(5, 3, 1, b"a"), 0.0)
    with pytest.raises(FragmentMismatch):
        reassembler.insert(Fragment(5, 4, 2, b"b"), 0.0)


def test_cyclic_links_never_complete_and_terminate() -> None:
    full = [
        Fragment(
            1,
            MAX_FRAGMENTS_PER_SET,
            i,
            b"p",
            previous_set_id=2 if i == 1 else None,
            next_set_id=2 if i == MAX_FRAGMENTS_PER_SET else None,
        )
        for i in range(1, 256)
    ]
    other = [
        Fragment(
            2,
            MAX_FRAGMENTS_PER_SET,
            i,
            b"q",
            previous_set_id=1 if i == 1 else None,
            next_set_id=1 if i == MAX_FRAGMENTS_PER_SET else None,
        )
        for i in range(1, 256)
    ]
    reassembler = Reassembler()
    assert _reassemble(full + other, reassembler) == []
    assert reassembler.buffered_sets == 2


def test_header_validation() -> None:
    with pytest.raises(FragmentError):
        Fragment(0, 1, 1, b"")
    with pytest.raises(FragmentError):
        Fragment(1, 2, 3, b"")
    with pytest.raises(FragmentError):
        Fragment(1, 3, 2, b"", previous_set_id=9)
    with pytest.raises(FragmentError):
        Fragment(1, 3, 3, b"", next_set_id=9)  # only fragment 255 of 255 links forward
    linked = Fragment(1, MAX_FRAGMENTS_PER_SET, MAX_FRAGMENTS_PER_SET, b"x", next_set_id=9)
    assert Fragment.from_bytes(linked.to_bytes()) == linked
    assert len(linked.header_bytes()) == LINKED_HEADER_LEN


def test_fragment_id_rejects_flag_bit() -> None:
    assert FragmentId.from_bytes(FragmentId(7, 3).to_bytes()) == FragmentId(7, 3)
    with pytest.raises(FragmentError):
        FragmentId.from_bytes(bytes([0x80, 0, 0, 7, 3]))


@given(st.binary(max_size=64))
def test_fragment_parser_raises_only_mixnet_errors(data: bytes) -> None:
    try:
        fragment = Fragment.from_bytes(data)
    except MixnetError:
        return
    assert fragment.to_bytes() == data


@given(st.binary(max_size=200))
def test_unpad_finds_last_marker(data: bytes) -> None:
    try:
        stripped = unpad_message(data)
    except MixnetError:
        assert b"\x01" not in data
        return
    assert (
        data.startswith(stripped)
        and data[len(stripped)] == 1
        and b"\x01" not in data[len(stripped) + 1 :]
    )
