"""The layer contract: every import in smolmix_cli follows docs/architecture.md's tables.

The tables are read from the document (each follows a `<!-- layers: PREFIX -->`
marker), so the picture a newcomer reads is the one CI enforces. Every import
counts: top-level, inside functions, under TYPE_CHECKING, relative or absolute.
There is no allow-list of exceptions.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "smolmix_cli"
DOC = REPO / "docs" / "architecture.md"
MARKER = re.compile(r"<!-- layers: ([\w.]+) -->")


def layer_tables(text: str) -> dict[str, dict[str, set[str]]]:
    """{prefix: {unit: units it may import}} from every marked table in the document."""
    tables: dict[str, dict[str, set[str]]] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        found = MARKER.fullmatch(line.strip())
        if found is None:
            continue
        rows: dict[str, set[str]] = {}
        for row in lines[i + 1 :]:
            if not row.startswith("|"):
                if rows:
                    break
                continue
            cells = [c.strip() for c in row.strip().strip("|").split("|")]
            if cells[0] in ("unit", "") or set(cells[0]) <= {"-"}:
                continue
            rows[cells[0].strip("`")] = {
                u.strip().strip("`") for u in cells[1].split(",") if u.strip()
            }
        tables[found.group(1)] = rows
    return tables


def module_name(path: Path, repo: Path = REPO) -> str:
    parts = path.relative_to(repo).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(dotted: str, repo: Path) -> bool:
    base = repo.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imported_modules(path: Path, repo: Path = REPO) -> set[str]:
    """Every smolmix_cli module `path` imports, relative imports resolved."""
    tree = ast.parse(path.read_text())
    here = module_name(path, repo)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            for alias in node.names:  # `from pkg import submodule`
                if _exists(f"{module}.{alias.name}", repo):
                    found.add(f"{module}.{alias.name}")
    return {m for m in found if m == "smolmix_cli" or m.startswith("smolmix_cli.")}


def unit_of(module: str, prefix: str) -> str | None:
    """The unit of `prefix`'s table that `module` belongs to (None: outside `prefix`)."""
    if module == prefix:
        return prefix
    if not module.startswith(prefix + "."):
        return None
    return module[len(prefix) + 1 :].split(".")[0]


def violations(prefix: str, table: dict[str, set[str]], repo: Path = REPO) -> list[str]:
    root = repo.joinpath(*prefix.split("."))
    problems: list[str] = []
    seen_units: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        source = unit_of(module_name(path, repo), prefix)
        assert source is not None
        seen_units.add(source)
        if source not in table:
            problems.append(f"{path.relative_to(repo)}: unit {source!r} is not in the table")
            continue
        for target in sorted(imported_modules(path, repo)):
            unit = unit_of(target, prefix)
            if unit is None or unit == source:
                continue
            if unit not in table[source]:
                problems.append(f"{path.relative_to(repo)}: {source} -> {target} ({unit})")
    for stale in sorted(set(table) - seen_units):
        problems.append(f"the table for {prefix} lists {stale!r}, which does not exist")
    return problems


TABLES = layer_tables(DOC.read_text())


def test_the_document_has_the_tables() -> None:
    assert {"smolmix_cli", "smolmix_cli.mixnet", "smolmix_cli.netstack"} <= set(TABLES)


@pytest.mark.parametrize("prefix", sorted(TABLES))
def test_imports_follow_the_layer_table(prefix: str) -> None:
    assert violations(prefix, TABLES[prefix]) == []


@pytest.mark.parametrize("prefix", sorted(TABLES))
def test_the_table_has_no_cycle(prefix: str) -> None:
    table = TABLES[prefix]
    order: list[str] = []
    marks: dict[str, str] = {}

    def visit(unit: str, trail: tuple[str, ...]) -> None:
        if marks.get(unit) == "done":
            return
        assert marks.get(unit) != "open", f"cycle: {' -> '.join((*trail, unit))}"
        marks[unit] = "open"
        for below in sorted(table.get(unit, set()) & set(table)):
            visit(below, (*trail, unit))
        marks[unit] = "done"
        order.append(unit)

    for unit in sorted(table):
        visit(unit, ())
    assert len(order) == len(table)


def test_the_checker_catches_every_kind_of_forbidden_import(tmp_path: Path) -> None:
    pkg = tmp_path / "smolmix_cli"
    for name in ("low", "high"):
        (pkg / name).mkdir(parents=True)
        (pkg / name / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "high" / "ok.py").write_text("from smolmix_cli.low import x\n")
    (pkg / "low" / "lazy.py").write_text("def f():\n    import smolmix_cli.high.ok\n")
    (pkg / "low" / "relative.py").write_text("from ..high import ok\n")
    (pkg / "low" / "typing_only.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from smolmix_cli.high.ok import y\n"
    )
    (pkg / "stray.py").write_text("")
    table = {"smolmix_cli": set(), "low": set(), "high": {"low"}, "gone": set()}
    assert violations("smolmix_cli", table, tmp_path) == [
        "smolmix_cli/low/lazy.py: low -> smolmix_cli.high.ok (high)",
        "smolmix_cli/low/relative.py: low -> smolmix_cli.high (high)",
        "smolmix_cli/low/relative.py: low -> smolmix_cli.high.ok (high)",
        "smolmix_cli/low/typing_only.py: low -> smolmix_cli.high.ok (high)",
        "smolmix_cli/stray.py: unit 'stray' is not in the table",
        "the table for smolmix_cli lists 'gone', which does not exist",
    ]
