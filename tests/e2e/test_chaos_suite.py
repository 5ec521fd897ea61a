"""Chaos suite: node kinds killed and restarted under a session while transfers run.

Issue 20's build item: fetches of /bytes/N (sha256 checked), WebSocket echoes and DNS
lookups run back to back through one `smolmix session` while `smolmix testnet node`
kills, starts and restarts its entry gateway, a mix node of each layer and its exit
gateway (with the exit's IPR). Every transfer must either complete byte-exact or fail
with one of the exit codes its command documents for a lost route, within its own
deadline; after each event the session must be ready again (no stop/start by hand)
within RECOVERY_S and carry transfers again. The directory has no per-node control
(it is the network's own process), so it is not killed here.

CI runs the entry gateway kill, a layer-1 mix node kill and the exit kill; the fuzz
profile (`--hypothesis-profile=fuzz`) adds a restart of the entry gateway and the mix
nodes of layers 2 and 3.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from smolmix_cli.exit_codes import ExitCode
from smolmix_cli.testnet.origin.http import bytes_sha256
from tests.e2e import test_session_chaos
from tests.e2e.test_session_chaos import Env

env = test_session_chaos.env  # its fixture: a fresh state dir, `testnet up`, cleanup

SIZE = 150_000  # /bytes/N: long enough to be in flight when a node goes
FETCH_MAX_S = 20  # fetch -m
WS_LINES = 40
RESOLVE_TIMEOUT_S, RESOLVE_TRIES = 4, 2
SLACK_S = 8.0  # interpreter start and session attach on top of a command's own deadline
DOWN_S = 3.0  # a killed node's time down before `then` brings it back
RECOVERY_S = 60.0  # from an event to a ready session that carries a fetch again
C = ExitCode
# What each command may exit with when its route goes away under it (docs/exit-codes.md):
# the deadline (28), a broken stream (56, or 55 while sending), a refused or reset connect
# through the tunnel (7), the tunnel itself gone (97); ws: closed abnormally (12); resolve
# (dig's codes): no server replied (9).
LOST_ROUTE = {
    "fetch": {C.TIMEOUT, C.RECV_ERROR, C.SEND_ERROR, C.CONNECT_FAILED, C.IPR_HANDSHAKE},
    "ws": {C.WS_ABNORMAL_CLOSE, C.TIMEOUT, C.CONNECT_FAILED, C.IPR_HANDSHAKE},
    "resolve": {C.DNS_NO_REPLY, C.IPR_HANDSHAKE},
}
BOUND_S = {
    "fetch": FETCH_MAX_S + SLACK_S,
    "ws": 20 + 10 + 5 + SLACK_S,  # --connect-timeout, --ping-timeout x2, --close-timeout
    "resolve": RESOLVE_TIMEOUT_S * RESOLVE_TRIES * 2 + SLACK_S,  # UDP tries, then TCP
}


@dataclass
class Result:
    kind: str
    start: float
    end: float
    code: int
    exact: bool
    detail: str


@dataclass
class Traffic:
    """Fetch, ws and resolve loops in threads, each command after the previous one."""

    env: Env
    results: list[Result] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    began: float = field(default_factory=time.monotonic)

    def start(self) -> None:
        for kind, once in (("fetch", self._fetch), ("ws", self._ws), ("resolve", self._resolve)):
            thread = threading.Thread(target=self._loop, args=(kind, once), daemon=True)
            thread.start()
            self.threads.append(thread)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=max(BOUND_S.values()) + 30)

    def _loop(self, kind: str, once: Callable[[], tuple[int, bool, str]]) -> None:
        while not self.stop.is_set():
            start = time.monotonic()
            code, exact, detail = once()
            self.results.append(Result(kind, start, time.monotonic(), code, exact, detail))

    def _fetch(self) -> tuple[int, bool, str]:
        done = self.env.run(
            "fetch", "-sS", "-m", str(FETCH_MAX_S), f"http://demo.smolmix.test/bytes/{SIZE}",
            timeout=FETCH_MAX_S + 60,
        )  # fmt: skip
        exact = hashlib.sha256(done.stdout).hexdigest() == bytes_sha256(SIZE)
        return done.returncode, exact, done.stderr.decode(errors="replace").strip()[-200:]

    def _ws(self) -> tuple[int, bool, str]:
        lines = [f"chaos {i} {'x' * 500}" for i in range(WS_LINES)]
        done = self.env.run(
            "ws", "--connect-timeout", "20", "--ping-timeout", "5", "--close-timeout", "5",
            "ws://demo.smolmix.test:8080/", input="\n".join(lines).encode(), timeout=120,
        )  # fmt: skip
        exact = done.stdout.decode(errors="replace").splitlines() == lines
        return done.returncode, exact, done.stderr.decode(errors="replace").strip()[-200:]

    def _resolve(self) -> tuple[int, bool, str]:
        done = self.env.run(
            "resolve", "demo.smolmix.test", "A", "+short",
            "--timeout", str(RESOLVE_TIMEOUT_S), "--tries", str(RESOLVE_TRIES), timeout=60,
        )  # fmt: skip
        exact = done.stdout.decode().split() == ["198.18.0.1"]
        return done.returncode, exact, done.stderr.decode(errors="replace").strip()[-200:]

    def succeeded_after(self, moment: float) -> set[str]:
        return {r.kind for r in self.results if r.start >= moment and r.code == 0 and r.exact}


@dataclass
class Chaos:
    env: Env
    traffic: Traffic
    recoveries: dict[str, float] = field(default_factory=dict)

    def event(self, name: str, *words: str, then: tuple[str, ...] = ()) -> None:
        """Run `testnet node WORDS` while transfers are in flight; wait for the session to
        carry every kind of transfer again (after `then`, the node's way back, if any)."""
        moment = time.monotonic()
        generation = self.env.status()["generation"]
        self.env.control("node", *words)
        if then:
            time.sleep(DOWN_S)
            self.env.control("node", *then)
        report = self.carried_again(name, moment)
        print(
            f"{name}: carried again after {self.recoveries[name]} s; generation"
            f" {generation} -> {report['generation']}, last failure {report['last_failure']!r}"
        )

    def carried_again(self, name: str, moment: float) -> dict[str, object]:
        """Wait until the session is ready and every kind of transfer that started after
        `moment` has succeeded once; its status then."""
        deadline = moment + RECOVERY_S
        while True:
            report = self.env.status()
            carried = self.traffic.succeeded_after(moment)
            if report["state"] == "ready" and carried >= {"fetch", "ws", "resolve"}:
                self.recoveries[name] = round(time.monotonic() - moment, 1)
                return report
            assert time.monotonic() < deadline, f"{name}: {report}\n{self._failures()}"
            time.sleep(0.5)

    def _failures(self) -> str:
        return "\n".join(
            f"{r.kind} +{r.start - self.traffic.began:.1f}s {r.end - r.start:.1f}s"
            f" code {r.code} exact {r.exact}: {r.detail}"
            for r in self.traffic.results
            if r.code != 0 or not r.exact
        )


def _node_ids(env: Env) -> tuple[dict[int, list[int]], dict[str, int]]:
    """Mix node ids per layer, and node ids by identity key."""
    layers: dict[int, list[int]] = {}
    by_identity: dict[str, int] = {}
    for node in env.nodes():
        by_identity[node["identity_key"]] = node["node_id"]
        if node["role"] == "mixnode":
            layers.setdefault(node["layer"], []).append(node["node_id"])
    return layers, by_identity


@pytest.fixture
def chaos(env: Env) -> Iterator[Chaos]:
    env.up("--nodes", "6", "--exits", "3")
    started = env.run("session", "start")
    assert started.returncode == 0, started.stderr
    traffic = Traffic(env)
    traffic.start()
    chaos = Chaos(env, traffic)
    try:
        chaos.carried_again("warm-up", time.monotonic())
        yield chaos
    finally:
        traffic.finish()
    _check_transfers(traffic.results)
    report = env.status()
    assert report["state"] == "ready", report
    print(f"{len(traffic.results)} transfers; recoveries {chaos.recoveries}")


def _check_transfers(results: list[Result]) -> None:
    """Each transfer exact, or failed with a lost-route code of its command in its bound."""
    wrong = [
        r
        for r in results
        if not (r.code == 0 and r.exact) and (r.code not in LOST_ROUTE[r.kind] or r.code == 0)
    ]
    late = [r for r in results if r.end - r.start > BOUND_S[r.kind]]
    failed = [(r.kind, r.code, round(r.end - r.start, 1), r.detail) for r in results if r.code]
    assert not wrong, [(r.kind, r.code, r.exact, r.detail) for r in wrong]
    assert not late, [(r.kind, r.code, round(r.end - r.start, 1), r.detail) for r in late]
    print(f"failed (all expected): {failed}")


def _entry(chaos: Chaos) -> int:
    return _node_ids(chaos.env)[1][chaos.env.status()["gateway"]]


def _exit(chaos: Chaos) -> int:
    return _node_ids(chaos.env)[1][chaos.env.status()["exit"].rsplit("@", 1)[1]]


def test_transfers_survive_or_fail_right_when_nodes_die_under_a_session(chaos: Chaos) -> None:
    entry = str(_entry(chaos))
    chaos.event("entry gateway kill", "kill", entry, then=("start", entry))
    layers, _ = _node_ids(chaos.env)
    mix = str(layers[1][0])
    chaos.event("layer 1 mix node kill", "kill", mix, then=("start", mix))
    old_exit = _exit(chaos)
    chaos.event("exit gateway kill", "kill", str(old_exit))
    assert _exit(chaos) != old_exit  # the session moved to another exit
    chaos.env.control("node", "start", str(old_exit))


@pytest.mark.fuzz
def test_every_node_kind_killed_and_restarted_under_a_session(chaos: Chaos) -> None:
    entry = str(_entry(chaos))
    chaos.event("entry gateway kill", "kill", entry, then=("start", entry))
    entry = str(_entry(chaos))
    chaos.event("entry gateway restart", "restart", entry, "--down", "2")
    chaos.event("entry gateway kill-restart", "restart", "--kill", entry, "--down", "2")
    layers, _ = _node_ids(chaos.env)
    for layer in (1, 2, 3):
        for mix in layers[layer]:
            chaos.event(f"layer {layer} mix {mix} kill", "kill", str(mix), then=("start", str(mix)))
    for _ in range(2):
        old_exit = _exit(chaos)
        chaos.event("exit gateway kill", "kill", str(old_exit))
        assert _exit(chaos) != old_exit
        chaos.env.control("node", "start", str(old_exit))
