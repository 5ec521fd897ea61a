"""HTTP engine end to end: OsConnector -> loopback demo origin (plain HTTP)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from pathlib import Path

import pytest

from smolmix_cli.apps.errors import (
    ConnectError,
    EmptyReply,
    HttpStatusError,
    MalformedUrl,
    OperationTimeout,
    PartialFile,
    RangeError,
    ResolveError,
    TooManyRedirects,
    UnsupportedProtocol,
    UsageError,
    WriteError,
)
from smolmix_cli.apps.http_body import BytesBody, FileBody, MultipartBody, parse_form_arg
from smolmix_cli.apps.http_client import HttpClient
from smolmix_cli.apps.http_headers import DEFAULT_USER_AGENT, parse_header_arg
from smolmix_cli.errors_map import classify
from smolmix_cli.testnet.origin.http import bytes_sha256, pseudo_random_bytes
from smolmix_cli.testnet.origin.origin import DemoOrigin
from tests.apps.helpers import get
from tests.apps.os_connector import OsConnector

pytestmark = pytest.mark.anyio


def base(origin: DemoOrigin) -> str:
    return f"http://127.0.0.1:{origin.http_port}"


async def test_get_small_page(origin: DemoOrigin, connector: OsConnector) -> None:
    async with HttpClient(connector) as client:
        out, t = await get(client, base(origin) + "/")
    assert b"smolmix demo origin" in out.body
    assert t.http_code == 200
    assert t.size_download == len(out.body)
    assert t.content_type.startswith("text/html")
    assert t.url_effective == base(origin) + "/"
    assert 0 <= t.time_connect <= t.time_starttransfer <= t.time_total
    assert t.time_appconnect == 0.0  # no TLS, as curl reports it


async def test_request_shape_and_default_user_agent(
    origin: DemoOrigin, connector: OsConnector
) -> None:
    async with HttpClient(connector) as client:
        out, _ = await get(client, base(origin) + "/echo")
    echo = json.loads(out.body)
    names = [k for k, _ in echo["headers"]]
    assert names[:3] == ["host", "user-agent", "accept"]
    headers = dict(echo["headers"])
    assert headers["user-agent"] == DEFAULT_USER_AGENT
    assert "smolmix" not in DEFAULT_USER_AGENT.lower()
    assert headers["host"] == f"127.0.0.1:{origin.http_port}"
    assert echo["method"] == "GET"


async def test_header_edits_follow_curl(origin: DemoOrigin, connector: OsConnector) -> None:
    edits = [
        parse_header_arg("X-One: 1"),
        parse_header_arg("Accept:"),
        parse_header_arg("X-Empty;"),
        parse_header_arg("User-Agent: custom/1"),
    ]
    async with HttpClient(connector) as client:
        out, _ = await get(client, base(origin) + "/echo", header_edits=edits)
    headers = json.loads(out.body)["headers"]
    as_dict = dict(headers)
    assert "accept" not in as_dict
    assert as_dict["x-one"] == "1"
    assert as_dict["x-empty"] == ""
    assert as_dict["user-agent"] == "custom/1"
    assert [k for k, _ in headers].count("user-agent") == 1


@pytest.mark.parametrize("bad", ["NoColon", "Bad Name: x", "X: a\nb", "K;junk", ": v"])
def test_bad_header_is_usage_error(bad: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_header_arg(bad)
    assert classify(info.value).code == 2


@pytest.mark.parametrize(
    ("url", "error", "code"),
    [
        ("http://", MalformedUrl, 3),
        ("http://exa mple.com/", MalformedUrl, 3),
        ("http://host:99999/", MalformedUrl, 3),
        ("http://[zz::1]/", MalformedUrl, 3),
        ("http://bad_label-.-x/", MalformedUrl, 3),
        ("ftp://example.com/", UnsupportedProtocol, 1),
        ("", MalformedUrl, 3),
    ],
)
async def test_malformed_urls(
    connector: OsConnector, url: str, error: type[Exception], code: int
) -> None:
    async with HttpClient(connector) as client:
        with pytest.raises(error) as info:
            await get(client, url)
    assert classify(info.value).code == code
    assert connector.tcp_opened == 0


async def test_unknown_host_is_resolve_error(connector: OsConnector) -> None:
    async with HttpClient(connector) as client:
        with pytest.raises(ResolveError) as info:
            await get(client, "http://nowhere.invalid/")
    assert classify(info.value).code == 6


async def test_refused_port_is_connect_error(connector: OsConnector) -> None:
    import anyio

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_address)[1]
    await listener.aclose()
    async with HttpClient(connector) as client:
        with pytest.raises(ConnectError) as info:
            await get(client, f"http://127.0.0.1:{port}/")
    assert classify(info.value).code == 7
    assert info.value.transfer is not None


async def test_large_body_streams_and_matches_sha(
    origin: DemoOrigin, connector: OsConnector
) -> None:
    n = 10 * 1024 * 1024
    async with HttpClient(connector) as client:
        out, t = await get(client, base(origin) + f"/bytes/{n}", keep=False)
    assert t.size_download == n
    assert out.sha.hexdigest() == bytes_sha256(n)
    assert out.heads[-1].header("x-sha256") == out.sha.hexdigest()
    assert len(out.body) == 0  # sink saw the bytes, nothing was kept


async def test_chunked_response(origin: DemoOrigin, connector: OsConnector) -> None:
    async with HttpClient(connector) as client:
        out, t = await get(client, base(origin) + "/chunked/100000")
    assert out.heads[0].header("transfer-encoding") == "chunked"
    assert bytes(out.body) == pseudo_random_bytes(100000)
    assert t.size_download == 100000


async def test_keep_alive_reuses_one_connection(origin: DemoOrigin, connector: OsConnector) -> None:
    async with HttpClient(connector) as client:
        ids = []
        for path in ("/", "/bytes/1000", "/chunked/500", "/echo", "/status/404"):
            out, _ = await get(client, base(origin) + path)
            ids.append(out.heads[-1].header("x-connection-id"))
    assert len(set(ids)) == 1
    assert client.connections_opened == 1
    assert connector.tcp_opened == 1


async def test_server_closed_idle_connection_is_replaced(
    origin: DemoOrigin, connector: OsConnector
) -> None:
    async with HttpClient(connector) as client:
        await get(client, base(origin) + "/")
        # Close the pooled connection behind the client's back (as an idle server would).
        for conns in client._pool._idle.values():
            for conn in conns:
                await conn.stream.aclose()
        _out, t = await get(client, base(origin) + "/echo")
    assert t.http_code == 200
    assert client.connections_opened == 2


@pytest.mark.parametrize(
    ("status", "method", "expect_method", "expect_body"),
    [
        (301, "POST", "GET", False),
        (302, "POST", "GET", False),
        (303, "POST", "GET", False),
        (303, "PUT", "GET", False),
        (307, "POST", "POST", True),
        (308, "PUT", "PUT", True),
        (302, "PUT", "PUT", True),
    ],
)
async def test_redirect_method_rules(
    origin: DemoOrigin,
    connector: OsConnector,
    status: int,
    method: str,
    expect_method: str,
    expect_body: bool,
) -> None:
    url = base(origin) + f"/redirect-to?url=/echo&status={status}"
    async with HttpClient(connector) as client:
        out, t = await get(
            client,
            url,
            method=method,
            body=BytesBody(b"payload=1", "application/x-www-form-urlencoded"),
            follow_redirects=True,
        )
    echo = json.loads(out.body)
    assert echo["method"] == expect_method
    assert (echo["body"] == "payload=1") is expect_body
    headers = dict(echo["headers"])
    assert ("content-type" in headers) is expect_body
    assert t.num_redirects == 1
    assert t.url_effective.endswith("/echo")
    assert [h.status for h in out.heads] == [status, 200]


async def test_redirect_not_followed_without_L(origin: DemoOrigin, connector: OsConnector) -> None:
    async with HttpClient(connector) as client:
        _out, t = await get(client, base(origin) + "/redirect/2")
    assert t.http_code == 302
    assert t.redirect_url == base(origin) + "/redirect/1"
    assert t.num_redirects == 0


async def test_redirect_chain_and_limit(origin: DemoOrigin, connector: OsConnector) -> None:
    async with HttpClient(connector) as client:
        _, t = await get(client, base(origin) + "/redirect/5", follow_redirects=True)
        assert t.num_redirects == 5
        assert t.http_code == 200
        _, t = await get(client, base(origin) + "/redirect/50", follow_redirects=True)
        assert t.num_redirects == 50  # curl's default cap, not a browser's
        with pytest.raises(TooManyRedirects) as info:
            await get(client, base(origin) + "/redirect/51", follow_redirects=True)
        assert classify(info.value).code == 47
        _out, t = await get(
            client, base(origin) + "/redirect/3", follow_redirects=True, max_redirects=3
        )
        assert t.num_redirects == 3


async def test_authorization_dropped_on_host_change(
    origin: DemoOrigin, connector: OsConnector
) -> None:
    other = f"http://localhost:{origin.http_port}/echo"
    same = base(origin) + "/echo"
    async with HttpClient(connector) as client:
        for target, kept in ((same, True), (other, False)):
            out, _ = await get(
                client,
                base(origin) + f"/redirect-to?url={target}&status=302",
                user="alice:secret",
                header_edits=[parse_header_arg("X-Keep: yes")],
                follow_redirects=True,
            )
            headers = dict(json.loads(out.body)["headers"])
            assert ("authorization" in headers) is kept
            assert headers["x-keep"] == "yes"
            expected_host = "localhost" if not kept else "127.0.0.1"
            assert headers["host"].startswith(expected_host)


async def test_basic_auth(origin: DemoOrigin, connector: OsConnector) -> None:
    async with HttpClient(connector) as client:
        out, t = await get(client, base(origin) + "/basic-auth/u/p", user="u:p")
        assert t.http_code == 200 and json.loads(out.body)["authenticated"] is True
        _, t = await get(client, base(origin) + "/basic-auth/u/p", user="u:wrong")
        assert t.http_code == 401
        host = f"127.0.0.1:{origin.http_port}"
        out, t = await get(client, f"http://u:p@{host}/basic-auth/u/p")
        assert t.http_code == 200
        with pytest.raises(HttpStatusError) as info:
            await get(client, base(origin) + "/basic-auth/u/p", fail=True)
        assert classify(info.value).code == 22 and info.value.status == 401


async def test_fail_and_fail_with_body(origin: DemoOrigin, connector: OsConnector) -> None:
    async with HttpClient(connector) as client:
        out, t = await get(client, base(origin) + "/status/404")
        assert t.http_code == 404 and out.body == b"status 404\n"
        from tests.apps.helpers import Collected

        c = Collected()
        from smolmix_cli.apps.http_options import FetchOptions

        with pytest.raises(HttpStatusError):
            await client.fetch(base(origin) + "/status/404", c.sink, FetchOptions(fail=True))
        assert c.body == b""
        with pytest.raises(HttpStatusError) as info:
            await client.fetch(
                base(origin) + "/status/500", c.sink, FetchOptions(fail_with_body=True)
            )
        assert c.body == b"status 500\n"
        assert info.value.transfer is not None
        assert info.value.transfer.http_code == 500  # type: ignore[attr-defined]


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_compressed(origin: DemoOrigin, connector: OsConnector, encoding: str) -> None:
    async with HttpClient(connector) as client:
        out, t = await get(client, base(origin) + f"/{encoding}", compressed=True)
        plain = bytes(out.body)
        assert hashlib.sha256(plain).hexdigest() == out.heads[0].header("x-plain-sha256")
        assert json.loads(plain)["compressed"] == encoding
        assert t.size_download < len(plain)  # counts wire bytes, as curl does
        raw, _ = await get(client, base(origin) + f"/{encoding}")
        assert bytes(raw.body) != plain
        if encoding == "gzip":
            assert gzip.decompress(bytes(raw.body)) == plain
        echo, _ = await get(client, base(origin) + "/echo", compressed=True)
        assert dict(json.loads(echo.body)["headers"])["accept-encoding"] == "deflate, gzip"


async def test_range_and_resume(origin: DemoOrigin, connector: OsConnector) -> None:
    n = 300_000
    full = pseudo_random_bytes(n)
    async with HttpClient(connector) as client:
        out, t = await get(client, base(origin) + f"/bytes/{n}", range="100-199")
        assert t.http_code == 206 and bytes(out.body) == full[100:200]
        assert out.heads[0].header("content-range") == f"bytes 100-199/{n}"
        out, t = await get(client, base(origin) + f"/bytes/{n}", resume_from=123_456)
        assert t.http_code == 206 and bytes(out.body) == full[123_456:]
        out, t = await get(client, base(origin) + f"/bytes/{n}", resume_from=n)
        assert t.http_code == 416 and out.body == b""  # already complete: not an error
        with pytest.raises(RangeError) as info:
            await get(client, base(origin) + "/", resume_from=10)
        assert classify(info.value).code == 33


async def test_uploads_bytes_file_and_multipart(
    origin: DemoOrigin, connector: OsConnector, tmp_path: Path
) -> None:
    data = pseudo_random_bytes(3 * 1024 * 1024 + 7, 99)
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    async with HttpClient(connector) as client:
        for body in (BytesBody(data), FileBody(path)):
            out, t = await get(client, base(origin) + "/upload", method="PUT", body=body)
            answer = json.loads(out.body)
            assert answer == {"sha256": hashlib.sha256(data).hexdigest(), "length": len(data)}
            assert t.size_upload == len(data)
        fields = [parse_form_arg("name=value"), parse_form_arg(f"file=@{path}")]
        body = MultipartBody(fields, boundary="BOUNDARY")
        out, t = await get(client, base(origin) + "/upload", body=body)
        expected = (
            b'--BOUNDARY\r\nContent-Disposition: form-data; name="name"\r\n\r\nvalue\r\n'
            b'--BOUNDARY\r\nContent-Disposition: form-data; name="file"; filename="upload.bin"'
            b"\r\nContent-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--BOUNDARY--\r\n"
        )
        answer = json.loads(out.body)
        assert answer["length"] == len(expected) == body.length
        assert answer["sha256"] == hashlib.sha256(expected).hexdigest()
        echo, _ = await get(
            client, base(origin) + "/echo", body=MultipartBody([parse_form_arg("a=b")])
        )
        ctype = dict(json.loads(echo.body)["headers"])["content-type"]
        assert ctype.startswith("multipart/form-data; boundary=")


def test_bad_form_args(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        parse_form_arg("novalue")
    from smolmix_cli.apps.errors import ReadError

    with pytest.raises(ReadError) as info:
        parse_form_arg(f"f=@{tmp_path / 'missing'}")
    assert classify(info.value).code == 26


async def test_timeouts(origin: DemoOrigin, connector: OsConnector) -> None:
    async with HttpClient(connector) as client:
        with pytest.raises(OperationTimeout) as info:
            await get(client, base(origin) + "/slow/5", max_time=0.3)
        assert classify(info.value).code == 28
        assert info.value.transfer.time_total < 2  # type: ignore[attr-defined]
        _out, t = await get(client, base(origin) + "/slow/0.1", max_time=5)
        assert t.http_code == 200


async def test_connect_timeout(connector: OsConnector) -> None:
    import anyio

    class Stalling:
        async def open_tcp(self, host: str, port: int) -> anyio.abc.ByteStream:
            await anyio.sleep(10)
            raise AssertionError("unreachable")

        async def udp_exchange(self, host: str, port: int, payload: bytes, timeout: float) -> bytes:
            raise AssertionError("unused")

    async with HttpClient(Stalling()) as client:
        with pytest.raises(OperationTimeout) as info:
            await get(client, "http://example.com/", connect_timeout=0.2)
    assert "Connection timed out" in str(info.value)


async def test_retry_on_503_then_success(origin: DemoOrigin, connector: OsConnector) -> None:
    async with HttpClient(connector) as client:
        out, t = await get(client, base(origin) + "/flaky/a/2", retry=3, retry_delay=0.01)
        assert t.http_code == 200 and t.num_retries == 2
        assert out.body == b"ok after 2 failures\n"
        assert [h.status for h in out.heads] == [503, 503, 200]
        # Out of retries: the last 503 is delivered as the response.
        out, t = await get(client, base(origin) + "/flaky/b/5", retry=1, retry_delay=0.01)
        assert t.http_code == 503 and out.body == b"try again\n"
        # Without --retry nothing is retried.
        _, t = await get(client, base(origin) + "/flaky/c/1")
        assert t.http_code == 503 and t.num_retries == 0


async def test_retry_honours_retry_after(origin: DemoOrigin, connector: OsConnector) -> None:
    import time

    async with HttpClient(connector) as client:
        start = time.monotonic()
        _, t = await get(
            client, base(origin) + "/flaky/ra/1?retry_after=1", retry=2, retry_delay=0.01
        )
        assert t.http_code == 200
        assert time.monotonic() - start >= 0.95


async def test_retry_on_timeout(origin: DemoOrigin, connector: OsConnector) -> None:
    async with HttpClient(connector) as client:
        with pytest.raises(OperationTimeout) as info:
            await get(client, base(origin) + "/slow/3", max_time=0.2, retry=2, retry_delay=0.01)
    assert info.value.transfer.num_retries == 2  # type: ignore[attr-defined]
    assert origin.app.requests_served == 0 or origin.app.requests_served <= 3


async def test_empty_reply_and_partial_file(origin: DemoOrigin, connector: OsConnector) -> None:
    async with HttpClient(connector) as client:
        with pytest.raises(EmptyReply) as info:
            await get(client, base(origin) + "/empty")
        assert classify(info.value).code == 52
        with pytest.raises(PartialFile) as info2:
            await get(client, base(origin) + "/partial/10000")
        assert classify(info2.value).code == 18
        assert info2.value.transfer.size_download == 5000  # type: ignore[attr-defined]


async def test_write_error_maps_to_23(origin: DemoOrigin, connector: OsConnector) -> None:
    async def broken(data: bytes) -> None:
        raise OSError(28, "No space left on device")

    async with HttpClient(connector) as client:
        with pytest.raises(WriteError) as info:
            await client.fetch(base(origin) + "/bytes/100", broken)
    assert classify(info.value).code == 23


async def test_head_request(origin: DemoOrigin, connector: OsConnector) -> None:
    async with HttpClient(connector) as client:
        out, t = await get(client, base(origin) + "/bytes/5000", head_only=True)
        assert t.http_code == 200 and out.body == b""
        assert out.heads[0].header("content-length") == "5000"
        out, t = await get(client, base(origin) + "/bytes/10")  # connection still usable
        assert len(out.body) == 10
    assert client.connections_opened == 1


async def test_basic_auth_header_format() -> None:
    token = base64.b64encode(b"u:p").decode()
    assert token == "dTpw"


class _TunnelBroke(Exception):
    """Stands for an error type of some lower layer the engine does not know."""


async def test_foreign_stream_error_mid_body_is_56(origin: DemoOrigin) -> None:
    import anyio.abc

    class Breaking(anyio.abc.ByteStream):
        def __init__(self, inner: anyio.abc.ByteStream) -> None:
            self.inner = inner
            self.received = 0

        async def receive(self, max_bytes: int = 65536) -> bytes:
            if self.received > 20000:
                raise _TunnelBroke("exit went away")
            data = await self.inner.receive(min(max_bytes, 4096))
            self.received += len(data)
            return data

        async def send(self, item: bytes) -> None:
            await self.inner.send(item)

        async def send_eof(self) -> None:
            await self.inner.send_eof()

        async def aclose(self) -> None:
            await self.inner.aclose()

    class BreakingConnector(OsConnector):
        async def open_tcp(self, host: str, port: int) -> anyio.abc.ByteStream:
            return Breaking(await super().open_tcp(host, port))

    from smolmix_cli.apps.errors import RecvError

    async with HttpClient(BreakingConnector()) as client:
        with pytest.raises(RecvError) as info:
            await get(client, base(origin) + "/bytes/100000")
    assert classify(info.value).code == 56
    assert 20000 < info.value.transfer.size_download < 100000  # type: ignore[attr-defined]


async def test_remote_ip_reported(origin: DemoOrigin, connector: OsConnector) -> None:
    connector.names["demo.smolmix.test"] = "127.0.0.1"
    async with HttpClient(connector) as client:
        _, t = await get(client, f"http://demo.smolmix.test:{origin.http_port}/")
    assert t.remote_ip == "127.0.0.1"
    assert t.as_dict()["remote_ip"] == "127.0.0.1"
