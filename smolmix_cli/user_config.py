"""The user's config file: `config.toml` in the XDG config dir, or `--config` / SMOLMIX_CONFIG.

It holds defaults for what the command line says: global options at the top,
one table per command (`[fetch]`, `[testnet.up]`), and named networks
(`[networks.NAME] file = ...`). Which keys a table may hold is the CLI's to say
(the options are click's: cli/config_defaults.py); this module reads the TOML,
knows on which line each key sits, and words every complaint as one
`FILE:LINE: KEY: what is wrong` line. No click here.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

APP = "smolmix"
CONFIG_ENV = "SMOLMIX_CONFIG"
FILE_NAME = "config.toml"
NETWORKS = "networks"
BUILT_IN_NETWORKS = ("mainnet", "testnet")

KeyPath = tuple[str, ...]


class ConfigFileError(Exception):
    """A config file that cannot be used, with the line and key at fault."""

    def __init__(self, path: Path, line: int | None, key: str | None, message: str) -> None:
        self.path, self.line, self.key, self.message = path, line, key, message
        where = str(path) if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")


def default_path() -> Path:
    """$XDG_CONFIG_HOME/smolmix/config.toml (platformdirs' equivalent elsewhere).

    Every command asks, so on Linux the XDG rule is applied here: platformdirs imports
    tempfile and shutil, which an attached command otherwise never needs.
    """
    system: str = sys.platform  # a variable: mypy would narrow the comparison to this host
    if system.startswith("linux"):
        base = os.environ.get("XDG_CONFIG_HOME", "").strip()
        root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
        return root / APP / FILE_NAME
    import platformdirs

    return platformdirs.user_config_path(APP) / FILE_NAME


@dataclass(frozen=True)
class UserConfig:
    """One config file as read: its tables, and the line of every key in them."""

    path: Path | None  # None: no file is read (--no-config)
    origin: str  # how the path was chosen: "--config", CONFIG_ENV, "default", "--no-config"
    data: dict[str, Any] = field(default_factory=dict)
    lines: dict[KeyPath, int] = field(default_factory=dict)
    exists: bool = False

    def line_of(self, keys: KeyPath) -> int | None:
        """The key's line, else its nearest table's (None: no file or not written in it)."""
        for end in range(len(keys), 0, -1):
            if keys[:end] in self.lines:
                return self.lines[keys[:end]]
        return None

    def where(self, keys: KeyPath) -> str:
        line = self.line_of(keys)
        return f"{self.path}:{line}" if line is not None else str(self.path)

    def error(self, keys: KeyPath, message: str) -> ConfigFileError:
        assert self.path is not None
        return ConfigFileError(self.path, self.line_of(keys), dotted(keys), message)

    def table(self, keys: KeyPath) -> dict[str, Any]:
        table: Any = self.data
        for key in keys:
            table = table.get(key, {}) if isinstance(table, dict) else {}
        return table if isinstance(table, dict) else {}

    def file_path(self, value: str, keys: KeyPath) -> Path:
        """A path written in the file: `~` expanded, relative to the file's directory."""
        if not isinstance(value, str) or not value:
            raise self.error(keys, "expected a file path (a non-empty string)")
        path = Path(value).expanduser()
        if not path.is_absolute() and self.path is not None:
            path = self.path.parent / path
        return path

    def networks(self) -> dict[str, Path]:
        """The named networks: `[networks.NAME] file = "..."`, usable as `--network NAME`."""
        tables = self.data.get(NETWORKS, {})
        if not isinstance(tables, dict):
            raise self.error((NETWORKS,), "expected tables: [networks.NAME] file = ...")
        out: dict[str, Path] = {}
        for name, table in tables.items():
            keys = (NETWORKS, name)
            if name in BUILT_IN_NETWORKS:
                raise self.error(keys, f"{name!r} is built in and cannot be redefined")
            if not isinstance(table, dict):
                raise self.error(keys, "expected a table with file = ...")
            unknown = sorted(set(table) - {"file"})
            if unknown:
                raise self.error((*keys, unknown[0]), "unknown key (a network has only file)")
            if "file" not in table:
                raise self.error(keys, "missing file = ...")
            out[name] = self.file_path(table["file"], (*keys, "file"))
        return out


def choose(path: str | None, origin: str) -> UserConfig:
    """Which file to read, not read yet: "" none, None the default, else that file."""
    if path == "":
        return UserConfig(None, origin)
    if path is None:
        return UserConfig(default_path(), "default")
    return UserConfig(Path(path).expanduser(), origin)


def load(choice: UserConfig) -> UserConfig:
    """Read the chosen file. A missing default file is an empty one; a missing named one,
    a file that is not TOML or not UTF-8 raise ConfigFileError."""
    path = choice.path
    if path is None:
        return choice
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if choice.origin == "default":
            return choice
        raise ConfigFileError(path, None, None, f"no such file (from {choice.origin})") from None
    except OSError as exc:
        raise ConfigFileError(path, None, None, f"cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigFileError(path, None, None, "not UTF-8 text") from None
    import tomllib  # only when there is a file

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message, line = _toml_error(str(exc))
        raise ConfigFileError(path, line, None, f"not valid TOML: {message}") from None
    return UserConfig(path, choice.origin, data, key_lines(text), exists=True)


def _toml_error(text: str) -> tuple[str, int | None]:
    found = re.search(r"\s*\(at line (\d+), column \d+\)$", text)
    if found is None:
        return text, None
    return text[: found.start()], int(found.group(1))


# patterns as strings: `re` compiles (and caches) them on the first file, not at import
_HEADER = r"\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$"
_NAME = r"""(?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)"""
_KEY = rf"\s*({_NAME}(?:\s*\.\s*{_NAME})*)\s*="
_PART = r"""\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*(?:\.|$)"""


def _parts(dotted_key: str) -> KeyPath:
    return tuple(m.group(1).strip("\"'") for m in re.finditer(_PART, dotted_key))


def key_lines(text: str) -> dict[KeyPath, int]:
    """Where each table and key of a TOML text starts (1-based lines; the first wins).

    A line scanner, not a parser: tomllib has read the text already and keeps no
    positions. Lines inside multi-line strings and arrays may be mistaken for keys;
    the first occurrence wins, so a real key above them keeps its line.
    """
    lines: dict[KeyPath, int] = {}
    table: KeyPath = ()
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(_HEADER, line)
        if header is not None:
            table = _parts(header.group(1))
            for end in range(1, len(table) + 1):
                lines.setdefault(table[:end], number)
            continue
        key = re.match(_KEY, line)
        if key is not None:
            lines.setdefault((*table, *_parts(key.group(1))), number)
    return lines


def dotted(keys: KeyPath) -> str:
    return ".".join(k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else f'"{k}"' for k in keys)
