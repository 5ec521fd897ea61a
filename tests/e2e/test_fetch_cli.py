"""`smolmix fetch` as a user runs it, through the local network's exit to its demo origin.

Each invocation boots its own tunnel (about 0.3 s at zero mix delay), so checks
are grouped: several URLs per invocation where curl would allow it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smolmix_cli.testnet.origin.http import pseudo_random_bytes
from tests.e2e.cli_net import REPO, hermetic_env, smolmix, start_network

DEMO = "demo.smolmix.test"
HTTP = f"http://{DEMO}"
HTTPS = f"https://{DEMO}"
LARGE = 256 * 1024  # ~4 s through the zero-delay local network on this machine


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from start_network(tmp_path_factory.mktemp("net"))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def headers_of(echo: dict[str, object]) -> dict[str, str]:
    """The origin's view of the request headers (h11 lowercases names)."""
    pairs = echo["headers"]
    assert isinstance(pairs, list)
    return {str(k).lower(): str(v) for k, v in pairs}


def test_http_and_https_bodies_untouched_with_writeout(net: Path, tmp_path: Path) -> None:
    big, small = tmp_path / "big", tmp_path / "small"
    result = smolmix(
        net,
        "fetch",
        "-sS",
        "-o",
        str(small),
        "-o",
        str(big),
        "-w",
        "%{http_code} %{size_download} %{scheme} %{time_total} %{time_connect} "
        "%{time_starttransfer} %{time_tunnel}\n",
        f"{HTTP}/",
        f"{HTTPS}/bytes/{LARGE}",
        f"{HTTPS}/chunked/70000",
    )
    assert result.returncode == 0, result.stderr
    assert big.read_bytes() == pseudo_random_bytes(LARGE)  # sha256 equality, byte-exact
    assert small.read_bytes().startswith(b"<!DOCTYPE html>") or b"<html" in small.read_bytes()
    # the third URL has no -o: its chunked body is on stdout between the -w lines
    line1, line2, rest = result.stdout.split(b"\n", 2)
    first, second = line1.split(), line2.split()
    assert first[:3] == [b"200", str(small.stat().st_size).encode(), b"HTTP"]
    assert second[:3] == [b"200", str(LARGE).encode(), b"HTTPS"]
    total, connect, start, tunnel = (float(x) for x in second[3:7])
    assert 0 < connect <= start <= total and tunnel > 0
    chunked = pseudo_random_bytes(70000)
    assert rest.startswith(chunked)
    assert rest[len(chunked) :].split()[:3] == [b"200", b"70000", b"HTTPS"]
    assert result.stderr == b""


def test_body_to_stdout_is_byte_exact_and_sha256(net: Path) -> None:
    result = smolmix(net, "fetch", "-s", f"{HTTP}/bytes/100000")
    assert result.returncode == 0
    assert sha(result.stdout) == sha(pseudo_random_bytes(100000))


