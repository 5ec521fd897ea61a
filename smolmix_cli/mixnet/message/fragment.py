"""Fragments: the header codec and splitting a padded message into (linked) sets (spec 2.4).

A message is cut into sets of at most 255 fragments; longer messages become a
chain of sets linked through the first fragment (previous set) and the 255th
fragment (next set). Every fragment fills its packet exactly, because the
message was padded before splitting (see `message.pad_message`), so the
receiver's length-based packet classification and the gateway's ack split hold.
"""

from __future__ import annotations

import math
import random
import struct
from dataclasses import dataclass

from smolmix_cli.mixnet.errors import MalformedData

UNLINKED_HEADER_LEN = 7
LINKED_HEADER_LEN = 10
MAX_FRAGMENTS_PER_SET = 255
FRAGMENT_ID_LEN = 5
MAX_SET_ID = 0x7FFFFFFF
_FLAG = 0x80000000


class FragmentError(MalformedData):
    """Fragment header or identifier bytes that Nym would reject."""


def _check_set_id(set_id: int, what: str) -> None:
    if not 1 <= set_id <= MAX_SET_ID:
        raise FragmentError(f"{what} {set_id} outside 1..2^31-1")


@dataclass(frozen=True, slots=True)
class FragmentId:
    """What a SURB-ACK acknowledges: set id (top bit clear) and 1-based position.

    The cover-traffic id is (0, 0). On the wire: set id i32 BE || position u8.
    """

    set_id: int
    position: int

    def to_bytes(self) -> bytes:
        return struct.pack(">IB", self.set_id, self.position)

    @classmethod
    def from_bytes(cls, data: bytes) -> FragmentId:
        if len(data) != FRAGMENT_ID_LEN:
            raise FragmentError(f"fragment id must be {FRAGMENT_ID_LEN} bytes, got {len(data)}")
        set_id, position = struct.unpack(">IB", data)
        if set_id & _FLAG:
            # Nym parses it as i32 and rejects negatives: the wire flag must be cleared here.
            raise FragmentError("fragment id has the set-id flag bit set")
        return cls(set_id, position)

    @property
    def is_cover(self) -> bool:
        return self.set_id == 0 and self.position == 0


COVER_FRAGMENT_ID = FragmentId(0, 0)


@dataclass(frozen=True, slots=True)
class Fragment:
    """One fragment: header fields plus its slice of the padded message."""

    set_id: int
    total: int
    current: int
    payload: bytes
    previous_set_id: int | None = None
    next_set_id: int | None = None

    def __post_init__(self) -> None:
        _check_set_id(self.set_id, "set id")
        if not 1 <= self.current <= self.total <= MAX_FRAGMENTS_PER_SET:
            raise FragmentError(f"fragment position {self.current} of {self.total} is not valid")
        if self.previous_set_id is not None:
            _check_set_id(self.previous_set_id, "previous set id")
            if self.current != 1 or self.previous_set_id == self.set_id:
                raise FragmentError("only the first fragment may link a different previous set")
        if self.next_set_id is not None:
            _check_set_id(self.next_set_id, "next set id")
            if (
                self.current != self.total
                or self.total != MAX_FRAGMENTS_PER_SET
                or self.next_set_id == self.set_id
            ):
                raise FragmentError("only fragment 255 of 255 may link a different next set")
        if self.previous_set_id is not None and self.next_set_id is not None:
            raise FragmentError("a fragment carries at most one link")

    @property
    def fragment_id(self) -> FragmentId:
        return FragmentId(self.set_id, self.current)

    @property
    def is_linked(self) -> bool:
        return self.previous_set_id is not None or self.next_set_id is not None

    def header_bytes(self) -> bytes:
        head = struct.pack(">IBB", self.set_id | _FLAG, self.total, self.current)
        link = self.previous_set_id if self.previous_set_id is not None else self.next_set_id
        if link is None:
            return head + b"\x00"
        return head + struct.pack(">I", link | _FLAG)

    def to_bytes(self) -> bytes:
        return self.header_bytes() + self.payload

    @classmethod
    def from_bytes(cls, data: bytes) -> Fragment:
        """Parse a decrypted fragment exactly as Nym's `Fragment::try_from_bytes` does."""
        if len(data) < UNLINKED_HEADER_LEN:
            raise FragmentError(f"fragment of {len(data)} bytes is shorter than its header")
        wire_id, total, current = struct.unpack_from(">IBB", data)
        if not wire_id & _FLAG:
            raise FragmentError("fragment set id lacks the wire flag bit")
        set_id = wire_id & ~_FLAG
        if total == 0 or current == 0 or current > total:
            raise FragmentError(f"fragment position {current} of {total} is not valid")
        previous: int | None = None
        following: int | None = None
        if data[6] != 0:
            if len(data) < LINKED_HEADER_LEN:
                raise FragmentError("linked fragment shorter than its 10-byte header")
            (wire_link,) = struct.unpack_from(">I", data, 6)
            if not wire_link & _FLAG:
                raise FragmentError("linked set id lacks the wire flag bit")
            link = wire_link & ~_FLAG
            if current == 1:
                previous = link
            elif current == total == MAX_FRAGMENTS_PER_SET:
                following = link
            else:
                raise FragmentError(f"fragment {current} of {total} cannot carry a link")
            offset = LINKED_HEADER_LEN
        else:
            offset = UNLINKED_HEADER_LEN
        return cls(set_id, total, current, bytes(data[offset:]), previous, following)


