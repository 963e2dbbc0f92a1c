"""The streams member bytes pass through: hashing on the way to disk and back, and zstd.

Shared by archive.py (writing and streaming members) and integrity.py (re-reading them
to name each damage), so the two hash and decompress exactly the same way.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from typing import IO, BinaryIO

import zstandard

from edms_pgdump.errors import ArchiveError

CHUNK = 1 << 20


class SeekableBytes(io.RawIOBase):
    """A read-only, seekable byte source of known ``size`` (an age-decrypted file, an
    object read by ranges): the position bookkeeping both share. Subclasses set
    ``self.size`` and ``self._pos = 0`` and implement ``readinto``."""

    size: int
    _pos: int

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise OSError("negative seek position")
        self._pos = base + offset
        return self._pos


class HashingWriter:
    """File wrapper that hashes and counts what is written to disk."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.fh.write(data)

    def flush(self) -> None:
        self.fh.flush()


class HashingReader:
    """File wrapper that hashes what is read from it."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.sha = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.sha.update(data)
        return data


def decompressed_blocks(fh: HashingReader, compression: str, origin: str, name: str) -> Iterator[bytes]:
    """A member's COPY text in blocks, read through ``fh`` so its stored bytes are hashed
    too; a member that does not decompress is an ArchiveError naming it, not a crash."""
    if compression != "zstd":
        while block := fh.read(CHUNK):
            yield block
        return
    reader = zstandard.ZstdDecompressor().stream_reader(
        fh,  # type: ignore[arg-type]  # any object with read() will do
        read_across_frames=True,
    )
    try:
        while block := reader.read(CHUNK):
            yield block
    except zstandard.ZstdError as exc:
        raise ArchiveError(
            f"{origin}: member {name!r} does not decompress ({exc}); the archive is damaged"
        ) from None


__all__ = ["CHUNK", "HashingReader", "HashingWriter", "SeekableBytes", "decompressed_blocks"]
