"""The in-repo copy of the shared vectors and spec must equal the originals."""

from __future__ import annotations

import pytest

from tests.vectors import IN_REPO_COPY, original_shared_dir


def test_in_repo_copy_matches_original() -> None:
    original = original_shared_dir()
    if original is None:
        pytest.skip("no ../shared beside this checkout: the in-repo copy is what tests use")
    for sub in ("vectors", "spec"):
        for src in sorted((original / sub).rglob("*")):
            if src.is_file():
                rel = src.relative_to(original)
                copy = IN_REPO_COPY / rel
                assert copy.is_file(), f"{rel} missing from tests/data/shared"
                assert copy.read_bytes() == src.read_bytes(), f"{rel} differs from ../shared"


def test_in_repo_copy_has_the_vectors() -> None:
    assert (IN_REPO_COPY / "vectors" / "official-client" / "sphinx-packets.json").is_file()
    assert (IN_REPO_COPY / "spec" / "nym-mixnet.md").is_file()
