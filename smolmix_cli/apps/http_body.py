"""Request bodies that stream: bytes, files, async sources and multipart forms.

A body is opened afresh for every send, so 307/308 redirects and retries can
replay it; a one-shot source (stdin) says so and is then not replayed.
Files are read in 64 KiB pieces: a 10 GiB upload never sits in memory.
"""

from __future__ import annotations

import os
import string
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from smolmix_cli.apps.errors import ReadError, UsageError

CHUNK = 65536


class Body:
    """Base: `length` (None = unknown, sent chunked), `content_type`, `replayable`."""

    length: int | None = None
    content_type: str | None = None
    replayable: bool = True

    def chunks(self) -> AsyncIterator[bytes]:
        raise NotImplementedError

    def pieces(self) -> Iterator[bytes] | None:
        """The same bytes read without an event loop (the blocking attach shell's upload);
        None: this source can only stream async (stdin, multipart)."""
        return None


class BytesBody(Body):
    def __init__(self, data: bytes, content_type: str | None = None) -> None:
        self.data = bytes(data)
        self.length = len(self.data)
        self.content_type = content_type

    async def chunks(self) -> AsyncIterator[bytes]:
        for piece in self.pieces():
            yield piece

    def pieces(self) -> Iterator[bytes]:
        for start in range(0, len(self.data), CHUNK):
            yield self.data[start : start + CHUNK]


class FileBody(Body):
    """A file sent as is (--data-binary @f, -T f); the size is taken when the body is built."""

    def __init__(self, path: str | os.PathLike[str], content_type: str | None = None) -> None:
        self.path = Path(path)
        try:
            self.length = self.path.stat().st_size
        except OSError as exc:
            raise ReadError(f"can't open '{self.path}': {exc.strerror}") from None
        self.content_type = content_type

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in _read_file(self.path):
            yield chunk

    def pieces(self) -> Iterator[bytes]:
        try:
            with open(self.path, "rb") as f:
                while chunk := f.read(CHUNK):
                    yield chunk
        except OSError as exc:
            raise ReadError(f"can't read '{self.path}': {exc.strerror}") from None


class StreamBody(Body):
    """A one-shot source of unknown length (stdin); sent with chunked encoding."""

    replayable = False

    def __init__(
        self, source: Callable[[], AsyncIterator[bytes]], content_type: str | None = None
    ) -> None:
        self._source = source
        self.content_type = content_type

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._source():
                if chunk:
                    yield chunk
        except OSError as exc:
            raise ReadError(f"read error on upload source: {exc}") from None


async def _read_file(path: Path) -> AsyncIterator[bytes]:
    import anyio  # here: building a request (the blocking attach shell too) needs no event loop

    try:
        async with await anyio.open_file(path, "rb") as f:
            while True:
                chunk = await f.read(CHUNK)
                if not chunk:
                    return
                yield chunk
    except OSError as exc:
        raise ReadError(f"can't read '{path}': {exc.strerror}") from None


# -- multipart/form-data (curl -F) --------------------------------------------


class FormField(NamedTuple):
    name: str
    value: bytes | None = None
    path: Path | None = None
    """File whose content is sent as a file part (name=@file)."""
    filename: str | None = None
    content_type: str | None = None


def parse_form_arg(arg: str) -> FormField:
    """curl's -F syntax: `name=value`, `name=@file`, `name=<file` (content as value),
    with optional `;type=mime` and `;filename=name` after a file."""
    name, sep, rest = arg.partition("=")
    if not sep or not name:
        raise UsageError(f"Illegally formatted input field: {arg!r}")
    if _bad_token(name):
        raise UsageError(f"bad form field name {name!r}")
    if rest.startswith(("@", "<")):
        spec, *params = rest[1:].split(";")
        opts: dict[str, str] = {}
        for param in params:
            key, eq, val = param.partition("=")
            if not eq or key.strip() not in ("type", "filename"):
                raise UsageError(f"bad form field parameter {param!r}")
            opts[key.strip()] = val.strip().strip('"')
        path = Path(spec)
        if not path.is_file():
            raise ReadError(f"can't open '{spec}'")
        if rest[0] == "<":
            try:
                value = path.read_bytes()
            except OSError as exc:
                raise ReadError(f"can't read '{spec}': {exc.strerror}") from None
            return FormField(name, value=value, content_type=opts.get("type"))
        import mimetypes  # here: it reads the system's type tables, for -F uploads only

        ctype = opts.get("type") or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FormField(
            name, path=path, filename=opts.get("filename", path.name), content_type=ctype
        )
    text, _, ctype = rest.partition(";type=")
    return FormField(name, value=text.encode(), content_type=ctype or None)


def _bad_token(text: str) -> bool:
    return any(c in '"\r\n' for c in text)


def _boundary() -> str:
    import secrets  # here: hmac and hashlib, for multipart bodies only

    alphabet = string.ascii_letters + string.digits
    return "-" * 24 + "".join(secrets.choice(alphabet) for _ in range(22))


class MultipartBody(Body):
    """multipart/form-data with a known total length (files are stat'ed up front)."""

    def __init__(self, fields: list[FormField], boundary: str | None = None) -> None:
        self.boundary = boundary or _boundary()
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        self._parts: list[tuple[bytes, FormField]] = []
        total = 0
        for form_field in fields:
            head = self._part_head(form_field)
            if form_field.path is not None:
                try:
                    size = form_field.path.stat().st_size
                except OSError as exc:
                    raise ReadError(f"can't open '{form_field.path}': {exc.strerror}") from None
            else:
                size = len(form_field.value or b"")
            total += len(head) + size + 2
            self._parts.append((head, form_field))
        total += len(self._closing)
        self.length = total

    @property
    def _closing(self) -> bytes:
        return f"--{self.boundary}--\r\n".encode()

    def _part_head(self, form_field: FormField) -> bytes:
        disposition = f'form-data; name="{form_field.name}"'
        if form_field.filename is not None:
            safe = form_field.filename.replace('"', "%22")
            disposition += f'; filename="{safe}"'
        lines = [f"--{self.boundary}", f"Content-Disposition: {disposition}"]
        if form_field.content_type:
            lines.append(f"Content-Type: {form_field.content_type}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def chunks(self) -> AsyncIterator[bytes]:
        for head, form_field in self._parts:
            yield head
            if form_field.path is not None:
                async for chunk in _read_file(form_field.path):
                    yield chunk
            elif form_field.value:
                yield form_field.value
            yield b"\r\n"
        yield self._closing
