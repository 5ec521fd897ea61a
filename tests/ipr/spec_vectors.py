"""The byte vectors of `spec/nym-ipr-smolmix.md` §8, read from the spec text itself.

§8.1 lists upstream fixtures (some with derived bytes in backticks), §8.2 derived
vectors in a `| name | hex |` table with common values in the prose above it.
Reading them here keeps the expected bytes out of the test code.
"""

from __future__ import annotations

import re
from datetime import date
from functools import cache

from smolmix_cli.ipr.messages import OffsetDateTime
from tests.vectors import spec_text

SPEC = "nym-ipr-smolmix.md"
_HEX_TOKEN = re.compile(r"^[0-9A-Fa-f]{2}$")


@cache
def _section(start: str, end: str) -> str:
    text = spec_text(SPEC)
    return text[text.index(start) : text.index(end)]


def fixtures_text() -> str:
    return _section("### 8.1", "### 8.2")


def derived_text() -> str:
    return _section("### 8.2", "## 9.")


def table_rows(section: str) -> list[tuple[str, str]]:
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 2 and not set(cells[0]) <= {"-", " "}:
            rows.append((cells[0], cells[-1]))
    return rows


def leading_hex(cell: str) -> bytes:
    """The bytes written as space-separated hex pairs at the start of a cell (backticks stripped)."""
    out = bytearray()
    for token in cell.replace("`", " ").split():
        if not _HEX_TOKEN.match(token):
            break
        out.append(int(token, 16))
    return bytes(out)


def backticked_hex(cell: str) -> list[bytes]:
    """Every backtick span that is hex pairs, as bytes."""
    spans = re.findall(r"`([^`]*)`", cell)
    return [
        leading_hex(s) for s in spans if s.split() and all(_HEX_TOKEN.match(t) for t in s.split())
    ]


def derived(name_start: str) -> tuple[str, str]:
    """The §8.2 row whose name starts with `name_start`: (name, hex cell)."""
    matches = [row for row in table_rows(derived_text()) if row[0].startswith(name_start)]
    assert len(matches) == 1, f"{name_start!r} matches {len(matches)} rows"
    return matches[0]


def fixture(test_name: str) -> str:
    """The §8.1 row naming `test_name` (its last cell, the fixed data and expectation)."""
    matches = [row for row in table_rows(fixtures_text()) if f"`{test_name}`" in row[0]]
    if not matches:  # the name may sit in the middle column
        matches = [
            (line, line)
            for line in fixtures_text().splitlines()
            if f"`{test_name}`" in line and line.startswith("|")
        ]
    assert matches, f"no §8.1 row for {test_name}"
    return matches[0][1]


def common_stream_id() -> int:
    return int(re.search(r"stream_id = 0x([0-9a-fA-F]+)", derived_text()).group(1), 16)  # type: ignore[union-attr]


def common_request_id() -> int:
    return int(re.search(r"request_id = 0x([0-9a-fA-F]+)", derived_text()).group(1), 16)  # type: ignore[union-attr]


def parse_utc_timestamp(text: str) -> OffsetDateTime:
    """`YYYY-MM-DD hh:mm:ss[.fraction]` UTC, with the fraction to nanoseconds."""
    m = re.search(r"(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d+))?", text)
    assert m is not None, text
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    nanos = int((m.group(7) or "0").ljust(9, "0")[:9])
    ordinal = date(year, month, day).timetuple().tm_yday
    return OffsetDateTime(year, ordinal, hour, minute, second, nanos)


def common_timestamp() -> OffsetDateTime:
    return parse_utc_timestamp(re.split(r"The\s+timestamp\s+is", derived_text(), maxsplit=1)[1])
