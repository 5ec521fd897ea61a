"""bincode 1.3 as the IPR configures it: DefaultOptions, big-endian, varint, no trailing bytes.

Integers of 16 bits and more are varints: below 251 one byte; otherwise a marker
(251 u16, 252 u32, 253 u64, 254 u128) and the value big-endian. Signed integers
are zigzagged first. u8/i8/bool are single raw bytes. The reader accepts a wider
marker than needed (bincode does) but refuses a value too large for the type;
the writer always uses the narrowest form. `Reader.finish` rejects trailing
bytes, as the IPR's deserializer does.
"""

from __future__ import annotations

from smolmix_cli.ipr.errors import BincodeError

SINGLE_BYTE_MAX = 250
U16_MARKER = 251
U32_MARKER = 252
U64_MARKER = 253
U128_MARKER = 254

_MARKER_WIDTH = {U16_MARKER: 2, U32_MARKER: 4, U64_MARKER: 8, U128_MARKER: 16}
_BITS_MARKER = {16: U16_MARKER, 32: U32_MARKER, 64: U64_MARKER, 128: U128_MARKER}


def zigzag(value: int, bits: int) -> int:
    if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
        raise BincodeError(f"{value} does not fit in i{bits}")
    return value * 2 if value >= 0 else -value * 2 - 1


def unzigzag(value: int) -> int:
    return value >> 1 if value % 2 == 0 else -((value + 1) >> 1)


def encode_varint(value: int, bits: int = 64) -> bytes:
    """Varint of an unsigned integer of the given width (16, 32, 64 or 128)."""
    if not 0 <= value < (1 << bits):
        raise BincodeError(f"{value} does not fit in u{bits}")
    if value <= SINGLE_BYTE_MAX:
        return bytes([value])
    for width_bits in (16, 32, 64, 128):
        if value < (1 << width_bits):
            return bytes([_BITS_MARKER[width_bits]]) + value.to_bytes(width_bits // 8, "big")
    raise AssertionError("unreachable: value checked against its width")


class Writer:
    """Appends bincode values; `getvalue` gives the bytes."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def getvalue(self) -> bytes:
        return b"".join(self._parts)

    def raw(self, data: bytes) -> None:
        """Fixed-size bytes with no length (arrays such as IP addresses)."""
        self._parts.append(bytes(data))

    def u8(self, value: int) -> None:
        if not 0 <= value <= 0xFF:
            raise BincodeError(f"{value} does not fit in u8")
        self._parts.append(bytes([value]))

    def i8(self, value: int) -> None:
        if not -128 <= value <= 127:
            raise BincodeError(f"{value} does not fit in i8")
        self._parts.append(bytes([value & 0xFF]))

    def boolean(self, value: bool) -> None:
        self._parts.append(b"\x01" if value else b"\x00")

    def uint(self, value: int, bits: int) -> None:
        self._parts.append(encode_varint(value, bits))

    def u16(self, value: int) -> None:
        self.uint(value, 16)

    def u32(self, value: int) -> None:
        self.uint(value, 32)

    def u64(self, value: int) -> None:
        self.uint(value, 64)

    def u128(self, value: int) -> None:
        self.uint(value, 128)

    def sint(self, value: int, bits: int) -> None:
        self._parts.append(encode_varint(zigzag(value, bits), bits))

    def i16(self, value: int) -> None:
        self.sint(value, 16)

    def i32(self, value: int) -> None:
        self.sint(value, 32)

    def i64(self, value: int) -> None:
        self.sint(value, 64)

    def variant(self, index: int) -> None:
        """An enum's variant index (u32 varint)."""
        self.uint(index, 32)

    def option_tag(self, present: bool) -> None:
        """`00` for None, `01` before the value of Some."""
        self.boolean(present)

    def byte_vec(self, data: bytes) -> None:
        """Vec<u8> / Bytes: u64 varint length, then the bytes."""
        self.uint(len(data), 64)
        self._parts.append(bytes(data))

    def string(self, text: str) -> None:
        self.byte_vec(text.encode("utf-8"))


class Reader:
    """Reads bincode values from a buffer; every failure is a `BincodeError`."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes, offset: int = 0) -> None:
        self._data = bytes(data)
        self._pos = offset

    @property
    def position(self) -> int:
        return self._pos

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def finish(self) -> None:
        """The value must have used every byte (bincode's `reject_trailing_bytes`)."""
        if self._pos != len(self._data):
            raise BincodeError(f"{len(self._data) - self._pos} trailing bytes after the value")

    def raw(self, size: int) -> bytes:
        if size < 0 or self._pos + size > len(self._data):
            raise BincodeError(f"needs {size} bytes, {self.remaining} left")
        chunk = self._data[self._pos : self._pos + size]
        self._pos += size
        return chunk

    def u8(self) -> int:
        return self.raw(1)[0]

    def i8(self) -> int:
        value = self.u8()
        return value - 256 if value >= 128 else value

    def boolean(self) -> bool:
        value = self.u8()
        if value > 1:
            raise BincodeError(f"invalid bool encoding {value}")
        return value == 1

    def uint(self, bits: int) -> int:
        marker = self.u8()
        if marker <= SINGLE_BYTE_MAX:
            return marker
        width = _MARKER_WIDTH.get(marker)
        if width is None:
            raise BincodeError(f"invalid varint marker {marker}")
        if width * 8 > 64 and bits < 128:
            raise BincodeError("u128 varint where a narrower integer is expected")
        value = int.from_bytes(self.raw(width), "big")
        if value >= (1 << bits):
            raise BincodeError(f"varint {value} does not fit in u{bits}")
        return value

    def u16(self) -> int:
        return self.uint(16)

    def u32(self) -> int:
        return self.uint(32)

    def u64(self) -> int:
        return self.uint(64)

    def u128(self) -> int:
        return self.uint(128)

    def sint(self, bits: int) -> int:
        return unzigzag(self.uint(bits))

    def i16(self) -> int:
        return self.sint(16)

    def i32(self) -> int:
        return self.sint(32)

    def i64(self) -> int:
        return self.sint(64)

    def variant(self) -> int:
        return self.uint(32)

    def option_tag(self) -> bool:
        tag = self.u8()
        if tag > 1:
            raise BincodeError(f"invalid Option tag {tag}")
        return tag == 1

    def byte_vec(self) -> bytes:
        size = self.uint(64)
        if size > self.remaining:
            raise BincodeError(f"length {size} runs past the end ({self.remaining} left)")
        return self.raw(size)

    def string(self) -> str:
        data = self.byte_vec()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BincodeError(f"string is not UTF-8: {exc.reason}") from None
