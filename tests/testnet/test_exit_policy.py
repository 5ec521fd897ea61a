"""The exit policy: torrc-style parsing, first match wins, no match denies."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.testnet.exit.errors import ExitPolicyError
from smolmix_cli.testnet.exit.policy import NON_GLOBAL_V4, NON_GLOBAL_V6, ExitPolicy


def test_default_denies_every_non_global_range_and_accepts_the_internet() -> None:
    policy = ExitPolicy.default()
    for net in NON_GLOBAL_V4 + NON_GLOBAL_V6:
        first = ip_address(net.split("/")[0])
        assert not policy.allows(first, 443), net
    for host in (
        "127.0.0.1",
        "10.1.2.3",
        "192.168.1.1",
        "169.254.9.9",
        "::1",
        "fe80::1",
        "fd00::1",
    ):
        assert not policy.allows(ip_address(host), 80), host
    for host in ("1.1.1.1", "8.8.8.8", "2606:4700:4700::1111"):
        assert policy.allows(ip_address(host), 53)
        assert policy.allows(ip_address(host), 0)  # ICMP counts as port 0


def test_local_network_policy_reaches_loopback_and_the_demo_range_only() -> None:
    policy = ExitPolicy.local_network()
    assert policy.allows(IPv4Address("127.0.0.1"), 8080)
    assert policy.allows(IPv6Address("::1"), 8080)
    assert policy.allows(IPv4Address("198.18.0.1"), 53)
    assert policy.allows(IPv6Address("2001:2::1"), 443)
    assert not policy.allows(IPv4Address("192.168.0.10"), 80)
    assert not policy.allows(IPv4Address("10.0.3.4"), 80)  # other tunnel clients
    assert not policy.allows(IPv6Address("fe80::1"), 80)


def test_torrc_syntax_first_match_and_implicit_deny() -> None:
    policy = ExitPolicy.parse(
        """
        # a comment
        ExitPolicy reject 1.2.3.4:*          # one host, every port
        ExitPolicy accept 1.2.3.0/24:80-443, accept 1.2.3.0/24:8080
        accept6 [2001:db8::]/32:22
        reject *4:25
        accept *4:*
        """
    )
    assert not policy.allows(IPv4Address("1.2.3.4"), 80)  # the earlier reject wins
    assert policy.allows(IPv4Address("1.2.3.5"), 80)
    assert policy.allows(IPv4Address("1.2.3.5"), 443)
    assert policy.allows(IPv4Address("1.2.3.5"), 8080)
    assert not policy.allows(IPv4Address("9.9.9.9"), 25)
    assert policy.allows(IPv4Address("9.9.9.9"), 26)
    assert policy.allows(IPv6Address("2001:db8::5"), 22)
    assert not policy.allows(IPv6Address("2001:db8::5"), 23)  # no rule: denied
    assert not policy.allows(IPv6Address("2606::1"), 443)  # *4 rules do not cover IPv6
    assert not ExitPolicy.parse("").allows(IPv4Address("1.1.1.1"), 80)


@pytest.mark.parametrize(
    "text",
    [
        "allow *:*",
        "accept",
        "accept 1.2.3.4:99999",
        "accept 1.2.3.4:90-80",
        "accept 1.2.3.4:http",
        "accept 300.1.1.1:*",
        "accept ::1:80",
        "accept [::1:80",
        "accept6 1.2.3.4:*",
    ],
)
def test_bad_lines_raise_the_policy_error(text: str) -> None:
    with pytest.raises(ExitPolicyError):
        ExitPolicy.parse(text)


@given(st.text(max_size=80))
def test_any_text_parses_or_raises_only_the_policy_error(text: str) -> None:
    try:
        policy = ExitPolicy.parse(text)
    except ExitPolicyError:
        return
    policy.allows(IPv4Address("1.2.3.4"), 80)


addresses = st.one_of(
    st.integers(0, 2**32 - 1).map(IPv4Address), st.integers(0, 2**128 - 1).map(IPv6Address)
)


@given(addresses, st.integers(0, 65535))
def test_printed_policy_decides_the_same(address: IPv4Address | IPv6Address, port: int) -> None:
    for policy in (ExitPolicy.default(), ExitPolicy.local_network()):
        again = ExitPolicy.parse(policy.text())
        assert again.allows(address, port) == policy.allows(address, port)
