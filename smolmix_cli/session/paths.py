"""Where a network's session lives: its socket, pid file and boot lock in the runtime dir.

The directory is ours alone (0700, owned by us, not a symlink) and the socket
0600, so the file system keeps other users out before the daemon's own
SO_PEERCRED check does. One session per network: mainnet, the local testnet
and each network file get their own socket name, so they run side by side.
A socket that refuses connections belongs to a session that died without
cleaning up (SIGKILL, power loss): `clear_stale` removes it under the lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

RUNTIME_ENV = "SMOLMIX_RUNTIME_DIR"
SOCKET_PATH_MAX = 107  # sun_path is 108 bytes with the terminating NUL


class SessionPathError(Exception):
    """The runtime dir is unusable (wrong owner or mode, or the socket path is too long)."""


def runtime_dir() -> Path:
    """`$SMOLMIX_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/smolmix`, else `/tmp/smolmix-UID`; 0700."""
    explicit = os.environ.get(RUNTIME_ENV)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if explicit:
        path = Path(explicit)
    elif xdg and os.path.isabs(xdg) and os.path.isdir(xdg):
        path = Path(xdg) / "smolmix"
    else:
        path = Path("/tmp") / f"smolmix-{os.getuid()}"
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError as exc:
        raise SessionPathError(f"cannot create the runtime dir {path}: {exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise SessionPathError(f"{path} is not a directory")
    if info.st_uid != os.getuid():
        raise SessionPathError(f"{path} belongs to another user (uid {info.st_uid})")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, 0o700)
    return path


def session_name(network: str | None) -> str:
    """`mainnet`, `testnet`, or `file-<hash>` for a network file (by its absolute path)."""
    from smolmix_cli.network_choice import NetworkChoice

    choice = NetworkChoice.parse(network)
    if choice.kind != "file" or choice.path is None:
        return choice.kind
    import hashlib  # here: mainnet and testnet, what most commands attach to, need no digest

    digest = hashlib.sha256(str(choice.path.resolve()).encode()).hexdigest()[:16]
    return f"file-{digest}"


@dataclass(frozen=True, slots=True)
class SessionPaths:
    name: str
    directory: Path

    @classmethod
    def for_network(cls, network: str | None, directory: Path | None = None) -> SessionPaths:
        """`directory`: one the caller already chose (the CLI's injected one); else runtime_dir()."""
        paths = cls(session_name(network), directory if directory is not None else runtime_dir())
        if len(os.fsencode(paths.socket)) > SOCKET_PATH_MAX:
            raise SessionPathError(
                f"socket path {paths.socket} is too long for a Unix socket; "
                f"set {RUNTIME_ENV} to a shorter directory"
            )
        return paths

    @property
    def socket(self) -> Path:
        return self.directory / f"{self.name}.sock"

    @property
    def pid_file(self) -> Path:
        return self.directory / f"{self.name}.pid"

    @property
    def lock_file(self) -> Path:
        return self.directory / f"{self.name}.lock"

    @property
    def log_file(self) -> Path:
        return self.directory / f"{self.name}.log"

    def read_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid > 0 else None


def probe(path: Path, timeout: float = 1.0) -> bool | None:
    """True: a session accepts on `path`; False: nothing listens (stale or absent); None: unsure."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(os.fspath(path))
    except (FileNotFoundError, ConnectionRefusedError):
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTSOCK):
            return False
        return None
    finally:
        sock.close()
    return True


def clear_stale(paths: SessionPaths) -> bool:
    """Remove the socket and pid file of a dead session; True if something was removed."""
    if probe(paths.socket) is not False:
        return False
    removed = False
    for path in (paths.socket, paths.pid_file):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed = True
    return removed


class LockTimeout(Exception):
    """Another command held the boot lock for too long."""


@contextlib.contextmanager
def boot_lock(paths: SessionPaths, timeout: float) -> Iterator[None]:
    """An exclusive flock: concurrent first callers queue here, so only one starts a session."""
    fd = os.open(paths.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockTimeout(f"{paths.lock_file} held for over {timeout:g} s") from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # closing drops the lock
