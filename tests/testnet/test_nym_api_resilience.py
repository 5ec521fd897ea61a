"""The nym-api client on mainnet's rough edges, against the local directory over loopback:
gzip answers, a rotation boundary, a host whose first address black-holes (rows 6, 7)."""

from __future__ import annotations

import socket
import time
from typing import Any

import anyio
import pytest

from smolmix_cli.mixnet.directory.api_urls import ApiUrl
from smolmix_cli.mixnet.directory.nym_api import NymApiClient
from smolmix_cli.testnet.directory import Answer, DirectoryServer, DirectoryState
from tests.testnet.directory_data import (
    probe_like_nodes,
    probe_like_state,
    with_directory_server,
)


class Gzipping(DirectoryState):
    """Counts the answers the local directory compressed (it does when the client asks,
    as nym-api's CompressionLayer)."""

    gzipped = 0

    def answer(self, method: str, target: str, *, gzip_ok: bool = False) -> Answer:
        out = super().answer(method, target, gzip_ok=gzip_ok)
        self.gzipped += ("Content-Encoding", "gzip") in out.headers
        return out


def test_a_gzip_speaking_directory_gives_the_same_topology() -> None:
    state = Gzipping(probe_like_nodes(2), absolute_epoch_id=100, rotation_id=10)

    async def body(server: DirectoryServer) -> None:
        topology = await NymApiClient([ApiUrl(server.base_url)], timeout=5).topology()
        assert topology.is_usable and topology.rotation_id == 10
        assert sorted(topology.nodes) == sorted(n.node_id for n in state.nodes)
        assert state.gzipped >= 4

    with_directory_server(state, body)


class RotatingOnce(DirectoryState):
    """key-rotation-info runs `ahead` rotations ahead of the node lists for `reads` reads."""

    def __init__(self, *args: Any, ahead: int, reads: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ahead = ahead
        self.reads_left = reads
        self.rotation_reads = 0

    def key_rotation_info(self) -> dict[str, Any]:
        info = super().key_rotation_info()
        self.rotation_reads += 1
        if self.reads_left > 0:
            self.reads_left -= 1
            info["progress"]["current_key_rotation_id"] += self.ahead
        return info


@pytest.mark.parametrize(("reads", "expected_reads"), [(1, 2), (5, 2)])
def test_a_rotation_mismatch_reads_again_once_then_trusts_the_lists(
    reads: int, expected_reads: int
) -> None:
    state = RotatingOnce(
        probe_like_nodes(1), absolute_epoch_id=100, rotation_id=10, ahead=1, reads=reads
    )

    async def body(server: DirectoryServer) -> None:
        topology = await NymApiClient([ApiUrl(server.base_url)], timeout=5).topology()
        assert topology.rotation_id == 10  # the node lists' own rotation (as the Rust client)
        assert topology.is_usable
        assert state.rotation_reads == expected_reads
        assert topology.next_rotation_at is not None and topology.next_rotation_at > time.time()

    with_directory_server(state, body)


def test_an_agreeing_directory_is_read_once() -> None:
    state = RotatingOnce(probe_like_nodes(1), rotation_id=10, ahead=0, reads=0)

    async def body(server: DirectoryServer) -> None:
        await NymApiClient([ApiUrl(server.base_url)], timeout=5).topology()
        assert state.rotation_reads == 1

    with_directory_server(state, body)


def test_happy_eyeballs_a_black_holed_first_address_costs_a_quarter_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The name resolves to [127.0.0.2, 127.0.0.1]; 127.0.0.2 takes no new connections (its
    accept queue is full, so a SYN goes unanswered). The second attempt starts after 250 ms
    and wins; one after another, the first would have used up the whole timeout."""
    state = probe_like_state()

    async def body(server: DirectoryServer) -> None:
        hole = socket.socket()
        hole.bind(("127.0.0.2", server.port))
        hole.listen(0)
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.2", server.port))  # fills the backlog of 0
        await anyio.sleep(0.05)

        async def two_addresses(host: str, port: int, **_kwargs: Any) -> list[Any]:
            assert host == "directory.smolmix.test"
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            ]

        # a stand-in for DNS (no name leaves the host)
        monkeypatch.setattr(anyio, "getaddrinfo", two_addresses)
        try:
            url = f"http://directory.smolmix.test:{server.port}/api/"
            client = NymApiClient([ApiUrl(url)], timeout=5)
            start = time.monotonic()
            assert (await client.rewarded_set()).layer1 == (11,)
            took = time.monotonic() - start
            assert 0.2 <= took < 2.0, took
        finally:
            filler.close()
            hole.close()

    with_directory_server(state, body)
