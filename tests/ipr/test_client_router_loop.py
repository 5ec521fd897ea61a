"""Our client against our exit logic, with the mixnet reduced to passing payloads and SURB counts."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smolmix_cli.ipr.client_logic import (
    ClientConfig,
    ClientState,
    Connected,
    Event,
    IprClient,
    MessageSizes,
    PacketsReceived,
    PongReceived,
    SendAdditionalSurbs,
    SendToIpr,
)
from smolmix_cli.ipr.messages import V9, V10
from smolmix_cli.ipr.router_logic import IprRouter, ReplyToClient, RequestSurbs, RouterConfig
from smolmix_cli.mixnet.message.preparer import fragments_needed, reply_fragments, surbs_that_fit
from tests.ipr.packets import udp_packet

WALL = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
SIZES = MessageSizes(surbs_that_fit, reply_fragments, fragments_needed)  # as the tunnel
TAG = bytes(range(16))
REMOTE = IPv4Address("93.184.216.34")


@dataclass
class Loop:
    """Carries every transmit at once; counts SURBs the way the mixnet layer would."""

    client: IprClient
    router: IprRouter
    events: list[Event] = field(default_factory=list)
    surb_requests: int = 0

    def pump(self, now: float) -> None:
        for _ in range(50):
            moved = False
            for t in self.client.pop_transmits():
                moved = True
                if isinstance(t, SendToIpr):
                    self.router.on_message(TAG, t.payload, t.reply_surbs, now)
                else:
                    assert isinstance(t, SendAdditionalSurbs)
                    self.router.on_additional_surbs(TAG, t.count, now)
            for r in self.router.pop_transmits():
                moved = True
                if isinstance(r, ReplyToClient):
                    self.client.on_reply(r.payload, now)
                else:
                    assert isinstance(r, RequestSurbs)
                    self.surb_requests += 1
                    self.client.on_surb_request(r.amount, now)
            self.events += self.client.pop_events()
            if not moved:
                return
        raise AssertionError("client and exit keep talking")

    def advance(self, now: float) -> None:
        for _ in range(5):
            deadline = self.router.poll_deadline()
            if deadline is not None and deadline <= now:
                self.router.handle_timeout(now)
            deadline = self.client.poll_deadline()
            if deadline is not None and deadline <= now:
                self.client.handle_timeout(now)
            self.pump(now)


def connected_loop(version: int = V9, mtu: int = 1420, config: ClientConfig | None = None) -> Loop:
    loop = Loop(
        IprClient(random.Random(5), config, SIZES),
        IprRouter(random.Random(6), RouterConfig(mtu=mtu)),
    )
    loop.client.connect(0.0, WALL, version=version)
    loop.pump(0.0)
    assert loop.client.state is ClientState.CONNECTED
    return loop


def test_connect_v9_and_v10() -> None:
    loop = connected_loop()
    (event,) = [e for e in loop.events if isinstance(e, Connected)]
    assert event.version == V9 and not event.mtu_reported
    assert loop.router.client_addresses(TAG) == (event.ipv4, event.ipv6)
    loop = connected_loop(V10, mtu=1280)
    (event,) = [e for e in loop.events if isinstance(e, Connected)]
    assert event.version == V10 and event.mtu == 1280


def test_ping_through_the_exit() -> None:
    loop = connected_loop()
    request_id = loop.client.ping(1.0)
    loop.pump(1.5)
    assert PongReceived(request_id, 0.5) in loop.events


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["up", "down", "wait"]),
            st.integers(0, 1400),
            st.floats(0, 1.4),  # 40 steps stay under the 60 s idle drop
        ),
        max_size=40,
    )
)
def test_packets_flow_both_ways_in_order(steps: list[tuple[str, int, float]]) -> None:
    loop = connected_loop()
    assert loop.client.ipv4 is not None
    sent_up: list[bytes] = []
    sent_down: list[bytes] = []
    now = 0.0
    for kind, size, dt in steps:
        now += dt
        if kind == "up":
            packet = udp_packet(loop.client.ipv4, REMOTE, size)
            loop.client.send_packet(packet, now)
            sent_up.append(packet)
        elif kind == "down":
            packet = udp_packet(REMOTE, loop.client.ipv4, size)
            loop.router.on_downlink(packet, now)
            sent_down.append(packet)
        else:
            loop.client.send_packet(udp_packet(loop.client.ipv4, REMOTE, 0), now)
            sent_up.append(udp_packet(loop.client.ipv4, REMOTE, 0))
        loop.pump(now)
        loop.advance(now)
    loop.advance(now + 1.0)
    assert loop.router.pop_uplink() == sent_up
    received = [p for e in loop.events if isinstance(e, PacketsReceived) for p in e.packets]
    assert received == sent_down
    assert loop.client.dropped == 0
    assert set(loop.router.stats) == {"stream open"}


def test_downlink_burst_needs_surb_top_ups() -> None:
    """20 replies with 12 SURBs: the exit asks for SURBs and the client supplies them."""
    loop = connected_loop()
    assert loop.client.ipv4 is not None
    packets = [udp_packet(REMOTE, loop.client.ipv4, 1400) for _ in range(20)]
    for packet in packets:
        loop.router.on_downlink(packet, 1.0)
    loop.advance(1.1)
    received = [p for e in loop.events if isinstance(e, PacketsReceived) for p in e.packets]
    assert received == packets and loop.surb_requests >= 1


def _uplink(loop: Loop, size: int, count: int, now: float) -> list[SendToIpr]:
    assert loop.client.ipv4 is not None
    sent = []
    for _ in range(count):
        loop.client.send_packet(udp_packet(loop.client.ipv4, REMOTE, size), now)
        (transmit,) = loop.client.pop_transmits()
        assert isinstance(transmit, SendToIpr)
        loop.router.on_message(TAG, transmit.payload, transmit.reply_surbs, now)
        sent.append(transmit)
    loop.pump(now)
    return sent


def test_full_size_packets_carry_no_surbs_and_fit_one_sphinx_packet() -> None:
    """Upload: a 1,420-byte IP packet with 2 SURBs took two packets; sized, it takes one,
    and the exit's SURB requests keep its replies going."""
    loop = connected_loop()
    assert loop.client.ipv4 is not None
    for transmit in _uplink(loop, 1392, 30, 1.0):  # 1392 + 28 = a 1420-byte IP packet
        assert transmit.reply_surbs == 0
        assert fragments_needed(len(transmit.payload)) == 1
    fixed = connected_loop(config=ClientConfig(surb_sizing=False, data_reply_surbs=2))
    (transmit,) = _uplink(fixed, 1392, 1, 1.0)
    assert transmit.reply_surbs == 2 and fragments_needed(len(transmit.payload), 2) == 2
    packets = [udp_packet(REMOTE, loop.client.ipv4, 40) for _ in range(300)]
    for i, packet in enumerate(packets):
        loop.router.on_downlink(packet, 2.0 + i * 0.03)
        loop.advance(2.0 + i * 0.03)
    loop.advance(20.0)
    received = [p for e in loop.events if isinstance(e, PacketsReceived) for p in e.packets]
    assert received == packets


