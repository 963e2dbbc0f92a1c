"""Integrity checks of an archive: every member's size, hash and row count against the manifest.

Kept apart from archive.py, which reads and writes archives, because these checks
answer a different question (is this archive whole?) and are called from verify and
import, not from the reader. ``check_layout`` looks at sizes only, for an import that
re-hashes each member while it streams it (and asks ``member_damage`` why one failed);
``check_integrity`` reads every member.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edms_pgdump.archive.manifest import MANIFEST_NAME, SIGNATURE_NAME, TableEntry
from edms_pgdump.archive.package import ArchiveReader
from edms_pgdump.archive.streams import CHUNK, HashingReader, decompressed_blocks
from edms_pgdump.errors import ArchiveError

# told of each member before it is read: (table, its number, how many), for progress
Each = Callable[[str, int, int], None]


@dataclass
class IntegrityReport:
    """Per table: member, rows and ok; ``damages`` names each problem, so verify can
    list them all instead of stopping at the first."""

    archive: str
    archive_id: str
    tables: list[dict[str, Any]] = field(default_factory=list)
    damages: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.damages

    def to_dict(self) -> dict[str, Any]:
        return {
            "archive": self.archive,
            "archive_id": self.archive_id,
            "ok": self.ok,
            "tables": self.tables,
            "damages": self.damages,
        }


def check_layout(reader: ArchiveReader) -> IntegrityReport:
    """What can be checked without reading any member: every listed member present with
    its recorded size, nothing unlisted. An import that then streams each member through
    ``iter_data`` (which re-hashes and counts) reads every member once, not twice."""
    return _check(reader, read_data=False)


def check_integrity(reader: ArchiveReader, each: Each | None = None) -> IntegrityReport:
    """Recompute sizes, hashes and row counts of every member; name each damage.
    ``each`` hears of every member before it is read (table, its number, how many)."""
    return _check(reader, read_data=True, each=each)


def _check(reader: ArchiveReader, *, read_data: bool, each: Each | None = None) -> IntegrityReport:
    m = reader.manifest
    report = IntegrityReport(reader.origin, m.archive_id)
    listed = {t.member for t in m.tables}
    for extra in sorted(set(reader.member_names) - listed - {MANIFEST_NAME, SIGNATURE_NAME}):
        report.damages.append(f"member {extra!r} is not listed in the manifest (extra member)")
    for i, t in enumerate(m.tables, 1):
        name, table = t.member, t.table
        if each is not None and read_data:
            each(table, i, len(m.tables))
        entry: dict[str, Any] = {"table": table, "member": name, "rows": t.rows, "ok": False}
        report.tables.append(entry)
        if name not in reader.member_names:
            report.damages.append(f"{table}: member {name!r} is missing")
            continue
        size = reader.stored_size(name)
        if size != t.bytes:
            kind = "truncated" if size < t.bytes else "has appended bytes"
            report.damages.append(f"{table}: member {name!r} {kind} ({size} bytes, manifest says {t.bytes})")
            continue
        if read_data:
            damage = member_damage(reader, t)
            if damage:
                report.damages.append(f"{table}: {damage}")
                continue
        entry["ok"] = True
    return report


def member_damage(reader: ArchiveReader, t: TableEntry) -> str | None:
    """Why a member's bytes do not match its entry, or None. One pass over the stored
    bytes (hashed while they decompress): an archive in object storage is downloaded once
    to prove it. A SHA-256 mismatch is named before a member that does not decompress."""
    rows = 0
    data_sha = hashlib.sha256()
    broken: str | None = None
    with reader.open_stored(t.member) as fh:
        stored = HashingReader(fh)
        try:
            for block in decompressed_blocks(stored, t.compression, reader.origin, t.member):
                rows += block.count(b"\n")
                data_sha.update(block)
        except ArchiveError as exc:
            broken = str(exc)
        while stored.read(CHUNK):  # the rest of the stored bytes (trailing, or after the break)
            pass
    if stored.sha.hexdigest() != t.sha256:
        return f"member {t.member!r} SHA-256 mismatch (content overwritten; same size)"
    if broken is not None:
        return broken
    if rows != t.rows:
        return f"member {t.member!r} holds {rows} rows, manifest says {t.rows}"
    if t.data_sha256 and data_sha.hexdigest() != t.data_sha256:
        return f"member {t.member!r} COPY data SHA-256 mismatch"
    return None


def read_member_text(reader: ArchiveReader, table: TableEntry) -> bytes:
    """Whole member text; for tests and small tables only."""
    buf = io.BytesIO()
    for block in reader.iter_entry(table):
        buf.write(block)
    return buf.getvalue()


__all__ = ["IntegrityReport", "check_integrity", "check_layout", "member_damage", "read_member_text"]
