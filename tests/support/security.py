"""Keys and archive surgery for the security tests: age identities and minisign keys made
in-process (the interop tests make theirs with the real tools), and a forger that
rewrites a member and recomputes every checksum, as an attacker who can write the file
would."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import minisign
import zstandard
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edms_pgdump.archive.keys import bech32_encode
from edms_pgdump.archive.manifest import MANIFEST_CHECKSUM, manifest_checksum


@dataclass(frozen=True)
class AgeKey:
    identity_file: Path
    recipient: str
    secret_text: str  # AGE-SECRET-KEY-1…, to prove it never leaks


def make_age_key(folder: Path, name: str, mode: int = 0o600) -> AgeKey:
    key = X25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    secret = bech32_encode("age-secret-key-", raw).upper()
    recipient = bech32_encode("age", pub)
    path = folder / f"{name}.txt"
    path.write_text(f"# created: by the tests\n# public key: {recipient}\n{secret}\n")
    path.chmod(mode)
    return AgeKey(path, recipient, secret)


@dataclass(frozen=True)
class SignKey:
    secret_file: Path
    public_file: Path
    key_id: str  # as minisign prints it


def make_sign_key(folder: Path, name: str, password: str | None = None, mode: int = 0o600) -> SignKey:
    pair = minisign.KeyPair.generate()
    secret = pair.secret_key
    if password is not None:
        secret.encrypt(password)
    sk, pk = folder / f"{name}.key", folder / f"{name}.pub"
    sk.write_bytes(bytes(secret) + b"\n")
    sk.chmod(mode)
    pk.write_bytes(bytes(pair.public_key) + b"\n")
    key_id = format(int.from_bytes(bytes(pair.public_key._keynum_pk.key_id), "little"), "X")
    return SignKey(sk, pk, key_id)


def read_tar(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:") as tar:
        out = {}
        for m in tar.getmembers():
            fh = tar.extractfile(m)
            assert fh is not None
            out[m.name] = fh.read()
        return out


def write_tar(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def forge_member(files: dict[str, bytes], table: str, old: bytes, new: bytes) -> dict[str, bytes]:
    """``table``'s rows with ``old`` replaced by ``new``, and the manifest's sizes, hashes
    and checksum recomputed to match: every check but the signature passes."""
    manifest = json.loads(files["manifest.json"])
    entry = next(t for t in manifest["tables"] if t["table"] == table)
    text = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(files[entry["member"]])).read()
    assert old in text, f"{old!r} not in {table}"
    text = text.replace(old, new)
    stored = zstandard.ZstdCompressor().compress(text)
    entry.update(
        bytes=len(stored),
        sha256=hashlib.sha256(stored).hexdigest(),
        data_bytes=len(text),
        data_sha256=hashlib.sha256(text).hexdigest(),
    )
    manifest.pop(MANIFEST_CHECKSUM, None)
    manifest[MANIFEST_CHECKSUM] = manifest_checksum(manifest)
    out = dict(files)
    out[entry["member"]] = stored
    out["manifest.json"] = (json.dumps(manifest, indent=2) + "\n").encode()
    return out


def tool(name: str) -> str | None:
    """The path of a Debian tool (age, minisign), installing it with apt-get when this
    user may (apt-get update first if the package is not known yet); None when it
    cannot be had."""
    found = shutil.which(name)
    if found or not shutil.which("apt-get") or os.geteuid() != 0:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", name]
    for steps in ([install], [["apt-get", "update", "-q"], install]):
        for cmd in steps:
            subprocess.run(cmd, env=env, capture_output=True, timeout=600, check=False)
        if shutil.which(name):
            return shutil.which(name)
    return None
