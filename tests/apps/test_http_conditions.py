"""curl's -z, --etag-compare, --limit-rate, -C N and --url-query as text to values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from smolmix_cli.apps import http_conditions as c
from smolmix_cli.apps import http_data
from smolmix_cli.apps.errors import ReadError, UsageError


def test_time_condition_date_file_and_unmodified(tmp_path: Path) -> None:
    date = "Sat, 01 Jan 2000 00:00:00 GMT"
    assert c.time_condition(date) == ("If-Modified-Since", date)
    assert c.time_condition("-" + date) == ("If-Unmodified-Since", date)
    f = tmp_path / "stamp"
    f.write_text("x")
    os.utime(f, (946684800, 946684800))
    assert c.time_condition(str(f)) == ("If-Modified-Since", date)
    assert c.time_condition("not a date") is None


def test_etag_compare_reads_the_first_line(tmp_path: Path) -> None:
    f = tmp_path / "etag"
    f.write_text('"abc"\n')
    assert c.etag_to_send(str(f)) == '"abc"'
    with pytest.raises(ReadError):
        c.etag_to_send(str(tmp_path / "missing"))


def test_rate_and_resume_offset() -> None:
    assert c.parse_rate("200k") == 200 * 1024
    assert c.parse_rate("1M") == 1 << 20
    assert c.parse_rate("1000") == 1000
    with pytest.raises(UsageError):
        c.parse_rate("fast")
    assert c.resume_offset("-") is None
    assert c.resume_offset("100") == 100
    with pytest.raises(UsageError):
        c.resume_offset("x")


def test_url_query_escapes_like_curl(tmp_path: Path) -> None:
    f = tmp_path / "v"
    f.write_bytes(b'"abc"\n')
    assert http_data.url_query("a=b c") == b"a=b+c"
    assert http_data.url_query("+x=%20") == b"x=%20"
    assert http_data.url_query(f"@{f}") == b"%22abc%22%0a"
    assert http_data.url_query(f"n@{f}") == b"n=%22abc%22%0a"


class _Head:
    def __init__(self, stamp: str | None) -> None:
        self.stamp = stamp

    def header(self, name: str) -> str | None:
        return self.stamp if name == "last-modified" else None


def test_time_condition_judged_by_last_modified_like_curl() -> None:
    since = ("If-Modified-Since", "Sun, 02 Jan 2000 00:00:00 GMT")
    unmodified = ("If-Unmodified-Since", "Sun, 02 Jan 2000 00:00:00 GMT")
    old, new = _Head("Sat, 01 Jan 2000 00:00:00 GMT"), _Head("Mon, 03 Jan 2000 00:00:00 GMT")
    assert not c.meets_time_condition(since, old) and c.meets_time_condition(since, new)
    assert c.meets_time_condition(unmodified, old) and not c.meets_time_condition(unmodified, new)
    assert c.meets_time_condition(since, _Head(None)) and c.meets_time_condition(None, old)
