"""`smolmix resolve` against the real dig with unbound as the server: a recursive resolver's
answers (`ra` set, its own TTL and flag choices, its refusals), not only the demo zone's.

unbound runs unprivileged on a loopback port with local zones only (no internet, no
root hints it could reach). dig asks it directly; smolmix asks the same address through
the local network's tunnel (the exit's policy accepts loopback). Same arguments, same
normalisation as test_dig_compat.py (docs/compat.md ## dig). Skipped without dig or
unbound (Debian: bind9-dnsutils, unbound).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compat.dig_compat import DIG, REPO, Case, Outcome, normalise, run_dig
from tests.e2e.cli_net import hermetic_env, start_network

UNBOUND = shutil.which("unbound") or (
    "/usr/sbin/unbound" if Path("/usr/sbin/unbound").exists() else None
)
pytestmark = pytest.mark.skipif(
    DIG is None or UNBOUND is None,
    reason="dig or unbound is not installed (Debian: bind9-dnsutils, unbound)",
)

ZONE = "unbound.smolmix.test"
CONFIG = """server:
  interface: 127.0.0.1
  port: {port}
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{dir}"
  pidfile: "{dir}/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 0
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "iterator"
  local-zone: "{zone}." static
  local-data: "{zone}. 300 IN A 192.0.2.10"
  local-data: "{zone}. 300 IN AAAA 2001:db8::10"
  local-data: "{zone}. 300 IN MX 10 mail.{zone}."
  local-data: 'quote.{zone}. 300 IN TXT "say \\"hi\\"" "two words"'
  local-data: "www.{zone}. 60 IN CNAME {zone}."
  local-data: "mail.{zone}. 300 IN A 192.0.2.25"
  local-data-ptr: "192.0.2.10 {zone}."
  local-zone: "refused.smolmix.test." refuse
remote-control:
  control-enable: no
"""


def C(args: str) -> Case:
    return Case(args.replace("{U}", ZONE))


CASES = [
    C("{U}"),
    C("{U} AAAA"),
    C("{U} MX"),
    C("quote.{U} TXT"),
    C("quote.{U} TXT +short"),
    C("www.{U}"),
    C("www.{U} +short"),
    C("nope.{U}"),
    C("nope.{U} +noall +authority"),
    C("{U} +noall +answer"),
    C("{U} MX +short"),
    C("{U} +norecurse"),
    C("{U} +dnssec +noall +answer"),
    C("{U} +tcp +noall +answer"),
    C("{U} +yaml"),
    C("-x 192.0.2.10"),
    C("-x 192.0.2.10 +short"),
    C("refused.smolmix.test"),
    C("+noall +answer {U} A {U} AAAA quote.{U} TXT"),
    C("{U} +nocmd +nostats"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _args(case: Case) -> list[str]:
    return case.argv(Path("/dev/null"))


@pytest.fixture(scope="module")
def outcomes(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[Outcome, Outcome]]]:
    assert UNBOUND is not None
    base = tmp_path_factory.mktemp("unbound")
    port = _free_port()
    conf = base / "unbound.conf"
    conf.write_text(CONFIG.format(port=port, dir=base, zone=ZONE))
    server = subprocess.Popen(
        [UNBOUND, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 15
        while run_dig([ZONE, "+short", "+tries=1", "+time=1"], port).stdout.strip() != "192.0.2.10":
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "unbound did not answer"
            time.sleep(0.1)
        env = {**hermetic_env(), "PYTHONPATH": str(REPO), "SMOLMIX_RUNTIME_DIR": str(base / "run")}
        for network in start_network(base / "net"):
            assert json.loads(network.read_text())["demo"] is not None
            session = [sys.executable, "-m", "smolmix_cli", "--network", str(network), "session"]
            started = subprocess.run(
                [*session, "start"], env=env, cwd=REPO, capture_output=True, timeout=60
            )
            assert started.returncode == 0, started.stderr
            try:
                found = {}
                for case in CASES:
                    dig = run_dig(_args(case), port)
                    ours = _smolmix(_args(case), network, port, env)
                    found[case.id] = (dig, ours)
                yield found
            finally:
                subprocess.run(
                    [*session, "stop"], env=env, cwd=REPO, capture_output=True, timeout=30
                )
    finally:
        server.terminate()
        server.wait(timeout=10)


def _smolmix(args: list[str], network: Path, port: int, env: dict[str, str]) -> Outcome:
    """`smolmix resolve @127.0.0.1 -p PORT ARGS` in this process, through the session."""
    from click.testing import CliRunner

    from smolmix_cli.cli.main import cli

    argv = ["--network", str(network), "resolve", "@127.0.0.1", "-p", str(port), *args]
    exactly = {name: env.get(name) for name in {*os.environ, *env}}  # None unsets
    done = CliRunner().invoke(cli, argv, env=exactly, catch_exceptions=False)
    return Outcome(done.stdout, done.stderr, done.exit_code)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_resolve_matches_dig_on_unbound(
    case: Case, outcomes: dict[str, tuple[Outcome, Outcome]]
) -> None:
    dig, ours = outcomes[case.id]
    assert "Traceback" not in ours.stderr
    assert ours.code == dig.code, (dig, ours)
    assert normalise(ours.stdout) == normalise(dig.stdout), (dig.stdout, ours.stdout, ours.stderr)
