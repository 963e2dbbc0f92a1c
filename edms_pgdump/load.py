"""Import: verify, stage, resolve natural keys, upsert, verify again; one transaction.

Named ``load`` because ``import`` is a Python keyword. The steps follow DESIGN.md's
import algorithm; every statement comes from ``sqlgen`` so the psql runbook runs the
same SQL.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from . import sqlgen as g
from .archive import ArchiveReader, check_integrity
from .catalog import read_catalog
from .db import Connection, connect, describe_dsn, server_error_message
from .errors import (
    ArchiveError,
    DatabaseError,
    EdmsPgdumpError,
    ImportRejected,
    UsageError,
    sample_keys,
)
from .import_options import ImportOptions
from .import_report import ImportReport, TableResult
from .mapping import ConflictPolicy
from .names import QualifiedName
from .plan import TablePlan
from .prepare import Prepared, prepare_import
from .progress import NoProgress, Progress


def _rows(conn: Connection, stmt: sql.Composed) -> list[tuple[Any, ...]]:
    return list(conn.execute(stmt).fetchall())


def _count(conn: Connection, stmt: sql.Composed) -> int:
    row = conn.execute(stmt).fetchone()
    return int(row[0]) if row else 0


_Cursor = psycopg.Cursor[tuple[Any, ...]]

# constraints=recreate drops a component's foreign keys only when it brings at least
# this many new rows, and at least 1/RECREATE_MIN_SHARE of its tables' size after the
# load: a per-row check costs about ten times what re-validating one row does.
RECREATE_MIN_ROWS = 10_000
RECREATE_MIN_SHARE = 10


@dataclass(frozen=True)
class _ForeignKeyDef:
    table: QualifiedName
    name: str
    definition: str
    comment: str | None


@dataclass(frozen=True)
class _IndexDef:
    table: QualifiedName
    schema: str
    name: str
    definition: str
    comment: str | None


class _Importer:
    def __init__(
        self,
        conn: Connection,
        reader: ArchiveReader,
        prep: Prepared,
        opts: ImportOptions,
        report: ImportReport,
        progress: Progress,
    ) -> None:
        self.conn = conn
        self.reader = reader
        self.prep = prep
        self.opts = opts
        self.report = report
        self.progress = progress
        self.plan = prep.plan
        self.staged: dict[QualifiedName, g.StagingNames] = {}
        self.finalized: set[QualifiedName] = set()
        self.results: dict[QualifiedName, TableResult] = {}
        self.existing: dict[QualifiedName, int] = {}
        self.derivable: set[QualifiedName] = set()  # present_after follows from the counts
        self.enforced: set[QualifiedName] = set()  # an immediate unique index enforces the key
        self.fk_defs: list[_ForeignKeyDef] = []  # constraints=recreate: not dropped yet
        self.recreated: list[_ForeignKeyDef] = []  # dropped, re-added at the end
        self.index_defs: list[_IndexDef] = []  # constraints=recreate: not dropped yet
        self.rebuilt: list[_IndexDef] = []  # dropped, created again at the end

    # -- statements, timed ----------------------------------------------------------
    def x(self, step: str, table: QualifiedName | None, stmt: sql.Composed) -> _Cursor:
        # remembered so that a server error can name the table and the step
        self.report.current_step = f"{table}: {step}" if table is not None else step
        t0 = time.perf_counter()
        cur = self.conn.execute(stmt)
        self.timed(step, table, t0, cur.rowcount)
        return cur

    def timed(self, step: str, table: QualifiedName | None, t0: float, rows: int = -1) -> None:
        entry: dict[str, Any] = {"step": step, "seconds": round(time.perf_counter() - t0, 4)}
        if table is not None:
            entry["table"] = str(table)
        if rows >= 0:
            entry["rows"] = rows
        self.report.profile.append(entry)

    def fail(self, message: str, problems: list[str] | None = None) -> None:
        self.report.problems.extend(problems or [message])
        raise ImportRejected(message, self.report)

    def fields(self, name: QualifiedName) -> set[str]:
        return set(self.prep.loaded[name])

    def run(self) -> None:
        tables = [n for n in self.plan.load_order if n in self.prep.entries]
        for i, name in enumerate(tables):
            self.staged[name] = g.staging_names(i + 1, name)
            self.results[name] = TableResult(str(name), expected=int(self.prep.entries[name]["rows"]))
        self.report.tables = [self.results[n] for n in tables]
        if tables:
            self.x("lock", None, g.lock_tables(tables))
            self.classify(tables)
            if self.opts.constraints == "recreate":
                self.read_foreign_keys(tables)
                self.read_indexes(tables)
        for comp in self.plan.components:
            members = [n for n in comp if n in self.prep.entries]
            if members:
                self.load_component(members)
        self.rebuild()
        for name in tables:
            r = self.results[name]
            if name in self.derivable:
                r.present_after = r.inserted + self.existing[name]
            else:
                r.present_after = _count(
                    self.conn, g.count_present(self.plan, self.plan.tables[name], self.staged[name])
                )
            if not r.balanced:
                self.report.problems.append(
                    f"{name}: counts do not balance (expected {r.expected}, staged {r.staged}, "
                    f"inserted {r.inserted} + updated {r.updated} + unchanged {r.unchanged}, "
                    f"present after {r.present_after})"
                )
        if self.report.problems:
            self.fail(self.report.problems[0], [])

    def classify(self, tables: list[QualifiedName]) -> None:
        """Which tables' "present after" count follows from inserted + existing.

        It does when nothing but our own INSERT decides what an inserted row holds:
        no user triggers, no rules, no row-level security, and no generated column in
        the natural key. Otherwise the natural keys are looked up again after loading.
        """
        for schema, table, triggers, rules, rls in _rows(self.conn, g.table_guards(tables)):
            name = QualifiedName(str(schema), str(table))
            if name not in self.plan.tables or triggers or rules or rls:
                continue
            cat = self.prep.catalog.tables[name]
            key_cols = [cat.column(c) for c in self.plan.tables[name].natural_key]
            if any(c is None or c.is_generated for c in key_cols):
                continue
            self.derivable.add(name)
        for name in tables:
            tp = self.plan.tables[name]
            if not tp.identity_is_pk or any(kf.nullable for kf in tp.key_fields):
                continue
            keys = self.prep.catalog.tables[name].immediate_unique_keys
            if any(set(key) <= set(tp.natural_key) for key in keys):
                self.enforced.add(name)

    # -- constraints=recreate -----------------------------------------------------
    def read_foreign_keys(self, tables: list[QualifiedName]) -> None:
        """The foreign keys declared on the imported tables, checked for ownership
        before anything is loaded; they are dropped only once a component brings
        enough new rows for set-based validation to beat per-row checks."""
        for schema, table, name, definition, comment, owned, inherited in _rows(
            self.conn, g.foreign_key_definitions(tables)
        ):
            qn = QualifiedName(str(schema), str(table))
            if inherited:
                continue  # partitioned or inherited: left in place, checked per row
            if not owned:
                self.fail(
                    f"{qn}: constraints=recreate drops and re-adds foreign key {name}, which needs "
                    "ownership of the table; run the import as its owner, or without "
                    "constraints=recreate"
                )
            note = None if comment is None else str(comment)
            self.fk_defs.append(_ForeignKeyDef(qn, str(name), str(definition), note))

    def read_indexes(self, tables: list[QualifiedName]) -> None:
        for schema, table, index, definition, comment, owned in _rows(self.conn, g.plain_indexes(tables)):
            qn = QualifiedName(str(schema), str(table))
            if not owned:
                self.fail(
                    f"{qn}: constraints=recreate drops and re-creates index {index}, which needs "
                    "ownership of the table; run the import as its owner, or without "
                    "constraints=recreate"
                )
            note = None if comment is None else str(comment)
            self.index_defs.append(_IndexDef(qn, str(schema), str(index), str(definition), note))

    def maybe_drop(self, members: list[QualifiedName]) -> None:
        """constraints=recreate, for a component that brings many new rows: drop the
        foreign keys of the tables still to be loaded and the plain indexes of this
        component's tables; both are rebuilt set-based at the end."""
        if self.opts.constraints != "recreate":
            return
        new = sum(self.results[n].staged - self.existing[n] for n in members)
        size = sum(max(self.prep.catalog.tables[n].estimated_rows, 0) for n in members)
        if new < RECREATE_MIN_ROWS or new * RECREATE_MIN_SHARE < size + new:
            return  # few new rows: per-row work costs less than rebuilding whole tables
        done = {n for n, r in self.results.items() if r.inserted}
        drop = [d for d in self.fk_defs if d.table not in done]  # rows already in: no gain
        growing = {n for n in members if self.results[n].staged > self.existing[n]}
        indexes = [i for i in self.index_defs if i.table in growing]
        if not drop and not indexes:
            return
        # Dropping needs ACCESS EXCLUSIVE (a foreign key also on the table it
        # references): take it on all of them at once, in a stable order.
        locked = {d.table for d in drop} | {i.table for i in indexes}
        for d in drop:
            fk = next((f for f in self.prep.catalog.tables[d.table].foreign_keys if f.name == d.name), None)
            if fk is not None:
                locked.add(fk.ref_table)
        self.x("lock exclusive", None, g.lock_tables_exclusive(sorted(locked)))
        for d in drop:
            self.x("drop fk", d.table, g.drop_constraint(d.table, d.name))
            self.recreated.append(d)
        for i in indexes:
            self.x("drop index", i.table, g.drop_index(i.schema, i.name))
            self.rebuilt.append(i)
        self.fk_defs = [d for d in self.fk_defs if d not in drop]
        self.index_defs = [i for i in self.index_defs if i not in indexes]

    def rebuild(self) -> None:
        for i in self.rebuilt:
            self.x(f"create index {i.name}", i.table, g.create_from_definition(i.definition))
            if i.comment is not None:
                self.conn.execute(g.comment_index(i.schema, i.name, i.comment))
        self.readd_foreign_keys()

    def readd_foreign_keys(self) -> None:
        for d in self.recreated:
            t0 = time.perf_counter()
            try:
                self.conn.execute(g.add_constraint(d.table, d.name, d.definition))
            except psycopg.errors.ForeignKeyViolation as exc:
                self.fail(
                    f"{d.table}: foreign key {d.name} does not hold after loading "
                    f"({server_error_message(exc)}); re-adding it failed, so the import was "
                    "rolled back and nothing was written"
                )
            self.timed(f"re-add fk {d.name}", d.table, t0)
            if d.comment is not None:
                self.conn.execute(g.comment_constraint(d.table, d.name, d.comment))

    def dropped(self, table: QualifiedName, constraint: str) -> bool:
        return any(d.table == table and d.name == constraint for d in self.recreated)

    # -- the steps ----------------------------------------------------------------
    def stage(self, name: QualifiedName) -> None:
        tp = self.plan.tables[name]
        names = self.staged[name]
        fields = self.prep.loaded[name]
        entry = self.prep.entries[name]
        result = self.results[name]
        self.x("create raw", name, g.create_raw(tp, names, fields))
        task = str(name)
        self.progress.start(task, result.expected)
        t0 = time.perf_counter()
        with self.conn.cursor() as cur:
            with cur.copy(g.copy_in_frozen(names, fields)) as copy:
                for block in self.reader.iter_data(entry["member"], entry["compression"]):
                    copy.write(block)
                    self.progress.advance(task, block.count(b"\n"), len(block))
            copied = cur.rowcount
        self.timed("copy", name, t0, copied)
        self.progress.finish(task)
        if copied < 0:  # pragma: no cover - libpq always reports COPY counts
            copied = _count(self.conn, g.count_rows(names.raw))
        result.staged = copied
        if result.staged != result.expected:
            self.fail(
                f"{name}: staged {result.staged} rows but the manifest says {result.expected}; "
                "the archive is inconsistent, re-export it"
            )
        if name not in self.enforced:
            # statistics for the GROUP BY (otherwise the raw rows are only scanned once,
            # joined to the target's rows, which have statistics of their own)
            self.x("analyze raw", name, sql.SQL("ANALYZE {}").format(names.raw))
            self.check_duplicates(name)
        if not tp.key_is_unique or any(kf.nullable for kf in tp.key_fields):
            key_names = [kf.name for kf in tp.key_fields]
            t0 = time.perf_counter()
            dups = _rows(self.conn, g.target_duplicate_keys(self.plan, tp))
            self.timed("target duplicate keys", name, t0)
            if dups:
                self.fail(
                    f"{name}: the target holds duplicate natural keys ({', '.join(key_names)}): "
                    + sample_keys([d[:-1] for d in dups], key_names)
                    + "; deduplicate the target or add a unique constraint"
                )

    def check_duplicates(self, name: QualifiedName) -> None:
        """Duplicate natural keys in the archive: an error listing sample keys.

        Where the target enforces the natural key with an immediate unique index (see
        ``classify``) this full GROUP BY is skipped up front: duplicates among new rows
        make the INSERT fail on that index, duplicates among existing rows show up as
        one target id matched twice, and either runs this check to name the keys.
        """
        tp = self.plan.tables[name]
        key_names = [kf.name for kf in tp.key_fields]
        t0 = time.perf_counter()
        dups = _rows(self.conn, g.duplicate_keys(tp, self.staged[name].raw))
        self.timed("duplicate keys", name, t0)
        if dups:
            self.fail(
                f"{name}: the archive holds duplicate natural keys ({', '.join(key_names)}): "
                + sample_keys([d[:-1] for d in dups], key_names)
                + "; fix the source data or choose a natural key that is unique"
            )

    def key(self, name: QualifiedName) -> None:
        tp = self.plan.tables[name]
        names = self.staged[name]
        keyed = self.x("keyed", name, g.create_keyed(self.plan, tp, names)).rowcount
        if keyed < 0:  # pragma: no cover
            keyed = _count(self.conn, g.count_rows(names.keyed))
        self.check_matched(name, keyed)
        # other members' references resolve against this table: without statistics
        # the planner guesses wildly and sorts for merge joins instead of hashing
        self.x("analyze keyed", name, sql.SQL("ANALYZE {}").format(names.keyed))

    def check_matched(self, name: QualifiedName, rows: int) -> None:
        if rows != self.results[name].staged:
            self.check_duplicates(name)
            self.fail(
                f"{name}: natural keys matched {rows} target rows for "
                f"{self.results[name].staged} archive rows; the target has duplicate keys"
            )

    def resolve(self, name: QualifiedName, merged: bool) -> None:
        tp = self.plan.tables[name]
        names = self.staged[name]
        fields = self.fields(name)
        if merged:
            stmt = g.merged_final(self.plan, tp, names, self.staged, fields, self.finalized)
            self.check_matched(name, self.x("keyed+final", name, stmt).rowcount)
        else:
            stmt = g.create_final(self.plan, tp, names, self.staged, fields, self.finalized)
            self.x("final", name, stmt)
        self.finalized.add(name)
        exps = g.active_expansions(tp, fields)
        t0 = time.perf_counter()
        row = self.conn.execute(g.final_summary(tp, names, exps)).fetchone()
        self.timed("summary", name, t0)
        assert row is not None
        self.existing[name] = int(row[0])
        # Statistics matter only where the final rows are joined: other tables resolve
        # their references against them, existing rows are compared and updated, the
        # second pass, or the after-load key lookup. A plain INSERT just scans them.
        referenced = any(
            e.ref_table == name for n in self.staged if n != name for e in self.plan.tables[n].expansions
        )
        if (
            referenced
            or self.existing[name]
            or name not in self.derivable
            or any(e.edge == "second_pass" for e in exps)
        ):
            self.x("analyze final", name, sql.SQL("ANALYZE {}").format(names.final))
        if name in self.enforced and self.existing[name] > 1:
            t0 = time.perf_counter()
            twice = self.conn.execute(g.repeated_identity(tp, names)).fetchone()
            self.timed("repeated ids", name, t0)
            if twice is not None:
                self.check_duplicates(name)
        problems = []
        for exp, missing in zip(exps, row[1:]):
            if not missing:
                continue
            samples = _rows(self.conn, g.unresolved(tp, names, exp))
            total = samples[0][0] if samples else missing
            problems.append(
                f"{name}: {total} unresolved reference(s) through {exp.fk.name} "
                f"({', '.join(exp.columns)} -> {exp.ref_table}): "
                + sample_keys([r[1:] for r in samples], [f.name for f in exp.fields])
                + f"; those rows of {exp.ref_table} are neither in the archive nor in the target"
            )
        if problems:
            self.fail(problems[0], problems)

    def insert(self, name: QualifiedName, members: list[QualifiedName]) -> int:
        tp = self.plan.tables[name]
        stmt = g.insert_new(tp, self.staged[name], self.fields(name))
        if not any(n in self.enforced for n in members):
            return max(self.x("insert", name, stmt).rowcount, 0)
        # Duplicate archive keys were not checked up front (see check_duplicates): if
        # the INSERT trips over a unique index, roll back to here and name the keys.
        self.conn.execute(sql.SQL("SAVEPOINT edms_insert"))
        try:
            rows = max(self.x("insert", name, stmt).rowcount, 0)
        except psycopg.errors.UniqueViolation:
            self.conn.execute(sql.SQL("ROLLBACK TO SAVEPOINT edms_insert"))
            for n in members:
                if n in self.enforced:
                    self.check_duplicates(n)
            raise
        self.conn.execute(sql.SQL("RELEASE SAVEPOINT edms_insert"))
        return rows

    def policy(self, tp: TablePlan) -> ConflictPolicy:
        return self.opts.on_conflict or tp.on_conflict

    def load_component(self, members: list[QualifiedName]) -> None:
        for n in members:
            self.stage(n)
        # A table that nothing in its component refers to (itself included) goes from
        # raw to final in one statement; otherwise every member's ids must exist
        # (keyed) before any member's references are resolved.
        merged = len(members) == 1 and not any(
            e.ref_table == members[0] for e in self.plan.tables[members[0]].expansions
        )
        if not merged:
            for n in members:
                self.key(n)
        for n in members:
            self.resolve(n, merged)
        self.maybe_drop(members)
        deferred = sorted(
            {
                (n, e.fk.name)
                for n in members
                for e in self.plan.tables[n].expansions
                if e.edge == "deferred" and not e.fk.declared and not self.dropped(n, e.fk.name)
            }
        )
        if deferred:
            self.conn.execute(g.set_constraints(deferred, "DEFERRED"))
        for n in members:
            tp = self.plan.tables[n]
            names = self.staged[n]
            fields = self.fields(n)
            if self.policy(tp) == "error" and self.existing[n]:
                rows = _rows(self.conn, g.changed_rows(tp, names, fields))
                if rows:
                    key_names = [kf.name for kf in tp.key_fields]
                    self.fail(
                        f"{n}: {rows[0][0]} existing row(s) differ from the archive and on_conflict "
                        "is error: "
                        + sample_keys([r[1:] for r in rows], key_names)
                        + "; use --on-conflict update or skip to proceed"
                    )
            if self.existing[n] < self.results[n].staged:
                self.results[n].inserted = self.insert(n, members)
        for n in members:
            tp = self.plan.tables[n]
            if self.results[n].inserted == 0:
                continue
            for e in g.active_expansions(tp, self.fields(n)):
                if e.edge == "second_pass":
                    self.x("second pass", n, g.second_pass(tp, self.staged[n], e))
        for n in members:
            tp = self.plan.tables[n]
            names = self.staged[n]
            existing = self.existing[n]
            updated = 0
            if existing and self.policy(tp) in ("update", "error"):
                stmt = g.update_existing(tp, names, self.fields(n))
                if stmt is not None:
                    updated = max(self.x("update", n, stmt).rowcount, 0)
            skipped = 0
            if existing and self.policy(tp) == "skip":
                rows = _rows(self.conn, g.changed_rows(tp, names, self.fields(n)))
                if rows:
                    skipped = int(rows[0][0])
                    key_names = [kf.name for kf in tp.key_fields]
                    self.report.warnings.append(
                        f"{n}: {skipped} existing row(s) differ from the archive and were left as they "
                        "are (on_conflict skip): " + sample_keys([r[1:] for r in rows], key_names)
                    )
            self.results[n].updated = updated
            self.results[n].skipped = skipped
            self.results[n].unchanged = existing - updated - skipped
        if deferred:
            t0 = time.perf_counter()
            self.conn.execute(g.set_constraints(deferred, "IMMEDIATE"))
            self.timed("deferred checks", None, t0)


