"""`--processes`: a network whose nodes run in worker processes serves a fetch, takes chaos
on a worker's node as on its own, and leaves no process behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import pytest

from smolmix_cli import api
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions
from smolmix_cli.testnet.workers import place
from tests.api.conftest import private_env


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_processes_serve_a_fetch_and_stop_cleanly(tmp_path: Path) -> None:
    options = LocalNetworkOptions(tmp_path / "net", mean_delay_ms=0.0, processes=2)
    local = LocalNetwork(options)

    async def main() -> list[int]:
        async with anyio.create_task_group() as tg:
            network = await tg.start(local.serve)
            pids = [w.pid for w in local.placement.workers]
            assert len(pids) == 1 and _alive(pids[0])
            runs = {p["pid"]: p["runs"] for p in network.extra["processes"]}
            assert runs[pids[0]] == ["exit-2", "2", "202"]  # heaviest first, round-robin
            assert local.placement.worker_of(("exit", 2)) is not None
            assert local.placement.worker_of(("node", 201)) is None
            with anyio.fail_after(20):
                async with api.connect(network.file, session="off") as tunnel:
                    response = await tunnel.fetch("http://demo.smolmix.test/bytes/20000")
                    assert len(await response.read()) == 20000
                # counters come from the worker, the directory from here
                await local._answer("GET", "/smolmix/status", [])
                status = local.status()
                by_id = {n["node_id"]: n for n in status["nodes"]}
                assert by_id[202]["counters"]["forwarded"] > 0  # in the worker
                assert by_id[2]["ipr_counters"]["exit_replies sent"] > 0
                # chaos on a worker's node: killed, started on its port, re-keyed
                port = local.specs[202].mix_port
                await local.control.kill(202)
                with pytest.raises(OSError):
                    await anyio.connect_tcp("127.0.0.1", port)
                await local.control.start(202)
                await (await anyio.connect_tcp("127.0.0.1", port)).aclose()
                old_key = local.specs[202].sphinx.public_bytes
                await local.control.rotate()
                assert local.specs[202].sphinx_secondary.public_bytes == old_key  # type: ignore[union-attr]
                await local.control.stop(2)  # the exit gateway and its IPR, both in the worker
                await local.control.start(2)
                assert local.control.state(2).value == "running"
            tg.cancel_scope.cancel()
        return pids

    with private_env(tmp_path):
        pids = anyio.run(main)
    assert not any(_alive(pid) for pid in pids)
    assert json.loads((tmp_path / "net" / "nodes.json").read_text())["nodes"]


def test_placement(tmp_path: Path) -> None:
    units = [("exit", 2), ("node", 1), ("node", 2), ("node", 201)]
    assert set(place(units, 1).values()) == {0}
    assert list(place(units, 5).values()) == [1, 2, 3, 4]  # one process each
    with pytest.raises(ValueError, match="processes"):
        LocalNetworkOptions(tmp_path, processes=0)