def test_connection_reused_per_origin(net: Path) -> None:
    result = smolmix(
        net,
        "fetch",
        "-sS",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-w",
        "connects=%{num_connects}\n",
        f"{HTTP}/echo",
        f"{HTTP}/headers",
        f"{HTTPS}/echo",
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    ids = [
        line.split(":")[1].strip()
        for line in text.splitlines()
        if line.startswith("X-Connection-Id")
    ]
    assert len(ids) == 3 and ids[0] == ids[1] and ids[2] != ids[0]
    assert [line for line in text.splitlines() if line.startswith("connects=")] == [
        "connects=1",
        "connects=0",
        "connects=1",
    ]


def test_redirects_follow_limit_and_method_rules(net: Path) -> None:
    fmt = "\n%{exitcode} %{http_code} %{num_redirects}\n"
    chain = smolmix(
        net,
        "fetch",
        "-sSL",
        "--max-redirs",
        "2",
        "-w",
        fmt,
        f"{HTTP}/redirect/2",
        f"{HTTP}/redirect/3",
    )
    assert chain.returncode == 47  # the last transfer's is the exit status, as in curl
    first, tail = chain.stdout.split(b"\n0 200 2\n")
    assert json.loads(first)["target"] == "/echo"
    assert tail.split()[:1] == [b"47"]
    assert chain.stderr.count(b"\n") == 1 and b"Traceback" not in chain.stderr
    not_followed = smolmix(
        net, "fetch", "-s", "-w", "%{http_code} %{redirect_url}", f"{HTTP}/redirect/1"
    )
    assert not_followed.stdout.endswith(b"302 http://demo.smolmix.test/echo")
    # 302 after POST: curl switches to GET and drops the body; 307 keeps both
    posts = smolmix(
        net,
        "fetch",
        "-sSL",
        "-d",
        "x=1",
        "-w",
        "\n",
        f"{HTTP}/redirect-to?url=/echo&status=302",
        f"{HTTP}/redirect-to?url=/echo&status=307",
    )
    after302, after307 = (json.loads(line) for line in posts.stdout.splitlines())
    assert after302["method"] == "GET" and after302["body_length"] == 0
    assert after307["method"] == "POST" and after307["body"] == "x=1"


def test_compressed_gzip_and_deflate(net: Path) -> None:
    result = smolmix(
        net, "fetch", "-sS", "--compressed", "-D", "-", f"{HTTP}/gzip", f"{HTTP}/deflate"
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    assert '"compressed": "gzip"' in text and '"compressed": "deflate"' in text
    raw = smolmix(net, "fetch", "-s", f"{HTTP}/gzip")
    assert json.loads(gzip.decompress(raw.stdout))["compressed"] == "gzip"


def test_range_and_resume(net: Path, tmp_path: Path) -> None:
    expected = pseudo_random_bytes(50000)
    part = smolmix(
        net, "fetch", "-sS", "-r", "100-199", "-w", "%{http_code}", f"{HTTP}/bytes/50000"
    )
    assert part.stdout == expected[100:200] + b"206"
    target = tmp_path / "resume.bin"
    target.write_bytes(expected[:12345])
    resumed = smolmix(net, "fetch", "-sS", "-C", "-", "-o", str(target), f"{HTTP}/bytes/50000")
    assert resumed.returncode == 0, resumed.stderr
    assert sha(target.read_bytes()) == sha(expected)


def test_uploads_data_json_form_file_stdin(net: Path, tmp_path: Path) -> None:
    blob = pseudo_random_bytes(16000, offset=7)
    src = tmp_path / "blob.bin"
    src.write_bytes(blob)
    form_file = tmp_path / "form.txt"
    form_file.write_bytes(b"a=1\r\n&b=2\n")
    results = {
        "d": smolmix(net, "fetch", "-sS", "-d", "x=1", "-d", f"@{form_file}", f"{HTTP}/echo"),
        "binary": smolmix(net, "fetch", "-sS", "--data-binary", f"@{src}", f"{HTTP}/upload"),
        "stdin": smolmix(net, "fetch", "-sS", "--data-binary", "@-", f"{HTTP}/upload", stdin=blob),
        "json": smolmix(net, "fetch", "-sS", "--json", '{"k":', "--json", "1}", f"{HTTP}/echo"),
        "form": smolmix(net, "fetch", "-sS", "-F", "name=v", "-F", f"f=@{src}", f"{HTTP}/echo"),
        "put": smolmix(net, "fetch", "-sS", "-T", str(src), f"{HTTP}/upload"),
        "put-stdin": smolmix(net, "fetch", "-sS", "-T", "-", f"{HTTP}/upload", stdin=blob),
    }
    for name, result in results.items():
        assert result.returncode == 0, (name, result.stderr)
    echo = json.loads(results["d"].stdout)
    assert echo["method"] == "POST" and echo["body"] == "x=1&a=1&b=2"
    assert headers_of(echo)["content-type"] == "application/x-www-form-urlencoded"
    for name in ("binary", "stdin", "put", "put-stdin"):
        assert json.loads(results[name].stdout) == {"length": len(blob), "sha256": sha(blob)}, name
    js = json.loads(results["json"].stdout)
    assert js["body"] == '{"k":1}'
    assert headers_of(js)["content-type"] == "application/json"
    assert headers_of(js)["accept"] == "application/json"
    form = json.loads(results["form"].stdout)
    content_type = headers_of(form)["content-type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    assert form["body_length"] > len(blob)


def test_headers_method_agent_auth_include_head(net: Path) -> None:
    result = smolmix(
        net,
        "fetch",
        "-sS",
        "-X",
        "PATCH",
        "-H",
        "X-Test: one",
        "-H",
        "Accept:",
        "-A",
        "probe/1",
        "-e",
        "http://ref.example/",
        f"{HTTP}/echo",
    )
    echo = json.loads(result.stdout)
    headers = headers_of(echo)
    assert echo["method"] == "PATCH" and headers["x-test"] == "one" and "accept" not in headers
    assert headers["user-agent"] == "probe/1" and headers["referer"] == "http://ref.example/"
    default = json.loads(smolmix(net, "fetch", "-s", f"{HTTP}/echo").stdout)
    agent = headers_of(default)["user-agent"]
    assert "smolmix" not in agent.lower() and agent.startswith("curl/")
    auth = smolmix(net, "fetch", "-sS", "-u", "ann:pw", f"{HTTP}/basic-auth/ann/pw")
    assert json.loads(auth.stdout) == {"authenticated": True, "user": "ann"}
    include = smolmix(net, "fetch", "-si", f"{HTTP}/status/201")
    assert include.stdout.startswith(b"HTTP/1.1 201 ") and include.stdout.endswith(
        b"\r\n\r\nstatus 201\n"
    )
    head = smolmix(net, "fetch", "-sI", f"{HTTP}/bytes/1000")
    assert head.stdout.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 1000" in head.stdout
    assert head.stdout.endswith(b"\r\n\r\n")


def test_fail_fail_with_body_and_json_writeout(net: Path) -> None:
    failed = smolmix(net, "fetch", "-sSf", f"{HTTP}/status/404")
    assert failed.returncode == 22 and failed.stdout == b""
    assert b"404" in failed.stderr and failed.stderr.count(b"\n") == 1
    silent = smolmix(net, "fetch", "-sf", f"{HTTP}/status/500")
    assert silent.returncode == 22 and silent.stderr == b""
    with_body = smolmix(net, "fetch", "-sS", "--fail-with-body", f"{HTTP}/status/403")
    assert with_body.returncode == 22 and with_body.stdout == b"status 403\n"
    plain = smolmix(net, "fetch", "-s", "-w", "%{json}", "-o", "/dev/null", f"{HTTP}/status/404")
    assert plain.returncode == 0
    record = json.loads(plain.stdout)
    assert record["http_code"] == 404 and record["exitcode"] == 0 and record["time_tunnel"] > 0


def test_retry_transient_and_timeouts(net: Path) -> None:
    retried = smolmix(
        net,
        "fetch",
        "-sS",
        "--retry",
        "3",
        "--retry-delay",
        "0.1",
        "-w",
        " %{num_retries}",
        f"{HTTP}/flaky/cli-retry/2",
    )
    assert retried.returncode == 0 and retried.stdout == b"ok after 2 failures\n 2"
    timed_out = smolmix(net, "fetch", "-sS", "-m", "2", f"{HTTP}/slow/10")
    assert timed_out.returncode == 28 and b"timed out" in timed_out.stderr
    broken = smolmix(
        net,
        "fetch",
        "-sS",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-w",
        "%{exitcode}\n",
        f"{HTTP}/empty",
        f"{HTTP}/partial/2000",
    )
    assert broken.stdout == b"52\n18\n" and broken.returncode == 18
    assert broken.stderr.count(b"\n") == 2


def test_writeout_after_every_transfer_and_the_last_transfers_exit_status(net: Path) -> None:
    """What curl 7.88 does with the same shapes against a local server: a transfer -m cuts
    short still gets its -w line (000|28); with several URLs the exit status is the last
    transfer's, so `bad good` exits 0 and `good bad` exits with bad's number."""
    fmt = "%{http_code}|%{exitcode}\n"
    timed_out = smolmix(net, "fetch", "-s", "-m", "2", "-w", fmt, f"{HTTP}/slow/10")
    assert (timed_out.returncode, timed_out.stdout) == (28, b"000|28\n")
    bad, good, refused = f"{HTTP}/status/404", f"{HTTP}/status/204", "http://demo.smolmix.test:9/"
    bad_good = smolmix(net, "fetch", "-sf", "-w", fmt, refused, bad, good)
    assert (bad_good.returncode, bad_good.stdout) == (0, b"000|7\n404|22\n204|0\n")
    good_bad = smolmix(net, "fetch", "-sf", "-w", fmt, good, refused, bad)
    assert (good_bad.returncode, good_bad.stdout) == (22, b"204|0\n000|7\n404|22\n")
    early = smolmix(net, "fetch", "-sf", "--fail-early", "-w", fmt, refused, good)
    assert (early.returncode, early.stdout) == (7, b"000|7\n")


def test_verbose_shows_request_response_and_tunnel(net: Path) -> None:
    result = smolmix(net, "fetch", "-v", "-o", "/dev/null", f"{HTTPS}/")
    assert result.returncode == 0
    err = result.stderr.decode()
    assert "> GET / HTTP/1.1" in err and "> Host: demo.smolmix.test" in err
    assert "< HTTP/1.1 200 OK" in err and "* tunnel ready" in err
    # the trail: the gateway and the exit tried, each with how it ended
    assert re.search(r"^\* tunnel: gateway \S+ at wss?://\S+: connected$", err, re.M), err
    assert re.search(r"^\* tunnel: exit \S+: connected in \d+ ms$", err, re.M), err


def test_verbose_prints_exactly_the_headers_that_reach_the_server(net: Path) -> None:
    result = smolmix(net, "fetch", "-v", "-d", "a=1&b=2", "-H", "X-Extra: 1", f"{HTTP}/headers")
    assert result.returncode == 0, result.stderr
    shown = [
        line[2:].split(": ", 1)
        for line in result.stderr.decode().splitlines()
        if line.startswith("> ") and ": " in line
    ]
    received = json.loads(result.stdout)["headers"]
    assert [[name.lower(), value] for name, value in shown] == received
    assert ["content-length", "7"] in received  # added by the client, shown by -v


def test_tls_verification_and_insecure(net: Path) -> None:
    # by IP literal the certificate's names do not match: 60 unless -k
    bad = smolmix(net, "fetch", "-sS", "https://198.18.0.1/")
    assert bad.returncode in (35, 60) and b"certificate" in bad.stderr.lower()
    insecure = smolmix(
        net, "fetch", "-k", "-w", "%{http_code}", "-o", "/dev/null", "https://198.18.0.1/"
    )
    assert insecure.returncode == 0 and insecure.stdout == b"200"
    assert b"WARNING" in insecure.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["http://exa mple.com/"], 3),
        (["http://demo.smolmix.test:99999/"], 3),
        (["ftp://demo.smolmix.test/"], 1),
        (["-H", "no colon here", "http://x.test/"], 2),
        (["-d", "@/nonexistent/file", "http://x.test/"], 26),
        (["-F", "bad", "http://x.test/"], 2),
        (["-r", "zz", "http://x.test/"], 3),
        (["--cacert", "/nonexistent.pem", "https://x.test/"], 77),
        (["--no-such-option", "http://x.test/"], 2),
    ],
)
def test_bad_input_is_one_line_and_curls_number(net: Path, args: list[str], code: int) -> None:
    result = smolmix(net, "fetch", *args)
    assert result.returncode == code, result.stderr
    assert b"Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 or lines[-1].startswith(b"Error: ")  # click's usage errors add a hint


