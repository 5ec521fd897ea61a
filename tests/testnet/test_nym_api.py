"""The nym-api client against the local directory over loopback (plain and TLS)."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from smolmix_cli.mixnet.directory.api_urls import (
    MAINNET_API_URLS,
    ApiUrl,
    DirectoryUnavailable,
    FailureKind,
)
from smolmix_cli.mixnet.directory.nym_api import (
    PATH_ACTIVE_MIXNODES,
    PATH_ENTRY_GATEWAYS,
    NymApiClient,
    PageCollector,
    build_request,
)
from smolmix_cli.testnet.directory import DirectoryServer, DirectoryState
from tests.testnet.directory_data import probe_like_state, with_directory_server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_topology_from_the_local_directory() -> None:
    state = probe_like_state(per_layer=2)

    async def body(server: DirectoryServer) -> None:
        client = NymApiClient([ApiUrl(server.base_url)], timeout=5)
        topology = await client.topology()
        assert topology.is_usable
        assert topology.rotation_id == 10
        assert sorted(topology.nodes) == sorted(n.node_id for n in state.nodes)
        gateways = await client.entry_gateways()
        assert {g.node_id for g in gateways} == {1, 2}
        assert all(g.entry is not None for g in gateways)

    with_directory_server(state, body)


def test_client_follows_pagination_until_total() -> None:
    state = probe_like_state(per_layer=3)

    async def body(server: DirectoryServer) -> None:
        client = NymApiClient([ApiUrl(server.base_url)], timeout=5)
        before = server.counters["requests"]
        nodes = await client.get_nodes(PATH_ACTIVE_MIXNODES, per_page=2)
        assert [n.node_id for n in nodes] == list(range(11, 20))
        assert server.counters["requests"] - before == 5  # ceil(9 / 2)

    with_directory_server(state, body)


def test_tls_with_the_network_ca(tmp_path: Path) -> None:
    state = probe_like_state()

    async def body(server: DirectoryServer) -> None:
        assert server.base_url.startswith("https://127.0.0.1:")
        ok = NymApiClient([ApiUrl(server.base_url)], ca_file=tmp_path / "ca.pem", timeout=5)
        assert (await ok.rewarded_set()).layer1 == (11,)
        # certifi's roots do not know the local CA: refused, as a TLS failure
        strange = NymApiClient([ApiUrl(server.base_url)], timeout=5)
        with pytest.raises(DirectoryUnavailable) as info:
            await strange.rewarded_set()
        assert info.value.kind is FailureKind.TLS
        # and the directory keeps serving after the failed handshake
        assert (await ok.key_rotation_info()).current_key_rotation_id == 10

    with_directory_server(state, body, ssl_dir=tmp_path)


def test_fallback_to_the_next_url_and_remember_it() -> None:
    state = probe_like_state()
    dead = f"http://127.0.0.1:{_free_port()}/api/"

    async def body(server: DirectoryServer) -> None:
        client = NymApiClient([ApiUrl(dead), ApiUrl(server.base_url)], timeout=5)
        assert (await client.rewarded_set()).layer3 == (13,)
        assert client.urls[client._preferred].url == server.base_url

    with_directory_server(state, body)


def test_refused_everywhere_is_one_line_connect_failure() -> None:
    urls = [ApiUrl(f"http://127.0.0.1:{_free_port()}/api/") for _ in range(2)]

    async def main() -> None:
        with pytest.raises(DirectoryUnavailable) as info:
            await NymApiClient(urls, timeout=5).topology()
        assert info.value.kind is FailureKind.CONNECT
        assert info.value.tried == 2
        assert "\n" not in str(info.value)
        assert urls[0].host in str(info.value)

    anyio.run(main)


def test_silent_server_times_out_within_the_timeout() -> None:
    async def main() -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        held: list[anyio.abc.SocketStream] = []

        async def hold(stream: anyio.abc.SocketStream) -> None:
            held.append(stream)
            await anyio.sleep_forever()

        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, hold)
            start = time.monotonic()
            with pytest.raises(DirectoryUnavailable) as info:
                await NymApiClient(
                    [ApiUrl(f"http://127.0.0.1:{port}/api/")], timeout=0.5
                ).rewarded_set()
            assert info.value.kind is FailureKind.TIMEOUT
            assert time.monotonic() - start < 3
            tg.cancel_scope.cancel()

    anyio.run(main)


def test_http_errors_and_bad_bodies_are_typed() -> None:
    class Broken(DirectoryState):
        def answer(self, method: str, target: str, *, gzip_ok: bool = False) -> Any:
            from smolmix_cli.testnet.directory import Answer

            if "rewarded-set" in target:
                return Answer(200, (), b"{not json")
            if "key-rotation" in target:
                return Answer(200, (), b'{"progress": {}}')
            return super().answer(method, target, gzip_ok=gzip_ok)

    state = Broken(probe_like_state().nodes)

    async def body(server: DirectoryServer) -> None:
        client = NymApiClient([ApiUrl(server.base_url)], timeout=5)
        with pytest.raises(DirectoryUnavailable) as info:
            await client.get_json("v1/nothing")
        assert info.value.kind is FailureKind.HTTP and "404" in str(info.value)
        with pytest.raises(DirectoryUnavailable) as info:
            await client.rewarded_set()
        assert info.value.kind is FailureKind.MALFORMED
        with pytest.raises(DirectoryUnavailable) as info:
            await client.key_rotation_info()
        assert info.value.kind is FailureKind.MALFORMED

    with_directory_server(state, body)


def test_unresolvable_host_fails_quickly_and_typed() -> None:
    async def main() -> None:
        client = NymApiClient([ApiUrl("https://directory.smolmix.invalid/api/")], timeout=5)
        with pytest.raises(DirectoryUnavailable) as info:
            await client.rewarded_set()
        assert info.value.kind in (FailureKind.RESOLVE, FailureKind.TIMEOUT)

    anyio.run(main)


def test_page_collector_refuses_disagreeing_pages_and_short_lists() -> None:
    state = probe_like_state(per_layer=2)
    first = state.skimmed_page(state.mixnodes(), {"page": ["0"], "per_page": ["4"]})
    collector = PageCollector("x")
    assert collector.add(first) is True
    later = DirectoryState(state.nodes, rotation_id=11)
    second = later.skimmed_page(later.mixnodes(), {"page": ["1"], "per_page": ["4"]})
    with pytest.raises(DirectoryUnavailable, match="disagree"):
        collector.add(second)
    empty = state.skimmed_page(state.mixnodes(), {"page": ["9"], "per_page": ["4"]})
    collector = PageCollector("x")
    collector.add(first)
    with pytest.raises(DirectoryUnavailable, match="empty"):
        collector.add(empty)


def test_mainnet_requests_use_the_spec_urls() -> None:
    assert [u.url for u in MAINNET_API_URLS] == [
        "https://validator.nymtech.net/api/",
        "https://nym-frontdoor.global.ssl.fastly.net/api/",
        "https://cdn1.media-platform.net/api/",
    ]
    first = MAINNET_API_URLS[0]
    request = build_request(first, PATH_ENTRY_GATEWAYS, {"page": 0})
    assert request.target == b"/api/v2/unstable/nym-nodes/skimmed/entry-gateways?page=0"
    assert (b"host", b"validator.nymtech.net") in request.headers
    assert first.full("v1/nym-nodes/rewarded-set") == (
        "https://validator.nymtech.net/api/v1/nym-nodes/rewarded-set"
    )
    fronted = MAINNET_API_URLS[1]
    assert fronted.connect_host == "yelp.global.ssl.fastly.net"
    assert fronted.host_header == "nym-frontdoor.global.ssl.fastly.net"


def test_bad_urls_are_refused() -> None:
    with pytest.raises(DirectoryUnavailable):
        ApiUrl("ftp://example.org/")
    with pytest.raises(DirectoryUnavailable):
        ApiUrl("http://127.0.0.1:99999/")


def test_directory_server_survives_bad_http_and_keeps_alive() -> None:
    state = probe_like_state()

    async def exchange(port: int, data: bytes) -> bytes:
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(data)
            out = b""
            with anyio.fail_after(5):
                try:
                    while True:
                        out += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return out

    async def body(server: DirectoryServer) -> None:
        assert (await exchange(server.port, bytes(range(256)) * 8)).startswith(b"HTTP/1.1 400")
        huge = b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 100_000 + b"\r\n\r\n"
        assert (await exchange(server.port, huge)).startswith(b"HTTP/1.1 400")
        two = (
            b"GET /api/v1/nym-nodes/rewarded-set HTTP/1.1\r\nHost: x\r\n\r\n"
            b"OPTIONS /api/v1/epoch/key-rotation-info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        answer = await exchange(server.port, two)
        assert answer.count(b"HTTP/1.1 ") == 2 and b"HTTP/1.1 204" in answer
        assert server.counters["bad_requests"] == 2
        client = NymApiClient([ApiUrl(server.base_url)], timeout=5)
        assert (await client.rewarded_set()).layer2 == (12,)

    with_directory_server(state, body)
