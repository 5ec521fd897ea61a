"""The click-free reading of a fetch command line (cli/fast_argv.py) against click's.

Whatever `parse` takes, click must take too and hand the group and fetch the same values,
types included (a Path is not a str, 50 is not 50.0): every curl compat case, tricky
spellings, and generated command lines. What `parse` refuses, click reads as always.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import smolmix_cli.cli.fetch as fetch_module
from smolmix_cli.cli.fast_argv import FastFetch, parse
from smolmix_cli.cli.fetch_options import OPTIONS
from smolmix_cli.cli.main import cli
from smolmix_cli.options import option_fields
from tests.compat.curl_cases import CASES
from tests.fuzzing import scaled

URLS = {"{http}": "http://demo.smolmix.test", "{https}": "https://demo.smolmix.test"}
URLS["{nginx}"] = "http://127.0.0.1:8080"


class _Captured(Exception):
    def __init__(self, reading: tuple[Any, ...]) -> None:
        self.reading = reading


def _typed(value: Any) -> Any:
    if isinstance(value, tuple):
        return ("tuple", tuple(_typed(v) for v in value))
    return (type(value).__name__, repr(value))  # by repr: nan is nan


def _reading(globals_: Any, urls: tuple[str, ...], kw: dict[str, Any]) -> tuple[Any, ...]:
    return repr(globals_), _typed(urls), {name: _typed(value) for name, value in kw.items()}


def _only_the_command_line(monkeypatch: pytest.MonkeyPatch, config_home: str) -> None:
    """No SMOLMIX_ variable, no config file, and click's fetch captured, not run."""
    for name in list(os.environ):
        if name.startswith("SMOLMIX_") or name == "_SMOLMIX_COMPLETE":
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", config_home)

    def capture(env: Any, urls: Any, kw: Any, globals_: Any, merge: Any) -> None:
        raise _Captured(_reading(globals_, urls, kw))

    monkeypatch.setattr(fetch_module, "run_fetch_command", capture)


@pytest.fixture
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The command line alone, in a working directory of its own."""
    _only_the_command_line(monkeypatch, str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def by_click(argv: list[str]) -> tuple[Any, ...] | None:
    """What click hands fetch for `argv` (None: it refused it, or did not fetch)."""
    try:
        cli.main(args=list(argv), prog_name="smolmix", standalone_mode=False)
    except _Captured as captured:
        return captured.reading
    except (click.ClickException, click.exceptions.Exit, click.Abort):
        return None
    return None


def by_fast(argv: list[str]) -> tuple[Any, ...] | None:
    plan = parse(list(argv), os.environ)
    return None if plan is None else _reading(plan.globals_, plan.urls, plan.kw)


def same(argv: list[str]) -> tuple[Any, ...] | None:
    """`parse`'s reading, after checking that click reads `argv` the same way."""
    fast = by_fast(argv)
    if fast is not None:
        assert by_click(argv) == fast, argv
    return fast


def words(args: str) -> list[str]:
    for mark, url in URLS.items():
        args = args.replace(mark, url)
    return shlex.split(args)


