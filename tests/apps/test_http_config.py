"""curl's -K file syntax to command-line words."""

from __future__ import annotations

import pytest

from smolmix_cli.apps.errors import UsageError
from smolmix_cli.apps.http_config import config_words
from smolmix_cli.cli.fetch import fetch
from smolmix_cli.cli.fetch_config import takes_value


def _option(name: str) -> bool | None:
    return takes_value(fetch, name)


def test_every_line_form_curl_accepts() -> None:
    text = (
        "# comment\n"
        "silent\n"
        "--show-error\n"
        "-o out.txt\n"
        'url = "http://h.test/a b"\n'
        "max-time: 5\n"
        'write-out = "%{http_code}\\n\\"q\\""\n'
        "header X-A:1\n"
    )
    assert config_words(text, "cfg", _option) == [
        "--silent",
        "--show-error",
        "-o",
        "out.txt",
        "--url",
        "http://h.test/a b",
        "--max-time",
        "5",
        "--write-out",
        '%{http_code}\n"q"',
        "--header",
        "X-A:1",
    ]


@pytest.mark.parametrize("text", ["nosuchoption\n", "output\n", 'url = "open\n'])
def test_bad_lines_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        config_words(text, "cfg", _option)
