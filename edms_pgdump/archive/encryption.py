"""age v1 encryption (X25519 recipients) of the single-file archive, readable in place.

Why not pyrage for the reading side: its API decrypts a whole buffer, or pushes a whole
stream into a writer. The import reads the manifest, checks every member, then streams
members in load order, so it needs random access into the plaintext. age's payload is
a sequence of independently authenticated 64 KiB chunks (the STREAM construction), so
any chunk can be decrypted on its own: ``AgeReader`` is a seekable file over the
ciphertext that decrypts only the chunks asked for. Memory stays at one chunk, and
no plaintext ever touches the disk. The format is age's, byte for byte
(https://age-encryption.org/v1): ``age -d -i key.txt archive > plain`` decrypts what
``AgeWriter`` writes, and files written by ``age -r`` are read here; the tests check
both against the age command-line tool and pyrage.
"""

from __future__ import annotations

import base64
import hmac
import io
import os
from collections.abc import Sequence
from hashlib import sha256
from typing import IO, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from edms_pgdump.archive.keys import Identity, Recipient
from edms_pgdump.archive.streams import SeekableBytes
from edms_pgdump.errors import ArchiveError

MAGIC = b"age-encryption.org/v1\n"
CHUNK = 64 * 1024
TAG = 16
SEALED_CHUNK = CHUNK + TAG
NONCE = 16
MAX_HEADER = 1 << 20
_X25519_INFO = b"age-encryption.org/v1/X25519"


def is_encrypted(path: str | os.PathLike[str]) -> bool:
    """Whether the file starts like an age file (a plain archive starts with a tar header)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(MAGIC)) == MAGIC
    except (IsADirectoryError, PermissionError, FileNotFoundError):
        return False


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _unb64(text: bytes) -> bytes:
    """age's base64: standard alphabet, no padding, canonical."""
    data = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    if _b64(data) != text:
        raise ValueError("non-canonical base64")
    return data


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _chunk_nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


# -- writing -------------------------------------------------------------------------


class AgeWriter:
    """A write-only stream that encrypts to ``recipients`` as it goes; ``close()`` writes
    the final chunk (and does not close ``fh``)."""

    def __init__(self, fh: BinaryIO, recipients: Sequence[Recipient]) -> None:
        if not recipients:
            raise ValueError("at least one recipient")
        self.fh = fh
        file_key = os.urandom(16)
        header = MAGIC
        for r in recipients:
            eph = X25519PrivateKey.generate()
            share = _raw_public(eph.public_key())
            shared = eph.exchange(X25519PublicKey.from_public_bytes(r.public))
            wrap = _hkdf(shared, share + r.public, _X25519_INFO)
            body = ChaCha20Poly1305(wrap).encrypt(bytes(12), file_key, None)
            header += b"-> X25519 " + _b64(share) + b"\n" + _b64(body) + b"\n"
        header += b"---"
        mac = hmac.new(_hkdf(file_key, b"", b"header"), header, sha256).digest()
        nonce = os.urandom(NONCE)
        fh.write(header + b" " + _b64(mac) + b"\n" + nonce)
        self._aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
        self._buf = bytearray()
        self._index = 0
        self._pos = 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._buf += data
        self._pos += len(data)
        # a full chunk is only sealed once more data follows: the last one is marked
        while len(self._buf) > CHUNK:
            self._seal(bytes(self._buf[:CHUNK]), last=False)
            del self._buf[:CHUNK]
        return len(data)

    def _seal(self, chunk: bytes, last: bool) -> None:
        self.fh.write(self._aead.encrypt(_chunk_nonce(self._index, last), chunk, None))
        self._index += 1

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        self.fh.flush()

    def close(self) -> None:
        if not self.closed:
            self._seal(bytes(self._buf), last=True)
            self._buf.clear()
            self.fh.flush()
            self.closed = True


# -- reading -------------------------------------------------------------------------


