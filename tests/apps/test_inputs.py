"""User input parsing: URLs, -H, -F; bad input only ever raises the apps' typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.apps.errors import AppError, MalformedUrl, UnsupportedProtocol, UsageError
from smolmix_cli.apps.http_body import parse_form_arg
from smolmix_cli.apps.http_headers import HeaderEdit, apply_edits, parse_header_arg
from smolmix_cli.apps.http_url import join_url, parse_url
from smolmix_cli.errors_map import classify


@pytest.mark.parametrize(
    ("text", "scheme", "host", "port", "target", "host_header"),
    [
        ("example.com", "http", "example.com", 80, "/", "example.com"),
        (
            "HTTPS://Example.COM:443/a?b=c#frag",
            "https",
            "example.com",
            443,
            "/a?b=c",
            "example.com",
        ),
        ("http://example.com:8080", "http", "example.com", 8080, "/", "example.com:8080"),
        ("http://[::1]:81/x", "http", "::1", 81, "/x", "[::1]:81"),
        ("http://[2001:DB8::1]/", "http", "2001:db8::1", 80, "/", "[2001:db8::1]"),
        ("http://10.0.0.1/p%20q", "http", "10.0.0.1", 80, "/p%20q", "10.0.0.1"),
        ("http://münchen.example/ü", "http", "xn--mnchen-3ya.example", 80, "/%C3%BC", None),
    ],
)
def test_parse_url(
    text: str, scheme: str, host: str, port: int, target: str, host_header: str | None
) -> None:
    url = parse_url(text)
    assert (url.scheme, url.host, url.port, url.target) == (scheme, host, port, target)
    if host_header is not None:
        assert url.host_header == host_header


def test_userinfo_and_join() -> None:
    url = parse_url("http://al%40ice:p%3Ass@example.com/dir/page")
    assert (url.user, url.password) == ("al@ice", "p:ss")
    assert str(join_url(url, "other")) == "http://example.com/dir/other"
    assert str(join_url(url, "/root?q=1")) == "http://example.com/root?q=1"
    assert str(join_url(url, "//cdn.example/x")) == "http://cdn.example/x"
    assert str(join_url(url, "https://secure.example:8443/")) == "https://secure.example:8443/"
    with pytest.raises(UnsupportedProtocol):
        join_url(url, "javascript:alert(1)")
    with pytest.raises(MalformedUrl):
        join_url(url, "   ")


@given(st.text(max_size=80))
def test_parse_url_only_typed_errors(text: str) -> None:
    try:
        url = parse_url(text)
    except AppError as exc:
        assert classify(exc).code in (1, 3)
        return
    assert url.scheme in ("http", "https") and url.host and url.target.startswith("/")


@given(st.text(max_size=60))
def test_header_args_only_typed_errors(text: str) -> None:
    try:
        edit = parse_header_arg(text)
    except UsageError as exc:
        assert classify(exc).code == 2
        return
    assert edit.name and "\n" not in (edit.value or "")


def test_apply_edits_order() -> None:
    defaults = [("Host", "h"), ("User-Agent", "ua"), ("Accept", "*/*")]
    out = apply_edits(
        defaults,
        [
            HeaderEdit("accept", "text/html"),
            HeaderEdit("X-A", "1"),
            HeaderEdit("User-Agent", None),
            HeaderEdit("x-a", "2"),
        ],
    )
    assert out == [("Host", "h"), ("accept", "text/html"), ("x-a", "2")]


def test_form_args(tmp_path: Path) -> None:
    f = tmp_path / "pic.png"
    f.write_bytes(b"\x89PNG")
    field = parse_form_arg(f"photo=@{f};type=image/x-test;filename=renamed.png")
    assert (field.path, field.filename, field.content_type) == (f, "renamed.png", "image/x-test")
    assert parse_form_arg(f"photo=@{f}").content_type == "image/png"
    assert parse_form_arg(f"text=<{f}").value == b"\x89PNG"
    assert parse_form_arg("a=b;type=text/x").content_type == "text/x"
    with pytest.raises(UsageError):
        parse_form_arg(f"photo=@{f};bogus=1")
    with pytest.raises(UsageError):
        parse_form_arg('na"me=1')


def _through_the_idna_codec(host: str) -> str | None:
    """The host parse_url gave before ASCII names skipped the codec (None: rejected)."""
    import re

    label = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
    try:
        name = host.encode("idna").decode("ascii").lower().rstrip(".")
    except UnicodeError:
        return None
    if not name or len(name) > 253 or not all(label.fullmatch(x) for x in name.split(".")):
        return None
    return name


_ASCII_HOSTS = st.lists(
    st.sampled_from(["a", "B", "x" * 63, "x" * 64, "", "ex-ample", "-a", "a_b", "9", "ÿ"]),
    min_size=1,
    max_size=5,
).map(".".join)


@given(_ASCII_HOSTS | st.sampled_from(["a.b.", "a.b..", ".", "..", "a..b", ".a", "Ex.COM."]))
def test_ascii_host_names_parse_as_the_idna_codec_made_them(host: str) -> None:
    # ASCII names no longer load the codec (1.4 ms of an attached fetch's start)
    expected = _through_the_idna_codec(host)
    if expected is None:
        with pytest.raises(MalformedUrl):
            parse_url(f"http://{host}/")
    else:
        assert parse_url(f"http://{host}/").host == expected
