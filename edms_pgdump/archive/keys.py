"""Key files: age recipients and identities, minisign key paths, and their permissions.

Why here and not in the crypto modules: every key a user hands us arrives as a file or
a string on the command line, and every mistake with one (a typo in a recipient, an
identity file readable by others, a trusted-key list in the environment) must be
named with the file and the fix, without ever printing the secret itself.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edms_pgdump.errors import UsageError

TRUSTED_KEYS_ENV = "EDMS_PGDUMP_TRUSTED_KEYS"
SIGN_PASSWORD_ENV = "EDMS_PGDUMP_SIGN_PASSWORD"

RECIPIENT_HRP = "age"
IDENTITY_HRP = "age-secret-key-"
MAX_KEY_FILE_BYTES = 1 << 20

# -- bech32 (BIP 173), the encoding of age's X25519 keys ---------------------------

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: Iterable[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= _GEN[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: Iterable[int], frm: int, to: int, pad: bool) -> list[int] | None:
    acc = bits = 0
    out: list[int] = []
    maxv = (1 << to) - 1
    for value in data:
        acc = (acc << frm) | value
        bits += frm
        while bits >= to:
            bits -= to
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to - bits)) & maxv)
    elif bits >= frm or (acc << (to - bits)) & maxv:
        return None
    return out


def bech32_encode(hrp: str, payload: bytes) -> str:
    data = _convert_bits(payload, 8, 5, True) or []
    checksum = _polymod([*_hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ 1
    data += [(checksum >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[d] for d in data)


def bech32_decode(text: str) -> tuple[str, bytes] | None:
    """(human-readable part, payload), or None when ``text`` is not valid bech32."""
    if text.lower() != text and text.upper() != text:
        return None
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        return None
    hrp, rest = text[:pos], text[pos + 1 :]
    if any(c not in _CHARSET for c in rest):
        return None
    data = [_CHARSET.index(c) for c in rest]
    if _polymod([*_hrp_expand(hrp), *data]) != 1:
        return None
    payload = _convert_bits(data[:-6], 5, 8, False)
    return None if payload is None else (hrp, bytes(payload))


# -- age keys ------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """An age X25519 public key (``age1…``); printing it is harmless."""

    text: str
    public: bytes


@dataclass(frozen=True)
class Identity:
    """An age X25519 secret key, remembered with the file it came from. ``repr`` and
    ``str`` name the file only, so an identity in a traceback or a log leaks nothing."""

    source: str
    secret: bytes = field(repr=False)

    def __str__(self) -> str:
        return f"identity from {self.source}"


def parse_recipient(text: str, where: str) -> Recipient:
    value = text.strip()
    decoded = bech32_decode(value)
    if decoded is None or decoded[0] != RECIPIENT_HRP or len(decoded[1]) != 32:
        shown = value if len(value) <= 80 else value[:77] + "..."
        hint = (
            "that is an identity (a secret key), never pass it as a recipient; use its public key "
            "from `age-keygen -y`"
            if value.upper().startswith("AGE-SECRET-KEY-")
            else "an age X25519 recipient looks like age1… (`age-keygen -y key.txt` prints it)"
        )
        if value.upper().startswith("AGE-SECRET-KEY-"):
            shown = "AGE-SECRET-KEY-…"
        raise UsageError(f"{where}: {shown!r} is not an age recipient; {hint}")
    return Recipient(value.lower(), decoded[1])


def read_recipients_file(path: str | Path) -> list[Recipient]:
    """One recipient per line; blank lines and ``#`` comments skipped, as ``age -R`` does."""
    p = Path(path)
    text = _read_text(p, "--recipients-file")
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            found.append(parse_recipient(line, f"{p} line {n}"))
    if not found:
        raise UsageError(f"{p}: no recipients in this --recipients-file; add age1… lines")
    return found


def resolve_recipients(encrypt_to: Sequence[str], recipients_files: Sequence[str | Path]) -> list[Recipient]:
    found = [parse_recipient(r, "--encrypt-to") for r in encrypt_to]
    for f in recipients_files:
        found += read_recipients_file(f)
    unique: dict[bytes, Recipient] = {}
    for r in found:
        unique.setdefault(r.public, r)
    return list(unique.values())


def read_identities(path: str | Path, warnings: list[str]) -> list[Identity]:
    """The X25519 identities in an age identity file (``age-keygen`` output); a file
    readable by group or others adds a warning to ``warnings``."""
    p = Path(path)
    text = _read_text(p, "--identity")
    exposed = exposed_warning(p, "age identity")
    if exposed:
        warnings.append(exposed)
    found: list[Identity] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        decoded = bech32_decode(line)
        if decoded is None or decoded[0] != IDENTITY_HRP or len(decoded[1]) != 32:
            what = "an age recipient (a public key)" if line.startswith("age1") else "not an age identity"
            raise UsageError(
                f"{p} line {n}: {what}; --identity takes a file written by age-keygen "
                "(lines AGE-SECRET-KEY-1…)"
            )
        found.append(Identity(str(p), decoded[1]))
    if not found:
        raise UsageError(f"{p}: no age identity in this file; --identity takes a file written by age-keygen")
    return found


def exposed_warning(path: Path, what: str) -> str | None:
    """ssh's rule for private keys, as a warning: readable by group or others."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if os.name != "posix" or not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return None
    return (
        f"{path}: this {what} file is readable by group or others (mode {stat.S_IMODE(mode):04o}); "
        f"anyone who can read it can use the key: chmod 600 {path}"
    )


def trusted_key_paths(explicit: Sequence[str | Path] = ()) -> list[Path]:
    """The ``--trusted-key`` files plus those listed in ``$EDMS_PGDUMP_TRUSTED_KEYS``
    (separated by ``os.pathsep``), each once."""
    paths = [Path(p) for p in explicit]
    env = os.environ.get(TRUSTED_KEYS_ENV, "")
    paths += [Path(p) for p in env.split(os.pathsep) if p.strip()]
    unique: dict[str, Path] = {}
    for p in paths:
        unique.setdefault(str(p), p)
    return list(unique.values())


def read_key_bytes(path: Path, option: str) -> bytes:
    """A key file's bytes; a missing or unreadable file names the option and the fix."""
    try:
        if path.stat().st_size > MAX_KEY_FILE_BYTES:
            raise UsageError(f"{path}: too large for a key file ({option}); check the path")
        return path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: file not found ({option}); check the path") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory ({option}); pass the key file itself") from None
    except PermissionError:
        raise UsageError(
            f"{path}: cannot be read by this user ({option}); check its owner and mode"
        ) from None


def _read_text(path: Path, option: str) -> str:
    try:
        return read_key_bytes(path, option).decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a text key file ({option}); check the path") from None


__all__ = [
    "SIGN_PASSWORD_ENV",
    "TRUSTED_KEYS_ENV",
    "Identity",
    "Recipient",
    "bech32_decode",
    "bech32_encode",
    "exposed_warning",
    "parse_recipient",
    "read_identities",
    "read_key_bytes",
    "read_recipients_file",
    "resolve_recipients",
    "trusted_key_paths",
]
