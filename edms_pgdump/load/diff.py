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
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from edms_pgdump import sqlgen
from edms_pgdump.archive.keys import trusted_key_paths
from edms_pgdump.archive.manifest import Manifest, TableEntry
from edms_pgdump.archive.package import ArchiveReader
from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.db import Connection, server_error_message
from edms_pgdump.errors import DatabaseError
from edms_pgdump.export.subset import TableScope
from edms_pgdump.load.subset_scope import TargetScope, archive_scopes, target_scope
from edms_pgdump.load.transaction import ImportHooks, ImportInput, load_archive
from edms_pgdump.options import ImportOptions, Progress
from edms_pgdump.program.steps import Execute, Program, Step
from edms_pgdump.results import ArchivesDiffResult, ArchivesTableDiff, DiffResult, ImportReport, TableDiff


class _Samples(ImportHooks):
    """Hooks of the comparison's transaction: before the program, a subset archive's
    scope tables are created (the transaction is not READ ONLY yet), from the plan the
    transaction prepared; after the comparison ran, the scope is filled and the sample
    keys read from staging. What they find stays here."""

    def __init__(self, sample_size: int, manifest: Manifest, origin: str) -> None:
        self.sample_size = sample_size
        self.manifest = manifest
        self.origin = origin
        self.samples: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.scopes: dict[QualifiedName, TableScope] = {}
        self.scope: TargetScope | None = None
        self.in_scope: dict[str, int] = {}  # where/owned/needed tables: absent rows in scope

    def before_program(
        self, conn: Connection, given: ImportInput, program: Program, report: ImportReport
    ) -> Sequence[Step]:
        plan, catalog = given.plan, given.catalog
        self.scopes = archive_scopes(self.manifest, plan, catalog, given.loaded, self.origin, "diff")
        if not self.scopes:
            return ()
        self.scope = target_scope(given.plan, given.catalog, self.scopes, read_only=True)
        return tuple(self.scope.creates)

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

    def after_program(self, conn: Connection, program: Program, report: ImportReport) -> Sequence[Step]:
        assert program.plan is not None
        plan = program.plan
        n = self.sample_size
        if self.scope is not None:
            self.fill_scope(conn)
        counted = {t.table: t for t in report.tables}
        for name in program.tables:
            tp = plan.tables[name]
            found = counted[str(name)]
            names = program.staging[name]
            loaded = set(program.fields[name])
            keys = [kf.name for kf in tp.key_fields]
            # the totals are the comparison's counts: the queries read samples only
            queries: dict[str, sql.Composed | None] = {
                "only_in_archive": sqlgen.new_rows(tp, names, n, total=False),
                "only_in_target": sqlgen.absent_rows(plan, tp, names, n, total=False),
                "different": sqlgen.changed_rows(tp, names, loaded, n, total=False),
            }
            rule = self.scopes[name].rule if name in self.scopes else "whole"
            if rule != "whole":
                within = self.scope.conditions.get(name) if self.scope is not None else None
                if within is None:  # needed: the archive holds only the rows kept rows need
                    self.in_scope[str(name)] = 0
                    queries["only_in_target"] = None
                    queries["outside_scope"] = sqlgen.absent_rows(plan, tp, names, n, total=False)
                else:
                    row = conn.execute(sqlgen.count_absent(plan, tp, names, within)).fetchone()
                    self.in_scope[str(name)] = int(row[0]) if row else 0
                    queries["only_in_target"] = sqlgen.absent_rows(plan, tp, names, n, within, total=False)
                    outside = sql.SQL("NOT ({})").format(within)
                    queries["outside_scope"] = sqlgen.absent_rows(plan, tp, names, n, outside, total=False)
            # a kind the comparison counted none of has no sample to find: its query (a
            # LIMIT that never fills) would scan both sides again for nothing
            in_scope = self.in_scope.get(str(name), found.absent)
            none = {
                "only_in_archive": found.inserted == 0,
                "only_in_target": in_scope == 0,
                "different": found.updated == 0,
                "outside_scope": found.absent - in_scope == 0,
            }
            queries = {kind: None if none[kind] else q for kind, q in queries.items()}
            self.samples[str(name)] = {
                kind: [dict(zip(keys, (_plain(v) for v in row[1:]))) for row in conn.execute(q).fetchall()]
                if q is not None
                else []
                for kind, q in queries.items()
            }
        return ()


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
    progress: Progress | None = None,
) -> DiffResult:
    """Compare ``archive`` with the database at ``dsn`` by natural key; read only.
    A subset archive is compared within its scope (see the module's docstring)."""
    options = ImportOptions(
        dry_run=True, compare_only=True, constraints="keep", on_conflict="update", sample_size=sample_size
    )
    with _open(archive, identities, trusted_keys) as reader:
        hooks = _Samples(sample_size, reader.manifest, str(archive))
        report = load_archive(dsn, reader=reader, options=options, hooks=(hooks,), progress=progress)
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
