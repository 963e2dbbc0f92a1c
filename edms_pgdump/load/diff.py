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
from edms_pgdump.options import ImportOptions, Progress, Steps
from edms_pgdump.program.steps import Execute, Program, Step
from edms_pgdump.results import (
    ArchivesDiffResult,
    ArchivesTableDiff,
    DiffResult,
    ImportReport,
    TableDiff,
    TableResult,
)


class _Samples(ImportHooks):
    """Hooks of the comparison's transaction: before the program, a subset archive's
    scope tables are created (the transaction is not READ ONLY yet), from the plan the
    transaction prepared; after the comparison ran, the scope is filled and the sample
    keys read from staging. What they find stays here."""

    def __init__(self, sample_size: int, manifest: Manifest, origin: str, progress: Progress | None) -> None:
        self.sample_size = sample_size
        self.manifest = manifest
        self.origin = origin
        self.samples: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.scopes: dict[QualifiedName, TableScope] = {}
        self.scope: TargetScope | None = None
        self.in_scope: dict[str, int] = {}  # target rows the archive lacks, in its scope
        self.absent: dict[str, int] = {}  # target rows the archive lacks, in all
        self.progress = progress

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
        if self.scope is not None:
            self.fill_scope(conn)
        counted = {t.table: t for t in report.tables}
        with Steps(self.progress) as steps:
            for i, name in enumerate(program.tables, 1):
                steps.step(f"samples {name}", i, len(program.tables))
                self.table_samples(conn, program, name, counted[str(name)])
        return ()

    def table_samples(
        self, conn: Connection, program: Program, name: QualifiedName, found: TableResult
    ) -> None:
        """Sample keys of each kind of difference, and the target rows the archive lacks:
        counted here, with their samples, by one query per kind (the comparison itself
        does not count them, so that verify, which does not report them, does not pay
        for them). A kind the comparison counted none of is not queried: a LIMIT that
        never fills would read both sides again for nothing."""
        assert program.plan is not None
        plan, n = program.plan, self.sample_size
        tp, names = plan.tables[name], program.staging[name]
        # totals of the archive's own kinds are the comparison's: these read samples only
        queries: dict[str, sql.Composed | None] = {
            "only_in_archive": sqlgen.new_rows(tp, names, n, total=False) if found.inserted else None,
            "only_in_target": sqlgen.absent_rows(plan, tp, names, n),
            "different": sqlgen.changed_rows(tp, names, set(program.fields[name]), n, total=False)
            if found.updated
            else None,
        }
        rule = self.scopes[name].rule if name in self.scopes else "whole"
        if rule != "whole":
            within = self.scope.conditions.get(name) if self.scope is not None else None
            if within is None:  # needed: the archive holds only the rows kept rows need
                queries["only_in_target"] = None
                queries["outside_scope"] = sqlgen.absent_rows(plan, tp, names, n)
            else:
                queries["only_in_target"] = sqlgen.absent_rows(plan, tp, names, n, within)
                outside = sql.SQL("({}) IS NOT TRUE").format(within)
                queries["outside_scope"] = sqlgen.absent_rows(plan, tp, names, n, outside)
        keys = [kf.name for kf in tp.key_fields]
        totals: dict[str, int] = {}
        samples: dict[str, list[dict[str, Any]]] = {}
        for kind, q in queries.items():
            rows = conn.execute(q).fetchall() if q is not None else []
            totals[kind] = int(rows[0][0] or 0) if rows else 0  # absent kinds: the total
            samples[kind] = [dict(zip(keys, (_plain(v) for v in row[1:]))) for row in rows]
        self.samples[str(name)] = samples
        self.in_scope[str(name)] = totals["only_in_target"]
        self.absent[str(name)] = totals["only_in_target"] + totals.get("outside_scope", 0)


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
        hooks = _Samples(sample_size, reader.manifest, str(archive), progress)
        report = load_archive(dsn, reader=reader, options=options, hooks=(hooks,), progress=progress)
    result = DiffResult(str(archive), report.target)
    scopes = {str(t): s for t, s in hooks.scopes.items()}
    for t in report.tables:
        in_scope, absent = hooks.in_scope[t.table], hooks.absent[t.table]
        result.tables.append(
            TableDiff(
                t.table,
                only_in_archive=t.inserted,
                only_in_target=in_scope,
                different=t.updated,
                identical=t.unchanged,
                samples=hooks.samples.get(t.table, {}),
                outside_scope=absent - in_scope,
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
