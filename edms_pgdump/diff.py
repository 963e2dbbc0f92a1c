"""``diff``: an archive against a database, or two archives, by natural key.

Against a database, the archive is staged and resolved exactly as an import would,
then compared in a READ ONLY transaction (the import program's compare mode): rows
only in the archive, only in the target, present in both with other values, and
identical, with sample keys for each. Values are compared through natural keys, so
ids never matter: a document re-parented in the target differs even if no column of
its own changed.

Two archives need no database: their members are COPY text of natural-key rows, so
the same content exported from databases with different ids is the same multiset
of lines. Each table's digest is an order-independent sum of per-line hashes (for
``--sorted`` archives the stored ``data_sha256`` already is one).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import sqlgen
from .archive import ArchiveReader
from .db import Connection
from .import_options import ImportOptions
from .keys import trusted_key_paths
from .load import import_archive
from .manifest import TableEntry
from .program_steps import Program

KINDS = ("only_in_archive", "only_in_target", "different")


@dataclass
class TableDiff:
    table: str
    only_in_archive: int = 0
    only_in_target: int = 0
    different: int = 0
    identical: int = 0
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def differs(self) -> bool:
        return bool(self.only_in_archive or self.only_in_target or self.different)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "only_in_archive": self.only_in_archive,
            "only_in_target": self.only_in_target,
            "different": self.different,
            "identical": self.identical,
            "samples": self.samples,
        }


@dataclass
class ArchivesTableDiff:
    table: str
    rows_a: int | None
    rows_b: int | None
    digest_a: str | None
    digest_b: str | None

    @property
    def differs(self) -> bool:
        return self.rows_a != self.rows_b or self.digest_a != self.digest_b

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "rows_a": self.rows_a,
            "rows_b": self.rows_b,
            "digest_a": self.digest_a,
            "digest_b": self.digest_b,
            "identical": not self.differs,
        }


@dataclass
class DiffResult:
    archive: str
    target: str
    tables: list[TableDiff] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not any(t.differs for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {
            "archive": self.archive,
            "target": self.target,
            "identical": self.identical,
            "tables": [t.to_dict() for t in self.tables],
        }


@dataclass
class ArchivesDiffResult:
    archive_a: str
    archive_b: str
    tables: list[ArchivesTableDiff] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not any(t.differs for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {
            "archive_a": self.archive_a,
            "archive_b": self.archive_b,
            "identical": self.identical,
            "tables": [t.to_dict() for t in self.tables],
        }


class _Samples:
    """Import hooks that, after the comparison ran, read sample keys from staging."""

    def __init__(self, sample_size: int) -> None:
        self.sample_size = sample_size
        self.program: Program | None = None
        self.catalog: Any = None
        self.samples: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def before_load(self, conn: Connection, report: Any) -> None:
        pass

    def after_load(self, conn: Connection, report: Any) -> None:
        program = self.program
        assert program is not None and program.plan is not None
        plan = program.plan
        n = self.sample_size
        for name in program.tables:
            tp = plan.tables[name]
            names = program.staging[name]
            loaded = set(program.fields[name])
            keys = [kf.name for kf in tp.key_fields]
            queries = {
                "only_in_archive": sqlgen.new_rows(tp, names, n),
                "only_in_target": sqlgen.absent_rows(plan, tp, names, n),
                "different": sqlgen.changed_rows(tp, names, loaded, n),
            }
            self.samples[str(name)] = {
                kind: [dict(zip(keys, (_plain(v) for v in row[1:]))) for row in conn.execute(q).fetchall()]
                for kind, q in queries.items()
            }


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool, list, dict)) else str(value)


def _open(
    archive: str | Path, identities: Sequence[str | Path], trusted: Sequence[str | Path]
) -> ArchiveReader:
    return ArchiveReader(archive, identities=list(identities), trusted_keys=trusted_key_paths(trusted))


def diff_database(
    dsn: str,
    archive: str | Path,
    *,
    identities: Sequence[str | Path] = (),
    trusted_keys: Sequence[str | Path] = (),
    sample_size: int = 5,
) -> DiffResult:
    """Compare ``archive`` with the database at ``dsn`` by natural key; read only."""
    hooks = _Samples(sample_size)
    options = ImportOptions(
        dry_run=True, compare_only=True, constraints="keep", on_conflict="update", sample_size=sample_size
    )
    with _open(archive, identities, trusted_keys) as reader:
        report = import_archive(dsn, reader=reader, options=options, hooks=hooks)
    result = DiffResult(str(archive), report.target)
    for t in report.tables:
        result.tables.append(
            TableDiff(
                t.table,
                only_in_archive=t.inserted,
                only_in_target=t.absent,
                different=t.updated,
                identical=t.unchanged,
                samples=hooks.samples.get(t.table, {}),
            )
        )
    return result


def table_digest(reader: ArchiveReader, entry: TableEntry) -> str:
    """Order-independent: the sum, modulo 2**128, of a hash of every row's COPY line."""
    total = 0
    tail = b""
    for block in reader.iter_entry(entry):
        lines = (tail + block).split(b"\n")
        tail = lines.pop()
        total += sum(int.from_bytes(hashlib.blake2b(line, digest_size=16).digest(), "big") for line in lines)
    if tail:
        total += int.from_bytes(hashlib.blake2b(tail, digest_size=16).digest(), "big")
    return f"rows-blake2b128-sum:{total % (1 << 128):032x}"


def diff_archives(
    archive_a: str | Path,
    archive_b: str | Path,
    *,
    identities: Sequence[str | Path] = (),
    trusted_keys: Sequence[str | Path] = (),
) -> ArchivesDiffResult:
    """Compare two archives table by table, without a database."""
    result = ArchivesDiffResult(str(archive_a), str(archive_b))
    with _open(archive_a, identities, trusted_keys) as a, _open(archive_b, identities, trusted_keys) as b:
        entries_a = {t.table: t for t in a.manifest.tables}
        entries_b = {t.table: t for t in b.manifest.tables}
        for table in sorted(set(entries_a) | set(entries_b)):
            ea, eb = entries_a.get(table), entries_b.get(table)
            result.tables.append(
                ArchivesTableDiff(
                    table,
                    ea.rows if ea else None,
                    eb.rows if eb else None,
                    table_digest(a, ea) if ea else None,
                    table_digest(b, eb) if eb else None,
                )
            )
    return result