def test_surbs_ride_where_they_fit_until_the_exit_holds_the_bound() -> None:
    loop = connected_loop()
    assert loop.surb_requests == 1  # the exit asks for more right after the connect
    bound = loop.client.config.max_surb_stock_target
    assert [t.reply_surbs for t in _uplink(loop, 1000, 2, 1.0)] == [1, 1]  # room for one
    counts = [t.reply_surbs for t in _uplink(loop, 12, 80, 1.0)]
    assert counts[0] == 3 and counts[-1] == 0
    assert bound <= loop.client.exit_surbs == loop.router.surbs_available(TAG) < bound + 3
    assert loop.client.ipv4 is not None
    for i in range(5):  # replies spend SURBs: the next small message brings some again
        loop.router.on_downlink(udp_packet(REMOTE, loop.client.ipv4, 1400), 2.0 + i * 0.05)
        loop.advance(2.0 + i * 0.05)
    assert loop.client.exit_surbs == loop.router.surbs_available(TAG) < bound
    first, *_ = _uplink(loop, 12, 3, 5.0)
    assert first.reply_surbs == 3


def test_a_surb_request_re_anchors_an_estimate_that_missed_spending() -> None:
    loop = connected_loop()
    assert loop.client.ipv4 is not None
    loop.client.exit_surbs += 500  # as if the exit's resends had gone unseen
    assert [t.reply_surbs for t in _uplink(loop, 12, 3, 1.0)] == [0, 0, 0]
    for i in range(30):
        loop.router.on_downlink(udp_packet(REMOTE, loop.client.ipv4, 1400), 2.0 + i * 0.05)
        loop.advance(2.0 + i * 0.05)
    assert loop.surb_requests >= 2
    assert loop.client.exit_surbs <= loop.router.surbs_available(TAG)
    assert [t.reply_surbs for t in _uplink(loop, 12, 1, 5.0)] == [3]


