"""How hard a property test pushes: its own scale by default, the fuzz profile's when fuzzing.

The hypothesis profiles live in tests/conftest.py. An explicit `settings(max_examples=...)` wins
over any profile, so a test that wants its own default count takes it from `scaled()`, which
hands back the fuzz profile's count (or the test's own fuzz figure) under
`--hypothesis-profile=fuzz`; one test then serves both runs.
"""

from __future__ import annotations

from hypothesis import settings

FUZZ = "fuzz"


def fuzzing() -> bool:
    # By count, not profile name: hypothesis derives profiles such as
    # "fuzz-with-verbose-verbosity" from the loaded one.
    return settings().max_examples >= settings.get_profile(FUZZ).max_examples


def scaled(normal: int, fuzz: int | None = None) -> int:
    """`normal` in the default run; `fuzz`, or the fuzz profile's example count, when fuzzing."""
    if not fuzzing():
        return normal
    return settings.get_profile(FUZZ).max_examples if fuzz is None else fuzz
