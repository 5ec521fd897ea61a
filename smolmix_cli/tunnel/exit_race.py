"""`ExitRace`: one walk over the exit order, a few attempts at a time, the first ready one wins.

Only bookkeeping (no I/O): the tunnel starts the attempts this hands out, tells
it how each ended, and the first exit that connected and answered the readiness
ping claims the race. Attempts still running then are losers: the tunnel lets
them finish within their own budget and disconnects any that connect late, so
the exit frees the addresses it allocated. With `width` 1 this is the old
one-after-another walk.

Racing bounds the walk's time by waves, not by attempts: on mainnet a dead exit
costs a whole attempt budget, so `attempts` dead exits one by one take
`attempts` budgets, raced `width` at a time only attempts/width of them.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from smolmix_cli.tunnel.exits import ExitCandidate
from smolmix_cli.wakeup import Signal


@dataclass(eq=False)
class ExitRace:
    width: int
    listed: int  # usable exits the directory gave, for the failure message
    pending: deque[ExitCandidate] = field(default_factory=deque)
    running: list[ExitCandidate] = field(default_factory=list)
    failures: list[tuple[ExitCandidate, str]] = field(default_factory=list)
    winner: ExitCandidate | None = None
    changed: Signal = field(default_factory=Signal)

    @classmethod
    def over(cls, order: Iterable[ExitCandidate], width: int, listed: int) -> ExitRace:
        return cls(max(1, width), listed, deque(order))

    @property
    def tried(self) -> int:
        return len(self.failures) + len(self.running) + (self.winner is not None)

    @property
    def can_start(self) -> bool:
        """The race is open, a lane is free and an exit waits for it."""
        return self.winner is None and len(self.running) < self.width and bool(self.pending)

    def next_attempt(self) -> ExitCandidate | None:
        """The next exit to start, while the race is open and a lane is free."""
        if not self.can_start:
            return None
        exit_ = self.pending.popleft()
        self.running.append(exit_)
        return exit_

    def failed(self, exit_: ExitCandidate, why: str) -> None:
        """`why` without the exit's name (e.g. "no ConnectSuccess in 12 s")."""
        if exit_ in self.running:
            self.running.remove(exit_)
        self.failures.append((exit_, why))
        self.changed.set()

    def claim(self, exit_: ExitCandidate) -> bool:
        """True for the first ready exit; later ones lost and must release their session."""
        if exit_ in self.running:
            self.running.remove(exit_)
        if self.winner is not None:
            return False
        self.winner = exit_
        self.changed.set()
        return True

    @property
    def exhausted(self) -> bool:
        return self.winner is None and not self.running and not self.pending

    def summary(self) -> str:
        """One line for a walk that found no exit: how many, and why they failed."""
        counts = Counter(why for _exit, why in self.failures)
        reasons = "; ".join(f"{why} (x{n})" if n > 1 else why for why, n in counts.most_common())
        return f"no exit connected ({len(self.failures)} tried of {self.listed}: {reasons})"
