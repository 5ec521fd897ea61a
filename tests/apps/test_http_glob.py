"""curl's URL globbing and -o's #N."""

from __future__ import annotations

import pytest

from smolmix_cli.apps.errors import MalformedUrl
from smolmix_cli.apps.http_glob import expand, output_name


def test_sets_and_ranges_expand_leftmost_slowest() -> None:
    assert [u for u, _ in expand("http://h/{a,b}/[1-2]")] == [
        "http://h/a/1",
        "http://h/a/2",
        "http://h/b/1",
        "http://h/b/2",
    ]
    assert expand("http://h/[08-10]")[0] == ("http://h/08", ("08",))
    assert [v for _, (v,) in expand("http://h/[a-e:2]")] == ["a", "c", "e"]
    assert expand("http://[::1]:8/x") == [("http://[::1]:8/x", ())]
    assert expand("http://h/\\{a\\}") == [("http://h/{a}", ())]
    assert output_name("f#1-#2-#3", ("x", "9")) == "f x-9-#3".replace(" ", "")


def test_bad_ranges_are_malformed_urls() -> None:
    for url in ("http://h/[3-1]", "http://h/[a-Z]", "http://h/[x]"):
        with pytest.raises(MalformedUrl):
            expand(url)
