"""curl's URL globbing: `{a,b}` sets and `[1-3]`, `[01-10]`, `[a-c]`, `[1-9:2]` ranges.

A URL expands to every combination, the leftmost pattern varying slowest (curl's
order), each with the values that `#1`, `#2`... in an -o name stand for.
`\\{`, `\\[` and their closers are literal; -g / --globoff turns it all off.
"""

from __future__ import annotations

import itertools
import re

from smolmix_cli.apps.errors import MalformedUrl

_PART = re.compile(r"\\([\[\]{}])|\{([^{}]*)\}|\[([^\[\]]*)\]")
_NUM = re.compile(r"(\d+)-(\d+)(?::(\d+))?")
_ALPHA = re.compile(r"([a-zA-Z])-([a-zA-Z])(?::(\d+))?")
MAX_URLS = 100_000
"""curl refuses larger expansions too (a typo should not start a million fetches)."""


def _range(spec: str, url: str) -> list[str]:
    if m := _NUM.fullmatch(spec):
        first, last, step = m.group(1), m.group(2), int(m.group(3) or 1)
        width = len(first) if first.startswith("0") and len(first) > 1 else 0
        if int(last) < int(first) or step < 1:
            raise MalformedUrl(f"bad range in URL: {url}")
        return [str(n).zfill(width) for n in range(int(first), int(last) + 1, step)]
    if m := _ALPHA.fullmatch(spec):
        first, last, step = m.group(1), m.group(2), int(m.group(3) or 1)
        if ord(last) < ord(first) or step < 1 or first.isupper() != last.isupper():
            raise MalformedUrl(f"bad range in URL: {url}")
        return [chr(c) for c in range(ord(first), ord(last) + 1, step)]
    if re.fullmatch(r"[0-9a-fA-F:.]+", spec) and ":" in spec:
        return ["[" + spec + "]"]  # an IPv6 literal, not a range
    raise MalformedUrl(f"bad range specification in URL: {url}")


def expand(url: str) -> list[tuple[str, tuple[str, ...]]]:
    """Every URL the pattern stands for, with its glob values (empty for a plain URL)."""
    pieces: list[list[str]] = []
    globbed: list[bool] = []
    pos = 0
    for m in _PART.finditer(url):
        if m.start() > pos:
            pieces.append([url[pos : m.start()]])
            globbed.append(False)
        if m.group(1) is not None:
            pieces.append([m.group(1)])
            globbed.append(False)
        elif m.group(2) is not None:
            pieces.append(m.group(2).split(","))
            globbed.append(True)
        else:
            values = _range(m.group(3), url)
            pieces.append(values)
            globbed.append(not values[0].startswith("["))
        pos = m.end()
    if pos < len(url):
        pieces.append([url[pos:]])
        globbed.append(False)
    total = 1
    for choices in pieces:
        total *= len(choices)
    if total > MAX_URLS:
        raise MalformedUrl(f"too many URLs in the glob pattern ({total}): {url}")
    out: list[tuple[str, tuple[str, ...]]] = []
    for combo in itertools.product(*pieces):
        picked = tuple(v for v, g in zip(combo, globbed, strict=True) if g)
        out.append(("".join(combo), picked))
    return out


def output_name(template: str, values: tuple[str, ...]) -> str:
    """`#N` in an -o name: the N-th glob's value for this URL (kept as is if there is none)."""

    def sub(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return values[n - 1] if 1 <= n <= len(values) else m.group(0)

    return re.sub(r"#(\d+)", sub, template)
