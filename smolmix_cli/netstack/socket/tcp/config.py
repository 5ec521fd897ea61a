"""A TCP connection's tunables and counters, and the protocol constants they meet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

DEFAULT_MSS: Final = 536  # RFC 9293 §3.7.1: assumed when the peer sends no MSS option
TS_OPTION_LEN: Final = 12  # NOP NOP + 10-byte timestamp option on every segment


@dataclass
class TcpConfig:
    """Per-connection tunables; defaults suit a LAN-ish path, the mixnet raises the RTO floor."""

    mss: int = 1380  # clamp from path MTU; stack computes mtu - 40 (v4) / - 60 (v6)
    send_buffer: int = 65536
    recv_buffer: int = 65536
    rto_initial: float = 1.0
    rto_min: float = 0.2  # configurable floor (mixnet RTTs are seconds)
    rto_max: float = 60.0
    max_retransmits: int = 12  # then ConnectionTimedOut
    syn_retransmits: int = 6
    keepalive_idle: float | None = 10.0  # seconds; None disables
    keepalive_interval: float = 10.0
    keepalive_probes: int = 6
    nagle: bool = True
    delayed_ack: float = 0.04  # seconds; 0 = ack immediately
    time_wait: float = 60.0  # 2*MSL; tests set small
    window_scaling: bool = True
    timestamps: bool = True
    sack: bool = True
    initial_window_segments: int = 10  # RFC 6928
    peer_delayed_ack: float = 0.05  # RFC 8985 WCDelAckT: added to the PTO for 1-segment flights
    tlp: bool = True  # tail loss probes (RFC 8985 §7)
    rack: bool = True  # time-based loss detection; False = 3 SACKed segments above a hole
    # Immediate ACKs at start and after a hole fills (Linux's quickack). Each ACK is a
    # packet; over the mixnet a lower value saves reply SURBs at some cost in ramp-up.
    quickack_segments: int = 16
    # Linux's pingpong (interactive) mode: once data is sent within a delayed-ACK time of
    # data received, in-order data waits for the delayed ACK, so a request's ACK rides on
    # its response; a delayed ACK that fires alone, or a hole, ends the mode. LAN policy
    # only. The local exit's NAT sets it: it stands in for an origin's kernel.
    pingpong: bool = False
    # >0: the sparse ACK policy for costly paths (the mixnet tunnel, where every ACK is
    # a Nym message of several Sphinx headers): every data segment, in order or not,
    # counts, one ACK per `ack_every` of them or after the delayed-ACK time, no quickack
    # and no immediate ACK per out-of-order segment. 0: the LAN policy in receiver.py.
    ack_every: int = 0
    # Sparse policy only: the delayed ACK waits at least this fraction of SRTT (mixnet
    # packets arrive spread out; a 40 ms timer would ack most of them alone).
    ack_delay_rtt: float = 0.25


@dataclass
class TcpStats:
    """Counters for benchmarks and debugging; never used for decisions."""

    segments_out: int = 0
    segments_in: int = 0
    bytes_retransmitted: int = 0
    retransmits: int = 0
    rto_events: int = 0
    tlp_probes: int = 0
    recoveries: int = 0
    undos: int = 0
    dsacks_in: int = 0
    challenge_acks: int = 0
