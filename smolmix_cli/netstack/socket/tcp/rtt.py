"""Round-trip time estimation and the retransmission timeout (RFC 6298)."""

from __future__ import annotations

from typing import Final

from smolmix_cli.netstack.socket.tcp.config import TcpConfig

G: Final = 0.001  # clock granularity for RFC 6298


class RttEstimator:
    """SRTT, RTTVAR and the RTO with its exponential backoff (the timer is the sender's)."""

    def __init__(self, config: TcpConfig) -> None:
        self.config = config
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.rto = config.rto_initial  # before backoff
        self.backoff = 0

    def sample(self, r: float) -> None:
        """One round-trip measurement in seconds (Karn's rule is the caller's)."""
        if r < 0:
            return
        srtt = self.srtt
        if srtt is None:
            srtt = r
            self.rttvar = r / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(srtt - r)
            srtt = 0.875 * srtt + 0.125 * r
        self.srtt = srtt
        cfg = self.config
        rto = srtt + max(G, 4 * self.rttvar)
        self.rto = min(max(rto, cfg.rto_min), cfg.rto_max)

    def current_rto(self) -> float:
        """The RTO with the backoff applied, at most rto_max."""
        return min(self.rto * (1 << min(self.backoff, 30)), self.config.rto_max)