def unlinked_payload_len(per_packet: int) -> int:
    return per_packet - UNLINKED_HEADER_LEN


def linked_payload_len(per_packet: int) -> int:
    return per_packet - LINKED_HEADER_LEN


def max_unlinked_set_len(per_packet: int) -> int:
    return MAX_FRAGMENTS_PER_SET * unlinked_payload_len(per_packet)


def max_one_way_linked_set_len(per_packet: int) -> int:
    return max_unlinked_set_len(per_packet) - (LINKED_HEADER_LEN - UNLINKED_HEADER_LEN)


def two_way_linked_set_len(per_packet: int) -> int:
    return max_unlinked_set_len(per_packet) - 2 * (LINKED_HEADER_LEN - UNLINKED_HEADER_LEN)


def total_number_of_sets(message_len: int, per_packet: int) -> int:
    if message_len <= max_unlinked_set_len(per_packet):
        return 1
    if message_len <= 2 * max_one_way_linked_set_len(per_packet):
        return 2
    middle = message_len - 2 * max_one_way_linked_set_len(per_packet)
    return math.ceil(middle / two_way_linked_set_len(per_packet)) + 2


def number_of_required_fragments(message_len: int, per_packet: int) -> tuple[int, int]:
    """(fragments needed, bytes left free in the last one), as Nym computes it."""
    max_unlinked = unlinked_payload_len(per_packet)
    max_linked = linked_payload_len(per_packet)
    sets = total_number_of_sets(message_len, per_packet)
    if sets == 1:
        if message_len < max_unlinked:
            return 1, max_unlinked - message_len
        quot, rem = divmod(message_len, max_unlinked)
        return (quot, 0) if rem == 0 else (quot + 1, max_unlinked - rem)
    without_last = (sets - 1) * MAX_FRAGMENTS_PER_SET
    linked_without_last = 2 * sets - 3
    unlinked_without_last = without_last - linked_without_last
    final_len = (
        message_len - linked_without_last * max_linked - unlinked_without_last * max_unlinked
    )
    if final_len < max_linked:
        return without_last + 1, max_linked - final_len
    if final_len == max_linked:
        return without_last + 1, 0
    quot, rem = divmod(final_len - max_linked, max_unlinked)
    if rem == 0:
        return without_last + quot + 1, 0
    return without_last + quot + 2, max_unlinked - rem


def generate_set_id(rng: random.Random) -> int:
    """A random set id in 1..2^31-1 (Nym: random i32, not 0 or MIN, absolute value)."""
    while True:
        value = rng.getrandbits(32)
        signed = value - (1 << 32) if value & _FLAG else value
        if signed not in (0, -(1 << 31)):
            return abs(signed)


def _unlinked_set(message: bytes, set_id: int, per_packet: int) -> list[Fragment]:
    step = unlinked_payload_len(per_packet)
    count = max(1, math.ceil(len(message) / step))
    return [
        Fragment(set_id, count, i + 1, message[i * step : (i + 1) * step]) for i in range(count)
    ]


def _linked_set(
    message: bytes,
    set_id: int,
    previous: int | None,
    following: int | None,
    per_packet: int,
) -> list[Fragment]:
    max_unlinked = unlinked_payload_len(per_packet)
    max_linked = linked_payload_len(per_packet)
    if following is not None:
        count = MAX_FRAGMENTS_PER_SET
    else:
        tail = max(0, len(message) - max_linked)
        count = 1 + math.ceil(tail / max_unlinked)
        if count > MAX_FRAGMENTS_PER_SET:
            raise FragmentError("message slice too long for one linked set")
    lower = 0
    upper = min(len(message), max_linked) if previous is not None else max_unlinked
    fragments = []
    for i in range(1, count + 1):
        fragments.append(
            Fragment(
                set_id,
                count,
                i,
                message[lower:upper],
                previous if i == 1 else None,
                following if i == count else None,
            )
        )
        lower = upper
        upper = min(len(message), upper + max_unlinked)
    return fragments


def split_into_sets(message: bytes, per_packet: int, rng: random.Random) -> list[list[Fragment]]:
    """Split a padded message into fragment sets (Nym's `split_into_sets`).

    `per_packet` is the fragment size including its header (1611 for regular
    packets); `rng` supplies the set ids.
    """
    sets = total_number_of_sets(len(message), per_packet)
    if sets == 1:
        return [_unlinked_set(message, generate_set_id(rng), per_packet)]
    ids: list[int] = []
    while len(ids) < sets:  # distinct, so no set links to itself (Nym would panic)
        candidate = generate_set_id(rng)
        if candidate not in ids:
            ids.append(candidate)
    result = []
    lower = 0
    upper = max_one_way_linked_set_len(per_packet)
    for i in range(sets):
        result.append(
            _linked_set(
                message[lower:upper],
                ids[i],
                ids[i - 1] if i > 0 else None,
                ids[i + 1] if i < sets - 1 else None,
                per_packet,
            )
        )
        lower = upper
        if i == sets - 2:
            upper = min(len(message), upper + max_one_way_linked_set_len(per_packet))
        else:
            upper = min(len(message), upper + two_way_linked_set_len(per_packet))
    return result
