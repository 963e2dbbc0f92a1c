"""minisign signatures of ``manifest.json``: who wrote the archive, checked before any write.

Why the manifest and only the manifest: it lists the SHA-256 of every member (stored
bytes and COPY text) and its own row counts, so a valid signature over its exact bytes
authenticates the whole archive, and the import already re-hashes each member as it
streams it. The signature is the standard minisign file (prehashed Ed25519, as
``minisign -S`` writes), stored as the member ``manifest.json.minisig``, so
``minisign -Vm manifest.json -p key.pub`` checks an extracted archive without us.
"""

from __future__ import annotations

import getpass
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import minisign

from edms_pgdump.archive.keys import SIGN_PASSWORD_ENV, exposed_warning, read_key_bytes
from edms_pgdump.errors import ArchiveError, UsageError

SIGNATURE_SUFFIX = ".minisig"
MAX_SIGNATURE_BYTES = 4096


def key_id_text(raw: bytes) -> str:
    """A key id as minisign prints it (``minisign public key ECBEA4A4969DD92``)."""
    return format(int.from_bytes(raw, "little"), "X")


@dataclass(frozen=True)
class SignatureInfo:
    """Who signed an archive's manifest, and whether that was checked.

    ``verified``: the signature matched a trusted key (``trusted_key`` names its file);
    False means the reader had no trusted key to check it with."""

    key_id: str
    trusted_comment: str
    verified: bool = False
    trusted_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "trusted_comment": self.trusted_comment,
            "verified": self.verified,
            "trusted_key": self.trusted_key,
        }

    def describe(self) -> str:
        how = (
            f"verified with {self.trusted_key}"
            if self.verified
            else "not verified: pass --trusted-key to check it"
        )
        comment = " ".join(self.trusted_comment.split())  # minisign separates with tabs
        return f"key {self.key_id} ({how}); trusted comment: {comment}"


class Signer:
    """A minisign secret key, decrypted and ready; ``repr`` names the file only."""

    def __init__(self, source: str, secret: minisign.SecretKey) -> None:
        self.source = source
        self._secret = secret
        self.key_id = key_id_text(bytes(secret._keynum_sk.key_id))

    def __repr__(self) -> str:
        return f"Signer({self.source!r}, key {self.key_id})"

    def sign(self, data: bytes, archive_id: str) -> bytes:
        """The ``.minisig`` file for ``data``; the trusted comment is signed too."""
        comment = f"timestamp:{int(time.time())}\tfile:manifest.json\tarchive:{archive_id}"
        sig = self._secret.sign(data, prehash=True, trusted_comment=comment)
        return bytes(sig) + b"\n"


def load_signer(
    path: str | Path,
    warnings: list[str],
    password: str | None = None,
    prompt: Callable[[str], str] | None = None,
) -> Signer:
    """Open a minisign secret key. A password-protected key takes ``password``, else
    ``$EDMS_PGDUMP_SIGN_PASSWORD``, else asks on the terminal (``prompt``, default
    getpass) when there is one. Neither the key nor the password ever enters a message."""
    p = Path(path)
    exposed = exposed_warning(p, "minisign secret key")
    if exposed:
        warnings.append(exposed)
    raw = read_key_bytes(p, "--sign-key")
    try:
        secret = minisign.SecretKey.from_bytes(raw)
    except (minisign.Error, ValueError):
        raise UsageError(
            f"{p}: not a minisign secret key (--sign-key); create one with `minisign -G -s {p} -p key.pub`"
        ) from None
    if secret.is_encrypted():
        if password is None:
            password = os.environ.get(SIGN_PASSWORD_ENV)
        if password is None and sys.stdin is not None and sys.stdin.isatty():
            password = (prompt or getpass.getpass)(f"Password for minisign key {p}: ")
        if password is None:
            raise UsageError(
                f"{p}: this minisign key is protected by a password; set {SIGN_PASSWORD_ENV} or run "
                "from a terminal to be asked for it"
            )
        try:
            secret.decrypt(password)
        except (minisign.Error, ValueError):
            raise UsageError(
                f"{p}: wrong password for this minisign key; check {SIGN_PASSWORD_ENV} or type it again"
            ) from None
    return Signer(str(p), secret)


@dataclass(frozen=True)
class TrustedKey:
    source: str
    key: minisign.PublicKey
    key_id: str


def load_trusted_keys(paths: Sequence[str | Path]) -> list[TrustedKey]:
    found = []
    for path in paths:
        p = Path(path)
        raw = read_key_bytes(p, "--trusted-key")
        try:
            key = minisign.PublicKey.from_bytes(raw)
        except (minisign.Error, ValueError):
            hint = (
                "that is a secret key: pass its public key (key.pub), and keep the secret one private"
                if b"secret key" in raw[:200]
                else f"--trusted-key takes the public key file written by `minisign -G` ({p})"
            )
            raise UsageError(f"{p}: not a minisign public key; {hint}") from None
        found.append(TrustedKey(str(p), key, key_id_text(bytes(key._keynum_pk.key_id))))
    return found


def check_signature(
    manifest: bytes, signature: bytes | None, trusted: Sequence[TrustedKey], origin: str
) -> SignatureInfo | None:
    """Who signed ``manifest``; with trusted keys, refuse (ArchiveError) an archive that
    is unsigned, signed by another key, or whose manifest no longer matches."""
    ids = ", ".join(f"{t.key_id} ({t.source})" for t in trusted)
    if signature is None:
        if trusted:
            raise ArchiveError(
                f"{origin}: the archive is not signed (no manifest.json.minisig), but trusted keys were "
                f"given ({ids}); refusing it before anything is written: have it exported with "
                "--sign-key, or drop --trusted-key to accept unsigned archives"
            )
        return None
    try:
        sig = minisign.Signature.from_bytes(signature)
    except (minisign.Error, ValueError):
        raise ArchiveError(
            f"{origin}: manifest.json.minisig is not a minisign signature; the archive is damaged or "
            "forged, refusing it before anything is written"
        ) from None
    key_id = key_id_text(sig._key_id)
    if not trusted:
        return SignatureInfo(key_id, sig.trusted_comment)
    match = [t for t in trusted if t.key_id == key_id]
    if not match:
        raise ArchiveError(
            f"{origin}: manifest.json is signed by key {key_id}, which is not a trusted key "
            f"(trusted: {ids}); refusing it before anything is written: pass that key's public file "
            "with --trusted-key only if you trust whoever holds it"
        )
    try:
        match[0].key.verify(manifest, sig)
    except (minisign.Error, ValueError):
        raise ArchiveError(
            f"{origin}: manifest.json does not match its signature by key {key_id} (the manifest or the "
            "signature was changed after signing); refusing it before anything is written: get the "
            "archive again from its exporter"
        ) from None
    return SignatureInfo(key_id, sig.trusted_comment, verified=True, trusted_key=match[0].source)


__all__ = [
    "SIGNATURE_SUFFIX",
    "SignatureInfo",
    "Signer",
    "TrustedKey",
    "check_signature",
    "key_id_text",
    "load_signer",
    "load_trusted_keys",
]
