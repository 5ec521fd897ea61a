"""A throwaway CA and a server certificate for the demo names (test-only).

Made by the local network's own `create_ca`, so the tests trust a CA built
exactly as the one `smolmix testnet` hands to its clients.
"""

from __future__ import annotations

import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from smolmix_cli.testnet.ca import create_ca

SERVER_NAMES = ("demo.smolmix.test", "www.demo.smolmix.test", "localhost")


@dataclass
class DemoPki:
    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self, *, weak_only: bool = False) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        if weak_only:
            # CBC suites without AEAD: our client policy must refuse them.
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers("ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA")
        return ctx


def make_pki(directory: Path | None = None) -> DemoPki:
    directory = directory or Path(tempfile.mkdtemp(prefix="smolmix-pki-"))
    paths = create_ca(directory, hosts=(*SERVER_NAMES, "127.0.0.1"))
    return DemoPki(paths.ca_cert, paths.server_cert, paths.server_key)
