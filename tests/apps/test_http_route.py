"""curl's --connect-to and --resolve as rules for where the tunnel connects."""

from __future__ import annotations

import pytest

from smolmix_cli.apps.errors import UsageError
from smolmix_cli.apps.http_route import parse_connect_to, parse_resolve, route


def test_connect_to_then_resolve_like_curl() -> None:
    c = [parse_connect_to("a.test:443:b.test:8443"), parse_connect_to("::c.test:")]
    r = [parse_resolve("b.test:8443:192.0.2.7"), parse_resolve("+d.test:80:[2001:db8::1],1.2.3.4")]
    assert route("a.test", 443, c, r) == ("192.0.2.7", 8443)
    assert route("x.test", 80, c, r) == ("c.test", 80)  # empty parts: any host, same port
    assert route("d.test", 80, [], r) == ("2001:db8::1", 80)
    assert route("d.test", 81, [], r) == ("d.test", 81)
    assert route("A.TEST", 443, c[:1], []) == ("b.test", 8443)


@pytest.mark.parametrize("arg", ["a:1", "a:x:b:2", "a:1:b:99999"])
def test_bad_connect_to(arg: str) -> None:
    with pytest.raises(UsageError):
        parse_connect_to(arg)


@pytest.mark.parametrize("arg", ["a:1", ":80:1.2.3.4", "a::1.2.3.4", "a:80:"])
def test_bad_resolve(arg: str) -> None:
    with pytest.raises(UsageError):
        parse_resolve(arg)
