"""Reading a PNG's header in tests: a file that is a whole, valid PNG, and its size in pixels."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk; AssertionError unless the file starts with the PNG
    signature and an IHDR whose CRC matches, and ends with an IEND chunk (so it is not cut short)."""
    data = path.read_bytes()
    assert data[:8] == SIGNATURE, f"{path}: not a PNG (starts {data[:8]!r})"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13, f"{path}: the first chunk is {kind!r} ({length} bytes), not IHDR"
    body = data[16 : 16 + length]
    (crc,) = struct.unpack(">I", data[16 + length : 20 + length])
    assert zlib.crc32(kind + body) == crc, f"{path}: IHDR CRC mismatch"
    assert data[-12:] == b"\x00\x00\x00\x00IEND\xae\x42\x60\x82", f"{path}: no IEND chunk at the end (truncated?)"
    width, height = struct.unpack(">II", body[:8])
    return width, height
