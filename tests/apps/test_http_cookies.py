"""curl's cookie engine: -b text and files, Set-Cookie in, -c out, -j."""

from __future__ import annotations

from smolmix_cli.apps.http_cookies import FILE_HEADER, CookieJar
from smolmix_cli.apps.http_options import FetchOptions
from smolmix_cli.apps.http_request import first_request
from smolmix_cli.apps.http_url import parse_url

NOW = 1_700_000_000.0


def test_set_cookie_scope_and_round_trip_through_curls_file_format() -> None:
    jar = CookieJar()
    url = parse_url("http://a.example.test/dir/page?x=1")
    jar.ingest(
        url,
        [
            ("Set-Cookie", "s=1"),
            ("Set-Cookie", "d=2; Domain=example.test; Path=/; Max-Age=60"),
            ("Set-Cookie", "sec=3; Secure; HttpOnly"),
            ("Set-Cookie", "evil=4; Domain=other.test"),
        ],
        now=NOW,
    )
    assert jar.header_for(parse_url("http://a.example.test/dir/x"), NOW) == "s=1; d=2"
    assert jar.header_for(parse_url("https://b.example.test/"), NOW) == "d=2"
    assert jar.header_for(parse_url("https://a.example.test/dir/"), NOW) == "s=1; sec=3; d=2"
    assert jar.header_for(parse_url("http://a.example.test/dir/"), NOW + 120) == "s=1"
    text = jar.dump()
    assert text.startswith(FILE_HEADER)
    assert "#HttpOnly_a.example.test\tFALSE\t/dir\tTRUE\t0\tsec\t3\n" in text
    again = CookieJar()
    again.load(text)
    back = again.header_for(parse_url("https://a.example.test/dir/"), NOW) or ""
    assert sorted(back.split("; ")) == ["d=2", "s=1", "sec=3"]
    junked = CookieJar()
    junked.load(text, junk_session=True)
    assert junked.header_for(parse_url("https://a.example.test/dir/"), NOW) == "d=2"


def test_expired_set_cookie_deletes_and_cookie_sits_where_curl_puts_it() -> None:
    jar = CookieJar()
    url = parse_url("http://h.test/")
    jar.ingest(url, [("Set-Cookie", "k=v")], now=NOW)
    jar.ingest(url, [("Set-Cookie", "k=; Max-Age=0")], now=NOW)
    assert jar.header_for(url, NOW) is None
    jar.load("h.test\tFALSE\t/\tFALSE\t0\tk\tv\n")
    opts = FetchOptions(cookie="lit=1", cookie_jar=jar, referer="http://r/")
    names = [k for k, _ in first_request(url, opts).headers]
    assert names == ["Host", "User-Agent", "Accept", "Referer", "Cookie"]
    assert dict(first_request(url, opts).headers)["Cookie"] == "k=v; lit=1"
