"""A background session outlives its network: `testnet down` then `up` under a running session.

Regression for "a session never notices that its gateway is gone": the daemon
kept a tunnel whose gateway had vanished, `session status` said ready, and every
later command timed out until `session stop` + `start`. Now the tunnel fails
once its gateway stays unreachable past a grace period, the daemon boots the
next generation from the network file as it is then, and the next fetch works.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.e2e.cli_net import PrivateTestnet

BACK_WITHIN = 30.0  # the bound: the next fetch succeeds this soon after the network


class Env(PrivateTestnet):
    """Its own state and runtime dirs; `up()` starts a network there, again and again."""


@pytest.fixture
def env() -> Iterator[Env]:
    with Env.in_tmp("smx-rec-") as env:
        yield env


def test_session_replaces_its_tunnel_after_testnet_down_and_up(env: Env) -> None:
    env.up()
    started = env.run("session", "start")
    assert started.returncode == 0, started.stderr
    first = env.run("fetch", "-sS", "http://demo.smolmix.test/")
    assert first.returncode == 0 and b"It works." in first.stdout, first.stderr
    assert env.status()["generation"] == 1

    down = env.run("testnet", "down")
    assert down.returncode == 0, down.stderr
    env.networks[-1].wait(timeout=20)
    env.up()
    back = time.monotonic()
    fetched = env.run("fetch", "-sS", "-m", str(BACK_WITHIN), "http://demo.smolmix.test/")
    took = time.monotonic() - back
    assert fetched.returncode == 0 and b"It works." in fetched.stdout, fetched.stderr
    assert took < BACK_WITHIN

    report = env.status()
    assert report["state"] == "ready"
    assert isinstance(report["generation"], int) and report["generation"] >= 2
    assert "lost the gateway" in str(report["last_failure"])
