"""A connected packet socket as a device: a stack in another process than its peer."""

from __future__ import annotations

import socket

import anyio

from smolmix_cli.netstack.phy.device import MAX_PACKET


class DatagramSocketDevice:
    """A connected packet socket (e.g. one end of an AF_UNIX SOCK_SEQPACKET socketpair).

    Lets a stack run in another process than its peer or relay: each datagram
    is one IP packet. `drop_when_full` drops (and counts) what the socket
    buffer cannot take, like a NIC queue; otherwise `send` waits.
    """

    def __init__(self, sock: socket.socket, drop_when_full: bool = False) -> None:
        self.sock = sock
        self.drop_when_full = drop_when_full
        self.dropped = 0
        sock.setblocking(False)

    async def receive(self) -> bytes:
        await anyio.lowlevel.checkpoint()
        while True:
            try:
                data = self.sock.recv(MAX_PACKET)
            except BlockingIOError:
                await anyio.wait_readable(self.sock)
                continue
            except OSError as exc:
                raise anyio.EndOfStream from exc
            if not data:
                raise anyio.EndOfStream  # a zero-length datagram marks the end
            return data

    def receive_nowait(self) -> bytes | None:
        try:
            return self.sock.recv(MAX_PACKET) or None
        except (BlockingIOError, OSError):
            return None

    def send_nowait(self, packet: bytes) -> bool:
        try:
            self.sock.send(packet)
        except BlockingIOError:
            if not self.drop_when_full:
                return False
            self.dropped += 1
        except OSError:
            self.dropped += 1  # peer gone or packet refused: lost, like on a wire
        return True

    async def send(self, packet: bytes) -> None:
        while not self.send_nowait(packet):
            await anyio.wait_writable(self.sock)

    async def aclose(self) -> None:
        anyio.notify_closing(self.sock)
        self.sock.close()
