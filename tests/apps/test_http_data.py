"""curl's data options, checked as bytes and end to end through /echo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smolmix_cli.apps import http_data as d
from smolmix_cli.apps.errors import ReadError, UsageError
from smolmix_cli.apps.http_body import BytesBody
from smolmix_cli.apps.http_client import HttpClient
from smolmix_cli.errors_map import classify
from smolmix_cli.testnet.origin.origin import DemoOrigin
from tests.apps.helpers import get
from tests.apps.os_connector import OsConnector


def test_data_ascii_strips_newlines(tmp_path: Path) -> None:
    f = tmp_path / "body.txt"
    f.write_bytes(b"a=1\r\nb=2\n\x00c=3")
    assert d.data_ascii(f"@{f}") == b"a=1b=2"  # curl 7.88: a line ends at its first NUL
    assert d.data_ascii("@-", lambda: b"p\rq\nr\x00s\nt") == b"prt"
    assert d.data_binary(f"@{f}") == b"a=1\r\nb=2\n\x00c=3"
    assert d.data_raw(f"@{f}") == f"@{f}".encode()
    assert d.data_ascii("@-", lambda: b"x\ny") == b"xy"
    with pytest.raises(UsageError):
        d.data_ascii("@-")
    with pytest.raises(ReadError) as info:
        d.data_binary(f"@{tmp_path / 'missing'}")
    assert classify(info.value).code == 26


def test_data_urlencode_forms(tmp_path: Path) -> None:
    f = tmp_path / "v"
    f.write_bytes(b"a b&c")
    assert d.data_urlencode("hello world") == b"hello+world"
    assert d.data_urlencode("=a=b") == b"a%3Db"
    assert d.data_urlencode("name=a b/c~") == b"name=a+b%2Fc~"
    assert d.data_urlencode(f"@{f}") == b"a+b%26c"
    assert d.data_urlencode(f"n@{f}") == b"n=a+b%26c"
    assert d.join_form([b"a=1", d.data_urlencode("b=ü")]) == b"a=1&b=%C3%BC"


def test_get_query() -> None:
    assert d.url_with_query("http://h/p", b"a=1") == "http://h/p?a=1"
    assert d.url_with_query("http://h/p?x=1#frag", b"a=1") == "http://h/p?x=1&a=1#frag"
    assert d.url_with_query("http://h/p", b"") == "http://h/p"


@pytest.mark.anyio
async def test_json_post_end_to_end(origin: DemoOrigin, connector: OsConnector) -> None:
    body = d.join_json([d.json_data('{"a":'), d.json_data("1}")])
    from smolmix_cli.apps.http_headers import HeaderEdit

    async with HttpClient(connector) as client:
        out, _ = await get(
            client,
            f"http://127.0.0.1:{origin.http_port}/echo",
            body=BytesBody(body, d.JSON_CONTENT_TYPE),
            header_edits=[HeaderEdit("Accept", d.JSON_ACCEPT)],
        )
    echo = json.loads(out.body)
    headers = dict(echo["headers"])
    assert echo["method"] == "POST" and echo["body"] == '{"a":1}'
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"
    assert headers["content-length"] == "7"
