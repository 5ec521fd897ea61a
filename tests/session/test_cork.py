"""The TLS client's last flight waits for the first request, and leaves with it in one send."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.tls import TLSStream

from smolmix_cli.apps import tls
from smolmix_cli.session.cork import Cork
from smolmix_cli.session.warm import ExchangeWatch, TlsContexts, Warm, serve_exchanges
from tests.apps.certs import DemoPki

pytestmark = pytest.mark.anyio
DEMO = "demo.smolmix.test"
REQUEST = b"GET / HTTP/1.1\r\nHost: demo.smolmix.test\r\n\r\n"


class Recording(anyio.abc.ByteStream):
    """The TCP stream below the cork: every send is one write (one segment, no Nagle)."""

    def __init__(self, inner: anyio.abc.ByteStream) -> None:
        self.inner = inner
        self.sends: list[int] = []

    async def send(self, item: bytes) -> None:
        self.sends.append(len(item))
        await self.inner.send(item)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self.inner.receive(max_bytes)

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()

    @property
    def extra_attributes(self) -> Any:
        return self.inner.extra_attributes


@asynccontextmanager
async def tls_server(
    pki: DemoPki, version: Any = None
) -> AsyncIterator[tuple[int, anyio.Event, list[bytes]]]:
    """A TLS server: (port, set once its handshake ends, what it received after it)."""
    context = pki.server_context()
    if version is not None:
        context.maximum_version = version
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    done, got = anyio.Event(), []

    async def serve(conn: anyio.abc.SocketStream) -> None:
        stream = await TLSStream.wrap(conn, server_side=True, ssl_context=context)
        done.set()
        got.append(await stream.receive())
        await stream.send(b"answer")

    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        yield port, done, got
        tg.cancel_scope.cancel()


async def corked_client(pki: DemoPki, port: int) -> tuple[Recording, Cork, TLSStream]:
    raw = Recording(await anyio.connect_tcp("127.0.0.1", port))
    cork = Cork(raw)
    stream = await tls.wrap_client(cork, DEMO, tls.client_context(cafile=str(pki.ca_file)))
    cork.handshake_done()
    return raw, cork, stream


async def test_the_finished_waits_and_leaves_with_the_request_in_one_send(pki: DemoPki) -> None:
    with anyio.fail_after(10):
        async with tls_server(pki) as (port, done, got):
            raw, cork, stream = await corked_client(pki, port)
            assert cork.holding  # the Finished: the server's handshake is not over
            await anyio.sleep(0.05)
            assert not done.is_set()
            before = len(raw.sends)
            await stream.send(REQUEST)
            assert len(raw.sends) == before + 1 and raw.sends[-1] > len(REQUEST)
            assert not cork.holding
            await done.wait()
            assert await stream.receive() == b"answer"
            assert got == [REQUEST]


async def test_a_release_sends_the_held_flight_alone(pki: DemoPki) -> None:
    with anyio.fail_after(10):
        async with tls_server(pki) as (port, done, _):
            raw, cork, stream = await corked_client(pki, port)
            before = len(raw.sends)
            await cork.release()
            await done.wait()  # the server got its Finished without any request
            assert len(raw.sends) == before + 1 and not cork.holding
            await stream.send(REQUEST)
            assert await stream.receive() == b"answer"


async def test_tls_1_2_holds_nothing(pki: DemoPki) -> None:
    """Its client flight waits for the server's Finished, so it leaves during the handshake."""
    import ssl

    with anyio.fail_after(10):
        async with tls_server(pki, ssl.TLSVersion.TLSv1_2) as (port, done, _):
            _, cork, stream = await corked_client(pki, port)
            assert not cork.holding
            await done.wait()
            await stream.send(REQUEST)
            assert await stream.receive() == b"answer"


def test_contexts_are_kept_by_ca_content_not_path(pki: DemoPki, tmp_path: Any) -> None:
    """Each command's CA bundle is a new temp file: the same bytes reuse one context."""
    contexts = TlsContexts(kept=2)
    copies = []
    for i in range(3):
        path = tmp_path / f"ca-{i}.pem"
        path.write_bytes(pki.ca_file.read_bytes())
        copies.append(str(path))

    def get(path: str) -> Any:
        return contexts.get(True, path, "digest-of-the-ca")

    assert get(copies[0]) is get(copies[1]) is get(copies[2])
    assert contexts.built == 1
    assert contexts.get(False, None, "") is not get(copies[0])  # -k: its own context
    contexts.get(True, None, "")
    contexts.get(True, copies[0], "another-ca")  # the oldest falls out past `kept`
    assert contexts.built == 4 and len(contexts) == 2


class SilentCommand(anyio.abc.ByteStream):
    """A command attached to an origin that writes nothing until it hangs up."""

    def __init__(self) -> None:
        self.hung_up = anyio.Event()

    async def send(self, item: bytes) -> None:
        pass

    async def receive(self, max_bytes: int = 65536) -> bytes:
        await self.hung_up.wait()
        raise anyio.EndOfStream

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        self.hung_up.set()


async def test_the_session_sends_a_held_finished_when_no_request_comes(
    pki: DemoPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("smolmix_cli.session.warm.HOLD_FOR_REQUEST", 0.05)
    with anyio.fail_after(10):
        async with tls_server(pki) as (port, done, _):
            _, cork, stream = await corked_client(pki, port)
            warm, command = Warm(stream, None, "TLSv1.3", cork=cork), SilentCommand()
            async with anyio.create_task_group() as tg:
                tg.start_soon(serve_exchanges, command, warm, b"", ExchangeWatch())
                await done.wait()  # released after the hold, with no request
                assert not cork.holding
                await command.aclose()
