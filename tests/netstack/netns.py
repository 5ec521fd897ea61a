"""Throwaway network namespaces with a TUN device, for kernel-peer tests and benchmarks.

A helper process runs under `unshare -n` (anonymous namespace, nothing to clean
up), creates and configures `tun0`, and passes the TUN fd back over a Unix
socket (SCM_RIGHTS). It then serves "make me a socket" requests: a socket
created inside the namespace stays bound to it, so the test process can use
plain Python sockets there without entering the namespace itself.

Run as a script it is that helper (stdlib only).
"""

from __future__ import annotations

import array
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from types import TracebackType

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
HELPER_TIMEOUT = 10.0


def _send_fd(conn: socket.socket, fd: int) -> None:
    conn.sendmsg([b"F"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])


def _recv_fd(conn: socket.socket) -> int:
    fds = array.array("i")
    msg, anc, _flags, _addr = conn.recvmsg(1, socket.CMSG_LEN(fds.itemsize))
    if not msg:
        raise RuntimeError("namespace helper closed the connection")
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: fds.itemsize])
            return fds[0]
    raise RuntimeError(f"namespace helper sent no fd: {msg!r}")


def unavailable_reason() -> str | None:
    """Why kernel tests cannot run here, or None when they can."""
    if not sys.platform.startswith("linux"):
        return "needs Linux"
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"`{tool}` not found"
    try:
        os.close(os.open("/dev/net/tun", os.O_RDWR))
    except OSError as exc:
        return f"cannot open /dev/net/tun: {exc}"
    probe = subprocess.run(
        ["unshare", "-n", "true"], capture_output=True, text=True, timeout=HELPER_TIMEOUT
    )
    if probe.returncode != 0:
        return f"network namespaces not permitted: {probe.stderr.strip()}"
    return None


class Namespace:
    """A fresh network namespace holding `tun0` with the given addresses.

    `tun_fd` is the TUN device (ours to read and write); `socket()` makes
    kernel sockets inside the namespace.
    """

    def __init__(
        self,
        v4: str = "192.0.2.1/24",
        v6: str = "fd00:e7a1::1/64",
        tun: str = "tun0",
        mtu: int = 1500,
    ) -> None:
        self.v4, self.v6, self.tun, self.mtu = v4, v6, tun, mtu
        self.tun_fd = -1
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: socket.socket | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> Namespace:
        self._dir = tempfile.TemporaryDirectory(prefix="smolmix-netns-")
        path = os.path.join(self._dir.name, "ctl")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(1)
        server.settimeout(HELPER_TIMEOUT)
        cmd = ["unshare", "-n", sys.executable, os.path.abspath(__file__), path]
        cmd += [self.tun, self.v4, self.v6, str(self.mtu)]
        self._proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
        try:
            self._conn, _ = server.accept()
            self._conn.settimeout(HELPER_TIMEOUT)
            self.tun_fd = _recv_fd(self._conn)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        finally:
            server.close()
        return self

    def socket(self, family: int, kind: int = socket.SOCK_STREAM, proto: int = 0) -> socket.socket:
        assert self._conn is not None
        self._conn.sendall(f"socket {int(family)} {int(kind)} {int(proto)}\n".encode())
        return socket.socket(fileno=_recv_fd(self._conn))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.sendall(b"quit\n")
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=HELPER_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stderr is not None:
                self._proc.stderr.close()
            self._proc = None
        if self.tun_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.tun_fd)
            self.tun_fd = -1
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


def _helper(path: str, tun: str, v4: str, v6: str, mtu: str) -> None:
    import fcntl
    import struct

    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", tun.encode(), IFF_TUN | IFF_NO_PI))
    for args in (
        ["link", "set", "lo", "up"],
        ["addr", "add", v4, "dev", tun],
        ["-6", "addr", "add", v6, "dev", tun, "nodad"],
        ["link", "set", tun, "mtu", mtu],
        ["link", "set", tun, "up"],
    ):
        subprocess.run(["ip", *args], check=True)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    _send_fd(conn, fd)
    os.close(fd)
    buf = b""
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            parts = line.decode().split()
            if not parts or parts[0] == "quit":
                return
            if parts[0] == "socket":
                s = socket.socket(int(parts[1]), int(parts[2]), int(parts[3]))
                _send_fd(conn, s.fileno())
                s.close()


if __name__ == "__main__":
    _helper(*sys.argv[1:6])
