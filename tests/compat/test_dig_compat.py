"""`smolmix resolve` against the real dig: same server, same arguments, same bytes and exit code.

One local network for the module (mix delay 0) and one background session; dig
runs as concurrent subprocesses, smolmix in-process through the session. What is normalised, and every
documented difference, is in docs/compat.md (## dig). Skipped only without dig.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from tests.compat.dig_compat import (
    DIG,
    REPO,
    Case,
    Outcome,
    normalise,
    run_dig,
    run_smolmix,
)
from tests.e2e.cli_net import hermetic_env, start_network

pytestmark = pytest.mark.skipif(DIG is None, reason="dig is not installed (Debian: bind9-dnsutils)")

C = Case
CASES = [
    # the default output, record types and answer kinds
    C("{Z}"),
    C("{Z} MX"),
    C("{Z} TXT"),
    C("{Z} SOA"),
    C("{Z} NS"),
    C("{Z} AAAA"),
    C("{Z} CAA"),
    C("{Z} HTTPS"),
    C("_http._tcp.{Z} SRV"),
    C("www.{Z}"),
    C("alias.{Z}"),
    C("nope.{Z}"),
    C("mail.{Z} MX"),
    C("outside.test"),
    C("-x 198.18.0.1"),
    C("-x 2001:2::1"),
    C("{Z} ANY"),
    C("{Z} TYPE65"),
    C("{Z} IN MX"),
    C("-c IN {Z} MX"),
    C("{Z} +tcp"),
    C("{Z} +vc MX"),
    C("big.{Z} TXT +noall +answer"),
    C("big.{Z} TXT"),
    C("big.{Z} TXT +short"),
    C("{Z} +tcp +yaml"),
    C("{Z} MX +tcp +short"),
    C("www.{Z} CNAME +noall +answer"),
    C("{Z} +noedns +noall +answer +comments"),
    C("{Z} +ttlid +noclass"),
    C("+noall +answer {Z} +padding=0"),
    C("+short {Z} CAA {Z} SOA {Z} NS"),
    C("{Z} +retry=0 +noall +answer"),
    # section and display toggles
    C("+noall +answer {Z}"),
    C("{Z} +noall +answer"),
    C("+noall +answer {Z} MX"),
    C("+noall +answer www.{Z}"),
    C("+noall +authority nope.{Z}"),
    C("+noall +answer +authority nope.{Z}"),
    C("+noall +question {Z}"),
    C("+noall +stats {Z}"),
    C("+noall +comments {Z}"),
    C("+noall +answer +comments {Z}"),
    C("+noall +answer +stats +comments {Z}"),
    C("+nocmd +nostats {Z}"),
    C("+nocmd {Z} MX"),
    C("+nocomments {Z} CAA"),
    C("+noquestion {Z}"),
    C("+noanswer {Z}"),
    C("+noadditional {Z}"),
    C("+noauthority nope.{Z}"),
    C("+all +noall +answer {Z}"),
    C("+nottlid +noall +answer {Z}"),
    C("+noclass +noall +answer {Z}"),
    C("+nottlid +noclass {Z}"),
    C("+nottlid +noclass +noall +answer -x 198.18.0.1"),
    C("+noall +answer _https._tcp.{Z} SRV"),
    # header bits
    C("+norecurse {Z}"),
    C("+norec +noall +answer {Z}"),
    C("+dnssec {Z}"),
    C("+dnssec +noall +answer {Z} MX"),
    C("+dnssec signed.{Z}"),
    C("+dnssec +noall +answer signed.{Z}"),
    C("+dnssec +short signed.{Z}"),
    C("+dnssec +yaml signed.{Z}"),
    C("signed.{Z} +noall +answer"),
    C("signed.{Z} +dnssec +nottlid +noall +answer"),
    C("{Z} +cdflag"),
    C("{Z} +noadflag"),
    C("{Z} +noedns"),
    C("{Z} +tries=2 +time=3"),
    # +short
    C("+short {Z}"),
    C("+short {Z} MX"),
    C("+short {Z} TXT"),
    C("+short {Z} HTTPS"),
    C("+short nope.{Z}"),
    C("+short www.{Z}"),
    C("+short -x 198.18.0.1"),
    C("{Z} +short +noanswer"),
    # +yaml
    C("+yaml {Z}"),
    C("+yaml {Z} MX"),
    C("+yaml +noall +answer {Z}"),
    C("+yaml nope.{Z}"),
    # grammar: -t/-q, types before names, several lookups with their own options
    C("-t MX {Z}"),
    C("-t MX {Z} +short"),
    C("-q {Z} -t TXT +short"),
    C("MX {Z} +short"),
    C("{Z} MX www.{Z} +noall +answer"),
    C("{Z} +short www.{Z} AAAA"),
    C("+noall +answer {Z} A {Z} AAAA {Z} MX"),
    C("+nostats {Z} www.{Z} +noquestion"),
    C("-t MX {Z} -q www.{Z} +short -x 198.18.0.1 -t TXT +short"),
    C("-t FOO {Z} +short"),
    # more combinations: abbreviations, global vs per-lookup switches, several -q/-x
    C("{Z} +noall +answer +ttlid"),
    C("+noall +ans {Z}"),
    C("+noall +answer +noauth {Z}"),
    C("{Z} +noqu"),
    C("+nocmd +noquestion +nostats +noall +answer {Z}"),
    C("{Z} A +noall +answer {Z} MX +short"),
    C("{Z} +short +nocmd"),
    C("+short +cmd {Z}"),
    C("+cmd +short {Z}"),
    C("+nocmd {Z} +cmd"),
    C("{Z} @198.18.0.1 +noall +answer"),
    C("+noall +answer -q {Z} -q www.{Z}"),
    C("-x 198.18.0.1 -x 2001:2::1 +short"),
    C("+tcp +yaml nope.{Z}"),
    C("{Z} +noall +additional"),
    C("ns1.{Z} +noall +answer"),
    C("{Z} +norecurse +yaml"),
    C("+noall +answer {Z} +tries=1 www.{Z} +time=2"),
    C("{Z} +dnssec +yaml"),
    C("-t AAAA -q {Z} +short"),
    C("{Z} SOA +nocomments"),
    C("{Z} +nocomments +noall +answer +comments"),
    C("{Z} -4 +short"),
    # batch files
    C("-f {batch}"),
    C("-f {batch} +short"),
    C("+nocmd -f {batch}"),
    C("+noall +answer {Z} -f {batch}"),
    # bad input: exit codes
    C("-f /nonexistent/batch.txt", "code"),
    C("{Z} +bogus", "code"),
    C("-p 70000 {Z}", "code"),
    C("{Z} +time=x", "code"),
    C("-x not-an-address", "code"),
    C("-Z {Z}", "code"),
]

BATCH = "{Z} MX\nwww.{Z} +noall +answer\n\n-x 198.18.0.1 +nocomments\n"


@dataclass
class Pair:
    dig: Outcome
    smolmix: Outcome


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Pair]]:
    base = tmp_path_factory.mktemp("dig")
    batch = base / "batch.txt"
    batch.write_text(BATCH.format(Z="demo.smolmix.test"))
    env = {**hermetic_env(), "PYTHONPATH": str(REPO), "SMOLMIX_RUNTIME_DIR": str(base / "run")}
    for network in start_network(base / "net"):
        demo = json.loads(network.read_text())["demo"]
        port = int(demo["loopback_ports"]["dns"])
        start = [sys.executable, "-m", "smolmix_cli", "--network", str(network), "session"]
        started = subprocess.run(
            [*start, "start"], env=env, cwd=REPO, capture_output=True, timeout=60
        )
        assert started.returncode == 0, started.stderr
        try:
            with ThreadPoolExecutor(max_workers=4) as pool:
                digs = pool.map(run_dig, [case.argv(batch) for case in CASES], [port] * len(CASES))
                ours = [run_smolmix(case.argv(batch), network, env) for case in CASES]
                pairs = [Pair(d, s) for d, s in zip(digs, ours, strict=True)]
            found = {case.id: pair for case, pair in zip(CASES, pairs, strict=True)}
            for extra in NO_REPLY:  # dig: a refused loopback port; smolmix: the exit itself
                argv = [*extra.argv(batch), "+tries=1", "+time=1"]
                dig = run_dig(["-p", "1", *argv], port)
                ours = run_smolmix(["@10.0.0.1", *argv], network, env)
                found["no-reply-" + extra.id] = Pair(dig, ours)
            yield found
        finally:
            subprocess.run([*start, "stop"], env=env, cwd=REPO, capture_output=True, timeout=30)


NO_REPLY = [C("{Z}"), C("{Z} +short"), C("+short {Z}"), C("{Z} +noall +answer"), C("{Z} +yaml")]
"""No server answers: exit 9 and dig's stdout (its per-try error lines are normalised away)."""


@pytest.mark.parametrize(
    "case", CASES + NO_REPLY, ids=[c.id for c in CASES] + ["no-reply-" + c.id for c in NO_REPLY]
)
def test_resolve_matches_dig(case: Case, outcomes: dict[str, Pair]) -> None:
    pair = outcomes[case.id if case in CASES else "no-reply-" + case.id]
    assert "Traceback" not in pair.smolmix.stderr
    assert pair.smolmix.code == pair.dig.code, (pair.dig, pair.smolmix)
    if case.compare == "stdout":
        assert normalise(pair.smolmix.stdout) == normalise(pair.dig.stdout), pair.smolmix.stderr
    elif pair.dig.code:
        assert pair.smolmix.stderr.strip(), "a failure says why on stderr"
        assert len(pair.smolmix.stderr.strip().splitlines()) == 1, pair.smolmix.stderr
