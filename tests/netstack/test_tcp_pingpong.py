"""Interactive (pingpong) ACKs, `TcpConfig.pingpong`: a request's ACK rides on its answer.

The local exit's NAT stands in for an origin's kernel. Linux stops acking in-order data
at once when the connection answers data within a delayed-ACK time; without that the
NAT acked each request alone just before the response, one more reply message each.
"""

from __future__ import annotations

from smolmix_cli.netstack.socket.tcp.connection import TcpConnection
from smolmix_cli.netstack.wire.tcp import TcpSegment
from tests.netstack.test_tcp_states import cfg, handshake


def _exchange(
    client: TcpConnection, server: TcpConnection, now: float, answer_after: float
) -> tuple[list[TcpSegment], list[TcpSegment]]:
    """The client sends a small request; the server's segments at once, and once it has
    answered `answer_after` seconds later (its delayed-ACK timer fired first if due)."""
    client.send(b"GET / HTTP/1.1\r\n\r\n")
    for seg in client.poll_transmit(now):
        server.handle_segment(seg, now)
    at_once = server.poll_transmit(now)
    later = now + answer_after
    deadline = server.poll_deadline()
    fired: list[TcpSegment] = []
    if deadline is not None and deadline <= later:
        server.handle_timeout(deadline)
        fired = server.poll_transmit(deadline)
    server.send(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
    answer = server.poll_transmit(later)
    for seg in at_once + fired + answer:
        client.handle_segment(seg, later)
    client.poll_transmit(later)
    return at_once + fired, answer


def _pair(pingpong: bool) -> tuple[TcpConnection, TcpConnection]:
    client, server = handshake(cfg(nagle=False), cfg(delayed_ack=0.04, pingpong=pingpong))
    server._tx.rtt.srtt = 0.02  # a mixnet round trip at zero delay: the ACK waits 20 ms
    return client, server


def test_the_first_request_is_acked_at_once_then_acks_ride_on_answers() -> None:
    client, server = _pair(pingpong=True)
    alone, answer = _exchange(client, server, 0.0, answer_after=0.001)
    assert [len(s.payload) for s in alone] == [0]  # quickack: nothing was answered yet
    assert len(answer) == 1 and answer[0].payload
    for i in range(1, 4):  # the connection answered within the delayed-ACK time
        alone, answer = _exchange(client, server, i * 1.0, answer_after=0.001)
        assert alone == []
        (seg,) = answer
        assert seg.payload and seg.ack == client._tx.snd_nxt  # the ACK rides on the answer


def test_without_pingpong_every_request_is_acked_alone_first() -> None:
    client, server = _pair(pingpong=False)
    for i in range(4):
        alone, answer = _exchange(client, server, i * 1.0, answer_after=0.001)
        assert [len(s.payload) for s in alone] == [0], i
        assert len(answer) == 1


def test_a_slow_answer_gets_the_delayed_ack_alone_and_ends_the_mode() -> None:
    client, server = _pair(pingpong=True)
    _exchange(client, server, 0.0, answer_after=0.001)
    assert server._rx.pingpong
    alone, answer = _exchange(client, server, 1.0, answer_after=0.5)  # the origin is slow
    assert [len(s.payload) for s in alone] == [0]  # after srtt, not never
    # the delayed ACK ended the mode, and an answer half a second after the data did
    # not start it again
    assert answer and not server._rx.pingpong
    alone, _ = _exchange(client, server, 2.0, answer_after=0.001)
    assert [len(s.payload) for s in alone] == [0]


def test_out_of_order_data_ends_the_mode() -> None:
    client, server = _pair(pingpong=True)
    _exchange(client, server, 0.0, answer_after=0.001)
    assert server._rx.pingpong
    client.send(b"a" * 100)
    (first,) = client.poll_transmit(1.0)
    client.send(b"b" * 100)
    (second,) = client.poll_transmit(1.0)
    server.handle_segment(second, 1.0)  # the first is late: a hole
    assert not server._rx.pingpong
    server.poll_transmit(1.0)
    server.handle_segment(first, 1.01)  # the hole fills: acked at once, as before
    (ack,) = server.poll_transmit(1.01)
    assert ack.ack == client._tx.snd_nxt
