"""The archive: ``manifest.json`` plus one COPY-text member per table.

Single-file form: an uncompressed tar whose first entry is the manifest and whose
members are individually zstd-compressed. Directory form: the same files in a folder.
Readers refuse unknown format versions, members not in the manifest, and any path
that is absolute, contains ``..`` or is not a regular file.

Protection (encryption.py, signing.py): the single file may be encrypted with age as a
whole (``age -d`` gives back the plain tar), and ``manifest.json`` may be signed with
minisign, the signature stored as the member ``manifest.json.minisig`` right after it.
The reader decrypts in place and checks the signature before it parses the manifest.
Checking that every member is whole (verify, import) lives in integrity.py; the hashing
and zstd streams both use are in archive_streams.py.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import zstandard

from edms_pgdump.archive.encryption import MAGIC, AgeReader, AgeWriter, is_encrypted
from edms_pgdump.archive.keys import Identity, Recipient, read_identities
from edms_pgdump.archive.manifest import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_CHECKSUM,
    MANIFEST_NAME,
    SIGNATURE_NAME,
    Manifest,
    TableEntry,
    check_member_name,
    manifest_checksum,
)
from edms_pgdump.archive.object_store import MultipartUpload, RemoteObject, check_bucket, is_s3
from edms_pgdump.archive.pipe import (
    STDIN,
    export_scratch,
    is_stream,
    remove_spool,
    spool_stdin,
    stdout_broken,
    stdout_for_archive,
)
from edms_pgdump.archive.signing import (
    MAX_SIGNATURE_BYTES,
    SignatureInfo,
    Signer,
    check_signature,
    load_trusted_keys,
)
from edms_pgdump.archive.streams import CHUNK, HashingReader, HashingWriter, decompressed_blocks
from edms_pgdump.errors import ArchiveError, UsageError

MAX_MANIFEST_BYTES = 64 * 1024 * 1024


@dataclass
class MemberInfo:
    table: str
    member: str
    rows: int
    bytes: int  # stored (compressed) size
    sha256: str  # of the stored bytes
    data_bytes: int  # COPY text size
    data_sha256: str  # of the COPY text
    compression: str


class MemberWriter:
    """Streams COPY text into one member, hashing both the text and the stored bytes.

    Each ``write`` is one pass over the block: hash, count rows, compress, write. hashlib
    and zstd release the GIL for large blocks, so the export runs this on a thread of
    its own (export_writer.py) while the next block is read from the server."""

    def __init__(
        self, path: Path, table: str, member: str, compression: str, level: int, durable: bool = True
    ) -> None:
        self.path = path
        self.durable = durable  # fsync at close: False when the file is copied into a tar later
        self.table = table
        self.member = member
        self.compression = compression
        self._fh = open(path, "wb")
        self._out = HashingWriter(self._fh)
        self._data_sha = hashlib.sha256()
        self.data_bytes = 0
        self.rows = 0
        self._z: Any = None
        if compression == "zstd":
            # one frame per member, as a stream_writer flushed with FLUSH_FRAME writes it
            self._z = zstandard.ZstdCompressor(level=level).compressobj()

    def write(self, block: bytes | bytearray) -> None:
        """Append ``block``: whole COPY text rows. Rows are counted from the text, as the
        import counts them."""
        self._data_sha.update(block)
        self.data_bytes += len(block)
        self.rows += block.count(b"\n")
        if self._z is not None:
            if out := self._z.compress(block):
                self._out.write(out)
        else:
            self._out.write(block)

    def close(self) -> MemberInfo:
        if self._z is not None:
            self._out.write(self._z.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH))
        self._fh.flush()
        if self.durable:
            os.fsync(self._fh.fileno())
        self._fh.close()
        return MemberInfo(
            table=self.table,
            member=self.member,
            rows=self.rows,
            bytes=self._out.size,
            sha256=self._out.sha.hexdigest(),
            data_bytes=self.data_bytes,
            data_sha256=self._data_sha.hexdigest(),
            compression=self.compression,
        )

    def abort(self) -> None:
        try:
            self._fh.close()
        except OSError:
            pass  # its buffer cannot be written either (a full disk): the file goes anyway
        finally:
            self.path.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_file(path: Path, data: bytes, durable: bool) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())


class ArchiveWriter:
    """Builds an archive in a scratch folder and publishes it atomically.

    Scratch names are unique per writer (pid and a random token), so two exports to the
    same output never write into each other's files; the last to publish wins and each
    published archive is whole. Scratch folders of dead writers (kill -9) are removed.

    ``recipients``: the published file is age-encrypted to them (single-file form only).
    ``signer``: ``manifest.json`` is signed and the signature stored beside it. The
    scratch folder is private to the user (0700): it holds unencrypted members until
    they are published.
    """

    def __init__(
        self,
        output: str | Path,
        *,
        directory: bool = False,
        recipients: Sequence[Recipient] = (),
        signer: Signer | None = None,
    ) -> None:
        if recipients and directory:
            raise UsageError(
                f"{output}: encryption (--encrypt-to) writes one file; drop --format dir, or encrypt "
                "the folder's files yourself"
            )
        self.output = Path(output)
        self.directory = directory
        self.recipients = tuple(recipients)
        self.signer = signer
        self.token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        # ``-o -``: the same tar goes to stdout, built in a private folder of $TMPDIR;
        # ``-o s3://bucket/key``: into a multipart upload (object_store.py), likewise
        self.to_stdout = is_stream(output)
        self.remote = output if isinstance(output, str) and is_s3(output) else None
        if self.to_stdout or self.remote is not None:
            if directory:
                where = "a pipe" if self.to_stdout else "an object"
                raise UsageError(f"-o {output}: {where} carries the single-file form; drop --format dir")
            # refused before any table is copied: a terminal, a missing bucket, no credentials
            if self.remote is not None:
                check_bucket(self.remote)
            else:
                stdout_for_archive()
            self.scratch = export_scratch()
        else:
            self._remove_stale_scratch()
            self.scratch = self.output.with_name(f"{self.output.name}.partial-{self.token}")
            self.scratch.mkdir(mode=0o700, parents=True)
        self.scratch.chmod(0o700)  # whatever the umask
        (self.scratch / "data").mkdir()

    def _remove_stale_scratch(self) -> None:
        """Scratch and temporary files left by writers that died (``.partial-<pid>-<token>``,
        ``.tmp-<pid>-<token>``, and the unversioned ``.partial`` of older releases). A moved-
        aside previous directory archive (``.old-…``) is never removed: it may be the only copy."""
        parent = self.output.parent
        if not parent.is_dir():
            return
        base = self.output.name + "."
        for p in parent.iterdir():
            if not p.name.startswith(base):
                continue
            kind, _, rest = p.name[len(base) :].partition("-")
            pid = rest.split("-", 1)[0]
            stale = (kind == "partial" and not rest) or (
                kind in ("partial", "tmp") and pid.isdigit() and not _pid_alive(int(pid))
            )
            if not stale:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)

    def member(self, index: int, table: str, compression: str, level: int = 3) -> MemberWriter:
        suffix = ".copy.zst" if compression == "zstd" else ".copy"
        name = f"data/{index:04d}{suffix}"
        # a directory archive is published by renaming the folder: its files must be on
        # disk; the single file is a tar copied from them and synced itself
        return MemberWriter(self.scratch / name, table, name, compression, level, durable=self.directory)

    def publish(self, manifest: Manifest) -> Manifest:
        """Write the manifest (sealed with its checksum) and move the archive into place;
        returns the manifest exactly as written."""
        manifest = manifest.sealed()
        raw = manifest.to_json()
        # a directory archive is published by renaming the folder, so what it holds is
        # synced first (as its members are); a file archive's tar is synced itself
        _write_file(self.scratch / MANIFEST_NAME, raw, durable=self.directory)
        head = [MANIFEST_NAME]
        if self.signer is not None:
            signature = self.signer.sign(raw, manifest.archive_id)
            _write_file(self.scratch / SIGNATURE_NAME, signature, durable=self.directory)
            head.append(SIGNATURE_NAME)
        if self.directory:
            old: Path | None = None
            if self.output.exists() or self.output.is_symlink():
                old = self.output.with_name(f"{self.output.name}.old-{self.token}")
                try:
                    os.replace(self.output, old)
                except FileNotFoundError:
                    old = None  # another export moved it aside first: nothing to put back
            try:
                os.replace(self.scratch, self.output)
            except OSError as exc:
                if old is not None and not self.output.exists():
                    os.replace(old, self.output)  # put the previous archive back
                    old = None
                raise ArchiveError(
                    f"{self.output}: another export published here at the same time ({exc.strerror}); "
                    "this export was not published, run it again"
                ) from None
            finally:
                if old is not None:
                    if old.is_dir() and not old.is_symlink():
                        shutil.rmtree(old, ignore_errors=True)
                    else:
                        old.unlink(missing_ok=True)
            return manifest
        names = head + [t.member for t in manifest.tables]
        if self.to_stdout:
            self._publish_stdout(names)
            return manifest
        if self.remote is not None:
            self._publish_remote(self.remote, names)
            return manifest
        tmp = self.output.with_name(f"{self.output.name}.tmp-{self.token}")
        try:
            if self.recipients:
                with open(tmp, "wb") as fh:
                    enc = AgeWriter(fh, self.recipients)
                    # "w|": a stream, so the tar never seeks in the ciphertext
                    with tarfile.open(fileobj=enc, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                        self._add(tar, names)
                    enc.close()
            else:
                with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
                    self._add(tar, names)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, self.output)
        finally:
            tmp.unlink(missing_ok=True)
        shutil.rmtree(self.scratch)
        return manifest

    def _publish_stdout(self, names: list[str]) -> None:
        """The file form's bytes, written to stdout as a stream (tar "w|" never seeks)."""
        fh = stdout_for_archive()
        try:
            sink: Any = AgeWriter(fh, self.recipients) if self.recipients else fh
            with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                self._add(tar, names)
            if self.recipients:
                sink.close()
            fh.flush()
        except BrokenPipeError as exc:
            raise stdout_broken(exc) from None
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def _publish_remote(self, url: str, names: list[str]) -> None:
        """The file form's bytes, streamed into a multipart upload that is completed only
        once the last byte is in: any failure (or Ctrl-C) aborts it, leaving no object."""
        try:
            size = sum((self.scratch / n).stat().st_size + 3 * tarfile.BLOCKSIZE for n in names)
            upload = MultipartUpload(url, size)
            try:
                sink: Any = AgeWriter(upload, self.recipients) if self.recipients else upload  # type: ignore[arg-type]
                with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    self._add(tar, names)
                if self.recipients:
                    sink.close()
                upload.complete()
            finally:
                upload.abort()  # a no-op once completed
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def _add(self, tar: tarfile.TarFile, names: list[str]) -> None:
        for name in names:
            tar.add(self.scratch / name, arcname=name, recursive=False)

    def abort(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)


