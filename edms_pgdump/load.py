"""Import: verify, stage, resolve natural keys, upsert, verify again; one transaction.

Named ``load`` because ``import`` is a Python keyword. The steps follow DESIGN.md's
import algorithm; every statement comes from ``sqlgen`` so the psql runbook runs the
same SQL.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from . import sqlgen as g
from .archive import ArchiveReader, Manifest, check_integrity
from .catalog import Catalog, read_catalog
from .db import Connection, connect, describe_dsn, server_error_message
from .errors import ArchiveError, DatabaseError, EdmsPgdumpError, ImportRejected, SchemaDriftError
from .mapping import ConflictPolicy, Mapping, load_mapping_text, mapping_from_dict
from .names import QualifiedName, parse_qualified_name
from .plan import Plan, TablePlan, build_plan
from .progress import NoProgress, Progress


@dataclass
class TableResult:
    table: str
    expected: int = 0
    staged: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    present_after: int = 0

    @property
    def balanced(self) -> bool:
        return (
            self.expected == self.staged == self.inserted + self.updated + self.unchanged
            and self.present_after == self.staged
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "expected": self.expected,
            "staged": self.staged,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "present_after": self.present_after,
            "ok": self.balanced,
        }


@dataclass
class ImportReport:
    archive: str
    archive_id: str
    target: str
    dry_run: bool
    committed: bool = False
    tables: list[TableResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    already_applied: bool = False

    @property
    def inserted(self) -> int:
        return sum(t.inserted for t in self.tables)

    @property
    def updated(self) -> int:
        return sum(t.updated for t in self.tables)

    @property
    def ok(self) -> bool:
        return not self.problems and all(t.balanced for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {
            "archive": self.archive,
            "archive_id": self.archive_id,
            "target": self.target,
            "dry_run": self.dry_run,
            "committed": self.committed,
            "ok": self.ok,
            "already_applied": self.already_applied,
            "inserted": self.inserted,
            "updated": self.updated,
            "tables": [t.to_dict() for t in self.tables],
            "problems": self.problems,
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class ImportOptions:
    dry_run: bool = False
    on_conflict: ConflictPolicy | None = None  # overrides the mapping for every table
    lock_timeout: str = "30s"
    statement_timeout: str = "0"
    work_mem: str = "256MB"
    sample_size: int = 5


def archive_mapping(manifest: Manifest) -> Mapping:
    text = manifest.data.get("mapping_text")
    if isinstance(text, str) and text.strip():
        return load_mapping_text(text, "archive mapping")
    return mapping_from_dict(manifest.data["mapping"])


@dataclass
class _Prepared:
    plan: Plan
    catalog: Catalog
    entries: dict[QualifiedName, dict[str, Any]]
    loaded: dict[QualifiedName, list[str]]  # COPY field order per table
    warnings: list[str]


def prepare_import(manifest: Manifest, catalog: Catalog, origin: str) -> _Prepared:
    """Check the archive against the target catalog before anything is written."""
    mapping = archive_mapping(manifest)
    plan = build_plan(mapping, catalog)
    problems = [str(p) for p in plan.errors]
    warnings: list[str] = []
    entries: dict[QualifiedName, dict[str, Any]] = {}
    loaded: dict[QualifiedName, list[str]] = {}
    for t in manifest.tables:
        name = parse_qualified_name(t["table"])
        entries[name] = t
        tp = plan.tables.get(name)
        if tp is None or not tp.export:
            problems.append(
                f"{name}: table is in the archive but not in the target database; create it first"
            )
            continue
        target_fields = {f.name: f for f in tp.fields}
        archive_fields = [f["name"] for f in t["fields"]]
        for f in t["fields"]:
            tf = target_fields.get(f["name"])
            if tf is None:
                problems.append(
                    f"{name}: archive field {f['name']!r} has no matching column or foreign key "
                    "in the target; migrate the target schema to match the source"
                )
            elif tf.type != f["type"]:
                warnings.append(
                    f"{name}.{f['name']}: type differs (archive {f['type']}, target {tf.type}); "
                    "values are converted on COPY"
                )
        table = catalog.tables[name]
        for tf in tp.fields:
            if tf.name in archive_fields:
                continue
            col = table.column(tf.column or "") if tf.role == "column" else None
            if tf.role == "reference":
                exp = tp.expansion(tf.reference or "")
                cols = [table.column(c) for c in exp.columns]
                if any(c is not None and c.not_null and not c.has_default for c in cols):
                    problems.append(
                        f"{name}: target foreign key {exp.fk.name} is NOT NULL but the archive has "
                        "no values for it; migrate the source or relax the constraint"
                    )
                else:
                    warnings.append(f"{name}: target reference {exp.label} is not in the archive; left NULL")
            elif col is not None and col.not_null and not col.has_default:
                problems.append(
                    f"{name}.{col.name}: NOT NULL column without default is not in the archive; "
                    "add a default or re-export from a source that has it"
                )
            else:
                warnings.append(f"{name}.{tf.name}: not in the archive; new rows get the default")
        loaded[name] = archive_fields
    if problems:
        raise SchemaDriftError(f"{origin}: {problems[0]}", problems)
    warnings.extend(str(p) for p in plan.warnings)
    return _Prepared(plan, catalog, entries, loaded, warnings)


def _rows(conn: Connection, stmt: sql.Composed) -> list[tuple[Any, ...]]:
    return list(conn.execute(stmt).fetchall())


def _count(conn: Connection, stmt: sql.Composed) -> int:
    row = conn.execute(stmt).fetchone()
    return int(row[0]) if row else 0


def _sample(rows: list[tuple[Any, ...]], names: list[str]) -> str:
    out = []
    for r in rows:
        out.append("(" + ", ".join(f"{n}={v!r}" for n, v in zip(names, r)) + ")")
    return ", ".join(out)


class _Importer:
    def __init__(
        self,
        conn: Connection,
        reader: ArchiveReader,
        prep: _Prepared,
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
            self.conn.execute(g.lock_tables(tables))
        for comp in self.plan.components:
            members = [n for n in comp if n in self.prep.entries]
            if members:
                self.load_component(members)
        for name in tables:
            r = self.results[name]
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

    def stage(self, name: QualifiedName) -> None:
        tp = self.plan.tables[name]
        names = self.staged[name]
        fields = self.prep.loaded[name]
        entry = self.prep.entries[name]
        result = self.results[name]
        self.conn.execute(g.create_raw(tp, names, fields))
        task = str(name)
        self.progress.start(task, result.expected)
        with self.conn.cursor() as cur, cur.copy(g.copy_in(names, fields)) as copy:
            for block in self.reader.iter_data(entry["member"], entry["compression"]):
                copy.write(block)
                self.progress.advance(task, block.count(b"\n"), len(block))
        self.progress.finish(task)
        result.staged = _count(self.conn, g.count_rows(names.raw))
        if result.staged != result.expected:
            self.fail(
                f"{name}: staged {result.staged} rows but the manifest says {result.expected}; "
                "the archive is inconsistent, re-export it"
            )
        self.conn.execute(sql.SQL("ANALYZE {}").format(names.raw))
        key_names = [kf.name for kf in tp.key_fields]
        dups = _rows(self.conn, g.duplicate_keys(tp, names.raw))
        if dups:
            self.fail(
                f"{name}: the archive holds duplicate natural keys ({', '.join(key_names)}): "
                + _sample([d[:-1] for d in dups], key_names)
                + "; fix the source data or choose a natural key that is unique"
            )
        if not tp.key_is_unique or any(kf.nullable for kf in tp.key_fields):
            dups = _rows(self.conn, g.target_duplicate_keys(self.plan, tp))
            if dups:
                self.fail(
                    f"{name}: the target holds duplicate natural keys ({', '.join(key_names)}): "
                    + _sample([d[:-1] for d in dups], key_names)
                    + "; deduplicate the target or add a unique constraint"
                )

    def key(self, name: QualifiedName) -> None:
        tp = self.plan.tables[name]
        names = self.staged[name]
        self.conn.execute(g.create_keyed(self.plan, tp, names))
        keyed = _count(self.conn, g.count_rows(names.keyed))
        if keyed != self.results[name].staged:
            self.fail(
                f"{name}: natural keys matched {keyed} target rows for "
                f"{self.results[name].staged} archive rows; the target has duplicate keys"
            )

    def resolve(self, name: QualifiedName) -> None:
        tp = self.plan.tables[name]
        names = self.staged[name]
        fields = self.fields(name)
        self.conn.execute(g.create_final(self.plan, tp, names, self.staged, fields, self.finalized))
        self.finalized.add(name)
        self.conn.execute(sql.SQL("ANALYZE {}").format(names.final))
        problems = []
        for exp in g.active_expansions(tp, fields):
            rows = _rows(self.conn, g.unresolved(tp, names, exp))
            if rows:
                total = rows[0][0]
                problems.append(
                    f"{name}: {total} unresolved reference(s) through {exp.fk.name} "
                    f"({', '.join(exp.columns)} -> {exp.ref_table}): "
                    + _sample([r[1:] for r in rows], [f.name for f in exp.fields])
                    + f"; those rows of {exp.ref_table} are neither in the archive nor in the target"
                )
        if problems:
            self.fail(problems[0], problems)

    def policy(self, tp: TablePlan) -> ConflictPolicy:
        return self.opts.on_conflict or tp.on_conflict

    def load_component(self, members: list[QualifiedName]) -> None:
        for n in members:
            self.stage(n)
        for n in members:
            self.key(n)
        deferred = sorted(
            {
                (e.fk.ref_table if False else n, e.fk.name)
                for n in members
                for e in self.plan.tables[n].expansions
                if e.edge == "deferred" and not e.fk.declared
            }
        )
        if deferred:
            self.conn.execute(g.set_constraints(deferred, "DEFERRED"))
        for n in members:
            self.resolve(n)
        for n in members:
            tp = self.plan.tables[n]
            names = self.staged[n]
            fields = self.fields(n)
            if self.policy(tp) == "error":
                rows = _rows(self.conn, g.changed_rows(tp, names, fields))
                if rows:
                    key_names = [kf.name for kf in tp.key_fields]
                    self.fail(
                        f"{n}: {rows[0][0]} existing row(s) differ from the archive and on_conflict "
                        "is error: "
                        + _sample([r[1:] for r in rows], key_names)
                        + "; use --on-conflict update or skip to proceed"
                    )
            cur = self.conn.execute(g.insert_new(tp, names, fields))
            self.results[n].inserted = max(cur.rowcount, 0)
        for n in members:
            tp = self.plan.tables[n]
            for e in g.active_expansions(tp, self.fields(n)):
                if e.edge == "second_pass":
                    self.conn.execute(g.second_pass(tp, self.staged[n], e))
        for n in members:
            tp = self.plan.tables[n]
            names = self.staged[n]
            existing = _count(self.conn, g.count_rows(names.final, sql.SQL("NOT {}").format(g.ident(g.NEW))))
            updated = 0
            if self.policy(tp) in ("update", "error"):
                stmt = g.update_existing(tp, names, self.fields(n))
                if stmt is not None:
                    updated = max(self.conn.execute(stmt).rowcount, 0)
            self.results[n].updated = updated
            self.results[n].unchanged = existing - updated
        if deferred:
            self.conn.execute(g.set_constraints(deferred, "IMMEDIATE"))


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
    progress = progress or NoProgress()
    started = time.monotonic()
    reader = ArchiveReader(archive)
    report = ImportReport(str(archive), reader.manifest.archive_id, describe_dsn(dsn), opts.dry_run)
    try:
        integrity = check_integrity(reader)
        if not integrity.ok:
            raise ArchiveError(f"{archive}: {integrity.damages[0]}; nothing was imported", integrity.damages)
        conn = connect(dsn)
        try:
            conn.execute("BEGIN")
            for name, value in (
                ("lock_timeout", opts.lock_timeout),
                ("statement_timeout", opts.statement_timeout),
                ("work_mem", opts.work_mem),
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
                conn.execute("COMMIT")
                report.committed = True
        except psycopg.Error as exc:
            _rollback(conn)
            msg = server_error_message(exc)
            if isinstance(exc, psycopg.errors.LockNotAvailable):
                msg += "; another session holds a lock on a target table: retry, or raise --lock-timeout"
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
