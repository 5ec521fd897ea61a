"""SOCKS5 (RFC 1928): the codec, then the daemon's front driven by a Python client."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import sys
from pathlib import Path

import anyio
import anyio.abc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.session import socks5
from smolmix_cli.session.socks5 import (
    CMD_BIND,
    CMD_CONNECT,
    CMD_UDP_ASSOCIATE,
    Socks5Error,
    SocksRequest,
)
from tests.session.stand_in import (
    Source,
    echo_tcp_server,
    echo_udp_server,
    running_daemon,
    unused_paths,
)

# -- codec --------------------------------------------------------------------------------------

REQUEST_VECTORS = [
    # (bytes on the wire, parsed) — RFC 1928 §4 / §5
    (b"\x05\x01\x00\x03\x0bexample.org\x01\xbb", SocksRequest(CMD_CONNECT, "example.org", 443)),
    (b"\x05\x01\x00\x01\xc0\x00\x02\x01\x00\x50", SocksRequest(CMD_CONNECT, "192.0.2.1", 80)),
    (
        b"\x05\x01\x00\x04" + bytes.fromhex("20010db8000000000000000000000001") + b"\x00\x16",
        SocksRequest(CMD_CONNECT, "2001:db8::1", 22),
    ),
    (b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00", SocksRequest(CMD_UDP_ASSOCIATE, "0.0.0.0", 0)),
    (b"\x05\x02\x00\x01\x7f\x00\x00\x01\x04\x00", SocksRequest(CMD_BIND, "127.0.0.1", 1024)),
]


@pytest.mark.parametrize(("wire", "parsed"), REQUEST_VECTORS)
def test_request_vectors_both_ways_and_byte_at_a_time(wire: bytes, parsed: SocksRequest) -> None:
    assert socks5.parse_request(wire) == (parsed, len(wire))
    assert socks5.client_request(parsed.command, parsed.host, parsed.port) == wire
    for cut in range(len(wire)):
        assert socks5.parse_request(wire[:cut]) is None
    assert socks5.parse_request(wire + b"extra") == (parsed, len(wire))


def test_greeting_and_method_choice() -> None:
    assert socks5.parse_greeting(b"\x05") is None
    assert socks5.parse_greeting(b"\x05\x02\x00") is None
    assert socks5.parse_greeting(b"\x05\x02\x02\x00rest") == ((2, 0), 4)
    assert socks5.choose_method((2, 0)) == b"\x05\x00"
    assert socks5.choose_method((2,)) == b"\x05\xff"  # username/password only: refused
    with pytest.raises(Socks5Error):
        socks5.parse_greeting(b"\x04\x01\x00\x50")  # SOCKS4
    with pytest.raises(Socks5Error):
        socks5.parse_greeting(b"\x05\x00")


def test_replies_and_udp_headers() -> None:
    assert socks5.reply(0) == b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    assert socks5.reply(5, "::1", 1080) == b"\x05\x05\x00\x04" + b"\x00" * 15 + b"\x01\x04\x38"
    assert socks5.parse_reply(socks5.reply(0, "127.0.0.1", 9)) == (0, "127.0.0.1", 9, 10)
    datagram = socks5.udp_datagram("dns.test", 53, b"query")
    assert datagram == b"\x00\x00\x00\x03\x08dns.test\x00\x35query"
    assert socks5.parse_udp(datagram) == ("dns.test", 53, b"query")
    with pytest.raises(Socks5Error, match="fragments"):
        socks5.parse_udp(b"\x00\x00\x01" + datagram[3:])


def test_bad_requests_carry_the_reply_code() -> None:
    with pytest.raises(Socks5Error) as info:
        socks5.parse_request(b"\x05\x09\x00\x01\x00\x00\x00\x00\x00\x00")
    assert info.value.reply == socks5.REP_COMMAND_NOT_SUPPORTED
    with pytest.raises(Socks5Error) as info:
        socks5.parse_request(b"\x05\x01\x00\x07\x00\x00\x00\x00\x00\x00")
    assert info.value.reply == socks5.REP_ADDRESS_TYPE_NOT_SUPPORTED
    with pytest.raises(Socks5Error):
        socks5.parse_request(b"\x05\x01\x00\x03\x00\x00\x50")  # empty name


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_socks5error_only(data: bytes) -> None:
    for parse in (socks5.parse_greeting, socks5.parse_request, socks5.parse_reply):
        with contextlib.suppress(Socks5Error):
            parse(data)
    with contextlib.suppress(Socks5Error):
        socks5.parse_udp(data)


def test_listen_address_parsing() -> None:
    assert socks5.parse_listen("1080") == ("127.0.0.1", 1080)
    assert socks5.parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    assert socks5.parse_listen("[::1]:1080") == ("::1", 1080)
    assert socks5.parse_listen("localhost:9") == ("127.0.0.1", 9)
    for bad in ("x", "host.example:1080", "1.2.3.4:99999", "[::1]"):
        with pytest.raises(ValueError):
            socks5.parse_listen(bad)


def test_tunnel_errors_map_to_reply_codes() -> None:
    from smolmix_cli.apps.errors import ResolveError
    from smolmix_cli.tunnel.errors import (
        ExitPolicyDenied,
        TunnelConnectError,
        TunnelTimeout,
        TunnelUnavailable,
    )

    assert socks5.error_reply_code(ExitPolicyDenied("x")) == socks5.REP_NOT_ALLOWED
    assert socks5.error_reply_code(TunnelConnectError("x")) == socks5.REP_CONNECTION_REFUSED
    assert socks5.error_reply_code(ResolveError("x")) == socks5.REP_HOST_UNREACHABLE
    assert socks5.error_reply_code(TunnelTimeout("x")) == socks5.REP_TTL_EXPIRED
    assert socks5.error_reply_code(TunnelUnavailable("x")) == socks5.REP_NETWORK_UNREACHABLE
    assert socks5.error_reply_code(RuntimeError("x")) == socks5.REP_GENERAL_FAILURE


# -- the daemon's front, with a Python SOCKS5 client -----------------------------------------------


async def _exact(stream: anyio.abc.ByteStream, buf: bytearray, parse: object) -> object:
    while (result := parse(bytes(buf))) is None:  # type: ignore[operator]
        buf += await stream.receive()
    return result


async def socks_connect(
    proxy: tuple[str, int], host: str, port: int, command: int = CMD_CONNECT
) -> tuple[anyio.abc.SocketStream, int, str, int]:
    """A SOCKS5 client: (stream, reply code, bound host, bound port)."""
    stream = await anyio.connect_tcp(*proxy)
    await stream.send(socks5.client_greeting())
    assert await stream.receive() == b"\x05\x00"
    await stream.send(socks5.client_request(command, host, port))
    buf = bytearray()
    code, bound_host, bound_port, used = await _exact(stream, buf, socks5.parse_reply)  # type: ignore[misc]
    assert used == len(buf)  # nothing beyond the reply yet
    return stream, code, bound_host, bound_port


@pytest.mark.anyio
async def test_connect_by_name_and_literals_through_the_tunnel(rundir: Path) -> None:
    source = Source({"echo.test": "127.0.0.1"})
    async with anyio.create_task_group() as tg:
        port = await tg.start(echo_tcp_server)
        async with running_daemon(unused_paths(rundir), source, socks5=("127.0.0.1", 0)) as daemon:
            proxy = daemon.socks5_address
            assert proxy is not None and proxy[0] == "127.0.0.1"
            for host in ("echo.test", "127.0.0.1", "2001:db8::7"):
                stream, code, _, _ = await socks_connect(proxy, host, port)
                assert code == socks5.REP_SUCCEEDED
                payload = os.urandom(100_000)
                received = bytearray()
                async with stream, anyio.create_task_group() as inner:

                    async def reader(
                        s: anyio.abc.SocketStream = stream, out: bytearray = received
                    ) -> None:
                        while True:
                            try:
                                out.extend(await s.receive())
                            except anyio.EndOfStream:
                                return

                    inner.start_soon(reader)
                    await stream.send(payload)
                    await stream.send_eof()
                assert bytes(received) == payload + f"<eof after {len(payload)}>".encode()
            # names reach the tunnel unresolved; literals as given
            assert [a[1] for a in source.tunnels[0].asked] == [
                "echo.test",
                "127.0.0.1",
                "2001:db8::7",
            ]
            with anyio.fail_after(5):
                while daemon.counters.streams_open:
                    await anyio.sleep(0.01)
            assert daemon.counters.streams_total == 3
            assert daemon.counters.bytes_up == 300_000
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_failures_bind_and_auth_are_refused_with_codes(rundir: Path) -> None:
    async with running_daemon(
        unused_paths(rundir), Source({"echo.test": "127.0.0.1"}), socks5=("127.0.0.1", 0)
    ) as daemon:
        proxy = daemon.socks5_address
        assert proxy is not None
        stream, code, _, _ = await socks_connect(proxy, "nowhere.test", 80)
        assert code == socks5.REP_HOST_UNREACHABLE
        await stream.aclose()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        stream, code, _, _ = await socks_connect(proxy, "echo.test", closed)
        assert code == socks5.REP_CONNECTION_REFUSED
        await stream.aclose()
        stream, code, _, _ = await socks_connect(proxy, "echo.test", 80, CMD_BIND)
        assert code == socks5.REP_COMMAND_NOT_SUPPORTED
        await stream.aclose()
        stream = await anyio.connect_tcp(*proxy)
        await stream.send(b"\x05\x01\x02")  # username/password only
        assert await stream.receive() == b"\x05\xff"
        with anyio.fail_after(5), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
            await stream.receive()
        await stream.aclose()


@pytest.mark.anyio
async def test_udp_associate_relays_request_response_datagrams(rundir: Path) -> None:
    async with anyio.create_task_group() as tg:
        udp_port = await tg.start(echo_udp_server)
        async with running_daemon(
            unused_paths(rundir), Source({"dns.test": "127.0.0.1"}), socks5=("127.0.0.1", 0)
        ) as daemon:
            proxy = daemon.socks5_address
            assert proxy is not None
            control, code, relay_host, relay_port = await socks_connect(
                proxy, "0.0.0.0", 0, CMD_UDP_ASSOCIATE
            )
            assert code == socks5.REP_SUCCEEDED and relay_host == "127.0.0.1" and relay_port
            async with control, await anyio.create_udp_socket(local_host="127.0.0.1") as udp:
                for i in range(3):
                    query = b"query-%d" % i
                    await udp.sendto(
                        socks5.udp_datagram("dns.test", udp_port, query), relay_host, relay_port
                    )
                    with anyio.fail_after(5):
                        answer, _ = await udp.receive()
                    assert socks5.parse_udp(answer) == ("dns.test", udp_port, b"re:" + query)
                await udp.sendto(b"\x00\x00\x01garbage", relay_host, relay_port)  # dropped
            assert daemon.counters.udp_exchanges == 3
        tg.cancel_scope.cancel()


def test_reply_struct_is_rfc_layout() -> None:
    ver, rep, rsv, atyp = struct.unpack_from("4B", socks5.reply(socks5.REP_NOT_ALLOWED))
    assert (ver, rep, rsv, atyp) == (5, 2, 0, 1)


def test_proc_net_tcp_addresses_and_owner_lookup() -> None:
    if sys.byteorder != "little":
        pytest.skip("vectors are for little-endian hosts")
    assert socks5.proc_net_address("127.0.0.1", 8080) == "0100007F:1F90"
    assert socks5.proc_net_address("::1", 1080) == "0" * 24 + "01000000:0438"
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
        "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0 0 1\n"
        "   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000 0 2\n"
    )
    assert socks5.socket_owner(table, ("127.0.0.1", 50000), ("127.0.0.1", 8080)) == 1000
    assert socks5.socket_owner(table, ("127.0.0.1", 50001), ("127.0.0.1", 8080)) is None


def _socks_greeting_as(uid: int, address: tuple[str, int]) -> bytes:
    """Fork; the child drops to `uid`, greets the SOCKS5 port, and reports what came back."""
    import encodings.idna  # noqa: F401  (the child, as another user, may not read the stdlib)

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        result = b"?"
        try:
            os.setgid(uid)
            os.setuid(uid)
            with socket.create_connection(address, timeout=5) as s:
                s.sendall(socks5.client_greeting())
                result = b"reply:" + s.recv(16)
        except BaseException as exc:
            result = repr(exc).encode()
        os.write(write_fd, result[:200])
        os._exit(0)
    os.close(write_fd)
    os.waitpid(pid, 0)
    with os.fdopen(read_fd, "rb") as handle:
        return handle.read()


@pytest.mark.anyio
@pytest.mark.skipif(os.getuid() != 0 or sys.platform != "linux", reason="needs root on Linux")
async def test_socks5_refuses_other_local_users(rundir: Path) -> None:
    async with running_daemon(
        unused_paths(rundir), Source({"echo.test": "127.0.0.1"}), socks5=("127.0.0.1", 0)
    ) as daemon:
        proxy = daemon.socks5_address
        assert proxy is not None
        outcome = await anyio.to_thread.run_sync(_socks_greeting_as, 65534, proxy)
        assert outcome in (b"reply:", b"ConnectionResetError(104, 'Connection reset by peer')")
        assert daemon.counters.refused_peers == 1
        mine = await anyio.to_thread.run_sync(_socks_greeting_as, os.getuid(), proxy)
        assert mine == b"reply:\x05\x00"
        assert daemon.counters.refused_peers == 1
