"""curl's --connect-to and --resolve, applied to where the tunnel connects.

`--connect-to HOST1:PORT1:HOST2:PORT2` sends connections for HOST1:PORT1 to
HOST2:PORT2 (an empty part matches anything / keeps the value); `--resolve
HOST:PORT:ADDR[,ADDR]` pins a name to addresses, so the tunnel's resolver (a
mixnet round trip) is skipped. As in curl, --connect-to applies first; the URL,
Host header and TLS name stay as written. `*` as HOST matches every host.
"""

from __future__ import annotations

from typing import NamedTuple

from smolmix_cli.apps.errors import UsageError


class Route(NamedTuple):
    host: str
    """"" or "*": any host."""
    port: int | None
    to_host: str
    to_port: int | None

    def matches(self, host: str, port: int) -> bool:
        host_ok = self.host in ("", "*") or self.host.lower() == host.lower()
        return host_ok and (self.port is None or self.port == port)


def _split(text: str) -> list[str]:
    """Split on ':' outside [IPv6] brackets; brackets removed."""
    parts: list[str] = []
    buf: list[str] = []
    depth = 0
    for c in text:
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
        elif c == ":" and depth == 0:
            parts.append("".join(buf))
            buf = []
            continue
        buf.append(c)
    parts.append("".join(buf))
    return [p[1:-1] if p.startswith("[") and p.endswith("]") else p for p in parts]


def _port(text: str, arg: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"bad port in {arg!r}")
    return int(text)


def parse_connect_to(arg: str) -> Route:
    parts = _split(arg)
    if len(parts) != 4:
        raise UsageError(f"--connect-to needs HOST1:PORT1:HOST2:PORT2, not {arg!r}")
    return Route(parts[0], _port(parts[1], arg), parts[2], _port(parts[3], arg))


def parse_resolve(arg: str) -> Route:
    text = arg[1:] if arg.startswith("+") else arg
    parts = _split(text)
    if len(parts) < 3 or not parts[0] or _port(parts[1], arg) is None:
        raise UsageError(f"--resolve needs HOST:PORT:ADDRESS, not {arg!r}")
    address = ":".join(parts[2:]).split(",")[0].strip("[]")
    if not address:
        raise UsageError(f"--resolve needs an address: {arg!r}")
    return Route(parts[0], _port(parts[1], arg), address, None)


def route(host: str, port: int, connect_to: list[Route], resolve: list[Route]) -> tuple[str, int]:
    """Where to open the connection for host:port (the first matching rule of each kind)."""
    for rule in connect_to:
        if rule.matches(host, port):
            host, port = rule.to_host or host, rule.to_port or port
            break
    for rule in resolve:
        if rule.matches(host, port):
            return rule.to_host, port
    return host, port
