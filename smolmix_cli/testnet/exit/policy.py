"""The exit policy: Tor-torrc-style accept/reject lines by network and port.

The same text format as Nym's published exit policy (spec nym-ipr-smolmix 6.2):
`[ExitPolicy] accept|reject|accept6|reject6 ADDRESS[/MASK][:PORTS]`, `#` starts a
comment, several rules may share a line separated by commas. ADDRESS is `*`
(both families), `*4`, `*6`, an IPv4 address, or an IPv6 address in brackets;
PORTS is `*`, `N` or `N-M` (ICMP counts as port 0, as upstream). The first rule
that matches decides; a destination no rule covers is denied (as upstream).

Sans-io and pure: `ExitPolicy.allows(address, port)` is all the NAT asks.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from smolmix_cli.testnet.exit.errors import ExitPolicyError

IpAddress = IPv4Address | IPv6Address
IpNetwork = IPv4Network | IPv6Network

# Everything that is not a global unicast address (upstream's "global IPs only"
# rule, bin-common ip_check): denied by default, so an exit never reaches into
# its own host or LAN unless its operator says so.
NON_GLOBAL_V4 = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
)
NON_GLOBAL_V6 = (
    "::/128",
    "::1/128",
    "::ffff:0:0/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:db8::/32",
    "2002::/16",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
)

DEFAULT_POLICY = "\n".join(
    ["# smolmix exit: no private, loopback, link-local or other non-global destinations"]
    + [f"reject {net}:*" for net in NON_GLOBAL_V4]
    + [
        f"reject6 [{IPv6Network(net).network_address}]/{IPv6Network(net).prefixlen}:*"
        for net in NON_GLOBAL_V6
    ]
    + ["accept *:*"]
)

LOCAL_NETWORK_POLICY = "\n".join(
    [
        "# the local network's exit: loopback servers and the demo range are reachable",
        "accept 127.0.0.0/8:*",
        "accept6 [::1]:*",
        "accept 198.18.0.0/15:*",
        "accept6 [2001:2::]/48:*",
        DEFAULT_POLICY,
    ]
)


@dataclass(frozen=True, slots=True)
class PolicyRule:
    accept: bool
    network: IpNetwork | None  # None: every address of `family` (or both when family is 0)
    family: int  # 0 both, 4, 6
    first_port: int
    last_port: int

    def matches(self, address: IpAddress, port: int) -> bool:
        if self.family and address.version != self.family:
            return False
        if self.network is not None and (
            self.network.version != address.version or address not in self.network
        ):
            return False
        return self.first_port <= port <= self.last_port

    def text(self) -> str:
        verb = "accept" if self.accept else "reject"
        if self.network is None:
            where = {0: "*", 4: "*4", 6: "*6"}[self.family]
        elif isinstance(self.network, IPv6Network):
            where = f"[{self.network.network_address}]/{self.network.prefixlen}"
        else:
            where = str(self.network)
        ports = (
            "*"
            if (self.first_port, self.last_port) == (0, 65535)
            else str(self.first_port)
            if self.first_port == self.last_port
            else f"{self.first_port}-{self.last_port}"
        )
        return f"{verb} {where}:{ports}"


class ExitPolicy:
    """An ordered rule list; the first match decides, no match denies."""

    def __init__(self, rules: list[PolicyRule]) -> None:
        self.rules = list(rules)

    @classmethod
    def parse(cls, text: str) -> ExitPolicy:
        rules: list[PolicyRule] = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if line.lower().startswith("exitpolicy"):
                line = line[len("exitpolicy") :].strip()
            for item in line.split(","):
                item = item.strip()
                if item:
                    rules.append(_parse_rule(item, number))
        return cls(rules)

    @classmethod
    def default(cls) -> ExitPolicy:
        return cls.parse(DEFAULT_POLICY)

    @classmethod
    def local_network(cls) -> ExitPolicy:
        return cls.parse(LOCAL_NETWORK_POLICY)

    @classmethod
    def open(cls) -> ExitPolicy:
        return cls.parse("accept *:*")

    def allows(self, address: IpAddress, port: int) -> bool:
        for rule in self.rules:
            if rule.matches(address, port):
                return rule.accept
        return False

    def text(self) -> str:
        return "\n".join(rule.text() for rule in self.rules) + "\n"


def _parse_rule(item: str, line: int) -> PolicyRule:
    verb, _, target = item.partition(" ")
    verb = verb.lower()
    if verb not in ("accept", "reject", "accept6", "reject6"):
        raise ExitPolicyError(f"line {line}: {verb!r} is not accept/reject/accept6/reject6")
    target = target.strip()
    if not target:
        raise ExitPolicyError(f"line {line}: {item!r} names no address")
    address, ports = _split_ports(target, line)
    first, last = _parse_ports(ports, line)
    family = 6 if verb.endswith("6") else 0
    network: IpNetwork | None
    if address in ("*", "*4", "*6"):
        network = None
        family = {"*": family, "*4": 4, "*6": 6}[address]
    else:
        text = address
        if text.startswith("["):
            close = text.find("]")
            if close < 0:
                raise ExitPolicyError(f"line {line}: unclosed '[' in {item!r}")
            text = text[1:close] + text[close + 1 :]
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ExitPolicyError(f"line {line}: bad address {address!r}") from None
        if family == 6 and network.version != 6:
            raise ExitPolicyError(f"line {line}: {verb} needs an IPv6 address")
        family = network.version
    return PolicyRule(verb.startswith("accept"), network, family, first, last)


def _split_ports(target: str, line: int) -> tuple[str, str]:
    """`ADDRESS[:PORTS]`; IPv6 addresses are bracketed, so the last ':' after ']' splits."""
    if target.startswith("["):
        close = target.find("]")
        if close < 0:
            raise ExitPolicyError(f"line {line}: unclosed '[' in {target!r}")
        rest = target[close + 1 :]
        colon = rest.rfind(":")
        if colon < 0:
            return target, "*"
        return target[: close + 1] + rest[:colon], rest[colon + 1 :]
    if target.count(":") > 1:
        raise ExitPolicyError(f"line {line}: IPv6 addresses must be in brackets: {target!r}")
    address, sep, ports = target.partition(":")
    return address, ports if sep else "*"


def _parse_ports(text: str, line: int) -> tuple[int, int]:
    text = text.strip()
    if text == "*":
        return 0, 65535
    first_text, sep, last_text = text.partition("-")
    try:
        first = int(first_text)
        last = int(last_text) if sep else first
    except ValueError:
        raise ExitPolicyError(f"line {line}: bad port {text!r}") from None
    if not 0 <= first <= last <= 65535:
        raise ExitPolicyError(f"line {line}: port range {text!r} out of order or range")
    return first, last
