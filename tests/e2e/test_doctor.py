"""`smolmix doctor` as a user runs it, against a local network of three exits in this process:
the report's rows, its JSON, dead exits, and the exit codes of each failing phase."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.base58 import b58encode
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions, exit_ids
from tests.e2e.cli_net import smolmix

EXITS = 3


@dataclass
class Lab:
    local: LocalNetwork
    portal: anyio.from_thread.BlockingPortal

    @property
    def network_file(self) -> Path:
        return self.local.network_file

    def set_ipr(self, node_id: int, address: str) -> None:
        state = self.local.directory_state
        assert state is not None
        self.portal.call(functools.partial(state.update_node, node_id, ipr_address=address))

    def real_ipr(self, node_id: int) -> str:
        return str(self.local.exits[node_id].address)


@asynccontextmanager
async def _serving(local: LocalNetwork) -> AsyncIterator[LocalNetwork]:
    async with anyio.create_task_group() as tg:
        await tg.start(local.serve)
        yield local
        local.stop()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    options = LocalNetworkOptions(
        tmp_path_factory.mktemp("net"), mean_delay_ms=0.0, seed=16, exits=EXITS, demo_origin=False
    )
    local = LocalNetwork(options)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(_serving(local)),
    ):
        yield Lab(local, portal)


def _doctor(lab: Lab, *args: str) -> tuple[int, str, str]:
    done = smolmix(lab.network_file, "doctor", "--probe-timeout", "3", *args)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def _silent(address: str) -> str:
    """The same exit's gateway and key, but a client identity nobody runs: never answers."""
    real = Recipient.parse(address)
    key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return str(Recipient(key, real.encryption_key, real.gateway))


def test_the_report_names_every_phase(lab: Lab) -> None:
    code, out, err = _doctor(lab)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("smolmix doctor ")
    assert any(line.startswith("directory  7 nodes") for line in lines)
    assert any("roles: 3 ExitGateway, 3 Mixnode, 1 EntryGateway" in line for line in lines)
    assert any(
        "exits: 3 usable of 7 described; skipped 4 no exit_ipr role" in line for line in lines
    )
    gateway = next(line for line in lines if line.startswith("gateway "))
    assert "protocol v6" in gateway
    assert any(line.startswith(f"exits      {EXITS} of {EXITS} answered") for line in lines)
    rows = [line for line in lines if line.startswith("  ") and "health" in line]
    assert len(rows) == EXITS and all(" ms " in row for row in rows)
    assert lines[-1] == f"result     ok: {EXITS} of {EXITS} exits answered (exit 0)"
    assert len(lines) <= 24  # one screen


def test_json_has_the_counts_and_no_secret(lab: Lab) -> None:
    code, out, err = _doctor(lab, "--json")
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    assert (report["format"], report["exit_code"], report["result"]) == (1, 0, "ok")
    directory = report["directory"]
    assert directory["ok"] and directory["nodes"] == 7 and directory["described"] == 7
    assert directory["by_role"] == {"ExitGateway": 3, "Mixnode": 3, "EntryGateway": 1}
    assert directory["declared_roles"]["exit_ipr"] == EXITS
    assert directory["exits"] == {"described": 7, "usable": 3, "skipped": {"no exit_ipr role": 4}}
    assert directory["topology"]["layers"] == [1, 1, 1]
    gateway = report["gateway"]
    assert gateway["ok"] and gateway["protocol_version"] == 6
    assert gateway["identity"] == lab.local.network.entry_gateway.identity  # type: ignore[union-attr]
    exits = report["exits"]
    assert (exits["candidates"], exits["probed"], exits["answered"]) == (EXITS, EXITS, EXITS)
    assert {r["ipr"] for r in exits["results"]} == {lab.real_ipr(i) for i in exit_ids(EXITS)}
    assert all(r["answer"] == "health" and r["rtt_ms"] > 0 for r in exits["results"])
    private = json.loads((lab.local.state_dir / "nodes.json").read_text())["nodes"]
    secrets = {v for node in private for k, v in node.items() if "private" in k or "secret" in k}
    assert secrets and not any(str(s) in out for s in secrets)


def test_dead_exits_are_reported_and_the_last_answer_decides(lab: Lab) -> None:
    first, *others = exit_ids(EXITS)
    real = {i: lab.real_ipr(i) for i in exit_ids(EXITS)}
    try:
        for node_id in others:
            lab.set_ipr(node_id, _silent(real[node_id]))
        code, out, err = _doctor(lab, "--json", "--width", "3")
        assert code == 0, err
        results = {r["ipr"]: r for r in json.loads(out)["exits"]["results"]}
        assert results[real[first]]["answer"] == "health"
        dead = [r for ipr, r in results.items() if ipr != real[first]]
        assert len(dead) == 2 and all(r["answer"] == "none" and not r["answered"] for r in dead)

        lab.set_ipr(first, _silent(real[first]))
        code, out, err = _doctor(lab)
        assert code == 97
        assert out.count("  none: no reply within 3 s") == EXITS
        assert err == f"smolmix: none of {EXITS} exits answered\n"
    finally:
        for node_id, address in real.items():
            lab.set_ipr(node_id, address)


def test_pinned_gateway_that_does_not_exist_is_111(lab: Lab) -> None:
    key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    done = smolmix(lab.network_file, "--gateway", b58encode(key), "doctor")
    assert done.returncode == 111, done.stderr
    stderr = done.stderr.decode()
    assert stderr.count("\n") == 1 and stderr.startswith("smolmix: no gateway connected: ")
    assert "directory  7 nodes" in done.stdout.decode()


def test_unreachable_directory_is_5_and_one_line(lab: Lab, tmp_path: Path) -> None:
    data = json.loads(lab.network_file.read_text())
    data["directory_url"] = "https://127.0.0.1:1/api/"
    dead = tmp_path / "network.json"
    dead.write_text(json.dumps(data))
    for extra in ((), ("--json",)):
        done = smolmix(dead, "doctor", *extra)
        assert done.returncode == 5
        stderr = done.stderr.decode()
        assert stderr.count("\n") == 1 and "cannot connect" in stderr
    assert json.loads(done.stdout)["directory"]["ok"] is False
