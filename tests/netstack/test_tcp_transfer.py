"""Byte-exact transfers between two connections over an impaired virtual-clock link."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smolmix_cli.netstack.errors import ConnectionTimedOut
from smolmix_cli.netstack.socket.tcp.config import TcpConfig
from smolmix_cli.netstack.socket.tcp.connection import TcpConnection
from smolmix_cli.netstack.socket.tcp.sim import BulkSender, LinkParams, Reader, SimLink
from smolmix_cli.netstack.socket.tcp.state import TcpState
from smolmix_cli.netstack.wire.tcp import SYN


def transfer(
    params: LinkParams,
    size: int,
    seed: int = 1,
    *,
    reverse: bool = False,
    both: bool = False,
    cfg_a: TcpConfig | None = None,
    cfg_b: TcpConfig | None = None,
    wire: bool = False,
    budget: float = 120.0,
    reader_chunk: int | None = None,
    reader_period: float = 0.0,
) -> tuple[SimLink, TcpConnection, TcpConnection, float]:
    """Send random bytes (one or both ways), close both sides, check every byte."""
    link = SimLink(params, seed=seed, wire=wire, check=True)
    a, b = link.connect(cfg_a or TcpConfig(time_wait=0.5), cfg_b or TcpConfig(time_wait=0.5))
    rng = random.Random(seed)
    data_ab = rng.randbytes(size)
    data_ba = rng.randbytes(size // 2 + 1)
    pairs = []
    if both or not reverse:
        pairs.append((a, b, data_ab))
    if both or reverse:
        pairs.append((b, a, data_ba))
    readers = []
    t0 = link.now
    for snd, rcv, data in pairs:
        link.add_app(BulkSender(snd, data))
        r = Reader(rcv, reader_chunk, reader_period)
        link.add_app(r)
        readers.append((r, data))
    closers = [c for c in (a, b) if not any(s is c for s, _, _ in pairs)]
    for c in closers:
        link.add_app(lambda now, c=c: c.close() if c.at_eof and c.is_established else None)
    link.run_until(lambda: all(r.eof_at is not None for r, _ in readers), budget)
    done = link.now - t0
    for r, data in readers:
        assert bytes(r.buf) == data
    link.run_until(lambda: a.is_closed and b.is_closed, budget)
    assert a.error is None and b.error is None
    return link, a, b, done


def test_lossless_large_buffers_use_window_scaling() -> None:
    big = TcpConfig(send_buffer=1 << 20, recv_buffer=1 << 20, time_wait=0.5)
    _, a, _b, t = transfer(LinkParams(one_way=0.01), 4 << 20, cfg_a=big, cfg_b=big)
    assert a._tx.snd_wscale == 5 and a._tx.max_snd_wnd > 65535 * 4
    # 4 MiB over 20 ms RTT with a 1 MiB window: a handful of round trips, not 64 KiB ones.
    assert t < 0.6, t


def test_lossless_through_the_wire_codec_both_directions() -> None:
    _, a, b, _ = transfer(LinkParams(), 300_000, both=True, wire=True)
    assert a.stats.retransmits == 0 and b.stats.retransmits == 0


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("loss", [0.01, 0.05])
def test_loss(loss: float, reverse: bool) -> None:
    _, a, b, t = transfer(LinkParams(loss=loss), 1 << 20, seed=7, reverse=reverse)
    sender = b if reverse else a
    assert sender.stats.retransmits > 0
    # SACK + RACK-TLP repair losses within round trips; a timeout (0.2 s floor here,
    # 200 RTTs) is a rare last resort, not the recovery mechanism.
    assert sender.stats.rto_events <= 1
    assert t < 0.5, t


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("mean", [0.02, 0.1])
def test_exponential_delay_reordering(mean: float, reverse: bool) -> None:
    _, a, b, t = transfer(LinkParams(exp_delay=mean), 256 << 10, seed=3, reverse=reverse)
    sender = b if reverse else a
    # Linux needs about 20 mean delays here; allow 2x that, i.e. no RTO spiral.
    assert t < 40 * mean, t
    # Reordering fools loss detection at first; the spurious reductions are undone.
    assert sender.stats.undos >= 1 or sender.stats.retransmits <= 2


def test_duplication_and_reordering_together() -> None:
    params = LinkParams(dup=0.1, exp_delay=0.005, loss=0.02)
    _, a, b, _ = transfer(params, 1_200_000, both=True)
    # Duplicates reach the receivers, which report them as DSACKs.
    assert a.stats.dsacks_in > 0 and b.stats.dsacks_in > 0


def test_slow_reader_zero_window_and_persist() -> None:
    cb = TcpConfig(recv_buffer=8192, time_wait=0.5)
    _, a, _b, t = transfer(LinkParams(), 100_000, cfg_b=cb, reader_chunk=2000, reader_period=0.05)
    # The reader caps throughput at 40 kB/s; the sender must wait, not fail.
    assert t > 2.0 and a.error is None


def test_nagle_off_interactive_small_writes() -> None:
    link = SimLink(LinkParams(one_way=0.01), seed=1, check=True)
    a, b = link.connect(TcpConfig(nagle=False), TcpConfig())
    link.run_until(lambda: a.is_established and b.is_established, 1.0)
    r = Reader(b)
    link.add_app(r)
    for i in range(5):
        a.send(b"k%d" % i)
        link.flush()
    link.run_until(lambda: len(r.buf) == 10, 1.0)
    assert bytes(r.buf) == b"k0k1k2k3k4"
    assert link.stats.sent[0] >= 1 + 5  # every write went out at once


def test_retransmit_limit_when_link_dies() -> None:
    dead = {"on": False}
    link = SimLink(LinkParams(), seed=1, filter_fn=lambda d, s: not dead["on"], check=True)
    a, b = link.connect(TcpConfig(max_retransmits=5, rto_max=2.0), TcpConfig())
    link.run_until(lambda: b.is_established, 1.0)
    dead["on"] = True
    a.send(b"x" * 5000)
    link.flush()
    link.run_until(lambda: a.error is not None, 60.0)
    assert isinstance(a.error, ConnectionTimedOut) and a.state is TcpState.CLOSED
    assert a.stats.rto_events == 5


def test_syn_lost_then_retransmitted() -> None:
    drops = {"n": 2}

    def drop_first_syns(direction: int, seg: object) -> bool:
        from smolmix_cli.netstack.wire.tcp import TcpSegment

        assert isinstance(seg, TcpSegment)
        if direction == 0 and seg.flags & SYN and drops["n"] > 0:
            drops["n"] -= 1
            return False
        return True

    link = SimLink(LinkParams(), seed=1, filter_fn=drop_first_syns, check=True)
    a, _b = link.connect(TcpConfig(rto_initial=1.0), TcpConfig())
    link.run_until(lambda: a.is_established, 10.0)
    assert link.now == pytest.approx(3.0, abs=0.01)  # 1 s, then 2 s backoff


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    loss=st.sampled_from([0.0, 0.01, 0.05, 0.15]),
    dup=st.sampled_from([0.0, 0.05]),
    delay=st.sampled_from([0.0, 0.002, 0.02]),
    size=st.integers(1, 60_000),
    both=st.booleans(),
    nagle=st.booleans(),
)
def test_property_byte_exact_and_clean_close(
    seed: int, loss: float, dup: float, delay: float, size: int, both: bool, nagle: bool
) -> None:
    cfg = TcpConfig(time_wait=0.5, nagle=nagle, max_retransmits=30, syn_retransmits=30)
    transfer(
        LinkParams(loss=loss, dup=dup, exp_delay=delay),
        size,
        seed=seed,
        both=both,
        cfg_a=cfg,
        cfg_b=cfg,
        budget=600.0,
    )


@pytest.mark.fuzz
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    loss=st.floats(0.0, 0.2),
    dup=st.floats(0.0, 0.2),
    delay=st.floats(0.0, 0.2),
    size=st.integers(1, 400_000),
    both=st.booleans(),
    small_buffers=st.booleans(),
    opts=st.booleans(),
)
def test_fuzz_impairments(
    seed: int,
    loss: float,
    dup: float,
    delay: float,
    size: int,
    both: bool,
    small_buffers: bool,
    opts: bool,
) -> None:
    buf = 6000 if small_buffers else 65536
    cfg = TcpConfig(
        time_wait=0.5,
        max_retransmits=60,
        syn_retransmits=60,
        rto_max=4.0,  # bounded virtual time; correctness, not speed, is checked here
        keepalive_idle=None,
        send_buffer=buf,
        recv_buffer=buf,
        timestamps=opts,
        sack=opts,
        window_scaling=opts,
    )
    transfer(
        LinkParams(loss=loss, dup=dup, exp_delay=delay),
        size,
        seed=seed,
        both=both,
        cfg_a=cfg,
        cfg_b=cfg,
        wire=True,
        budget=3600.0,
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_junk=st.integers(1, 40))
def test_property_blind_injection_never_breaks_invariants(seed: int, n_junk: int) -> None:
    """Off-path segments (random RST/SYN/ACK/FIN near the live numbers) never raise,
    never corrupt state, and only an exact-sequence RST may end the connection."""
    from smolmix_cli.netstack.socket.tcp.sim import check_invariants
    from smolmix_cli.netstack.wire.tcp import ACK, FIN, RST, TcpSegment

    rng = random.Random(seed)
    link = SimLink(LinkParams(exp_delay=0.002, loss=0.02), seed=seed, check=True)
    cfg = TcpConfig(time_wait=0.5)
    a, b = link.connect(cfg, cfg)
    data = rng.randbytes(50_000)
    link.add_app(BulkSender(a, data))
    reader = Reader(b)
    link.add_app(reader)
    junk_left = [n_junk]

    def inject(now: float) -> float | None:
        if junk_left[0] <= 0 or b.is_closed:
            return None
        junk_left[0] -= 1
        base_seq = a._tx.snd_una + rng.randint(-70_000, 70_000)
        base_ack = b._tx.snd_nxt + rng.randint(-70_000, 70_000)
        flags = rng.choice([RST, SYN, ACK, ACK | FIN, RST | ACK, SYN | ACK, 0])
        seg = TcpSegment(
            a.local[1],
            b.local[1],
            base_seq & 0xFFFFFFFF,
            base_ack & 0xFFFFFFFF,
            flags,
            rng.randint(0, 0xFFFF),
            sack_blocks=((rng.getrandbits(32), rng.getrandbits(32)),) if rng.random() < 0.3 else (),
        )
        b.handle_segment(seg, now)
        check_invariants(b)
        return now + 0.001

    link.add_app(inject)
    link.run_until(lambda: reader.eof_at is not None or b.is_closed, 300.0)
    if b.error is None:
        assert bytes(reader.buf) == data
    else:
        # Only a RST can kill it, and RFC 5961 demands an exact RCV.NXT hit for that.
        assert bytes(reader.buf) == data[: len(reader.buf)]


@pytest.mark.parametrize(
    "opts",
    [
        {"rack": False},  # classic 3-SACKed-segments rule instead of RACK
        {"sack": False},  # NewReno on duplicate ACKs
        {"sack": False, "timestamps": False, "window_scaling": False, "tlp": False},
    ],
)
def test_loss_with_fallback_loss_detection(opts: dict[str, bool]) -> None:
    cfg = TcpConfig(time_wait=0.5, **opts)  # type: ignore[arg-type]
    _, a, _, t = transfer(LinkParams(loss=0.03), 300_000, seed=11, cfg_a=cfg, cfg_b=cfg)
    assert a.stats.retransmits > 0 and a.stats.recoveries > 0
    assert t < 10.0, t
