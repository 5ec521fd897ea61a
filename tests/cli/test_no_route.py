"""A directory whose topology has no usable route: exit 110 and the same line, ping or tunnel."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from smolmix_cli.cli.main import cli
from smolmix_cli.exit_codes import ExitCode
from smolmix_cli.mixnet.topology.topology import NO_USABLE_ROUTE, RewardedSet, Topology


class EmptyDirectory:
    """nym-api answering with an empty rewarded set (no mix layer, no gateway)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    async def topology(self) -> Topology:
        return Topology(RewardedSet(epoch_id=1), {}, 0)


@pytest.mark.parametrize(
    "args",
    [
        ["ping", "-c", "1"],
        ["resolve", "a.test"],
        ["connect", "a.test", "80"],
        ["ws", "ws://a.test/"],
        ["fetch", "http://a.test/"],
    ],
    ids=lambda a: a[0],
)
def test_no_usable_route_is_110_for_every_command(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("smolmix_cli.bootstrap.NymApiClient", EmptyDirectory)  # ping and tunnel
    result = CliRunner().invoke(cli, ["--network", "mainnet", "--no-session", *args], input="")
    assert result.exit_code == ExitCode.DIRECTORY_INVALID == 110, result.stderr
    code = "(110) " if args[0] == "fetch" else ""
    assert result.stderr == f"smolmix: {code}no route through the mixnet: {NO_USABLE_ROUTE}\n"
