"""An archive read once, front to back, from a pipe (``import -``): no temporary file.

The single-file form already has what a one-pass reader needs: ``manifest.json`` is
the tar's first entry and its signature (``manifest.json.minisig``) the second, so the
manifest is read, its signature checked and the manifest parsed before any member's
byte arrives; the members follow in the manifest's order. ``members`` hands out each
member's COPY text as it streams, hashing the stored bytes and the text and counting
rows; at the member's end all three are compared with the manifest and a mismatch
raises ArchiveError naming the member. ``finish`` reads to the end of the stream and
refuses a member that never came, one not in the manifest, and a truncated stream.

So a caller that stages every member before it writes anything, then calls
``finish``, has proven the whole archive before its first write, as ``verify`` proves a
file. An age-encrypted stream is decrypted on the fly (``AgeStreamReader``).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, BinaryIO, cast

from edms_pgdump.archive.encryption import MAGIC, AgeStreamReader
from edms_pgdump.archive.keys import Identity, read_identities
from edms_pgdump.archive.manifest import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    Manifest,
    TableEntry,
    check_member_name,
)
from edms_pgdump.archive.signing import MAX_SIGNATURE_BYTES, SignatureInfo, check_signature, load_trusted_keys
from edms_pgdump.archive.streams import CHUNK, HashingReader, decompressed_blocks
from edms_pgdump.errors import ArchiveError

MAX_MANIFEST_BYTES = 64 * 1024 * 1024
_TAR_ERRORS = (tarfile.TarError, EOFError, OSError)


class _Prefixed(io.RawIOBase):
    """``head`` (bytes already read to recognise the format), then the rest of ``fh``."""

    def __init__(self, head: bytes, fh: IO[bytes]) -> None:
        super().__init__()
        self.head = head
        self.fh = fh

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self.head:
            n = min(len(view), len(self.head))
            view[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.fh.read(len(view))
        view[: len(data)] = data
        return len(data)


class StreamArchive:
    """The archive on ``source`` (stdin's binary stream), read once.

    Opening it reads the manifest and checks its signature (with ``trusted_keys``, an
    unsigned stream or another signer is refused here, before any caller can stage).
    Attributes mirror ``ArchiveReader``'s: ``origin``, ``manifest``, ``signature``,
    ``encrypted``, ``warnings``."""

    def __init__(
        self,
        source: BinaryIO | IO[bytes],
        origin: str,
        *,
        identities: Sequence[str | Path | Identity] = (),
        trusted_keys: Sequence[str | Path] = (),
        owned: io.RawIOBase | None = None,
    ) -> None:
        """``owned``: closed with this reader (an object's reader; stdin is the caller's)."""
        self._owned = owned
        self.origin = origin
        self.warnings: list[str] = []
        self.encrypted = False
        self.signature: SignatureInfo | None = None
        self._trusted = load_trusted_keys(trusted_keys)
        self._seen: set[str] = set()
        self._pending: tarfile.TarInfo | None = None
        self._finished = False
        self._ended = False  # the tar's end-of-archive blocks were read
        try:
            self._open(source, origin, identities)
        except BaseException:
            self.close()
            raise

    def _open(
        self, source: BinaryIO | IO[bytes], origin: str, identities: Sequence[str | Path | Identity]
    ) -> None:
        head = _read_exact(source, len(MAGIC))
        if not head:
            raise ArchiveError(
                f"{origin}: the stream is empty; pipe an archive in (edms-pgdump export … -o - | "
                "edms-pgdump import - …), and check that the command before the pipe succeeded"
            )
        self._plain: IO[bytes] = io.BufferedReader(_Prefixed(head, source), CHUNK)
        if head == MAGIC:
            if not identities:
                raise ArchiveError(
                    f"{origin}: the archive is encrypted with age; pass --identity FILE (the age "
                    "identity whose public key the exporter gave to --encrypt-to)"
                )
            loaded: list[Identity] = []
            for i in identities:
                loaded += [i] if isinstance(i, Identity) else read_identities(i, self.warnings)
            age = AgeStreamReader(self._plain, loaded, origin)
            self._plain = cast("IO[bytes]", io.BufferedReader(age, CHUNK))
            self.encrypted = True
        try:
            self._tar = tarfile.open(fileobj=self._plain, mode="r|")
        except _TAR_ERRORS as exc:
            raise ArchiveError(
                f"{origin}: not a readable edms-pgdump archive ({exc}); it may be truncated or not an "
                "archive at all"
            ) from None
        self.manifest = self._read_manifest()

    # -- the head: manifest and signature --------------------------------------------
    def _next(self) -> tarfile.TarInfo | None:
        if self._ended:
            return None
        try:
            info = self._tar.next()
            while info is not None and info.isdir():  # a folder entry (tar run by hand): no data
                check_member_name(info.name, self.origin)
                info = self._tar.next()
        except _TAR_ERRORS as exc:
            raise self._truncated(f"after {len(self._seen)} member(s) ({exc})") from None
        if info is None:
            self._ended = True
            return None
        check_member_name(info.name, self.origin)
        if info.issym() or info.islnk() or not info.isfile():
            raise ArchiveError(
                f"{self.origin}: member {info.name!r} is not a regular file; refusing the archive"
            )
        if info.name in self._seen:
            raise ArchiveError(f"{self.origin}: member {info.name!r} appears twice; refusing the archive")
        self._seen.add(info.name)
        return info

    def _small(self, info: tarfile.TarInfo, limit: int) -> bytes:
        if info.size > limit:
            raise ArchiveError(f"{self.origin}: {info.name} is implausibly large; refusing")
        fh = self._tar.extractfile(info)
        try:
            data = fh.read() if fh is not None else b""
        except _TAR_ERRORS as exc:
            raise self._truncated(f"inside {info.name} ({exc})") from None
        if len(data) != info.size:
            raise self._truncated(f"inside {info.name}")
        return data

    def _read_manifest(self) -> Manifest:
        first = self._next()
        if first is None or first.name != MANIFEST_NAME:
            raise ArchiveError(
                f"{self.origin}: the stream does not start with {MANIFEST_NAME} (it starts with "
                f"{first.name if first else 'nothing'!r}); an archive written by edms-pgdump export has "
                "its manifest first: import the file by its path instead of through a pipe"
            )
        raw = self._small(first, MAX_MANIFEST_BYTES)
        signature = None
        after = self._next()
        if after is not None and after.name == SIGNATURE_NAME:
            signature = self._small(after, MAX_SIGNATURE_BYTES)
            after = self._next()
        self._pending = after
        # before parsing: nothing the manifest says is believed until its signer is known
        self.signature = check_signature(raw, signature, self._trusted, self.origin)
        return Manifest.from_json(raw, self.origin)

    # -- the members -------------------------------------------------------------------
    def members(self) -> Iterator[tuple[TableEntry, Iterator[bytes]]]:
        """Each member in the stream's order with its COPY text; consume each text before
        asking for the next member (its checks run when the text is exhausted)."""
        while True:
            info, self._pending = self._pending, None
            if info is None:
                info = self._next()
            if info is None:
                return
            entry = self.manifest.entry_for_member(info.name)
            if entry is None:
                raise ArchiveError(
                    f"{self.origin}: member {info.name!r} is not listed in the manifest (extra member); "
                    "refusing the archive, nothing was imported"
                )
            yield entry, self._text(info, entry)

    def _text(self, info: tarfile.TarInfo, entry: TableEntry) -> Iterator[bytes]:
        fh = self._tar.extractfile(info)
        assert fh is not None
        stored = HashingReader(fh)
        text_sha = hashlib.sha256()
        rows = 0
        where = f"{self.origin}: {entry.table}: member {entry.member!r}"
        try:
            for block in decompressed_blocks(stored, entry.compression, self.origin, entry.member):
                text_sha.update(block)
                rows += block.count(b"\n")
                yield block
            while stored.read(CHUNK):  # trailing bytes count too
                pass
        except _TAR_ERRORS as exc:
            raise self._truncated(f"inside member {entry.member!r} of {entry.table} ({exc})") from None
        if info.size != entry.bytes:
            raise ArchiveError(
                f"{where} has {info.size} bytes, manifest says {entry.bytes}; nothing was imported"
            )
        if stored.sha.hexdigest() != entry.sha256:
            raise ArchiveError(
                f"{where} SHA-256 mismatch (its bytes are not the ones the manifest lists; damaged or "
                "forged in transit); nothing was imported: export again"
            )
        if rows != entry.rows:
            raise ArchiveError(f"{where} holds {rows} rows, manifest says {entry.rows}; nothing was imported")
        if entry.data_sha256 and text_sha.hexdigest() != entry.data_sha256:
            raise ArchiveError(f"{where} COPY data SHA-256 mismatch; nothing was imported")

    def finish(self) -> None:
        """Read to the end of the stream: no member left unread, none missing, the tar
        (and an age stream's last chunk) whole."""
        for _entry, text in self.members():
            for _ in text:
                pass
        missing = [t for t in self.manifest.tables if t.member not in self._seen]
        if missing:
            t = missing[0]
            raise ArchiveError(
                f"{self.origin}: {t.table}: member {t.member!r} is missing from the stream ({len(missing)} "
                f"of {len(self.manifest.tables)} member(s) never came): it is truncated or damaged; nothing "
                "was imported: check the command before the pipe and export again"
            )
        try:
            while self._plain.read(CHUNK):  # tar padding; an age stream's final chunk is checked here
                pass
        except _TAR_ERRORS as exc:
            raise self._truncated(f"at its end ({exc})") from None
        self._finished = True

    def _truncated(self, where: str) -> ArchiveError:
        return ArchiveError(
            f"{self.origin}: the stream ended {where}: it is truncated or damaged; nothing was imported: "
            "check the command before the pipe and export again"
        )

    def close(self) -> None:
        """Nothing to remove: the stream was never kept. stdin itself is the caller's."""
        if hasattr(self, "_tar"):
            self._tar.close()
        if self._owned is not None:
            self._owned.close()

    def __enter__(self) -> StreamArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_exact(fh: BinaryIO | IO[bytes], n: int) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < n:
        part = fh.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


__all__ = ["StreamArchive"]
