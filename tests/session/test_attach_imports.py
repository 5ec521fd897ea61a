"""What a warm command costs before it does anything: the modules `--version` and an
attached `fetch` import.

A script that calls `smolmix fetch` in a loop pays the interpreter's imports every
time; the mixnet (Sphinx, cryptography), the netstack and the tunnel belong to the
session process, never to a command that only attaches. Each case runs the real CLI
in a fresh interpreter (`-X importtime` lists every module it loaded).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.abc
import pytest
from anyio.streams.tls import TLSStream

from smolmix_cli.errors_map import classify
from smolmix_cli.session.daemon import DaemonConfig, SessionDaemon
from smolmix_cli.session.paths import SessionPaths
from tests.self_signed import self_signed_tls
from tests.session.stand_in import Source, short_runtime_dir

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[2]

NEVER_ON_ATTACH = (
    "cryptography",
    "nacl",
    "blake3",
    "wsproto",
    "smolmix_cli.netstack",
    "smolmix_cli.ipr",
    "smolmix_cli.tunnel.tunnel",
    "smolmix_cli.mixnet.keys",
    "smolmix_cli.mixnet.packet",
    "smolmix_cli.mixnet.topology",
    "smolmix_cli.mixnet.gateway",
    "smolmix_cli.mixnet.client",
    "smolmix_cli.mixnet.directory.nym_api",
    "smolmix_cli.session.daemon",
    "smolmix_cli.apps.tls",
    "certifi",
    "tempfile",  # the CA bundle directory is made only for networks with their own CA
    "platformdirs",  # it imports tempfile and shutil; the XDG rule is applied by hand
    "email",  # dates (-z, Retry-After, cookie expiry) are parsed on demand
    "secrets",  # multipart boundaries only (with hmac and hashlib)
    "hmac",
    "hashlib",  # a network file's session name only
    "mimetypes",  # -F file uploads only
    "smolmix_cli.apps.http_writeout",  # -w only
    "asyncio",  # the blocking attach shell (cli/fetch_attached.py) needs no event loop
    "anyio",
    "sniffio",
    "ssl",  # the session does TLS; naming the network needs none (config, api_urls)
    "subprocess",  # starting a local network or a session only
    "shutil",  # with tempfile: the CA bundle goes to the session's runtime directory
    "smolmix_cli.apps.http_client",  # the async engine
    "smolmix_cli.session.remote",
    "smolmix_cli.session.unix",
    "smolmix_cli.config",  # naming the network is network_choice.py; the CA comes with the status
    "smolmix_cli.session.factory",
    "smolmix_cli.network_select",
    "smolmix_cli.tunnel.status",
    "zlib",  # --compressed only
    "smolmix_cli.apps.http_cookies",  # -b FILE and -c only
)
"""Heavy, session-side or rarely needed modules. An attached fetch speaks HTTP itself (h11,
blocking) while the session does TCP and TLS."""
NEVER_FOR_VERSION = (*NEVER_ON_ATTACH, "anyio", "asyncio", "h11", "ssl", "smolmix_cli.session")


def imported(
    args: list[str], env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "smolmix_cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    return done, modules


def offenders(modules: set[str], banned: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == b or m.startswith(b + ".") for b in banned))


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    base = short_runtime_dir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SMOLMIX_")}
    clean["SMOLMIX_RUNTIME_DIR"] = str(base)
    clean["XDG_CONFIG_HOME"] = str(base)  # no config file: the fetch needs no click
    yield clean
    for child in base.iterdir():
        child.unlink()
    base.rmdir()


def test_version_imports_no_protocol_stack(env: dict[str, str]) -> None:
    done, modules = imported(["--version"], env)
    assert done.returncode == 0 and "smolmix" in done.stdout
    assert offenders(modules, NEVER_FOR_VERSION) == []


async def origin(*, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
    """One fixed HTTP/1.1 answer per TLS connection."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    server = self_signed_tls().server

    async def handle(tcp: anyio.abc.SocketStream) -> None:
        with contextlib.suppress(Exception):  # the client may close first
            conn = await TLSStream.wrap(tcp, server_side=True, ssl_context=server)
            data = b""
            while b"\r\n\r\n" not in data:
                data += await conn.receive()
            await conn.send(
                b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n"
            )
            await conn.aclose()

    async with listener:
        task_status.started(listener.extra(anyio.abc.SocketAttribute.local_port))
        await listener.serve(handle)


async def fetch_attached(
    env: dict[str, str], options: list[str]
) -> tuple[subprocess.CompletedProcess[str], set[str], SessionDaemon]:
    """`smolmix fetch <options> https://origin/` through a real session daemon: the
    command's result, the modules it imported, and the daemon for its counters."""
    paths = SessionPaths.for_network("mainnet", Path(env["SMOLMIX_RUNTIME_DIR"]))
    daemon = SessionDaemon(
        paths, DaemonConfig(network_name="mainnet"), Source({}), classify=classify
    )
    async with anyio.create_task_group() as tg:
        port = await tg.start(origin)
        await tg.start(daemon.serve)
        try:
            done, modules = await anyio.to_thread.run_sync(
                imported, ["fetch", *options, f"https://127.0.0.1:{port}/"], env
            )
        finally:
            daemon.stop()
            tg.cancel_scope.cancel()
    return done, modules, daemon


async def test_attached_fetch_imports_no_mixnet(env: dict[str, str]) -> None:
    done, modules, daemon = await fetch_attached(env, ["-sSk"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == "hello\n"
    assert daemon.warm.opened == 1  # TCP and TLS in the session
    assert daemon.counters.requests == 2  # one status (the tunnel is ready), one open_http
    # click: cli/fast_argv.py reads the command line; datetime: -z's dates only
    assert offenders(modules, (*NEVER_ON_ATTACH, "click", "datetime")) == []


async def test_attached_fetch_falls_back_to_the_async_engine(env: dict[str, str]) -> None:
    """-m is one the blocking shell leaves to the async engine: same answer, through the
    same session, with the event loop loaded."""
    done, modules, daemon = await fetch_attached(env, ["-sSk", "-m", "30"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == "hello\n"
    assert daemon.warm.opened == 1
    assert {"asyncio", "smolmix_cli.apps.http_client"} <= modules


def test_resolve_loads_no_tls_http_or_public_api() -> None:
    """`smolmix resolve` over UDP or TCP needs no TLS, HTTP client or WebSocket engine: DoT
    and DoH load theirs when asked (apps/dns_transports.py), and the default server is the
    session's (factory.py), not the public API package, which imports everything."""
    code = (
        "import sys\n"
        "import smolmix_cli.cli.resolve, smolmix_cli.session.factory, smolmix_cli.session\n"
        "print('\\n'.join(sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    banned = ("smolmix_cli.api", "smolmix_cli.apps.tls", "smolmix_cli.apps.http_client")
    assert offenders(set(done.stdout.split()), (*banned, "h11", "wsproto")) == []
