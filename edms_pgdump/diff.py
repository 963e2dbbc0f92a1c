"""``diff``: an archive against a database, or two archives, by natural key.

Against a database, the archive is staged and resolved exactly as an import would,
then compared in a READ ONLY transaction (the import program's compare mode): rows
only in the archive, only in the target, present in both with other values, and
identical, with sample keys for each. Values are compared through natural keys, so
ids never matter: a document re-parented in the target differs even if no column of
its own changed.

A subset archive (``export --where``) speaks only for the rows in its scope, found on
the target as ``import --delete-missing`` finds it (``subset_scope.archive_scopes`` and
``target_scope``, the same filters and ownership, filled in the same READ ONLY
transaction, where the filter runs as the export ran it): for a where/owned table only
target rows in the scope count as only in the target; rows of a needed table the archive
lacks are not differences (the archive holds only the rows its kept rows reference).
Both are reported as ``outside_scope``. The scope is judged on the target's current
values, so a row whose owner the archive changes shows up once that owner's own
difference (which diff reports) is gone.

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

import psycopg
from psycopg import sql

from . import sqlgen
from .archive import ArchiveReader
from .db import Connection, server_error_message
from .errors import DatabaseError
from .import_options import ImportOptions
from .keys import trusted_key_paths
from .load import import_archive
from .manifest import Manifest, TableEntry
from .names import QualifiedName
from .prepare import prepare_import
from .program_steps import Execute, Program
from .subset import TableScope
from .subset_scope import TargetScope, archive_scopes, target_scope

KINDS = ("only_in_archive", "only_in_target", "different")


@dataclass
class TableDiff:
    table: str
    only_in_archive: int = 0
    only_in_target: int = 0
    different: int = 0
    identical: int = 0
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # target rows the archive lacks that are outside a subset archive's scope: not a
    # difference (0 for whole tables)
    outside_scope: int = 0
    scope: dict[str, Any] = field(default_factory=lambda: {"rule": "whole"})

    @property
    def differs(self) -> bool:
        return bool(self.only_in_archive or self.only_in_target or self.different)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "scope": self.scope,
            "only_in_archive": self.only_in_archive,
            "only_in_target": self.only_in_target,
            "outside_scope": self.outside_scope,
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
    """Import hooks: before the program, a subset archive's scope tables are created
    (the transaction is not READ ONLY yet); after the comparison ran, the scope is
    filled and the sample keys read from staging."""

    def __init__(self, sample_size: int, manifest: Manifest | None = None, origin: str = "") -> None:
        self.sample_size = sample_size
        self.manifest = manifest
        self.origin = origin
        self.program: Program | None = None
        self.catalog: Any = None
        self.samples: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.scopes: dict[QualifiedName, TableScope] = {}
        self.scope: TargetScope | None = None
        self.in_scope: dict[str, int] = {}  # where/owned/needed tables: absent rows in scope

    def before_load(self, conn: Connection, report: Any) -> None:
        if self.manifest is None:
            return
        prep = prepare_import(self.manifest, self.catalog, self.origin)
        self.scopes = archive_scopes(self.manifest, prep.plan, self.catalog, prep.loaded, self.origin, "diff")
        if self.scopes:
            self.scope = target_scope(prep.plan, self.catalog, self.scopes, read_only=True)
            for step in self.scope.creates:
                conn.execute(step.statement)

    def fill_scope(self, conn: Connection) -> None:
        assert self.scope is not None
        for step in self.scope.fill:
            assert isinstance(step, Execute)  # read only: statements, no write counting
            try:
                conn.execute(step.statement)
            except psycopg.Error as exc:
                raise DatabaseError(
                    f"{self.origin}: {step.table}: finding the subset's scope on the target failed "
                    f"({step.step}): {server_error_message(exc)}; nothing was written (diff is read only)"
                ) from None

    def after_load(self, conn: Connection, report: Any) -> None:
        program = self.program
        assert program is not None and program.plan is not None
        plan = program.plan
        n = self.sample_size
        if self.scope is not None:
            self.fill_scope(conn)
        for name in program.tables:
            tp = plan.tables[name]
            names = program.staging[name]
            loaded = set(program.fields[name])
            keys = [kf.name for kf in tp.key_fields]
            queries: dict[str, sql.Composed | None] = {
                "only_in_archive": sqlgen.new_rows(tp, names, n),
                "only_in_target": sqlgen.absent_rows(plan, tp, names, n),
                "different": sqlgen.changed_rows(tp, names, loaded, n),
            }
            rule = self.scopes[name].rule if name in self.scopes else "whole"
            if rule != "whole":
                within = self.scope.conditions.get(name) if self.scope is not None else None
                if within is None:  # needed: the archive holds only the rows kept rows need
                    self.in_scope[str(name)] = 0
                    queries["only_in_target"] = None
                    queries["outside_scope"] = sqlgen.absent_rows(plan, tp, names, n)
                else:
                    row = conn.execute(sqlgen.count_absent(plan, tp, names, within)).fetchone()
                    self.in_scope[str(name)] = int(row[0]) if row else 0
                    queries["only_in_target"] = sqlgen.absent_rows(plan, tp, names, n, within)
                    outside = sql.SQL("NOT ({})").format(within)
                    queries["outside_scope"] = sqlgen.absent_rows(plan, tp, names, n, outside)
            self.samples[str(name)] = {
                kind: [dict(zip(keys, (_plain(v) for v in row[1:]))) for row in conn.execute(q).fetchall()]
                if q is not None
                else []
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
    """Compare ``archive`` with the database at ``dsn`` by natural key; read only.
    A subset archive is compared within its scope (see the module's docstring)."""
    options = ImportOptions(
        dry_run=True, compare_only=True, constraints="keep", on_conflict="update", sample_size=sample_size
    )
    with _open(archive, identities, trusted_keys) as reader:
        hooks = _Samples(sample_size, reader.manifest, str(archive))
        report = import_archive(dsn, reader=reader, options=options, hooks=hooks)
    result = DiffResult(str(archive), report.target)
    scopes = {str(t): s for t, s in hooks.scopes.items()}
    for t in report.tables:
        in_scope = hooks.in_scope.get(t.table, t.absent)
        result.tables.append(
            TableDiff(
                t.table,
                only_in_archive=t.inserted,
                only_in_target=in_scope,
                different=t.updated,
                identical=t.unchanged,
                samples=hooks.samples.get(t.table, {}),
                outside_scope=t.absent - in_scope,
                scope=scopes[t.table].to_dict() if t.table in scopes else {"rule": "whole"},
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
