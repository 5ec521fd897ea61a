"""Throughput of gateway binary frames: AES-256-GCM-SIV over a 2422-byte ForwardSphinxV2 plaintext.

Prints one JSON line per measurement. Usage: python bench/gateway_frames.py [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

from smolmix_cli.mixnet.gateway.frames import RequestKind, decrypt_request, encrypt_request
from smolmix_cli.mixnet.gateway.shared_key import SharedKey

# MixPacket v2 of a regular Sphinx packet via an IPv4 hop (spec §3.6)
PLAINTEXT_LEN = 1 + 1 + 7 + 2413


def _rate(fn: Callable[[], object], seconds: float) -> tuple[int, float]:
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(100):
            fn()
        n += 100
        now = time.perf_counter()
        if now >= deadline:
            return n, now - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    key = SharedKey(os.urandom(32))
    plaintext = os.urandom(PLAINTEXT_LEN)
    frame = encrypt_request(RequestKind.FORWARD_SPHINX_V2, plaintext, key)
    cases: dict[str, Callable[[], object]] = {
        "gateway_frame_encrypt": lambda: encrypt_request(
            RequestKind.FORWARD_SPHINX_V2, plaintext, key
        ),
        "gateway_frame_decrypt": lambda: decrypt_request(frame, key),
    }
    for name, fn in cases.items():
        n, elapsed = _rate(fn, args.seconds)
        print(
            json.dumps(
                {
                    "name": name,
                    "plaintext_bytes": PLAINTEXT_LEN,
                    "frame_bytes": len(frame),
                    "frames": n,
                    "elapsed_s": round(elapsed, 3),
                    "frames_per_s": round(n / elapsed),
                    "us_per_frame": round(elapsed / n * 1e6, 2),
                    "plaintext_mb_per_s": round(n * PLAINTEXT_LEN / elapsed / 1e6, 1),
                }
            )
        )


if __name__ == "__main__":
    main()
