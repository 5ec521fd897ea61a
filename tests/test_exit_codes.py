"""docs/exit-codes.md, `ExitCode` and the classification agree; every failure maps to one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from smolmix_cli.apps.errors import ResolveError
from smolmix_cli.errors_map import Rule, classify, entry_for, table
from smolmix_cli.exit_codes import CliError, ExitCode
from smolmix_cli.mixnet.directory.api_urls import DirectoryUnavailable, FailureKind
from tests.error_samples import SAMPLES, Sample

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "exit-codes.md"


def _documented() -> set[tuple[int, str]]:
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*([A-Z_]+)\s*\|", DOC.read_text(), re.MULTILINE)
    return {(int(code), name) for code, name in rows}


def test_documented_table_matches_the_enum() -> None:
    assert _documented() == {(c.value, c.name) for c in ExitCode}


def test_every_documented_failure_code_comes_from_the_classification() -> None:
    """Each code but 0 is what some entry of the one table gives (70: what none does)."""
    produced = {entry.code for entry in table().values() if isinstance(entry, Rule)}
    produced |= {s.code for s in SAMPLES if not isinstance(_entry(s), Rule)}
    produced.add(ExitCode.INTERNAL)
    assert produced == set(ExitCode) - {ExitCode.OK}
    assert {int(c) for c in produced} <= {code for code, _ in _documented()}


def test_every_entry_has_a_sample() -> None:
    matched = {found[0] for s in SAMPLES if (found := entry_for(type(s.make()))) is not None}
    assert matched == set(table())


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.id)
def test_each_failure_classifies_to_its_code_and_line(sample: Sample) -> None:
    error = classify(sample.make())
    assert (error.code, str(error)) == (sample.code, sample.line)
    assert "\n" not in str(error)


def test_most_specific_class_wins() -> None:
    class Refined(ResolveError, TimeoutError):
        pass

    assert classify(Refined("x")).code is ExitCode.RESOLVE_FAILED  # first in its MRO
    for kind in (FailureKind.RESOLVE, FailureKind.CONNECT, FailureKind.TLS, FailureKind.TIMEOUT):
        err = classify(DirectoryUnavailable(kind, "https://validator.nymtech.net/api/x"))
        assert err.code is ExitCode.NETWORK_UNREACHABLE
        assert "validator.nymtech.net" in str(err)
    for kind in (FailureKind.HTTP, FailureKind.MALFORMED):
        assert classify(DirectoryUnavailable(kind, "u")).code is ExitCode.DIRECTORY_INVALID


def test_groups_classify_as_their_first_failure_and_cli_errors_pass_through() -> None:
    group = ExceptionGroup("tg", [ExceptionGroup("inner", [ResolveError("no a.test")])])
    assert classify(group).code is ExitCode.RESOLVE_FAILED
    same = CliError("x", ExitCode.FAILURE)
    assert classify(same) is same
    assert CliError("x", 999).code is ExitCode.INTERNAL


def test_no_error_is_matched_by_its_class_name() -> None:
    """Types decide, never names: no `__name__` compared or looked up anywhere."""
    offenders = []
    for path in sorted((ROOT / "smolmix_cli").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if "__name__" not in code or '"__main__"' in code:
                continue
            if any(re.search(pattern, code) for pattern in NAME_MATCHING):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
    for path in (ROOT / "smolmix_cli").rglob("*.py"):
        assert "_BY_NAME" not in path.read_text(), path


NAME_MATCHING = (
    r"__name__\s*(==|!=|\bin\b|\bnot in\b)",  # cls.__name__ == "X", ... in {...}
    r"(==|!=|\bin\b)\s*[\w.()]*__name__",  # "X" == type(exc).__name__
    r"(\[|\.get\()\s*[\w.()]*__name__",  # table[cls.__name__], table.get(...)
    r"\{[^}]*__name__[^}]*\bfor\b",  # {cls.__name__ for cls in ...}
)


def _entry(sample: Sample) -> object:
    found = entry_for(type(sample.make()))
    return None if found is None else found[1]
