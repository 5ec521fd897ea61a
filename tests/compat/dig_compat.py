"""Run the real `dig` and `smolmix resolve` side by side against the demo zone's server.

dig asks the demo DNS server on its loopback port directly; smolmix asks the same
server through the local network's tunnel (its address there is 198.18.0.1:53),
via one background session, and in-process (click's runner calling the real
command, which attaches to that session) so a case costs one DNS exchange, not a
process start and a tunnel boot; tests/e2e/test_resolve_cli.py runs the CLI as a
subprocess.
Both get the same case arguments after their own server arguments; dig also gets
`+padding=128` because smolmix always pads its queries to 128-byte blocks (and the
server then pads its answers), so message sizes match. Normalised, as documented
in docs/compat.md: the greeting's program name and server arguments, the query
id, query time, SERVER line, WHEN date, and +yaml's times and addresses.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
ZONE = "demo.smolmix.test"
TUNNEL_SERVER = ("@198.18.0.1", "-p", "53")
DIG_DEFAULTS = ("+padding=128",)
RUN_TIMEOUT = 60.0

DIG = shutil.which("dig")


@dataclass(frozen=True)
class Case:
    """One differential case: dig's arguments (after the server), and what must agree."""

    args: str
    compare: str = "stdout"
    """"stdout": normalised stdout bytes and exit code; "code": exit code only."""

    def argv(self, batch: Path) -> list[str]:
        return shlex.split(self.args.format(Z=ZONE, batch=batch))

    @property
    def id(self) -> str:
        return self.args.replace(ZONE, "Z").replace(" ", "_") or "root"


@dataclass(frozen=True)
class Outcome:
    stdout: str
    stderr: str
    code: int


_NORMALISE = [
    (re.compile(r"^; <<>> .*? <<>> .*$", re.M), "; <<>> PROGRAM <<>> ARGS"),
    (re.compile(r"(->>HEADER<<- opcode: \w+, status: \w+, id: )\d+"), r"\1ID"),
    (re.compile(r"^;; Query time: \d+ msec$", re.M), ";; Query time: N msec"),
    (re.compile(r"^;; SERVER: .*$", re.M), ";; SERVER: SERVER"),
    (re.compile(r"^;; WHEN: .*$", re.M), ";; WHEN: DATE"),
    (re.compile(r"^(\s+id: )\d+$", re.M), r"\1ID"),
    (re.compile(r"^(\s+(query|response)_time: !!timestamp ).*$", re.M), r"\1TIME"),
    (re.compile(r"^(\s+response_(address|port): ).*$", re.M), r"\1SERVER"),
    (re.compile(r"^;; communications error to .*\n", re.M), ""),
]


def normalise(text: str) -> str:
    for pattern, replacement in _NORMALISE:
        text = pattern.sub(replacement, text)
    return text


def run_dig(args: list[str], port: int) -> Outcome:
    assert DIG is not None
    done = subprocess.run(
        [DIG, "@127.0.0.1", "-p", str(port), *DIG_DEFAULTS, *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env={**os.environ, "TZ": "UTC"},
    )
    return Outcome(done.stdout, done.stderr, done.returncode)


def run_smolmix(args: list[str], network: Path, env: dict[str, str]) -> Outcome:
    """`smolmix --network NETWORK resolve @SERVER -p 53 ARGS` in this process (not thread-safe:
    click's runner swaps the process's standard streams)."""
    from smolmix_cli.cli.main import cli

    argv = ["--network", str(network), "resolve", *TUNNEL_SERVER, *args]
    exactly = {name: env.get(name) for name in {*os.environ, *env}}  # None unsets
    done = CliRunner().invoke(cli, argv, env=exactly, catch_exceptions=False)
    return Outcome(done.stdout, done.stderr, done.exit_code)
