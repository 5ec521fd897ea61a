"""-w rendering, from a real transfer against the demo origin and from fixed records."""

from __future__ import annotations

import json

import pytest

from smolmix_cli.apps.http_client import HttpClient
from smolmix_cli.apps.http_transfer import Transfer
from smolmix_cli.apps.http_writeout import render
from smolmix_cli.testnet.origin.origin import DemoOrigin
from tests.apps.helpers import get
from tests.apps.os_connector import OsConnector

pytestmark = pytest.mark.anyio


def test_escapes_and_literals() -> None:
    t = Transfer(url="http://x/", http_code=204, size_download=12, time_total=1.5)
    out = render(r"%{http_code}\t%{size_download}\n100%% %{time_total}\\", t)
    assert out.text() == "204\t12\n100% 1.500000\\"
    assert out.unknown == []


def test_unknown_variable_reported_and_empty() -> None:
    out = render("a%{nope}b", Transfer(url="u"))
    assert out.text() == "ab"
    assert out.unknown == ["nope"]


def test_stream_switch_and_onerror() -> None:
    t = Transfer(url="u", http_code=200)
    out = render("x%{stderr}y%{stdout}z", t)
    assert out.pieces == [("stdout", "x"), ("stderr", "y"), ("stdout", "z")]
    assert render("ok%{onerror}failed", t).text() == "ok"
    t.exitcode = 7
    t.errormsg = "Failed to connect"
    assert render("ok%{onerror}failed %{exitcode}: %{errormsg}", t).text() == (
        "okfailed 7: Failed to connect"
    )


async def test_variables_from_a_real_transfer(origin: DemoOrigin, connector: OsConnector) -> None:
    url = f"http://127.0.0.1:{origin.http_port}/redirect/2"
    async with HttpClient(connector) as client:
        _, t = await get(client, url, follow_redirects=True)
    fmt = (
        "%{http_code} %{num_redirects} %{url_effective} %{content_type} "
        "%header{x-connection-id} %header{Content-Type}"
    )
    out = render(fmt, t).text()
    code, redirects, effective, ctype, conn_id, ctype2 = out.split(" ")
    assert (code, redirects) == ("200", "2")
    assert effective == f"http://127.0.0.1:{origin.http_port}/echo"
    assert ctype == ctype2 == "application/json"
    assert conn_id.isdigit()
    data = json.loads(render("%{json}", t).text())
    assert data["http_code"] == 200 and data["num_redirects"] == 2
    assert data["size_download"] == t.size_download > 0
    for key in ("time_connect", "time_appconnect", "time_starttransfer", "time_total"):
        assert 0 <= data[key] <= data["time_total"]
    times = render("%{time_connect} %{time_total}", t).text().split()
    assert all(len(x.split(".")[1]) == 6 for x in times)
    headers = json.loads(render("%{header_json}", t).text())
    assert headers["content-type"] == ["application/json"]
    extra = render("%{time_tunnel}", t, {"time_tunnel": 1.25}).text()
    assert extra == "1.250000"


def test_status_codes_have_three_digits_in_text_and_stay_numbers_in_json() -> None:
    """curl 7.88: `-w '%{http_code}|%{response_code}|%{exitcode}'` on a timeout prints
    000|000|28, and its %{json} has "http_code":0."""
    failed = Transfer(url="u", exitcode=28)
    assert render("%{http_code}|%{response_code}|%{exitcode}", failed).text() == "000|000|28"
    assert json.loads(render("%{json}", failed).text())["http_code"] == 0
    assert render("%{http_code}", Transfer(url="u", http_code=204)).text() == "204"


def test_curl8_variables_and_json_keys_in_curls_order() -> None:
    from smolmix_cli.apps.http_writeout import JSON_KEYS, unknown_warning

    t = Transfer(url="https://u:p@h.test:8443/a/b?q=1#f", http_code=200, urlnum=2)
    t.headers = [("A", "1"), ("B", "2")]
    t.filename_effective, t.local_ip, t.local_port = "out.bin", "10.0.0.2", 40000
    fmt = "%{num_headers} %{urlnum} %{filename_effective} %{local_ip}:%{local_port} "
    fmt += "%{ssl_verify_result} %{url.host} %{url.port} %{url.path} %{urle.query}"
    assert render(fmt, t).text() == "2 2 out.bin 10.0.0.2:40000 0 h.test 8443 /a/b q=1"
    text = render("%{json}", t, {"curl_version": "smolmix/0"}).text()
    data = json.loads(text)
    assert list(data) == JSON_KEYS  # no tunnel keys given: exactly curl's, in its order
    assert set(JSON_KEYS) <= set(data)
    assert '"time_total":0.000000' in text and ", " not in text.split('"curl_version"')[0]
    assert render("%{nope}", t).unknown == ["nope"]
    assert unknown_warning("nope") == "unknown --write-out variable: 'nope'"
