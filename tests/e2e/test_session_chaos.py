"""A background session under chaos: fetches keep working while the network changes under it.

Issue 16's acceptance: a loop of fetches through one `smolmix session` carries on
through a key rotation, the removal of its exit from the directory, a restart of
its entry gateway and the kill of a mix node on its routes, all driven through
`smolmix testnet node|rotate` against a running `testnet up`. Only fetches in
flight at the moment of a kill may fail (they are counted and bounded); the
session recovers by itself (no stop/start by hand) and the last fetches succeed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.e2e.cli_net import CliOnTestnet, PrivateTestnet

FETCH_BUDGET = 25  # -m of each fetch: a fetch stuck on a dead route fails within it
LOOP_LIMIT = 400  # the fetch loop is bounded in count as well as in time


@dataclass
class Loop:
    """Fetches back to back in a thread; each result is (start, end, exit code)."""

    env: CliOnTestnet
    results: list[tuple[float, float, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        for _ in range(LOOP_LIMIT):
            if self.stop.is_set():
                return
            start = time.monotonic()
            done = self.env.run(
                "fetch", "-sS", "-m", str(FETCH_BUDGET), "http://demo.smolmix.test/", timeout=60
            )
            ok = done.returncode == 0 and b"It works." in done.stdout
            self.results.append((start, time.monotonic(), 0 if ok else done.returncode or 1))

    def successes_after(self, moment: float) -> int:
        return sum(1 for start, _, code in self.results if start >= moment and code == 0)

    def wait_for_successes(self, count: int, after: float, within: float) -> None:
        deadline = time.monotonic() + within
        while self.successes_after(after) < count:
            assert time.monotonic() < deadline, f"no {count} fetches succeeded: {self.results}"
            time.sleep(0.2)


class Env(PrivateTestnet):
    """A private `testnet up` driven through `smolmix testnet node|rotate`."""

    def nodes(self) -> list[dict[str, Any]]:
        data = json.loads((self.state / "network.json").read_text())
        nodes: list[dict[str, Any]] = data["nodes"]
        return nodes

    def control(self, *words: str) -> None:
        done = self.run("testnet", *words, timeout=60)
        assert done.returncode == 0, (words, done.stderr)


@pytest.fixture
def env() -> Iterator[Env]:
    with Env.in_tmp("smx-chaos-") as env:
        yield env


def test_a_session_carries_fetches_through_rotation_unlisting_restart_and_a_kill(
    env: Env,
) -> None:
    env.up("--nodes", "6", "--exits", "3", within=60)
    started = env.run("session", "start")
    assert started.returncode == 0, started.stderr
    nodes = env.nodes()
    by_identity = {n["identity_key"]: n["node_id"] for n in nodes}
    mixnodes = [n["node_id"] for n in nodes if n["role"] == "mixnode"]
    assert len(mixnodes) == 6

    loop = Loop(env)
    worker = threading.Thread(target=loop.run, daemon=True)
    worker.start()
    kills: list[float] = []  # moments a node went away under the session
    try:
        loop.wait_for_successes(2, 0.0, 60)

        # 1. key rotation: every node takes a new Sphinx key; the session follows.
        moment = time.monotonic()
        env.control("rotate")
        loop.wait_for_successes(3, moment, 90)

        # 2. its exit leaves the directory (the exit keeps running, as on mainnet).
        status = env.status()
        exit_gateway = by_identity[status["exit"].rsplit("@", 1)[1]]
        moment = time.monotonic()
        env.control("node", "unlist", str(exit_gateway))
        loop.wait_for_successes(3, moment, 90)

        # 3. its entry gateway restarts (a graceful stop, down for a second).
        gateway = by_identity[env.status()["gateway"]]
        moment = time.monotonic()
        kills.append(moment)
        env.control("node", "restart", str(gateway), "--down", "1")
        loop.wait_for_successes(3, moment, 120)

        # 4. a mix node on its routes is killed (every node of a layer is on some route).
        moment = time.monotonic()
        kills.append(moment)
        env.control("node", "kill", str(mixnodes[0]))
        loop.wait_for_successes(3, moment, 120)
        env.control("node", "start", str(mixnodes[0]))
        moment = time.monotonic()
        loop.wait_for_successes(3, moment, 90)
    finally:
        loop.stop.set()
        worker.join(timeout=FETCH_BUDGET + 30)

    failed = [(start, end, code) for start, end, code in loop.results if code != 0]
    # Only a fetch in flight when a node went away may fail (at most one per such moment, as
    # the loop is sequential); rotation and unlisting cost nothing.
    in_flight = [f for f in failed if any(f[0] <= k <= f[1] for k in kills)]
    assert in_flight == failed, (failed, kills)
    print(f"{len(loop.results)} fetches, {len(failed)} failed, all in flight at a kill or restart")
    report = env.status()
    assert report["state"] == "ready"
    assert report["generation"] >= 1