def test_a_lossy_path_counts_the_exits_reply_resends() -> None:
    """Where half our fragments go unacked the exit resends about every second reply
    fragment through another SURB: the estimate falls twice as fast, so SURBs ride
    along again before the exit is down to its reserve (issue 20 item 3)."""
    lossless, lossy = connected_loop(), connected_loop()
    lossless.client.observe_round_trips(0, 0)
    lossy.client.observe_round_trips(0, 0)
    for step in range(1, 9):  # totals of our own fragments sent and acked
        lossless.client.observe_round_trips(100 * step, 100 * step)
        lossy.client.observe_round_trips(100 * step, 50 * step)
    assert lossless.client.reply_resend_factor == 1.0
    assert 1.8 < lossy.client.reply_resend_factor <= 2.0
    for loop in (lossless, lossy):
        _uplink(loop, 12, 80, 1.0)  # fill the estimate up to the bound
        before = loop.client.exit_surbs
        assert loop.client.ipv4 is not None
        for i in range(20):
            loop.router.on_downlink(udp_packet(REMOTE, loop.client.ipv4, 1400), 2.0 + i * 0.05)
            loop.advance(2.0 + i * 0.05)
        spent = before - loop.client.exit_surbs
        assert spent == pytest.approx(20 * loop.client.reply_resend_factor, rel=0.01)
    # Counters that restart (a new mixnet client) re-anchor instead of going negative;
    # a path that loses everything is counted at 4 SURBs per fragment, no more.
    lossy.client.observe_round_trips(10, 10)
    for step in range(1, 30):
        lossy.client.observe_round_trips(10 + 100 * step, 10)
    assert lossy.client.reply_resend_factor == pytest.approx(4.0, rel=0.01)


def test_zero_data_surbs_still_connects_and_carries_packets() -> None:
    """`--data-surbs 0` made every connect fail: the connect now always brings what the
    exit needs to answer, and data messages stay repliable without SURBs."""
    for sizing in (True, False):
        config = ClientConfig(data_reply_surbs=0, surb_sizing=sizing)
        client = IprClient(random.Random(5), config, SIZES)
        client.connect(0.0, WALL)
        counts = [t.reply_surbs for t in client.pop_transmits() if isinstance(t, SendToIpr)]
        if sizing:
            assert counts == [10, 2]
    loop = connected_loop(config=ClientConfig(data_reply_surbs=0))
    assert loop.client.ipv4 is not None
    assert [t.reply_surbs for t in _uplink(loop, 12, 5, 1.0)] == [0] * 5
    assert len(loop.router.pop_uplink()) == 5
    down = [udp_packet(REMOTE, loop.client.ipv4, 1000) for _ in range(30)]
    for packet in down:
        loop.router.on_downlink(packet, 2.0)
    loop.advance(2.1)
    received = [p for e in loop.events if isinstance(e, PacketsReceived) for p in e.packets]
    assert received == down
