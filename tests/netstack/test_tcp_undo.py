"""Undoing a spurious recovery (congestion.py): what the restored cwnd is."""

from __future__ import annotations

from smolmix_cli.netstack.socket.tcp.config import TcpConfig
from smolmix_cli.netstack.socket.tcp.congestion import CongestionControl

MSS = 1000


def episode(cwnd: int, ssthresh: int, acked: int) -> CongestionControl:
    """A recovery entered at `cwnd` and undone after `acked` bytes were acked in it."""
    cc = CongestionControl(TcpConfig())
    cc.cwnd, cc.ssthresh = cwnd, ssthresh
    cc.enter_recovery(0.0, 0, cwnd, MSS)
    assert cc.cwnd == cwnd // 2
    for k in range(acked // MSS):
        cc.on_ack(MSS, (k + 1) * MSS, None, 0.1, MSS, 0.5, 1 << 20)
    cc.undo()
    return cc


def test_undo_in_slow_start_credits_what_the_episode_acked() -> None:
    """A spurious episode in slow start must not cost the growth its ACKs would give."""
    cc = episode(20 * MSS, 1 << 30, 8 * MSS)
    assert cc.cwnd == 28 * MSS and cc.ssthresh == 1 << 30


def test_undo_in_congestion_avoidance_restores_the_prior_cwnd() -> None:
    cc = episode(20 * MSS, 10 * MSS, 8 * MSS)
    assert cc.cwnd == 20 * MSS and cc.ssthresh == 10 * MSS
