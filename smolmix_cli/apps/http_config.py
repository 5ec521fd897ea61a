"""curl's -K / --config file syntax turned into command-line words.

One option per line: `--long value`, `long = value`, `long: value`, `long value`
or a short `-o value`; a value in double quotes takes `\\"`, `\\\\`, `\\n`, `\\t`,
`\\r`; `#` starts a comment line; `url = X` adds a URL. Which options take a
value is asked of the caller (the CLI's own option table), so this stays pure.
"""

from __future__ import annotations

from collections.abc import Callable

from smolmix_cli.apps.errors import UsageError

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "v": "\v", "\\": "\\", '"': '"'}


def _unquote(text: str, where: str) -> str:
    if not text.startswith('"'):
        return text.split()[0] if text.split() else ""
    out = []
    i = 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(_ESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
            continue
        if c == '"':
            return "".join(out)
        out.append(c)
        i += 1
    raise UsageError(f"{where}: unclosed quote")


def config_words(text: str, source: str, takes_value: Callable[[str], bool | None]) -> list[str]:
    """The words the file stands for, as if typed; URLs are returned as `--url X` pairs."""
    words: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}:{number}"
        name, rest = line, ""
        for i, c in enumerate(line):
            if c in " \t=:":
                name, rest = line[:i], line[i:].lstrip(" \t")
                if rest[:1] in ("=", ":"):
                    rest = rest[1:].lstrip(" \t")
                break
        option = name if name.startswith("-") else "--" + name
        if option == "--url":
            words += ["--url", _unquote(rest, where)]
            continue
        wants = takes_value(option)
        if wants is None:
            raise UsageError(f"{where}: unknown option {name!r}")
        words.append(option)
        if wants:
            if not rest:
                raise UsageError(f"{where}: {name} needs a value")
            words.append(_unquote(rest, where))
    return words
