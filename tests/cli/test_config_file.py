"""The config file: flags > environment > file > defaults, for each kind of option, and
one `FILE:LINE: KEY: ...` line with exit 2 for a file that cannot be used."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from smolmix_cli.cli.config_defaults import ConfigError
from smolmix_cli.cli.env import CliEnv
from smolmix_cli.cli.fetch_config import with_configs
from smolmix_cli.cli.main import cli
from smolmix_cli.cli.options import ranked_params
from smolmix_cli.options import GlobalOptions, from_params, option_fields, session_args
from smolmix_cli.user_config import CONFIG_ENV, key_lines


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("SMOLMIX_NETWORK", "SMOLMIX_SESSION", "SMOLMIX_NO_SESSION", CONFIG_ENV):
        monkeypatch.delenv(name, raising=False)
    for _field, spec in option_fields():
        for spelling in spec.spellings:
            monkeypatch.delenv(spelling.variable, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def root(args: list[str]) -> click.Context:
    """The group's context after parsing (what every command reads its globals from)."""
    return cli.make_context("smolmix", [*args, "config"])  # a subcommand, not run


def globals_of(args: list[str]) -> GlobalOptions:
    ctx = root(args)
    return from_params(ranked_params(ctx, ctx.params))


def fetch_params(args: list[str], fetch_args: list[str]) -> dict[str, Any]:
    parent = root(args)
    fetch = cli.commands["fetch"]
    return fetch.make_context("fetch", list(fetch_args), parent=parent).params