def import_archive(
    dsn: str,
    archive: str | Path,
    *,
    options: ImportOptions | None = None,
    progress: Progress | None = None,
    hooks: Any = None,
) -> ImportReport:
    """Import an archive into ``dsn`` in one transaction; raise on any problem.

    On success returns the report (committed, or rolled back for a dry run). On
    failure raises an ``EdmsPgdumpError`` subclass; ``ImportRejected.report`` tells
    what was found. Nothing is ever partially written.
    """
    opts = options or ImportOptions()
    if opts.constraints not in ("keep", "recreate"):
        raise UsageError(f"constraints={opts.constraints!r}: use keep or recreate")
    progress = progress or NoProgress()
    started = time.monotonic()
    reader = ArchiveReader(archive)
    report = ImportReport(str(archive), reader.manifest.archive_id, describe_dsn(dsn), opts.dry_run)
    try:
        t0 = time.perf_counter()
        integrity = check_integrity(reader)
        report.profile.append({"step": "verify archive", "seconds": round(time.perf_counter() - t0, 4)})
        if not integrity.ok:
            raise ArchiveError(f"{archive}: {integrity.damages[0]}; nothing was imported", integrity.damages)
        conn = connect(dsn)
        try:
            conn.execute("BEGIN")
            # temp_buffers can only change before this session's first temporary table
            # (a pooled connection may have had one): a bigger value is a nicety, so a
            # refusal is ignored
            conn.execute("SAVEPOINT edms_temp_buffers")
            try:
                conn.execute(sql.SQL("SET LOCAL temp_buffers = {}").format(sql.Literal(opts.temp_buffers)))
            except psycopg.errors.InvalidParameterValue:
                conn.execute("ROLLBACK TO SAVEPOINT edms_temp_buffers")
            conn.execute("RELEASE SAVEPOINT edms_temp_buffers")
            for name, value in (
                ("lock_timeout", opts.lock_timeout),
                ("statement_timeout", opts.statement_timeout),
                ("work_mem", opts.work_mem),
                # ADD FOREIGN KEY validates with maintenance_work_mem (constraints=recreate)
                ("maintenance_work_mem", opts.work_mem),
            ):
                conn.execute(sql.SQL("SET LOCAL {} = {}").format(sql.Identifier(name), sql.Literal(value)))
            catalog = read_catalog(conn)
            prep = prepare_import(reader.manifest, catalog, str(archive))
            report.warnings = prep.warnings
            if hooks is not None:
                hooks.before_load(conn, report)
            _Importer(conn, reader, prep, opts, report, progress).run()
            if hooks is not None:
                hooks.after_load(conn, report)
            if opts.dry_run:
                conn.execute("ROLLBACK")
            else:
                t0 = time.perf_counter()
                conn.execute("COMMIT")
                report.profile.append({"step": "commit", "seconds": round(time.perf_counter() - t0, 4)})
                report.committed = True
        except psycopg.Error as exc:
            _rollback(conn)
            msg = server_error_message(exc)
            if report.current_step:
                msg = f"{report.current_step}: {msg}"
            if isinstance(exc, psycopg.errors.LockNotAvailable):
                msg += "; another session holds a lock on a target table: retry, or raise --lock-timeout"
            elif isinstance(exc, psycopg.errors.ProgramLimitExceeded):
                msg += (
                    "; a natural-key value is too long for the target's index: "
                    "shorten it or index a hash of it"
                )
            elif isinstance(exc, psycopg.errors.DeadlockDetected):
                msg += "; another session locked the same tables in another order: retry the import"
            report.problems.append(msg)
            raise DatabaseError(
                f"import into {describe_dsn(dsn)} failed and was rolled back: {msg}"
            ) from None
        except BaseException:
            _rollback(conn)
            raise
        finally:
            conn.close()
    finally:
        reader.close()
        report.seconds = time.monotonic() - started
    return report


def _rollback(conn: Connection) -> None:
    try:
        if not conn.closed:
            conn.execute("ROLLBACK")
    except psycopg.Error:
        pass


__all__ = ["EdmsPgdumpError", "ImportOptions", "ImportReport", "import_archive"]
