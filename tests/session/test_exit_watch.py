"""SilenceWatch: uplink with no downlink for long is a suspicion; any downlink clears it."""

from __future__ import annotations

from smolmix_cli.session.exit_watch import SilenceWatch


def test_uplink_unanswered_for_long_is_suspicious() -> None:
    watch = SilenceWatch(after=10.0)
    assert not watch.observe(5, 5, 0.0)
    assert not watch.observe(5, 5, 100.0)  # idle: nothing up, nothing owed
    assert not watch.observe(6, 5, 101.0)  # a packet up: the clock starts here
    assert not watch.observe(9, 5, 110.0)
    assert watch.observe(9, 5, 111.0)
    assert not watch.observe(9, 6, 112.0)  # something came down: start over
    assert not watch.observe(10, 6, 113.0)
    assert not watch.observe(12, 7, 130.0)  # answered all along


def test_a_probe_answer_starts_over() -> None:
    watch = SilenceWatch(after=1.0)
    watch.observe(1, 0, 0.0)
    watch.observe(2, 0, 0.5)
    assert watch.observe(3, 0, 2.0)
    watch.answered(3, 0)
    assert not watch.observe(3, 0, 10.0)
    assert not watch.observe(4, 0, 10.5)
    assert watch.observe(5, 0, 11.6)
