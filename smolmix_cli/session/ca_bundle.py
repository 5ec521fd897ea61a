"""The CA bundle a command hands to TLS: the network's own CA (local networks) plus --cacert.

A file, because the session does TLS for attached commands and takes a path; made on
first use (mainnet has no CA of its own and never needs one) in a private temp directory,
or, for an attached command, in the session's runtime directory (ours, 0700, checked by
session/paths.py), which spares the command tempfile's imports. Removed at close.
No anyio here: the blocking attach shell uses it as the async path's Session does.
"""

from __future__ import annotations

import os
from pathlib import Path

from smolmix_cli.apps.errors import CaFileError


class CaBundle:
    def __init__(self, ca_pem: str | None, directory: Path | None = None) -> None:
        self.ca_pem = ca_pem
        self._directory = directory
        """A private directory to write in (None: a temp directory of our own)."""
        self._tmp: Path | None = None
        self._files: list[Path] = []
        self._closed = False

    def close(self) -> None:
        self._closed = True
        for path in self._files:
            path.unlink(missing_ok=True)
        self._files = []
        if self._tmp is not None:
            import shutil

            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def path(self, user_cacert: str | None) -> str | None:
        """The bundle's path (the user's --cacert as is when the network has no CA)."""
        if self.ca_pem is None:
            return user_cacert
        if self._closed:
            raise CaFileError("session closed")
        extra = ""
        if user_cacert is not None:
            try:
                extra = Path(user_cacert).read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise CaFileError(f"cannot read CA file {user_cacert}: {exc}") from None
        name = f"ca-{abs(hash(user_cacert))}.pem"
        if self._directory is not None:
            path = self._directory / f"{os.getpid()}-{name}"
            if path not in self._files:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(self.ca_pem + "\n" + extra)
                self._files.append(path)
            return str(path)
        if self._tmp is None:
            import tempfile

            self._tmp = Path(tempfile.mkdtemp(prefix="smolmix-"))  # 0700 already
        path = self._tmp / name
        if not path.exists():
            path.write_text(self.ca_pem + "\n" + extra)
        return str(path)
