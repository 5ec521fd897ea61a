"""Sequence numbers inside the TCP engine: unwrapped ints, 32 bits only on the wire.

Every sequence number in the engine is a plain int that keeps growing past
2**32, so comparisons are ordinary `<`. Wire values are converted at the edge
(`unwrap` on input, `& MASK` on output), which keeps mod-2**32 arithmetic in
two places instead of scattered through every comparison.
"""

from __future__ import annotations

from typing import Final

MASK: Final = 0xFFFFFFFF
HALF: Final = 0x80000000


def unwrap(ref: int, value: int) -> int:
    """The unwrapped sequence number nearest to `ref` whose low 32 bits are `value`."""
    return ref + ((value - ref + HALF) & MASK) - HALF
