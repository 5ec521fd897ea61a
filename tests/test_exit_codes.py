"""docs/exit-codes.md and `ExitCode` list the same codes; every failure maps to one line."""

from __future__ import annotations

import re
from pathlib import Path

from smolmix_cli.errors_map import classify
from smolmix_cli.exit_codes import CliError, ExitCode
from smolmix_cli.mixnet.nym_api import DirectoryUnavailable, FailureKind
from smolmix_cli.mixnet.topology import NoUsableRoute

DOC = Path(__file__).resolve().parent.parent / "docs" / "exit-codes.md"


def test_documented_table_matches_the_enum() -> None:
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*([A-Z_]+)\s*\|", DOC.read_text(), re.MULTILINE)
    assert {(int(code), name) for code, name in rows} == {(c.value, c.name) for c in ExitCode}


def test_directory_failures_map_by_kind() -> None:
    for kind in (FailureKind.RESOLVE, FailureKind.CONNECT, FailureKind.TLS, FailureKind.TIMEOUT):
        err = classify(DirectoryUnavailable(kind, "https://validator.nymtech.net/api/x"))
        assert err.code is ExitCode.NETWORK_UNREACHABLE
        assert "validator.nymtech.net" in str(err)
    for kind in (FailureKind.HTTP, FailureKind.MALFORMED):
        assert classify(DirectoryUnavailable(kind, "u")).code is ExitCode.DIRECTORY_INVALID
    assert classify(NoUsableRoute("layer 2 is empty")).code is ExitCode.DIRECTORY_INVALID
    assert classify(TimeoutError()).code is ExitCode.TIMEOUT


def test_unexpected_errors_are_internal_and_one_line() -> None:
    err = classify(KeyError("line one\nline two"))
    assert err.code is ExitCode.INTERNAL
    assert "\n" not in str(err)
    same = CliError("x", ExitCode.FAILURE)
    assert classify(same) is same
