"""Ping probes and statistics (sans-io): matching, duplicates, foreign data, ping(8) numbers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.mixnet.client.ping import MIN_SIZE, PingTracker


def test_round_trips_are_matched_by_nonce_and_sequence() -> None:
    tracker = PingTracker(b"N" * 8, size=100)
    probes = [tracker.probe(seq, now=10.0 + seq) for seq in range(3)]
    assert all(len(p) == 100 for p in probes)
    assert len(set(probes)) == 3
    assert tracker.receive(probes[1], now=11.25) is not None
    reply = tracker.replies[1]
    assert (reply.seq, reply.rtt_ms) == (1, pytest.approx(250.0))
    assert tracker.receive(probes[1], now=12.0) is None  # duplicate
    assert tracker.duplicates == 1
    other = PingTracker(b"O" * 8).probe(0, now=0.0)
    assert tracker.receive(other, now=12.0) is None  # another run's probe
    assert tracker.receive(b"hello", now=12.0) is None
    assert tracker.foreign == 2
    assert tracker.outstanding == 2


def test_summary_matches_ping_statistics() -> None:
    tracker = PingTracker(b"x" * 8)
    probes = [tracker.probe(seq, now=float(seq)) for seq in range(4)]
    for seq, rtt in ((0, 0.010), (1, 0.030), (3, 0.020)):
        tracker.receive(probes[seq], now=seq + rtt)
    summary = tracker.summary(now=4.0)
    assert (summary.transmitted, summary.received) == (4, 3)
    assert summary.loss_percent == 25.0
    assert summary.rtt_min == pytest.approx(10.0)
    assert summary.rtt_max == pytest.approx(30.0)
    assert summary.rtt_avg == pytest.approx(20.0)
    assert summary.rtt_mdev == pytest.approx(math.sqrt(200 / 3))
    text = summary.text()
    assert text[0] == "4 messages transmitted, 3 received, 25% message loss, time 4000ms"
    assert text[1].startswith("rtt min/avg/max/mdev = 10.000/20.000/30.000/")
    assert summary.to_json()["loss_percent"] == 25.0


def test_no_reply_summary_has_no_rtt_line() -> None:
    tracker = PingTracker(b"x" * 8)
    tracker.probe(0, now=0.0)
    summary = tracker.summary(now=1.0)
    assert summary.received == 0 and summary.loss_percent == 100.0
    assert len(summary.text()) == 1
    assert summary.to_json()["rtt_avg_ms"] is None


def test_probe_sequence_numbers_are_not_reused() -> None:
    tracker = PingTracker(b"x" * 8, size=1)
    assert len(tracker.probe(0, now=0.0)) == MIN_SIZE
    with pytest.raises(ValueError):
        tracker.probe(0, now=1.0)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    tracker = PingTracker(b"x" * 8)
    tracker.probe(0, now=0.0)
    assert tracker.receive(data, now=1.0) is None or data.startswith(b"smolmix-ping")
