"""ExitRace's bookkeeping: lanes, the single winner, and the one-line failure summary."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.tunnel.exit_race import ExitRace
from smolmix_cli.tunnel.exits import ExitCandidate


def _exits(n: int) -> list[ExitCandidate]:
    keys = [
        Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        for _ in range(n + 1)
    ]
    return [ExitCandidate(Recipient(key, bytes(32), keys[-1])) for key in keys[:-1]]


def test_lanes_open_in_order_and_a_failure_frees_one() -> None:
    a, b, c, d = _exits(4)
    race = ExitRace.over([a, b, c, d], width=2, listed=9)
    assert [race.next_attempt(), race.next_attempt(), race.next_attempt()] == [a, b, None]
    race.failed(a, "no ConnectSuccess in 12 s")
    assert race.next_attempt() is c and race.tried == 3
    assert race.claim(c) and not race.claim(b)  # the first ready wins, a later one lost
    assert race.next_attempt() is None and not race.exhausted
    assert race.winner is c


def test_a_walk_without_a_winner_sums_up_in_one_line() -> None:
    exits = _exits(4)
    race = ExitRace.over(exits, width=1, listed=9)
    whys = ["no ConnectSuccess in 12 s"] * 3 + ["no route to its gateway"]
    for exit_, why in zip(exits, whys, strict=True):
        assert race.next_attempt() is exit_
        race.failed(exit_, why)
    assert race.exhausted
    assert race.summary() == (
        "no exit connected (4 tried of 9: no ConnectSuccess in 12 s (x3); no route to its gateway)"
    )
