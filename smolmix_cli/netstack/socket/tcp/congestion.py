"""Congestion control (RFC 5681, RFC 6928's initial window) and the undo of spurious recoveries.

One reduction per recovery episode; without SACK, duplicate ACKs and partial
ACKs drive NewReno (RFC 5681 §3.2, RFC 6582).

Deliberate departures, each measured with bench/tcp_sim.py on a reordering
link (exponential per-packet delay):
- Spurious recoveries are undone (Eifel on TSecr, RFC 3522, and DSACK
  counting, RFC 2883); an episode starting within 2 SRTT of one still
  awaiting its DSACKs keeps the earlier saved cwnd/ssthresh.
- An undo in slow start credits the bytes acked during the episode
  (Linux restores the cwnd from before it): several spurious episodes in
  the first seconds otherwise each froze slow start for a round trip
  (bench/tcp_sim.py mixnet_shaped_1MiB_256KiB: 6.28 -> 5.93 s).
- Slow start counts all newly acked bytes (no RFC 3465 L limit): stretch ACKs
  (one per burst, as after receive coalescing) must not slow it down.
"""

from __future__ import annotations

from smolmix_cli.netstack.socket.tcp.config import TcpConfig
from smolmix_cli.netstack.socket.tcp.seq import HALF, MASK


class CongestionControl:
    """cwnd and ssthresh, the recovery episode, and what an undo would restore."""

    def __init__(self, config: TcpConfig) -> None:
        self.config = config
        self.cwnd = 0
        self.ssthresh = 1 << 30
        self.ca_acc = 0
        self.dupacks = 0
        self.in_recovery = False
        self.recovery_point = 0
        self.rto_recovery = False
        self.prior_cwnd = 0
        self.prior_ssthresh = 0
        self.undo_retrans = -1  # -1: nothing to undo
        self.undo_marker = 0  # SND.UNA when the undoable episode began
        self.undo_expires = 0.0  # a new episode before this extends the old one
        self.first_retrans_tsval: int | None = None
        self.undo_acked = 0  # bytes acked since the undoable episode began

    def on_ack(
        self,
        acked: int,
        ack: int,
        timestamps: tuple[int, int] | None,
        now: float,
        mss: int,
        srtt: float | None,
        max_snd_wnd: int,
    ) -> bool:
        """Newly acked bytes; True when the episode this ACK ends proved spurious (undo it).

        `timestamps` are the ACK's (TSval, TSecr) when the connection uses them.
        """
        if self.in_recovery:
            self.undo_acked += acked
            if ack >= self.recovery_point:
                self.in_recovery = False
                self.rto_recovery = False
                spurious = self.undo_retrans == 0 or self._echoes_original(timestamps)
                if spurious and self.prior_cwnd:
                    return True
                self.cwnd = max(self.ssthresh, 2 * mss)
                # DSACKs proving this episode spurious may still be on their way.
                self.undo_expires = now + 2 * (srtt if srtt is not None else 1.0)
                return False
            if self.rto_recovery:
                self.cwnd += min(acked, mss)  # slow start after the timeout
            return False
        if self.cwnd < self.ssthresh:
            self.cwnd += acked
        else:
            self.ca_acc += acked
            if self.ca_acc >= self.cwnd:
                self.ca_acc -= self.cwnd
                self.cwnd += mss
        limit = 2 * max(max_snd_wnd, self.config.send_buffer) + 4 * mss
        if self.cwnd > limit:
            self.cwnd = limit
        return False

    def _echoes_original(self, timestamps: tuple[int, int] | None) -> bool:
        """RFC 3522: the ACK echoes a TSval older than our first retransmission."""
        first = self.first_retrans_tsval
        if first is None or timestamps is None:
            return False
        return (timestamps[1] - first) & MASK >= HALF

    def enter_recovery(self, now: float, snd_una: int, snd_nxt: int, mss: int) -> None:
        """Loss detected (RACK, or three duplicate ACKs): halve once for the episode."""
        self.save_undo(now, snd_una)
        flight = snd_nxt - snd_una
        self.ssthresh = max(min(self.cwnd, flight) // 2, 2 * mss)
        self.cwnd = self.ssthresh
        self.ca_acc = 0
        self.in_recovery = True
        self.recovery_point = snd_nxt
        self.first_retrans_tsval = None

    def on_rto(self, now: float, snd_una: int, snd_nxt: int, mss: int) -> None:
        """A retransmission timeout: one segment's window, slow start from there."""
        if not self.rto_recovery:
            if not self.in_recovery:
                self.save_undo(now, snd_una)
            flight = snd_nxt - snd_una
            self.ssthresh = max(min(self.cwnd, flight) // 2, 2 * mss)
        self.cwnd = mss
        self.ca_acc = 0
        self.in_recovery = True
        self.rto_recovery = True
        self.recovery_point = snd_nxt
        self.first_retrans_tsval = None

    def on_retransmit(self, timestamps: tuple[int, int] | None) -> None:
        """Count retransmissions of the episode (each needs a DSACK to prove it spurious)."""
        if self.in_recovery:
            if self.undo_retrans >= 0:
                self.undo_retrans += 1
            if self.first_retrans_tsval is None and timestamps is not None:
                self.first_retrans_tsval = timestamps[0]

    def save_undo(self, now: float, snd_una: int) -> None:
        if self.prior_cwnd and self.undo_retrans > 0 and now < self.undo_expires:
            # The previous episode may still prove spurious (its DSACKs are in
            # flight): keep its larger prior state and keep counting, so an undo
            # restores what the first spurious reduction took away.
            return
        self.prior_cwnd = self.cwnd
        self.prior_ssthresh = self.ssthresh
        self.undo_retrans = 0
        self.undo_marker = snd_una
        self.undo_acked = 0

    def retrans_delivered(self, retrans: int) -> bool:
        """Eifel proved `retrans` retransmissions unneeded; True when the undo is due."""
        self.undo_retrans = max(0, self.undo_retrans - retrans)
        return self.undo_retrans == 0 and self.prior_cwnd != 0

    def on_dsack(self, left: int) -> bool:
        """A DSACK for [left, ...): True when it proves the last episode spurious."""
        if self.undo_retrans > 0 and left >= self.undo_marker:
            self.undo_retrans -= 1
            return self.undo_retrans == 0 and not self.in_recovery and self.prior_cwnd != 0
        return False

    def undo(self) -> None:
        """Restore cwnd and ssthresh from before the spurious reduction.

        In slow start the restored cwnd also gets what the episode's ACKs would have
        added: a spurious episode froze growth for a round trip, and on a reordering
        path (the mixnet) there are several in a transfer's first seconds.
        """
        prior = self.prior_cwnd
        if prior < self.prior_ssthresh:
            prior += self.undo_acked
        self.cwnd = max(self.cwnd, prior)
        self.ssthresh = max(self.ssthresh, self.prior_ssthresh)
        self.prior_cwnd = 0
        self.undo_retrans = -1
        self.in_recovery = False
        self.rto_recovery = False