def test_every_curl_case_reads_alike(clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    taken = 0
    for case in CASES:
        argv = ["--network", "testnet", "fetch", *words(case.args)]
        for name, data in case.files.items():
            (clean / name).write_bytes(data)
        fast = same(argv)
        if "-K" in argv or "--config" in argv[3:]:
            assert fast is None, argv
        elif by_click(argv) is not None:
            assert fast is not None, argv  # click takes it, so this path takes it too
            taken += 1
    assert taken >= 100


TRICKY = [
    ["fetch", "-sSo", "out", "http://a/"],
    ["fetch", "-oout", "-w%{http_code}=x", "http://a/"],
    ["fetch", "--output=o1", "--output", "o2", "http://a/", "http://b/"],
    ["fetch", "http://a/", "-sS", "-C", "-", "-H", "-x: y", "-d", "--"],
    ["fetch", "-o-", "-D-", "--", "-notanoption", "-"],
    ["fetch", "-", "-sS", "-"],  # a lone dash is a word, not an option
    ["fetch", "--max-redirs=-1", "--retry", "3", "--retry", "4", "-m", "1e3", "http://a/"],
    ["fetch", "-m", "nan", "--connect-timeout", " 2 ", "--parallel-max", "1_0", "http://a/"],
    ["fetch", "-X", "fetch", "-A", "", "-u", "a:b", "-r0-1", "-e=x", "http://a/"],
    ["fetch", "-o", "", "--cacert", "", "-c", "missing/jar", "http://a/"],
    ["--network", "fetch", "fetch", "http://a/"],
    ["--network=testnet", "--mtu", "1400", "--no-cover", "--dns-server", "9.9.9.9", "fetch"],
    ["--session", "start", "--no-session", "--mix-delay-ms", "0", "fetch", "-Z", "a", "b"],
    ["--boot-timeout", "5", "--exit-race", "3", "--fresh-connections", "fetch", "--http1.1"],
]


@pytest.mark.parametrize("argv", TRICKY, ids=[" ".join(a) for a in TRICKY])
def test_tricky_spellings_read_alike(clean: Path, argv: list[str]) -> None:
    assert same(argv) is not None


def test_an_empty_config_file_named_by_the_environment_is_read_alike(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMOLMIX_CONFIG", os.devnull)  # as tests/conftest.py sets it
    reading = same(["fetch", "-sS", "http://a/"])
    assert reading is not None and f"config={os.devnull!r}" in reading[0]


REFUSED = [
    ["fetch", "-h"],
    ["fetch", "--help"],
    ["-V"],
    ["--version", "fetch"],
    ["fetch", "-sSh"],
    ["fetch", "-K", "opts.txt", "http://a/"],
    ["--config", "c.toml", "fetch", "http://a/"],
    ["--no-config", "fetch", "http://a/"],
    ["fetch", "--bogus", "http://a/"],
    ["fetch", "-sSq", "http://a/"],
    ["fetch", "--max-redirs", "x", "http://a/"],
    ["fetch", "--max-redirs", "-2", "http://a/"],
    ["fetch", "--parallel-max", "301", "http://a/"],
    ["fetch", "-m", "0", "http://a/"],
    ["fetch", "-o"],
    ["fetch", "--silent=yes", "http://a/"],
    ["fetch", "-D", ".", "http://a/"],  # a directory where a file is wanted
    ["fetch", "--cacert", "a\0b", "http://a/"],
    ["--session", "maybe", "fetch", "http://a/"],
    ["--mtu", "x", "fetch", "http://a/"],
    ["--network"],
    ["-s", "fetch", "http://a/"],
    ["--", "fetch", "http://a/"],
    ["ws", "ws://a/", "fetch"],
    ["fetch2", "fetch"],
]


@pytest.mark.parametrize("argv", REFUSED, ids=[" ".join(a) for a in REFUSED])
def test_what_click_must_read(clean: Path, argv: list[str]) -> None:
    assert by_fast(argv) is None


ENVIRONMENTS = [
    {"SMOLMIX_NETWORK": "testnet"},
    {"SMOLMIX_NETWORK": "", "SMOLMIX_CONFIG": ""},  # empty: unset, as click reads them
    {"SMOLMIX_MTU": "1400", "SMOLMIX_BOOT_TIMEOUT": "5", "SMOLMIX_EXIT_RACE": "3"},
    {"SMOLMIX_SESSION": "start", "SMOLMIX_MIX_DELAY_MS": "0"},
    {"SMOLMIX_IPR": "some.exit@gw", "SMOLMIX_GATEWAY": "gw", "SMOLMIX_CONFIG": os.devnull},
]
TYPED_OVER = ["--network", "mainnet", "--mtu", "1300", "--no-session", "fetch", "-sS", "u"]


@pytest.mark.parametrize("variables", ENVIRONMENTS, ids=[" ".join(e) for e in ENVIRONMENTS])
def test_the_global_options_variables_are_read_alike(
    clean: Path, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert same(["fetch", "-sS", "http://a/"]) is not None
    assert same(TYPED_OVER) is not None  # typed beats the variable, a flag its value spelling


def test_the_environment_and_config_files_are_clicks(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["fetch", "-sS", "http://a/"]
    assert by_fast(argv) is not None
    for name, value in [
        ("SMOLMIX_NO_SESSION", "1"),  # a flag's variable: click's own reading of "1"
        ("SMOLMIX_FRESH_CONNECTIONS", "yes"),
        ("SMOLMIX_DNS_SERVER", "9.9.9.9 1.1.1.1"),  # repeatable: click splits it
        ("SMOLMIX_MTU", "x"),  # click refuses it
        ("SMOLMIX_SESSION", "maybe"),
        ("_SMOLMIX_COMPLETE", "bash_source"),
        ("SMOLMIX_CONFIG", str(clean / "missing.toml")),
    ]:
        with monkeypatch.context() as env:
            env.setenv(name, value)
            assert by_fast(argv) is None, name
    (clean / "full.toml").write_text("[fetch]\nsilent = true\n")
    monkeypatch.setenv("SMOLMIX_CONFIG", str(clean / "full.toml"))
    assert by_fast(argv) is None
    monkeypatch.delenv("SMOLMIX_CONFIG")
    default = clean / "config" / "smolmix" / "config.toml"
    default.parent.mkdir(parents=True)
    default.write_text("")
    assert by_fast(argv) is None  # the default file exists: click reads it


VALUES = ["x", "out", "http://a/", "5", "1.5", "-", "--", "", "=x", "a=b", ".", "%{x}=y"]
VALUES += ["-1", "-2", "0", "1", "300", "301", "0.001", "0.0005", "nan", "1_0", " 7"]
VALUES += ["fetch", "testnet", "start", "-h", "-sS"]


def _said(name: str, flag: bool, choices: tuple[str, ...] = ()) -> st.SearchStrategy[list[str]]:
    """One option as a user may write it: alone, with the next word, or with a value joined
    (`--opt=v`, `-oV`), the value a good one or a hard one."""
    if flag:
        return st.just([name])
    value = st.sampled_from([*choices, *VALUES])
    joined = "=" if name.startswith("--") else ""
    return st.one_of(value.map(lambda v: [name, v]), value.map(lambda v: [f"{name}{joined}{v}"]))


GLOBALS = [
    (s.name, s.is_flag, s.choices)
    for _, spec in option_fields()
    for s in spec.spellings
    if s.name not in ("--config", "--no-config")
]
GLOBAL_WORDS = st.sampled_from(GLOBALS).flatmap(lambda g: _said(*g))
FETCH_OPTS = [(o, spec.flag) for spec in OPTIONS for o in spec.opts if o not in ("-K", "--config")]
FLAGS = "".join(o[1] for spec in OPTIONS for o in spec.opts if spec.flag and len(o) == 2)
SHORT = "".join(o[1] for spec in OPTIONS for o in spec.opts if len(o) == 2)
FETCH_WORDS = st.one_of(
    st.sampled_from(FETCH_OPTS).flatmap(lambda o: _said(*o)),
    st.sampled_from(VALUES).map(lambda v: [v]),  # a URL, or a stray word
    st.text(FLAGS, min_size=2, max_size=4).map(lambda c: [f"-{c}"]),  # flags clustered
    st.tuples(st.text(FLAGS, max_size=2), st.sampled_from(SHORT), st.sampled_from(VALUES)).map(
        lambda t: [f"-{t[0]}{t[1]}{t[2]}"]  # a cluster ending in any option, maybe a value
    ),
    st.sampled_from(["-h", "--bogus", "-K", "--silent=1", "-sSq"]).map(lambda w: [w]),
)


def _joined(parts: list[list[str]]) -> list[str]:
    return [word for part in parts for word in part]


VARIABLES = sorted({s.variable for _, spec in option_fields() for s in spec.spellings})
VARIABLE_VALUES = ["", "testnet", "1400", "5", "0", "x", "start", "auto", "1", "9.9.9.9"]


@settings(max_examples=scaled(300), deadline=None)
@given(
    before=st.lists(GLOBAL_WORDS, max_size=3).map(_joined),
    after=st.lists(FETCH_WORDS, max_size=7).map(_joined),
    variables=st.dictionaries(
        st.sampled_from(VARIABLES), st.sampled_from(VARIABLE_VALUES), max_size=2
    ),
)
def test_generated_command_lines_read_alike(
    before: list[str], after: list[str], variables: dict[str, str]
) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:  # per example, not per test call
        _only_the_command_line(monkeypatch, "/nonexistent-smolmix-config")
        for name, value in variables.items():
            if name != "SMOLMIX_CONFIG":  # a file name: the tests above
                monkeypatch.setenv(name, value)
        event("taken" if same([*before, "fetch", *after]) is not None else "left to click")


def test_a_plan_is_what_the_fetch_command_gets(clean: Path) -> None:
    plan = parse(["--network", "testnet", "fetch", "-sSo", "out", "http://a/"], os.environ)
    assert isinstance(plan, FastFetch)
    assert plan.globals_.network == "testnet" and plan.urls == ("http://a/",)
    assert plan.kw["outputs"] == (Path("out"),) and plan.kw["silent"] is True
