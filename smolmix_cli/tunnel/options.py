"""Tunnel tuning, with the published client's defaults (seed README "Tuning", spec §2.2, §12).

The IPR client's settings (SURB counts, connect and ping timeouts, the exit's
idle timeout) are inherited from its own config, so their defaults live once.
Local networks have zero-delay mixes, so `for_local_network` lowers the TCP RTO
floor there; on mainnet a mixnet round trip is seconds and a low floor only
causes spurious retransmissions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from smolmix_cli.ipr.client_logic import ClientConfig as IprClientConfig
from smolmix_cli.mixnet.client.client import ClientConfig
from smolmix_cli.mixnet.client.core import MEASURED_ACK_FLOOR
from smolmix_cli.netstack.socket.tcp.config import TcpConfig

if TYPE_CHECKING:
    from smolmix_cli.config import Network

MAINNET_DNS = ("8.8.8.8:53", "1.1.1.1:53")  # spec §2.7: primary, then fallback
MAX_TCP_BUFFER = 0xFFFF  # the seed caps tcpBufferSize at u16::MAX
MAX_TCP_RECV_WINDOW = 1 << 24  # a scaled window (RFC 7323, shift 8) past the seed's cap
TCP_RECV_WINDOW = 256 * 1024  # TunnelOptions.tcp_recv_window's default


@dataclass(frozen=True, slots=True)
class TunnelOptions(IprClientConfig):
    """The IPR client's config (connectTimeoutMs is its connect_timeout) plus the tunnel's."""

    dns_timeout: float = 30.0  # per DNS attempt (dnsTimeoutMs)
    dns_tries: int = 2  # UDP tries per server before the fallback server
    tcp_keepalive: float | None = 10.0  # tcpKeepaliveMs; None = off
    tcp_buffer_size: int = 65535  # tcpBufferSize, per direction and stream
    # A receive window past the seed's u16 cap (it has no such option), used while
    # tcp_buffer_size is at that cap (its default); a smaller tcp_buffer_size still sets
    # the window. Needs window scaling (RFC 7323), which exits' TCP offers. Under Nym's
    # shaping (50 ms per hop) a round trip is 0.4-0.8 s, so 64 KiB bounded a download
    # to ~100 KB/s (bench/README.md, "Issue 17, reordering"). None: the seed's window.
    tcp_recv_window: int | None = TCP_RECV_WINDOW
    tcp_connect_timeout: float = 60.0  # one TCP open through the tunnel
    tcp_rto_min: float = 1.0  # mainnet RTTs are seconds
    # Each TCP segment up is a Nym message (several Sphinx headers). Acking every second
    # data segment even out of order (TcpConfig.ack_every=2) cut uplink messages at 10 %
    # loss from 846 to 504 per MiB but slowed the transfer (2 MiB: 151 s against 91 s,
    # bench/loss.py), so it stays off (0 = the LAN policy) until a run shows it pays.
    # Request/response writes leave at once instead of behind an unacked runt (Nagle
    # would hold the HTTP request behind the TLS Finished for a mixnet round trip).
    tcp_ack_every: int = 0
    tcp_nodelay: bool = True
    coalesce_uplink_acks: bool = True  # drop a queued lone ACK a newer one supersedes
    # With Poisson pacing, uplink packets wait in the tunnel until the mixnet client's
    # queue is empty, so each slot carries the newest (lone ACKs queued meanwhile are
    # coalesced) instead of one message per packet queueing behind the slots: under
    # shaping an ACK per segment filled every slot (bench/interop.py --profile shaped).
    hold_uplink_for_slots: bool = True
    mtu: int | None = None  # None: what the exit reports, else 1420
    cover: bool = True  # loop cover traffic
    poisson: bool = True  # Poisson pacing of real messages
    sending_delay: float = 0.020  # mean gap between real messages when Poisson pacing is on
    mean_delay_ms: float | None = None  # per-hop mix delay; None = network default
    ipr: str | None = None  # pin one exit IPR (Recipient text); None = discover
    dns_servers: tuple[str, ...] | None = None  # "ip:port"; None = the network's or MAINNET_DNS
    # Discovered exits are raced `exit_race` at a time (1: one after another), each with
    # `exit_attempt_timeout` per IPR version (a v10 probe, then v9), at most
    # `exit_attempts` of them; a pinned exit gets the full connect_timeout. Upstream walks
    # 5 exits at 6 s each (nymtech/nym openspec/changes/add-ipr-connect-retry/design.md,
    # "Budgets"); with ~60 % of mainnet's filtered exits dead, 5 fail 0.6**5 = 8 % of
    # boots, 15 only 0.6**15 = 5e-4, and a race of 5 walks 15 in three attempt budgets
    # (bench/exit_race.py measures both modes).
    exit_attempts: int = 15
    exit_attempt_timeout: float = 6.0
    exit_race: int = 5
    # Lanes of a race open one at a time, `exit_race_stagger` apart (at once when an
    # attempt fails), as Happy Eyeballs (RFC 8305) staggers its connects: a live first
    # exit wins before the others cost anything. 0: all lanes at once.
    exit_race_stagger: float = 0.0
    keep_alive_idle: bool = True  # keep the IPR session alive while no stream is open
    max_in_flight: int = 128  # uplink fragments awaiting SURB-ACKs before packets wait; 0 = off
    packets_per_message: int = 1  # >1: bundle queued uplink packets (u16 codec) in one message
    data_dir: Path | None = None  # keys + remembered exit; None = ephemeral, nothing saved
    gateway_loss_after: float = 10.0  # the gateway unreachable this long fails the tunnel
    # Mixnet ack timeouts from measured acks, at least this beyond the mix delays; None:
    # Nym's static expected_rtt * 1.5 + 1.5 s (CoreConfig.ack_wait_floor).
    ack_wait_floor: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.tcp_buffer_size <= MAX_TCP_BUFFER:
            raise ValueError(f"tcp_buffer_size must be in 1..{MAX_TCP_BUFFER}")
        window = self.tcp_recv_window
        if window is not None and not 0 < window <= MAX_TCP_RECV_WINDOW:
            raise ValueError(f"tcp_recv_window must be in 1..{MAX_TCP_RECV_WINDOW}")
        if self.mtu is not None and not 576 <= self.mtu <= 9000:
            raise ValueError("mtu must be in 576..9000")
        if self.open_reply_surbs < 0 or self.data_reply_surbs < 0:
            raise ValueError("SURB counts must not be negative")
        if not 0 <= self.tcp_ack_every <= 8:
            raise ValueError("tcp_ack_every must be in 0..8")
        if self.packets_per_message < 1:
            raise ValueError("packets_per_message must be at least 1")
        if self.exit_attempts < 1:
            raise ValueError("exit_attempts must be at least 1")
        if self.exit_race < 1:
            raise ValueError("exit_race must be at least 1")
        if self.exit_race_stagger < 0:
            raise ValueError("exit_race_stagger must not be negative")
        if self.exit_attempt_timeout <= 0:
            raise ValueError("exit_attempt_timeout must be positive")
        if self.gateway_loss_after <= 0:
            raise ValueError("gateway_loss_after must be positive")

    def replace(self, **changes: object) -> TunnelOptions:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def exit_attempt_budget(self, v10_first: bool) -> float:
        """The most one discovered exit may take to connect: a budget per version tried."""
        return self.exit_attempt_timeout * (2 if v10_first else 1)

    def exit_phase_budget(self) -> float:
        """The most the walk over discovered exits may take: every attempt a dead v10 exit
        (both version budgets), `exit_race` of them at once."""
        waves = -(-self.exit_attempts // self.exit_race)
        return (
            waves * self.exit_attempt_budget(True) + (self.exit_race - 1) * self.exit_race_stagger
        )

    def recv_window(self) -> int:
        """Each stream's receive window: the scaled one unless tcp_buffer_size was lowered."""
        size = self.tcp_buffer_size
        if size < MAX_TCP_BUFFER or self.tcp_recv_window is None:
            return size
        return max(size, self.tcp_recv_window)

    def tcp_config(self) -> TcpConfig:
        return TcpConfig(
            send_buffer=self.tcp_buffer_size,
            recv_buffer=self.recv_window(),
            rto_min=self.tcp_rto_min,
            keepalive_idle=self.tcp_keepalive,
            keepalive_interval=self.tcp_keepalive or 10.0,
            ack_every=self.tcp_ack_every,
            nagle=not self.tcp_nodelay,
        )

    def mixnet_config(self, network: Network) -> ClientConfig:
        """The mixnet client's shaping: these options, with the network's mean delay by default."""
        delay_ms = self.mean_delay_ms if self.mean_delay_ms is not None else network.mean_delay_ms
        delay = delay_ms / 1000.0
        return ClientConfig(
            poisson=self.poisson,
            cover=self.cover,
            poisson_cover=self.poisson and self.cover,
            average_packet_delay=delay,
            average_ack_delay=delay,
            message_sending_average_delay=self.sending_delay,
            ack_wait_floor=self.ack_wait_floor,
        )


def for_network(network: Network) -> TunnelOptions:
    """The defaults for this network: unshaped on a local one, the published client's on mainnet."""
    return for_local_network() if network.is_local else TunnelOptions()


def for_local_network(**changes: object) -> TunnelOptions:
    """Defaults for the embedded local network: no shaping, a low RTO floor.

    Its mixes add no delay unless `mean_delay_ms` is given: a round trip is milliseconds,
    the seed's 64 KiB window covers it, and a scaled one only queued replies in the exit's
    mixnet sending, whose ack timers then resent 12x more (bench/loss.py: 2 MiB 8.3 -> 10.6 s).
    """
    base = TunnelOptions(
        tcp_recv_window=TCP_RECV_WINDOW if changes.get("mean_delay_ms") else None,
        cover=False,
        poisson=False,
        tcp_rto_min=0.2,
        connect_timeout=20.0,
        exit_attempt_timeout=5.0,  # a local round trip is milliseconds, even on a busy machine
        max_in_flight=64,
        ack_wait_floor=MEASURED_ACK_FLOOR,  # a lost fragment is resent in ~0.5 s, not 1.5 s
    )
    return base.replace(**changes)
