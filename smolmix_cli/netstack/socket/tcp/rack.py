"""RACK-TLP loss detection (RFC 8985): losses judged by time, tails found by probes.

A segment sent before one that was delivered is lost once a reordering window
has passed; the mixnet reorders nearly every packet, so counting duplicate
ACKs would declare losses constantly. `TcpConfig.rack = False` keeps the
classic rule (three SACKed segments above a hole) for comparison.

Deliberate departures, each measured with bench/tcp_sim.py on a reordering
link (exponential per-packet delay):
- The reordering window also learns from reordering it sees (late
  originals, Eifel-proven spurious retransmissions) and may reach
  SRTT + 2*RTTVAR instead of RFC 8985's SRTT cap.
- Before any reordering is seen the window is still min_RTT/4, where RFC 8985
  §6.2 makes it 0 in recovery or once DupThresh segments are SACKed: on a
  reordering link (the mixnet) the first holes are late segments, and
  declaring them lost at once cost spurious retransmissions and reductions
  (bench/tcp_sim.py: exp(100 ms) 2.14 -> 2.25 s, mixnet-like 27.6 -> 28.4 s).
- The probe fires no later than the RTO would (see `arm_tlp`).
"""

from __future__ import annotations

from smolmix_cli.netstack.socket.tcp.config import TcpConfig
from smolmix_cli.netstack.socket.tcp.rtt import G, RttEstimator
from smolmix_cli.netstack.socket.tcp.scoreboard import Scoreboard, SentSegment


class RackTlp:
    """RACK's record of the newest delivery, the reordering window, and the TLP state.

    `xmit_ts`, `end` and `rtt` are RFC 8985's RACK.xmit_ts, RACK.end_seq and
    RACK.rtt; `rack_at` and `tlp_at` are the reordering and probe timers.
    """

    def __init__(self, config: TcpConfig, rtt: RttEstimator) -> None:
        self.config = config
        self._est = rtt
        self.min_rtt = float("inf")
        self.xmit_ts = -1.0
        self.end = 0
        self.rtt = 0.0
        self.fack = 0
        self.fack_before = 0  # RACK.fack as it was before the ACK being processed
        self.reo_mult = 1
        self.reo_meas = 0.0
        self.dsack_round = 0
        self.tlp_pending = False
        self.tlp_out = False
        self.rack_at: float | None = None
        self.tlp_at: float | None = None

    def update(self, rec: SentSegment, now: float) -> None:
        """`rec` was delivered (cumulatively acked or SACKed) as of `now`."""
        rtt = now - rec.xmit_ts
        if rec.retrans:
            if rtt < self.min_rtt:
                return  # likely acks the original transmission: ambiguous
        elif rtt < self.min_rtt:
            self.min_rtt = rtt
        if rec.end < self.fack_before and not rec.retrans:
            # Overtaken by a segment an earlier ACK covered: measure how late it was.
            # (Against the pre-ACK RACK.fack: one ACK's SACK blocks come newest first.)
            self.learn_reordering(rtt - self.rtt)
        elif rec.end > self.fack:
            self.fack = rec.end
        if rec.xmit_ts > self.xmit_ts or (rec.xmit_ts == self.xmit_ts and rec.end > self.end):
            self.xmit_ts = rec.xmit_ts
            self.end = rec.end
            self.rtt = rtt

    def learn_reordering(self, excess: float) -> None:
        if excess > self.reo_meas:
            self.reo_meas = excess

    def on_dsack(self, snd_una: int, snd_nxt: int) -> None:
        """RFC 8985 §6.2.4: a DSACK widens the reordering window, once per round trip."""
        if snd_una >= self.dsack_round:
            self.dsack_round = snd_nxt
            self.reo_mult = min(self.reo_mult + 1, 64)

    def reo_wnd(self) -> float:
        """RACK reordering window: RFC 8985's min_RTT/4 steps, or measured reordering.

        RFC 8985 caps the window at SRTT; on a link whose per-packet delay is
        exponential that cap is hit constantly and every flight has a "loss".
        A window learnt from reordering actually seen may grow to SRTT + 2*RTTVAR,
        still well below the RTO, so real losses are found before a timeout.
        """
        if self.min_rtt == float("inf"):
            return 0.0
        est = self._est
        srtt = est.srtt if est.srtt is not None else 0.0
        base = min(self.min_rtt / 4 * self.reo_mult, srtt)
        meas = self.reo_meas
        if meas > base:
            return min(meas, srtt + 2 * est.rttvar)
        return base

    def detect_loss(self, now: float, sb: Scoreboard) -> bool:
        """RFC 8985 §6.2: mark lost what was sent before a delivery and is a window late.

        False when nothing was delivered yet, so there is nothing to judge by.
        """
        q = sb.xmit_q
        if not self.config.rack:
            while q and (q[0][1].delivered or q[0][1].sacked):
                q.popleft()  # unused in this mode: keep it from growing
            self._detect_dupthresh(sb)
            return True
        rack_ts = self.xmit_ts
        rack_end = self.end
        if rack_ts < 0:
            return False
        reo = self.reo_wnd()
        horizon = self.rtt + reo
        while q:
            ts, rec = q[0]
            if rec.xmit_ts != ts or rec.sacked or rec.delivered or rec.lost:
                q.popleft()
                continue
            if ts > rack_ts or (ts == rack_ts and rec.end >= rack_end):
                break
            remaining = ts + horizon - now
            if remaining <= 0:
                q.popleft()
                sb.mark_lost(rec)
            else:
                at = now + remaining
                if self.rack_at is None or at < self.rack_at:
                    self.rack_at = at
                break
        return True

    @staticmethod
    def _detect_dupthresh(sb: Scoreboard) -> None:
        """Classic rule for comparison: lost once 3 segments above it are SACKed."""
        sacked_above = 0
        for rec in reversed(sb.sent):
            if rec.sacked:
                sacked_above += 1
            elif sacked_above >= 3 and not rec.lost and rec.in_flight and not rec.retrans:
                sb.mark_lost(rec)

    def arm_tlp(self, now: float, flight: int, mss: int, rto_at: float | None) -> None:
        """(Re)schedule the probe timeout from now (RFC 8985 §7.2)."""
        self.tlp_at = None
        srtt = self._est.srtt
        if not self.config.tlp or self.tlp_out or srtt is None:
            return
        if self.rack_at is not None or flight <= 0:
            return
        pto = max(2 * srtt, 2 * G)
        if flight <= mss:
            pto += self.config.peer_delayed_ack
        at = now + pto
        if rto_at is not None and at >= rto_at:
            # As Linux: probe when the RTO would fire, and push the RTO back. With
            # long, variable RTTs (the mixnet) 2*SRTT often exceeds the RTO, and a
            # probe costs one segment where a timeout collapses cwnd to one.
            at = rto_at
        self.tlp_at = at

    def idle(self) -> bool:
        """Neither the reordering timer nor the probe timer is armed."""
        return self.tlp_at is None and self.rack_at is None