class AgeReader(SeekableBytes):
    """A seekable, read-only view of the plaintext of an age file.

    Opening it checks the header's MAC and the final chunk, so a wrong identity, a
    changed header and a truncated file are all refused before any plaintext is used;
    every other chunk is authenticated when it is read."""

    def __init__(self, fh: IO[bytes], identities: Sequence[Identity], origin: str) -> None:
        super().__init__()
        self._fh = fh
        self.origin = origin
        header, stanzas, mac, start = self._read_header()
        file_key = self._unwrap(stanzas, identities)
        expected = hmac.new(_hkdf(file_key, b"", b"header"), header, sha256).digest()
        if not hmac.compare_digest(mac, expected):
            raise ArchiveError(
                f"{origin}: the age header does not match its MAC (the file was changed after it was "
                "encrypted); get the archive again from its exporter"
            )
        fh.seek(start)
        nonce = fh.read(NONCE)
        total = fh.seek(0, io.SEEK_END) - start - NONCE
        if len(nonce) < NONCE or total < TAG:
            raise self._truncated()
        self._aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
        self._payload = start + NONCE
        self._chunks = -(-total // SEALED_CHUNK)
        last_len = total - (self._chunks - 1) * SEALED_CHUNK
        if last_len < TAG or (last_len == TAG and self._chunks > 1):
            raise self._truncated()
        self.size = (self._chunks - 1) * CHUNK + last_len - TAG
        self._pos = 0
        self._cached: tuple[int, bytes] | None = None
        self._chunk(self._chunks - 1)  # a file cut at a chunk boundary fails here

    # header ------------------------------------------------------------------------

    def _bad(self, why: str) -> ArchiveError:
        return ArchiveError(f"{self.origin}: not a valid age file ({why}); the archive is damaged")

    def _truncated(self) -> ArchiveError:
        return ArchiveError(
            f"{self.origin}: the encrypted archive is truncated or its end was changed (its last "
            "chunk is missing, cut short or fails authentication); copy it again or re-export it"
        )

    def _read_header(self) -> tuple[bytes, list[tuple[list[bytes], bytes]], bytes, int]:
        fh = self._fh
        if fh.seekable():
            fh.seek(0)
        if fh.readline(len(MAGIC)) != MAGIC:
            raise self._bad("no age-encryption.org/v1 line")
        header = MAGIC
        stanzas: list[tuple[list[bytes], bytes]] = []
        while True:
            line = fh.readline(MAX_HEADER)
            if not line.endswith(b"\n") or len(header) > MAX_HEADER:
                raise self._bad("the header ends early")
            if line.startswith(b"--- "):
                header += b"---"
                try:
                    mac = _unb64(line[4:-1])
                except ValueError:
                    raise self._bad("the header MAC is not base64") from None
                return header, stanzas, mac, fh.tell() if fh.seekable() else -1
            if not line.startswith(b"-> "):
                raise self._bad("a header line is neither a stanza nor the MAC")
            header += line
            args = line[3:-1].split(b" ")
            body = b""
            while True:  # body lines are 64 columns; a shorter one ends the stanza
                bline = fh.readline(MAX_HEADER)
                if not bline.endswith(b"\n"):
                    raise self._bad("a stanza ends early")
                header += bline
                body += bline[:-1]
                if len(bline) - 1 < 64:
                    break
            try:
                stanzas.append((args, _unb64(body)))
            except ValueError:
                raise self._bad("a stanza body is not base64") from None

    def _unwrap(self, stanzas: list[tuple[list[bytes], bytes]], identities: Sequence[Identity]) -> bytes:
        kinds = {s[0][0].decode("ascii", "replace") for s in stanzas if s[0]}
        for args, body in stanzas:
            if len(args) != 2 or args[0] != b"X25519":
                continue
            try:
                share = _unb64(args[1])
                peer = X25519PublicKey.from_public_bytes(share)
            except ValueError:
                raise self._bad("an X25519 stanza is malformed") from None
            for ident in identities:
                key = X25519PrivateKey.from_private_bytes(ident.secret)
                shared = key.exchange(peer)
                wrap = _hkdf(shared, share + _raw_public(key.public_key()), _X25519_INFO)
                try:
                    return ChaCha20Poly1305(wrap).decrypt(bytes(12), body, None)
                except InvalidTag:
                    continue
        if "scrypt" in kinds:
            raise ArchiveError(
                f"{self.origin}: the archive is encrypted with a passphrase (age -p); edms-pgdump reads "
                "archives encrypted to X25519 recipients: decrypt it first with age -d, or re-encrypt "
                "it to a recipient (age -r)"
            )
        sources = ", ".join(sorted({i.source for i in identities}))
        raise ArchiveError(
            f"{self.origin}: none of the identities given ({sources}) can decrypt this archive; it was "
            f"encrypted to {len(stanzas)} other recipient(s): pass the --identity whose public key "
            "(age-keygen -y FILE) the exporter gave to --encrypt-to"
        )

    # reading -----------------------------------------------------------------------

    def _chunk(self, index: int) -> bytes:
        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        self._fh.seek(self._payload + index * SEALED_CHUNK)
        sealed = self._fh.read(SEALED_CHUNK)
        last = index == self._chunks - 1
        try:
            plain = self._aead.decrypt(_chunk_nonce(index, last), sealed, None)
        except InvalidTag:
            if last:
                raise self._truncated() from None
            raise ArchiveError(
                f"{self.origin}: encrypted chunk {index} (bytes {index * CHUNK}-{(index + 1) * CHUNK} "
                "of the plaintext) fails authentication: the file was changed or damaged after it was "
                "encrypted; get the archive again from its exporter"
            ) from None
        self._cached = (index, plain)
        return plain

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self.size:
            index, offset = divmod(self._pos, CHUNK)
            plain = self._chunk(index)
            n = min(len(view) - done, len(plain) - offset)
            view[done : done + n] = plain[offset : offset + n]
            done += n
            self._pos += n
        return done

    def close(self) -> None:
        self._cached = None
        super().close()


class AgeStreamReader(AgeReader):
    """The plaintext of an age stream read once, front to back (``import -``).

    The header and its MAC are checked when it opens; each chunk is authenticated as it
    is read, one chunk read ahead so the last one is known (age marks it in the nonce):
    a stream cut at a chunk boundary, or with its end changed, fails at its end, so a
    reader that reads to EOF before it trusts anything refuses it."""

    def __init__(self, fh: IO[bytes], identities: Sequence[Identity], origin: str) -> None:
        io.RawIOBase.__init__(self)
        self._fh = fh
        self.origin = origin
        header, stanzas, mac, _ = self._read_header()
        file_key = self._unwrap(stanzas, identities)
        expected = hmac.new(_hkdf(file_key, b"", b"header"), header, sha256).digest()
        if not hmac.compare_digest(mac, expected):
            raise ArchiveError(
                f"{origin}: the age header does not match its MAC (the stream was changed after it "
                "was encrypted); get the archive again from its exporter"
            )
        nonce = self._exact(NONCE)
        if len(nonce) < NONCE:
            raise self._truncated()
        self._aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
        self._index = 0
        self._ahead = self._exact(SEALED_CHUNK)
        if len(self._ahead) < TAG:
            raise self._truncated()
        self._plain = b""
        self._offset = 0
        self._done = False

    def _exact(self, n: int) -> bytes:
        parts: list[bytes] = []
        got = 0
        while got < n:
            part = self._fh.read(n - got)
            if not part:
                break
            parts.append(part)
            got += len(part)
        return b"".join(parts)

    def _next_chunk(self) -> None:
        sealed = self._ahead
        self._ahead = self._exact(SEALED_CHUNK) if len(sealed) == SEALED_CHUNK else b""
        last = not self._ahead
        try:
            self._plain = self._aead.decrypt(_chunk_nonce(self._index, last), sealed, None)
        except InvalidTag:
            if last:
                raise self._truncated() from None
            raise ArchiveError(
                f"{self.origin}: encrypted chunk {self._index} (bytes {self._index * CHUNK}-"
                f"{(self._index + 1) * CHUNK} of the plaintext) fails authentication: the stream was "
                "changed or damaged after it was encrypted; get the archive again from its exporter"
            ) from None
        self._offset = 0
        self._index += 1
        self._done = last

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        raise OSError("an age stream is read front to back")

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        raise OSError("an age stream is read front to back")

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view):
            if self._offset >= len(self._plain):
                if self._done:
                    break
                self._next_chunk()
                continue
            n = min(len(view) - done, len(self._plain) - self._offset)
            view[done : done + n] = self._plain[self._offset : self._offset + n]
            done += n
            self._offset += n
        return done

    def close(self) -> None:
        self._plain = b""
        io.RawIOBase.close(self)


__all__ = ["MAGIC", "AgeReader", "AgeStreamReader", "AgeWriter", "is_encrypted"]
