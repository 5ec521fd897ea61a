"""Client CPU per WebSocket frame on the gateway path, the server in another process.

What the gateway client pays per frame in `smolmix_cli.websocket` (wsproto framing, the
anyio stream, locks and wake-ups), without Sphinx or the mixnet: `recv` has a plain
wsproto server push 2,452-byte binary frames (a regular packet's frame size) with a
short pause after each, as a gateway pushes them; `send` has the client send them.
Prints one JSON line per mode with the client process's CPU per frame. The recv figure
includes the event loop's wake-up per frame and moves with machine load.

Usage: python bench/mixnet_ws_frames.py [--frames 3000] [recv] [send]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FRAME = os.urandom(2452)


def serve(port_queue: multiprocessing.Queue[int], mode: str, frames: int) -> None:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, BytesMessage, Request

    listener = socket.create_server(("127.0.0.1", 0))
    port_queue.put(listener.getsockname()[1])
    conn, _ = listener.accept()
    ws = WSConnection(ConnectionType.SERVER)
    while not any(isinstance(e, Request) for e in _feed(ws, conn.recv(65536))):
        pass
    conn.sendall(ws.send(AcceptConnection()))
    if mode == "recv":
        data = ws.send(BytesMessage(data=FRAME))
        for _ in range(frames):
            conn.sendall(data)
            time.sleep(0.0003)
        time.sleep(0.5)
    else:
        got = 0
        while got < frames:
            chunk = conn.recv(65536)
            if not chunk:
                break
            got += sum(isinstance(e, BytesMessage) and e.message_finished for e in _feed(ws, chunk))
    conn.close()


def _feed(ws: object, data: bytes) -> list[object]:
    ws.receive_data(data)  # type: ignore[attr-defined]
    return list(ws.events())  # type: ignore[attr-defined]


async def client(port: int, mode: str, frames: int) -> float:
    from smolmix_cli.websocket import connect_websocket

    ws = await connect_websocket(f"ws://127.0.0.1:{port}/")
    start = time.process_time()
    for _ in range(frames):
        if mode == "recv":
            await ws.receive()
        else:
            await ws.send_binary(FRAME)
    return time.process_time() - start


def main() -> None:
    import anyio

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("modes", nargs="*", default=["recv", "send"])
    args = parser.parse_args()
    for mode in args.modes:
        ports: multiprocessing.Queue[int] = multiprocessing.Queue()
        server = multiprocessing.Process(target=serve, args=(ports, mode, args.frames))
        server.start()
        cpu = anyio.run(client, ports.get(), mode, args.frames)
        server.join()
        line = {"mode": mode, "frames": args.frames, "cpu_us_per_frame": cpu / args.frames * 1e6}
        print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in line.items()}))


if __name__ == "__main__":
    main()