# kind: (file line, env var and value, command-line words, field, file/env/cli values)
KINDS = {
    "flag": ("no-cover = true", ("SMOLMIX_NO_COVER", "0"), None, "cover", (False, None, None)),
    "choice": (
        'session = "start"',
        ("SMOLMIX_SESSION", "auto"),
        ["--no-session"],
        "session",
        ("start", "auto", "off"),
    ),
    "int": (
        "exit-race = 3",
        ("SMOLMIX_EXIT_RACE", "2"),
        ["--exit-race", "1"],
        "exit_race",
        (3, 2, 1),
    ),
    "path": (
        'network = "nets/a.json"',
        ("SMOLMIX_NETWORK", "/env/b.json"),
        ["--network", "/cli/c.json"],
        "network",
        ("{dir}/nets/a.json", "/env/b.json", "/cli/c.json"),
    ),
    "multiple": (
        'dns-server = ["9.9.9.9", "1.1.1.1"]',
        ("SMOLMIX_DNS_SERVER", "8.8.8.8 8.8.4.4"),
        ["--dns-server", "4.4.4.4"],
        "dns_servers",
        (("9.9.9.9", "1.1.1.1"), ("8.8.8.8", "8.8.4.4"), ("4.4.4.4",)),
    ),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_flags_beat_env_beat_file_beat_defaults(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    line, (var, env_value), words, field, (in_file, in_env, typed) = KINDS[kind]
    config = write(tmp_path / "conf" / "config.toml", line + "\n")
    in_file = in_file.format(dir=config.parent) if isinstance(in_file, str) else in_file
    default = getattr(GlobalOptions(), field)
    if field == "network":
        default = "mainnet"  # click's shown default, the same network as None
    assert getattr(globals_of([]), field) == default
    assert getattr(globals_of(["--config", str(config)]), field) == in_file
    monkeypatch.setenv(CONFIG_ENV, str(config))  # the variable names the file as well
    assert getattr(globals_of([]), field) == in_file
    monkeypatch.setenv(var, env_value)
    assert getattr(globals_of([]), field) == in_env
    if words is not None:  # a flag cannot be typed "off": its env var turns it off above
        assert getattr(globals_of(words), field) == typed
    assert getattr(globals_of(["--no-config"]), field) == in_env  # the file alone is gone


def test_a_typed_value_beats_the_files_other_spelling_of_the_same_option(
    tmp_path: Path,
) -> None:
    config = write(tmp_path / "c.toml", "no-session = true\n")
    assert globals_of(["--config", str(config)]).session == "off"
    assert globals_of(["--config", str(config), "--session", "start"]).session == "start"
    assert globals_of(["--session", "start", "--no-session"]).session == "off"  # as before


def test_command_tables_give_that_commands_defaults(tmp_path: Path) -> None:
    config = write(
        tmp_path / "c.toml",
        "[fetch]\nlocation = true\nmax-redirs = 5\nheader = ['A: 1']\ncacert = '~/ca.pem'\n",
    )
    args = ["--config", str(config)]
    params = fetch_params(args, [])
    assert params["location"] is True
    assert params["max_redirs"] == 5
    assert params["headers"] == ("A: 1",)
    assert params["cacert"] == str(Path("~/ca.pem").expanduser())
    rc = write(tmp_path / "curlrc", "max-redirs = 9\n")
    config.write_text(config.read_text() + "config = ['curlrc']\n")  # fetch's -K, as a path
    assert fetch_params(args, [])["configs"] == (str(rc),)
    typed = fetch_params(args, ["--max-redirs", "2", "-H", "B: 2"])
    assert typed["max_redirs"] == 2 and typed["headers"] == ("B: 2",)  # typed lists replace
    assert fetch_params([], [])["max_redirs"] == 50


def test_a_number_may_stand_for_a_string_option(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "[session.start]\nidle-timeout = 600\nsocks5 = 1080\n")
    parent = root(["--config", str(config)])
    session = cli.commands["session"]
    group_ctx = session.make_context("session", ["start"], parent=parent)
    assert isinstance(session, click.Group)
    start = session.commands["start"].make_context("start", [], parent=group_ctx)
    assert start.params["idle_timeout"] == "600" and start.params["socks5"] == "1080"


def test_a_k_file_replaces_the_config_files_values(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "[fetch]\nmax-redirs = 5\nheader = ['A: 1']\n")
    curlrc = write(tmp_path / "curlrc", 'max-redirs = 7\nheader = "B: 2"\n')
    parent = root(["--config", str(config)])
    fetch = cli.commands["fetch"]
    ctx = fetch.make_context("fetch", ["-K", str(curlrc), "-H", "C: 3"], parent=parent)
    env = CliEnv(stdin=io.BytesIO(), stdout=io.BytesIO(), stderr=io.StringIO())
    merged = with_configs(fetch, ctx, dict(ctx.params), env)
    assert merged["max_redirs"] == 7
    assert merged["headers"] == ("B: 2", "C: 3")  # curl's order; the config file's A is gone


def test_a_background_session_is_given_the_same_file(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "exit-race = 2\n")
    words = session_args(globals_of(["--config", str(config)]))
    assert words[words.index("--config") + 1] == str(config)
    assert words[words.index("--exit-race") + 1] == "2"
    assert "--no-config" in session_args(globals_of(["--config", str(config), "--no-config"]))
    assert globals_of(["--no-config"]).exit_race is None


def test_named_networks(tmp_path: Path) -> None:
    config = write(
        tmp_path / "c.toml",
        'network = "lab"\n[networks.lab]\nfile = "lab.json"\n[networks.far]\nfile = "/x.json"\n',
    )
    assert globals_of(["--config", str(config)]).network == str(tmp_path / "lab.json")
    assert globals_of(["--config", str(config), "--network", "far"]).network == "/x.json"
    assert globals_of(["--config", str(config), "--network", "testnet"]).network == "testnet"


def invoke(args: list[str], **env: str) -> Any:
    return CliRunner().invoke(cli, args, env=env)


BAD = [
    ("network = \n", 1, "not valid TOML"),
    ('exit-race = "3"\n', 1, "exit-race: expected an integer"),
    ("exit-race = 99\n", 1, "exit-race: 99 is not in the range 1<=x<=15"),
    ('\n\nsession = "always"\n', 3, "session: 'always' is not one of 'auto', 'start'"),
    ("no-cover = 1\n", 1, "no-cover: expected true or false"),
    ('dns-server = "9.9.9.9"\n', 1, "dns-server: expected a list"),
    ("colour = true\n", 1, "colour: not a global option, a command or [networks]"),
    ("[fetch]\nlocation = true\n\nlocaton = true\n", 4, "fetch.locaton: not an option of"),
    ("[fetch]\nmax-redirs = -2\n", 2, "fetch.max-redirs: -2 is not in the range x>=-1"),
    ("[testnet.up]\nmix-delay = 0\n", 2, "testnet.up.mix-delay: not an option of"),
    ("fetch = 1\n", 1, "fetch: expected a table [fetch]"),
    ("[networks.mainnet]\nfile = 'x'\n", 1, "networks.mainnet: 'mainnet' is built in"),
    ("[networks.lab]\npath = 'x'\n", 2, "networks.lab.path: unknown key"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD)
def test_a_bad_file_is_one_line_naming_file_line_and_key_and_exit_2(
    text: str, line: int, message: str, tmp_path: Path
) -> None:
    config = write(tmp_path / "config.toml", text)
    command = ["testnet", "up"] if "testnet" in text else ["fetch"]
    result = invoke(["--config", str(config), *command, "--help"])  # --help: nothing runs
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"smolmix: {config}:{line}: "), lines[0]
    assert message in lines[0]
    shown = invoke(["--config", str(config), "config", "show"])  # the same line, exit 2
    assert shown.exit_code == 2 and shown.stderr == result.stderr
    path = invoke(["--config", str(config), "config", "path"])  # still answers
    assert path.exit_code == 0 and path.stdout == f"{config}\n"


def test_a_missing_named_file_is_an_error_but_a_missing_default_one_is_not(
    tmp_path: Path,
) -> None:
    result = invoke(["--config", str(tmp_path / "nope.toml"), "config", "show"])
    assert result.exit_code == 2
    assert result.stderr == f"smolmix: {tmp_path / 'nope.toml'}: no such file (from --config)\n"
    shown = invoke(["config", "show"])
    assert shown.exit_code == 0
    assert f"# config file: {tmp_path}/xdg/smolmix/config.toml (default; no such file)" in (
        shown.stdout
    )


def test_a_table_is_checked_only_when_its_command_runs(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "[ws]\nnot-an-option = 1\n")
    assert invoke(["--config", str(config), "completion", "bash"]).exit_code == 0
    assert invoke(["--config", str(config), "ws", "--help"]).exit_code == 2


def test_config_path_follows_flag_env_and_xdg(tmp_path: Path) -> None:
    assert invoke(["config", "path"]).stdout == f"{tmp_path}/xdg/smolmix/config.toml\n"
    assert invoke(["config", "path"], SMOLMIX_CONFIG="/e.toml").stdout == "/e.toml\n"
    flagged = invoke(["--config", "/f.toml", "config", "path"], SMOLMIX_CONFIG="/e.toml")
    assert flagged.stdout == "/f.toml\n"
    assert invoke(["--no-config", "config", "path"]).exit_code == 1


def test_config_show_names_each_values_source(tmp_path: Path) -> None:
    config = write(
        tmp_path / "xdg" / "smolmix" / "config.toml",
        'network = "lab"\nexit-race = 3\nmtu = 1400\nno-session = true\n'
        "[networks.lab]\nfile = 'lab.json'\n[fetch]\nlocation = true\n",
    )
    result = invoke(
        ["--mtu", "1280", "--session", "start", "config", "show"], SMOLMIX_EXIT_RACE="2"
    )
    assert result.exit_code == 0, result.output
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert lines[0] == f"# config file: {config} (default)"
    lab = tmp_path / "xdg" / "smolmix" / "lab.json"
    assert f'network = "lab" # {config}:1; [networks.lab] file = {lab}' in lines
    assert "exit-race = 2 # SMOLMIX_EXIT_RACE" in lines
    assert "mtu = 1280 # command line" in lines
    assert 'session = "start" # command line' in lines
    assert f"# no-session = true (overridden) # {config}:4" in lines
    assert "boot-timeout = 90.0 # default" in lines
    assert "# ipr (not set) # default" in lines
    assert f"location = true # {config}:8" in lines
    assert lines.index("[fetch]") < lines.index(f"location = true # {config}:8")


def test_key_lines_finds_tables_and_dotted_keys() -> None:
    text = (
        '# c\na = 1\n[fetch]\n"max-redirs" = 2\nx.y = [\n  "z = 1",\n]\n[ testnet.up ] # t\nq=1\n'
    )
    lines = key_lines(text)
    assert lines[("a",)] == 2
    assert lines[("fetch",)] == 3
    assert lines[("fetch", "max-redirs")] == 4
    assert lines[("fetch", "x", "y")] == 5
    assert lines[("testnet", "up")] == 8 and lines[("testnet",)] == 8
    assert lines[("testnet", "up", "q")] == 9


def test_config_error_is_a_usage_exit() -> None:
    assert ConfigError("x").exit_code == 2


@pytest.mark.parametrize("xdg", [None, "/tmp/smolmix-xdg", "", "  "])
def test_the_default_path_is_platformdirs_without_importing_it(
    monkeypatch: pytest.MonkeyPatch, xdg: str | None
) -> None:
    """On Linux the XDG rule is applied by hand (platformdirs costs the attach path tempfile
    and shutil); it must name the file platformdirs would."""
    import platformdirs

    from smolmix_cli.user_config import default_path

    if xdg is None:
        monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CONFIG_HOME", xdg)
    assert default_path() == platformdirs.user_config_path("smolmix") / "config.toml"