# -- reading -----------------------------------------------------------------------


class ArchiveReader:
    """Read-only access to a file or directory archive; validates names and layout.

    An age-encrypted file is decrypted in place with ``identities`` (paths of age
    identity files, or loaded ``Identity`` objects). With ``trusted_keys`` (minisign
    public key files) the manifest's signature is checked before the manifest is even
    parsed: an unsigned archive, another signer or a changed manifest raise
    ArchiveError here, before any caller can write. ``signature`` says who signed
    (None: unsigned); ``warnings`` holds key files readable by others."""

    def __init__(
        self,
        path: str | Path | RemoteObject,
        *,
        identities: Sequence[str | Path | Identity] = (),
        trusted_keys: Sequence[str | Path] = (),
    ) -> None:
        self._spool: Path | None = None
        # ``s3://bucket/key``: read by ranged GETs pinned to one ETag (object_store.py)
        self._remote: RemoteObject | None = None
        if isinstance(path, RemoteObject):
            self._remote = path
        elif isinstance(path, str) and is_s3(path):
            self._remote = RemoteObject(path)
        name: str | Path = self._remote.url if self._remote is not None else cast("str | Path", path)
        self.path = Path(name)
        self.origin = str(name)
        if is_stream(name):
            # ``-``: stdin, kept in a private temporary file until this reader closes
            self._spool = spool_stdin()
            self.path = self._spool / "stream"
            self.origin = STDIN
        self._tar: tarfile.TarFile | None = None
        self._raw: IO[bytes] | None = None
        self._entries: dict[str, tarfile.TarInfo] = {}
        self.warnings: list[str] = []
        self.encrypted = False
        self.signature: SignatureInfo | None = None
        self._identities = list(identities)
        self._trusted = load_trusted_keys(trusted_keys)
        if self._remote is None and not self.path.exists():
            raise ArchiveError(f"{self.origin}: archive not found; check the path")
        try:
            if self._remote is not None:
                self._load_remote(self._remote)
            elif self.path.is_dir():
                self._load_dir()
            else:
                self._load_tar()
            self.manifest = self._read_manifest()
        except BaseException:
            self.close()
            raise

    def _load_dir(self) -> None:
        for root, dirs, files in os.walk(self.path, followlinks=False):
            for d in dirs:
                full = Path(root) / d
                if full.is_symlink():
                    rel = full.relative_to(self.path).as_posix()
                    raise ArchiveError(
                        f"{self.origin}: member {rel!r} is a link (symbolic link to "
                        f"{os.readlink(full)!r}); refusing the archive"
                    )
            for f in files:
                full = Path(root) / f
                rel = full.relative_to(self.path).as_posix()
                if full.is_symlink():
                    raise ArchiveError(
                        f"{self.origin}: member {rel!r} is a link (symbolic link to "
                        f"{os.readlink(full)!r}); refusing the archive"
                    )
                if not full.is_file():
                    # a FIFO or device would block or read forever
                    raise ArchiveError(
                        f"{self.origin}: member {rel!r} is not a regular file; refusing the archive"
                    )
                self._entries[rel] = tarfile.TarInfo(rel)
                self._entries[rel].size = full.stat().st_size

    def _open_encrypted(self, raw: IO[bytes] | None = None) -> IO[bytes]:
        if not self._identities:
            raise ArchiveError(
                f"{self.origin}: the archive is encrypted with age; pass --identity FILE (the age "
                "identity whose public key the exporter gave to --encrypt-to)"
            )
        identities: list[Identity] = []
        for i in self._identities:
            identities += [i] if isinstance(i, Identity) else read_identities(i, self.warnings)
        self._raw = raw if raw is not None else open(self.path, "rb")
        self.encrypted = True
        return cast("IO[bytes]", AgeReader(self._raw, identities, self.origin))

    def _load_remote(self, remote: RemoteObject) -> None:
        raw = cast("IO[bytes]", remote)
        self._load_tar(self._open_encrypted(raw) if remote.starts_with(MAGIC) else raw)

    def _load_tar(self, fileobj: IO[bytes] | None = None) -> None:
        plain = fileobj
        if plain is None and is_encrypted(self.path):
            plain = self._open_encrypted()
        try:
            if plain is not None:
                self._tar = tarfile.open(fileobj=plain, mode="r:")
            else:
                self._tar = tarfile.open(self.path, "r:")
            members = self._tar.getmembers()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ArchiveError(
                f"{self.origin}: not a readable edms-pgdump archive ({exc}); "
                "it may be truncated or not an archive at all"
            ) from None
        for m in members:
            check_member_name(m.name, self.origin)
            if m.issym() or m.islnk():
                kind = "symbolic link" if m.issym() else "hard link"
                raise ArchiveError(
                    f"{self.origin}: member {m.name!r} is a link ({kind} to {m.linkname!r}); "
                    "refusing the archive"
                )
            if m.isdir():
                continue
            if not m.isfile():
                raise ArchiveError(
                    f"{self.origin}: member {m.name!r} is not a regular file; refusing the archive"
                )
            if m.name in self._entries:
                raise ArchiveError(f"{self.origin}: member {m.name!r} appears twice; refusing the archive")
            self._entries[m.name] = m

    @property
    def member_names(self) -> list[str]:
        return sorted(self._entries)

    def stored_size(self, name: str) -> int:
        return int(self._entries[name].size)

    @contextmanager
    def open_stored(self, name: str) -> Iterator[IO[bytes]]:
        """The member's stored (possibly compressed) bytes."""
        check_member_name(name, self.origin)
        if name not in self._entries:
            raise ArchiveError(f"{self.origin}: member {name!r} is missing from the archive")
        if self._tar is not None:
            fh = self._tar.extractfile(self._entries[name])
            if fh is None:
                raise ArchiveError(f"{self.origin}: member {name!r} cannot be read")
            with fh:
                yield fh
        else:
            with open(self.path / name, "rb") as f:
                yield f

    def _read_manifest(self) -> Manifest:
        if MANIFEST_NAME not in self._entries:
            raise ArchiveError(
                f"{self.origin}: {MANIFEST_NAME} is missing; this is not an edms-pgdump archive"
            )
        if self._entries[MANIFEST_NAME].size > MAX_MANIFEST_BYTES:
            raise ArchiveError(f"{self.origin}: {MANIFEST_NAME} is implausibly large; refusing")
        with self.open_stored(MANIFEST_NAME) as fh:
            raw = fh.read()
        signature = None
        if SIGNATURE_NAME in self._entries:
            if self._entries[SIGNATURE_NAME].size > MAX_SIGNATURE_BYTES:
                raise ArchiveError(f"{self.origin}: {SIGNATURE_NAME} is implausibly large; refusing")
            with self.open_stored(SIGNATURE_NAME) as fh:
                signature = fh.read()
        # before parsing: nothing the manifest says is believed until its signer is known
        self.signature = check_signature(raw, signature, self._trusted, self.origin)
        return Manifest.from_json(raw, self.origin)

    def iter_data(self, name: str, compression: str) -> Iterator[bytes]:
        """The member's COPY text, decompressed, in blocks.

        The stored bytes and the text are hashed, and the rows counted, while they
        stream; at the end all three are compared with the manifest. So an import
        that reads each member once (after ``check_layout``) still refuses a damaged
        member, and one replaced after ``check_integrity`` (time of check to time of
        use) raises ArchiveError before the caller can commit, even when it has the
        same number of rows."""
        entry = self.manifest.entry_for_member(name)
        with self.open_stored(name) as raw:
            fh = HashingReader(raw)
            text_sha = hashlib.sha256()
            rows = 0
            for block in decompressed_blocks(fh, compression, self.origin, name):
                text_sha.update(block)
                rows += block.count(b"\n")
                yield block
            while fh.read(CHUNK):  # trailing bytes count too
                pass
            if entry is None:
                return
            if (
                fh.sha.hexdigest() != entry.sha256
                or (entry.data_sha256 and text_sha.hexdigest() != entry.data_sha256)
                or rows != entry.rows
            ):
                raise ArchiveError(
                    f"{self.origin}: {entry.table}: member {name!r} changed while it was being read "
                    "(its SHA-256 no longer matches the manifest); nothing read from it may be used"
                )

    def iter_entry(self, entry: TableEntry) -> Iterator[bytes]:
        """``iter_data`` for a manifest entry."""
        return self.iter_data(entry.member, entry.compression)

    def reopen(self) -> ArchiveReader:
        """Another reader of the same archive (one per thread: a reader is not shared),
        which checks every member against this reader's manifest, already verified: an
        archive replaced in between fails its members' SHA-256 there."""
        source = self._remote.reopened() if self._remote is not None else self.path
        other = ArchiveReader(source, identities=self._identities)
        other.manifest = self.manifest
        other.signature = self.signature
        other.origin = self.origin
        return other

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
        if self._raw is not None:
            self._raw.close()
        if self._remote is not None:
            self._remote.close()
        if self._spool is not None:
            remove_spool(self._spool)
            self._spool = None

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST_CHECKSUM",
    "MANIFEST_NAME",
    "SIGNATURE_NAME",
    "ArchiveReader",
    "ArchiveWriter",
    "Manifest",
    "MemberInfo",
    "MemberWriter",
    "TableEntry",
    "manifest_checksum",
]
