"""Differential runner for curl: the machine's real curl and `smolmix fetch`, same case.

curl reaches the demo origin on its loopback ports (`--connect-to` keeps the URL,
the Host header and TLS name as written; `--cacert` trusts the local network's CA);
smolmix reaches the same server as demo.smolmix.test through the local network,
attached to one running `smolmix session`, so a case costs one CLI start, not a
tunnel boot. Each side runs in its own empty directory (HOME too: no ~/.curlrc),
and what is compared is stdout bytes, the exit code, the files left in that
directory and the first `curl:`/`smolmix:` line on stderr.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CURL_TIMEOUT = 30.0
SMOLMIX_TIMEOUT = 60.0
HOST = "demo.smolmix.test"
_MASKED = re.compile(rb"(?m)^(X-Connection-Id|Date): [^\r\n]*")
"""Server artifacts masked on both sides: the demo origin numbers its connections, nginx
stamps the second it answered."""


def _mask(data: bytes) -> bytes:
    return _MASKED.sub(lambda m: m.group(1) + b": N", data)


_DIAG = re.compile(r"^(?:curl|smolmix): (.*)$", re.M)


@dataclass(frozen=True)
class Case:
    """One compat case: the same ARGS (shell words) given to curl and to `smolmix fetch`.

    `{http}` / `{https}` stand for http://demo.smolmix.test and its https twin, `{nginx}`
    for the nginx on loopback (http://127.0.0.1:PORT: the local exit's policy lets the
    tunnel reach loopback, so both sides use the same URL).
    `files` are written into both working directories first (name -> bytes);
    `stderr` compares the first diagnostic line (smolmix may add a parenthesised
    mixnet detail after curl's words); `known` names a documented difference
    (docs/compat.md): the case is expected to differ until it is fixed.
    """

    name: str
    args: str
    stdin: bytes = b""
    files: dict[str, bytes] = field(default_factory=dict)
    stderr: bool = False
    known: str | None = None
    smolmix_env: dict[str, str] = field(default_factory=dict)
    """Extra environment for the smolmix side only."""

    def words(self, nginx: str = "") -> list[str]:
        text = self.args.replace("{http}", f"http://{HOST}").replace("{https}", f"https://{HOST}")
        return shlex.split(text.replace("{nginx}", nginx))


@dataclass
class Outcome:
    stdout: bytes
    code: int
    diagnostic: str | None
    files: dict[str, bytes]


@dataclass
class Origin:
    """Where curl finds the demo origin and how smolmix is started on the local network."""

    http_port: int
    https_port: int
    ca_file: Path
    smolmix_env: dict[str, str]
    nginx: str = ""
    """http://127.0.0.1:PORT of the nginx (empty: not installed; its cases are skipped)."""


def _hermetic(env: dict[str, str], home: Path) -> dict[str, str]:
    out = {
        k: v
        for k, v in env.items()
        if k.upper()
        not in {
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "NO_PROXY",
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
            "CURL_CA_BUNDLE",
            "CURL_HOME",
        }
    }
    out["HOME"] = str(home)
    return out


def _collect(workdir: Path, seeded: dict[str, bytes]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for path in sorted(workdir.rglob("*")):
        rel = str(path.relative_to(workdir))
        if path.is_file() and not rel.startswith(".home"):
            data = path.read_bytes()
            if seeded.get(rel) != data:
                found[rel] = _mask(data)
    return found


def _run(argv: list[str], case: Case, env: dict[str, str], timeout: float) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="smx-compat-") as tmp:
        workdir = Path(tmp)
        home = workdir / ".home"
        home.mkdir()
        for name, data in case.files.items():
            (workdir / name).parent.mkdir(parents=True, exist_ok=True)
            (workdir / name).write_bytes(data)
        done = subprocess.run(
            argv,
            input=case.stdin,
            capture_output=True,
            timeout=timeout,
            cwd=workdir,
            env=_hermetic(env, home),
        )
        diag = _DIAG.search(done.stderr.decode(errors="replace"))
        return Outcome(
            stdout=_mask(done.stdout),
            code=done.returncode,
            diagnostic=diag.group(1) if diag else None,
            files=_collect(workdir, case.files),
        )


def run_curl(case: Case, origin: Origin) -> Outcome:
    argv = [
        "curl",
        "--connect-to",
        f"{HOST}:80:127.0.0.1:{origin.http_port}",
        "--connect-to",
        f"{HOST}:443:127.0.0.1:{origin.https_port}",
        "--cacert",
        str(origin.ca_file),
        *case.words(origin.nginx),
    ]
    return _run(argv, case, dict(os.environ), CURL_TIMEOUT)


ASYNC_ENGINE_ONLY = (
    "import smolmix_cli.cli.fetch_attached as shell; shell.run_attached = lambda *a: None; "
    "from smolmix_cli.cli.quick_start import main; main()"
)
"""`smolmix` with the blocking attach shell turned off: every case on the async engine."""


def run_smolmix(case: Case, origin: Origin, *, async_engine: bool = False) -> Outcome:
    """The case through the session: on the blocking attach shell where it can run it
    (cli/fetch_attached.py), else (or with `async_engine`) on the async engine."""
    start = ["-c", ASYNC_ENGINE_ONLY] if async_engine else ["-m", "smolmix_cli"]
    argv = [
        sys.executable,
        *start,
        "--network",
        "testnet",
        "fetch",
        *case.words(origin.nginx),
    ]
    env = {**origin.smolmix_env, **case.smolmix_env, "PYTHONPATH": str(REPO)}
    return _run(argv, case, env, SMOLMIX_TIMEOUT)


def differences(case: Case, curl: Outcome, smolmix: Outcome) -> list[str]:
    """What differs, in words (empty: the case matches)."""
    found = []
    if curl.stdout != smolmix.stdout:
        found.append(f"stdout: curl {curl.stdout[:300]!r} != smolmix {smolmix.stdout[:300]!r}")
    if curl.code != smolmix.code:
        found.append(f"exit: curl {curl.code} != smolmix {smolmix.code}")
    if curl.files != smolmix.files:
        found.append(f"files: curl {curl.files!r:.300} != smolmix {smolmix.files!r:.300}")
    if case.stderr:
        want, got = curl.diagnostic, smolmix.diagnostic
        if not (want == got or (want and got and got.startswith(want + " ("))):
            found.append(f"stderr: curl {want!r} != smolmix {got!r}")
    return found


NGINX_CONF = """daemon off;
master_process off;
pid {base}/nginx.pid;
error_log stderr error;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {base}/body;
    proxy_temp_path {base}/proxy;
    fastcgi_temp_path {base}/fastcgi;
    uwsgi_temp_path {base}/uwsgi;
    scgi_temp_path {base}/scgi;
    types {{ text/html html; text/plain txt; application/octet-stream bin; }}
    server {{
        listen 127.0.0.1:{port};
        root {base}/www;
        location = /moved {{ return 301 /index.html; }}
        location = /teapot {{ return 418 "short and stout\\n"; }}
        location = /cookie {{
            add_header Set-Cookie "sid=abc; Path=/";
            add_header Set-Cookie "pref=dark; Path=/; Expires=Fri, 01 Jan 2100 00:00:00 GMT";
            return 200 "cookies set\\n";
        }}
        location = /to-cookie {{
            add_header Set-Cookie "hop=1; Path=/";
            return 302 /echo-cookie;
        }}
        location = /echo-cookie {{ return 200 "cookie: $http_cookie\\n"; }}
    }}
}}
"""
NGINX_FILES = {
    "index.html": b"<!doctype html><title>nginx</title><p>static</p>\n",
    "a.txt": b"alpha\n",
    "b.txt": b"bravo\n",
    "data.bin": bytes(range(256)) * 64,
}
NGINX_MTIME = 946684800
"""2000-01-01: Last-Modified and ETag are then the same on every run."""


def nginx_config(base: Path, port: int) -> Path:
    """A throw-away nginx tree under `base` (config, static files) for an unprivileged run."""
    www = base / "www"
    www.mkdir(parents=True)
    for name, data in NGINX_FILES.items():
        (www / name).write_bytes(data)
        os.utime(www / name, (NGINX_MTIME, NGINX_MTIME))
    conf = base / "nginx.conf"
    conf.write_text(NGINX_CONF.format(base=base, port=port))
    return conf
