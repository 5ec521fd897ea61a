"""The global option table: each entry is a dataclass field, click options and re-exec words."""

from __future__ import annotations

import dataclasses
from dataclasses import Field
from typing import Any

import click
import pytest

from smolmix_cli.cli.main import cli
from smolmix_cli.cli.options import global_option_decorators
from smolmix_cli.options import (
    GlobalOptions,
    Spelling,
    from_params,
    option_fields,
    session_args,
    to_args,
    tunnel_args,
    tunnel_changes,
)
from smolmix_cli.tunnel.options import TunnelOptions


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for _field, spec in option_fields():
        for spelling in spec.spellings:
            monkeypatch.delenv(spelling.variable, raising=False)


@click.command()
@global_option_decorators
def probe(**params: Any) -> None:
    """Parses the global options alone."""


def parse(args: list[str]) -> GlobalOptions:
    return from_params(probe.make_context("probe", list(args)).params)


def example(field: Field[Any], spelling: Spelling) -> Any:
    """A value other than the default that this spelling can write."""
    if spelling.is_flag:
        return spelling.sets
    if spelling.multiple:
        return ("9.9.9.9", "[2620:fe::fe]:5353")
    if spelling.choices:
        return next(c for c in spelling.choices if c != field.default)
    if spelling.number is int:
        return int(spelling.high if spelling.high is not None else (spelling.low or 0) + 7)
    if spelling.number is float:
        return (spelling.low or 0.0) + 0.25
    return f"{field.name}-value"


CASES = [
    pytest.param(field, spelling, id=spelling.name)
    for field, spec in option_fields()
    for spelling in spec.spellings
]


def test_the_table_is_the_dataclass_and_the_groups_options() -> None:
    table = option_fields()
    assert [f.name for f, _ in table] == [f.name for f in dataclasses.fields(GlobalOptions)]
    spellings = [s for _, spec in table for s in spec.spellings]
    group = [p for p in cli.params if isinstance(p, click.Option) and p.expose_value]
    assert [p.opts for p in group] == [[s.name] for s in spellings]  # besides --config, -h, -V


@pytest.mark.parametrize(("field", "spelling"), CASES)
def test_every_spelling_is_a_click_option_of_the_group(
    field: Field[Any], spelling: Spelling
) -> None:
    [option] = [p for p in cli.params if isinstance(p, click.Option) and spelling.name in p.opts]
    assert option.name == spelling.param(field.name)
    assert option.help == spelling.help
    assert option.is_flag == spelling.is_flag and option.multiple == spelling.multiple
    assert option.envvar == spelling.variable


@pytest.mark.parametrize(("field", "spelling"), CASES)
def test_every_spelling_round_trips_through_the_re_exec_words(
    field: Field[Any], spelling: Spelling
) -> None:
    options = dataclasses.replace(
        GlobalOptions(network="testnet"), **{field.name: example(field, spelling)}
    )
    assert parse(to_args(options)) == options
    assert spelling.name in to_args(options)


def test_all_options_at_once_round_trip_and_defaults_say_nothing() -> None:
    values = {f.name: example(f, spec.spellings[0]) for f, spec in option_fields()}
    options = GlobalOptions(**values)
    assert parse(to_args(options)) == options
    assert to_args(GlobalOptions()) == []
    assert parse([]) == GlobalOptions(network="mainnet")  # click's shown default


def test_a_session_process_gets_the_same_tunnel_and_boots_it_itself() -> None:
    values = {f.name: example(f, spec.spellings[0]) for f, spec in option_fields()}
    options = GlobalOptions(**values)
    assert parse(session_args(options)) == dataclasses.replace(options, session="off")
    assert parse(tunnel_args(options)) == dataclasses.replace(
        GlobalOptions(network="mainnet"),
        **{f.name: getattr(options, f.name) for f, spec in option_fields() if spec.shapes_tunnel},
    )


def test_tunnel_changes_name_tunnel_options_fields() -> None:
    tunnel_fields = {f.name for f in dataclasses.fields(TunnelOptions)}
    for field, spec in option_fields():
        assert spec.tunnel is None or spec.tunnel in tunnel_fields, field.name
    values = {f.name: example(f, spec.spellings[0]) for f, spec in option_fields() if spec.tunnel}
    changes = tunnel_changes(GlobalOptions(**values))
    assert changes == {spec.tunnel: values[f.name] for f, spec in option_fields() if spec.tunnel}
    TunnelOptions().replace(**changes)  # every value is one the tunnel accepts
    assert tunnel_changes(GlobalOptions()) == {}