def test_unknown_name_and_refused_port(net: Path) -> None:
    nx = smolmix(net, "fetch", "-sS", "http://nope.demo.smolmix.test/")
    assert nx.returncode == 6 and nx.stderr.count(b"\n") == 1
    refused = smolmix(net, "fetch", "-sS", "--connect-timeout", "20", "http://demo.smolmix.test:9/")
    assert refused.returncode == 7


def _stderr_on_a_terminal(net: Path, *args: str) -> tuple[int, bytes, bytes]:
    """Run fetch with stderr on a pseudo-terminal (stdout a pipe); returns (rc, stdout, tty)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "smolmix_cli", "--network", str(net), "fetch", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        cwd=REPO,
        env={**hermetic_env(), "PYTHONPATH": str(REPO), "TERM": "xterm", "COLUMNS": "80"},
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        assert proc.stdout is not None
        out = proc.stdout.read()
        return proc.wait(timeout=30), out, seen
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_progress_bar_only_on_a_terminal_and_never_on_stdout(net: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    rc, out, tty = _stderr_on_a_terminal(net, "-o", str(target), f"{HTTP}/bytes/{LARGE}")
    assert rc == 0 and out == b""
    assert target.read_bytes() == pseudo_random_bytes(LARGE)
    assert b"\x1b[" in tty and b"KB" in tty.upper()  # rich's bar and byte counter
    rc, out, tty = _stderr_on_a_terminal(net, "-s", "-o", str(target), f"{HTTP}/bytes/1000")
    assert rc == 0 and tty == b""
    piped = smolmix(net, "fetch", "-o", str(target), f"{HTTP}/bytes/1000")
    assert piped.returncode == 0 and piped.stderr == b""  # stderr not a terminal: no bar


def test_pinned_exit_and_gateway_without_shaping(net: Path) -> None:
    data = json.loads(net.read_text())
    exit_ipr, entry = data["exits"][0]["ipr_address"], data["entry_gateway"]["identity"]
    args = ["--ipr", exit_ipr, "--gateway", entry, "--no-cover", "--no-poisson"]
    fmt = "%{http_code} %{exit_gateway}"
    result = smolmix(net, *args, "fetch", "-sS", "-o", "/dev/null", "-w", fmt, f"{HTTP}/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == f"200 {exit_ipr}"


def test_silent_exit_fails_the_boot_within_its_bound(net: Path) -> None:
    """An exit address nobody answers for: the boot gives up at --boot-timeout (28), one line."""
    data = json.loads(net.read_text())
    gateway = data["exits"][0]["identity"]
    ghost = f"{data['entry_gateway']['identity']}.{gateway}@{gateway}"
    started = time.monotonic()
    result = smolmix(net, "--ipr", ghost, "--boot-timeout", "2", "fetch", "-sS", f"{HTTP}/")
    assert result.returncode == 28, result.stderr
    assert time.monotonic() - started < 20
    assert result.stderr.count(b"\n") == 1 and b"tunnel not ready" in result.stderr


def test_remote_name_create_dirs_and_dump_header(net: Path, tmp_path: Path) -> None:
    result = smolmix(
        net,
        "fetch",
        "-sS",
        "--create-dirs",
        "-o",
        "a/b/first.bin",
        "-O",
        "-D",
        "heads.txt",
        f"{HTTP}/bytes/3000",
        f"{HTTP}/bytes/5000",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert (tmp_path / "a" / "b" / "first.bin").read_bytes() == pseudo_random_bytes(3000)
    assert (tmp_path / "5000").read_bytes() == pseudo_random_bytes(5000)
    heads = (tmp_path / "heads.txt").read_bytes()
    assert heads.count(b"HTTP/1.1 200 OK\r\n") == 2 and b"Content-Length: 5000\r\n" in heads
