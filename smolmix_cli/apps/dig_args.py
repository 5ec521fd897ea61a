"""dig's command-line grammar, sans-io: tokens in, lookups and global settings out.

dig reads its arguments left to right. Options before the first name set the
*default lookup*; each name (or `-q NAME`, `-x ADDR`) starts a new lookup cloned
from it, and the options after that name change only that lookup. A few
settings are global whatever their position, because dig keeps them in global
variables: `+[no]short`, `+[no]cmd`, `+[no]yaml` (and `+noall`'s effect on
`+cmd`), `-p PORT`. Batch files (`-f FILE`) are read the same way, one command
line per line, after the command line's own lookups. Scripts depend on these
quirks, so they are kept, not tidied.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace

from smolmix_cli.apps import dns
from smolmix_cli.apps.dig_output import Display
from smolmix_cli.apps.dns_transports import DnsServer, parse_server
from smolmix_cli.apps.errors import DnsError, DnsUsageError

ROOT = "."


@dataclass
class Lookup:
    """One question and how to ask it and show it (dig's `dig_lookup_t`)."""

    name: str = ROOT
    qtype: int | None = None
    """None: A for names, NS for the root query dig makes when given no name."""
    server: DnsServer | None = None
    recurse: bool = True
    adflag: bool = True  # dig sets AD in queries by default (RFC 6840 5.7)
    cdflag: bool = False
    dnssec: bool = False
    edns: bool = True
    pad_block: int | None = dns.PAD_BLOCK
    tcp: bool = False
    timeout: float = dns.DEFAULT_TIMEOUT
    tries: int = dns.DEFAULT_TRIES
    display: Display = field(default_factory=Display)
    """What of the reply to print (frozen: lookups copied from the default share it)."""

    def show(self, **changes: bool) -> None:
        self.display = replace(self.display, **changes)

    def flags(self) -> dns.QueryFlags:
        return dns.QueryFlags(
            recursion=self.recurse,
            adflag=self.adflag,
            cdflag=self.cdflag,
            dnssec_ok=self.dnssec,
            edns=self.edns or self.dnssec,
        )


@dataclass
class DigRun:
    """Everything one command line (plus its batch files) asks for."""

    lookups: list[Lookup] = field(default_factory=list)
    default: Lookup = field(default_factory=Lookup)
    short: bool = False
    printcmd: bool = True
    yaml: bool = False
    json: bool = False
    port: int | None = None
    servers_given: int = 0
    greeting: bool | None = None
    """Whether dig composed its `; <<>> DiG` banner: decided by +cmd when the first lookup
    is made (None: not yet), printed with the first reply or failure."""
    batch_files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Lines dig would print on stderr and go on (an ignored -t type, ...)."""


_BOOL_OPTIONS = (
    "additional",
    "adflag",
    "all",
    "answer",
    "authority",
    "cdflag",
    "class",
    "cmd",
    "comments",
    "cookie",
    "dnssec",
    "edns",
    "json",
    "question",
    "recurse",
    "search",
    "short",
    "stats",
    "tcp",
    "ttlid",
    "vc",
    "yaml",
)
_VALUE_OPTIONS = ("padding", "retry", "time", "tries", "timeout")
_ALIASES = {"ad": "adflag", "cd": "cdflag", "vc": "tcp", "rec": "recurse", "timeout": "time"}
_DISPLAY = {f.name for f in fields(Display)}
_NO_OPS = {"cookie", "search"}
"""Accepted for scripts' sake; what they change does not exist here (docs/compat.md)."""


def _option_name(word: str) -> str | None:
    word = word.lower()
    if word in _ALIASES:
        return _ALIASES[word]
    known = _BOOL_OPTIONS + _VALUE_OPTIONS
    if word in known:
        return word
    matches = [name for name in known if name.startswith(word)]
    return matches[0] if len(matches) == 1 and len(word) >= 2 else None


def plus_option(token: str, lookup: Lookup, run: DigRun) -> None:
    """One `+[no]option[=value]` applied to `lookup` (or to the run, for dig's globals)."""
    text = token[1:]
    key, has_value, value = text.partition("=")
    state = True
    name = _option_name(key)
    if name is None and key.lower().startswith("no"):
        state = False
        name = _option_name(key[2:])
    if name is None:
        raise DnsUsageError(f"Invalid option: {token}")
    if name in _VALUE_OPTIONS:
        _value_option(token, name, value if has_value else None, state, lookup)
        return
    if has_value and name != "edns":
        raise DnsUsageError(f"Invalid option: {token}")
    if name == "all":
        lookup.show(
            question=state,
            answer=state,
            authority=state,
            additional=state,
            comments=state,
            stats=state,
        )
        run.printcmd = state
    elif name == "short":
        run.short = state
        if state:
            run.printcmd = False
            lookup.show(
                answer=True,
                question=False,
                authority=False,
                additional=False,
                comments=False,
                stats=False,
            )
    elif name == "yaml":
        run.yaml = state
        if state:
            run.printcmd = False
            lookup.show(stats=False)
    elif name == "cmd":
        run.printcmd = state
    elif name == "json":
        run.json = state
    elif name == "class":
        lookup.show(show_class=state)
    elif name == "edns":
        if has_value and (not value.isdigit() or int(value) != 0):
            raise DnsUsageError(f"Invalid option: {token} (only EDNS version 0)")
        lookup.edns = state
    elif name in _DISPLAY:
        lookup.show(**{name: state})
    elif name not in _NO_OPS:
        setattr(lookup, name, state)


_VALUE_WORDS = {"time": "timeout", "tries": "tries", "retry": "retries", "padding": "padding"}


def _value_option(token: str, name: str, value: str | None, state: bool, lookup: Lookup) -> None:
    if not state or value is None:
        raise DnsUsageError(f"Invalid option: {token}")
    if not value.isdigit():  # dig: a fatal error (10), not a usage one
        raise DnsError(f"invalid {_VALUE_WORDS[name]} '{value}': not a valid number")
    number = int(value)
    if name == "time":
        lookup.timeout = float(max(1, number))
    elif name == "tries":
        lookup.tries = max(1, number)
    elif name == "retry":
        lookup.tries = number + 1
    elif name == "padding":
        lookup.pad_block = number or None


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise DnsUsageError(f"invalid port number '{text}': Couldn't parse port number")
    return int(text)


def _type_or_none(token: str) -> int | None:
    try:
        return dns.parse_qtype(token)
    except DnsUsageError:
        return None


_CLASSES = {"IN"}
_OTHER_CLASSES = {"CH", "CHAOS", "HS", "HESIOD", "NONE", "ANY"}


@dataclass
class _Cursor:
    lookup: Lookup
    open_type_class: bool = True
    typed: bool = False


def parse_tokens(tokens: list[str], run: DigRun) -> None:
    """Add the lookups of one command line (or batch line) to `run`."""
    cur = _Cursor(run.default)
    items = iter(tokens)
    for token in items:
        if token.startswith("@") and len(token) > 1:
            server = parse_server(token[1:])
            run.servers_given = 1  # dig counts the addresses of the last @server: ours is one
            if cur.lookup is run.default:
                run.default.server = server
            else:
                cur.lookup.server = server
        elif token.startswith("+") and len(token) > 1:
            plus_option(token, cur.lookup, run)
        elif token.startswith("-") and len(token) > 1:
            _dash_option(token, items, cur, run)
        else:
            _positional(token, cur, run)


def _value(token: str, items: Iterator[str]) -> str:
    if len(token) > 2:
        return token[2:]
    value = next(items, None)
    if value is None:
        raise DnsUsageError(f"option {token} requires an argument")
    return value


def _dash_option(token: str, items: Iterator[str], cur: _Cursor, run: DigRun) -> None:
    letter = token[1]
    if letter in "46r":
        if len(token) > 2:
            raise DnsUsageError(f"Invalid option: {token}")
        return  # the tunnel picks the family; there is no ~/.digrc to skip
    if letter not in "ptqxfc":
        raise DnsUsageError(f"Invalid option: {token}")
    value = _value(token, items)
    if letter == "p":
        run.port = _port(value)
    elif letter == "f":
        run.batch_files.append(value)
    elif letter == "c":
        cur.open_type_class = False  # dig: after -t/-c, a bare word is always a name
        _set_class(value)
    elif letter == "t":
        cur.open_type_class = False
        qtype = _type_or_none(value)
        if qtype is None:
            run.warnings.append(f";; Warning, ignoring invalid type {value}")
            return
        if cur.typed:
            run.warnings.append(";; Warning, extra type option")
        cur.lookup.qtype = qtype
        cur.typed = True
    elif letter == "q":
        _new_lookup(dns.normalise_name(value), cur, run)
    else:  # -x
        _new_lookup(reverse_name(value), cur, run)
        cur.lookup.qtype = dns.parse_qtype("PTR")
        cur.typed = True


def reverse_name(text: str) -> str:
    """dig -x: an address's PTR name; anything else has its labels reversed under in-addr.arpa."""
    try:
        return ipaddress.ip_address(text.strip()).reverse_pointer + "."
    except ValueError:
        labels = [label for label in text.strip().split(".") if label]
        return dns.normalise_name(".".join([*reversed(labels), "in-addr", "arpa"]))


def _set_class(value: str) -> None:
    upper = value.upper()
    if upper in _CLASSES:
        return
    raise DnsUsageError(f"class {value} is not supported (only IN)")


def _positional(token: str, cur: _Cursor, run: DigRun) -> None:
    if cur.open_type_class:
        upper = token.upper()
        qtype = _type_or_none(token) if upper not in _CLASSES | _OTHER_CLASSES - {"ANY"} else None
        if qtype is not None:
            if cur.typed:
                run.warnings.append(";; Warning, extra type option")
            cur.lookup.qtype = qtype
            cur.typed = True
            return
        if upper in _CLASSES | _OTHER_CLASSES:
            _set_class(token)
            return
    _new_lookup(dns.normalise_name(token), cur, run)


def _new_lookup(name: str, cur: _Cursor, run: DigRun) -> None:
    lookup = replace(run.default, name=name)
    if run.greeting is None:
        run.greeting = run.printcmd
    run.lookups.append(lookup)
    cur.lookup = lookup
    cur.typed = False


def batch_tokens(text: str) -> list[list[str]]:
    """The command lines of a batch file, one per line (dig asks a blank line for the root)."""
    lines = []
    for line in text.splitlines():
        try:
            lines.append(shlex.split(line))
        except ValueError:
            lines.append(line.split())
    return lines


def parse_batch_line(tokens: list[str], run: DigRun, template: Lookup) -> list[Lookup]:
    """One batch line's lookups: it starts from the command line's defaults, and dig's
    globals (+short, +cmd, ...) it changes stay changed for the lines after it."""
    run.default = replace(template)
    first = len(run.lookups)
    try:
        parse_tokens(tokens, run)
        if len(run.lookups) == first:
            run.lookups.append(_root(run.default))
            if run.greeting is None:
                run.greeting = run.printcmd
        return run.lookups[first:]
    finally:
        del run.lookups[first:]
        run.default = template


def _root(default: Lookup) -> Lookup:
    return replace(default, name=ROOT, qtype=default.qtype or dns.parse_qtype("NS"))


def finish(run: DigRun) -> None:
    """dig asks for the root's NS records when nothing else was asked (and no batch file)."""
    if not run.lookups and not run.batch_files:
        run.lookups.append(_root(run.default))
        run.greeting = run.printcmd
