"""The README's Python API examples, run as written against a local network.

Each ```python block of the "Python API" section runs in a fresh namespace with
SMOLMIX_NETWORK naming the module's local network (the README says to set it).
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from tests.api.conftest import LocalNet

README = Path(__file__).resolve().parents[2] / "README.md"


def api_examples() -> list[str]:
    text = README.read_text()
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_readme_has_examples_for_each_part() -> None:
    code = "\n".join(api_examples())
    for name in ("connect(", "connect_sync(", ".fetch(", ".websocket(", ".resolve(", ".open_tcp("):
        assert name in code, name
    assert "AsyncTransport" in code and "SyncTransport" in code


@pytest.mark.parametrize("index", range(len(api_examples())))
def test_readme_example_runs(index: int, net: LocalNet, monkeypatch: pytest.MonkeyPatch) -> None:
    code = api_examples()[index]
    if "import httpx" in code:
        pytest.importorskip("httpx")
    monkeypatch.setenv("SMOLMIX_NETWORK", str(net.file))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"README.md example {index + 1}", "exec"), {})
    assert out.getvalue().strip(), "the example printed nothing"
