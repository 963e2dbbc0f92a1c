"""What each command returns: typed results the CLI only prints.

Each has ``to_dict()``, the document ``--json`` prints (documented in docs/), so a
script calling the library and one parsing the CLI's JSON see the same fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from edms_pgdump.archive.manifest import Manifest, TableEntry
from edms_pgdump.archive.signing import SignatureInfo
from edms_pgdump.plan.model import Problem

# The balance rule, written once: each pair of sums of a table's counts must be equal.
# The library checks it (``TableResult.balanced``, the program's ``Balance`` step) and
# the psql runbook renders it as SQL; both refuse with ``BALANCE_REFUSAL``, whose fields
# are the counts (``str.format`` names).
BALANCE_RULE: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("expected",), ("staged",)),
    (("staged",), ("inserted", "updated", "unchanged", "skipped")),
    (("present",), ("staged",)),
)
BALANCE_REFUSAL = (
    "{table}: counts do not balance (expected {expected}, staged {staged}, inserted {inserted}"
    " + updated {updated} + unchanged {unchanged}, present after {present})"
)


def balances(counts: dict[str, int]) -> bool:
    return all(sum(counts[n] for n in a) == sum(counts[n] for n in b) for a, b in BALANCE_RULE)


def balance_refusal(table: str, counts: dict[str, int]) -> str:
    return BALANCE_REFUSAL.format(table=table, **counts)


# The phases of an import, in the order they run, each with the profile steps it is made
# of (a step's name, or a prefix ending in a space). What no phase names is "other"
# (session, locks, BEGIN); the time outside every timed statement (reading the catalog,
# building the program, Python between statements) is "untimed".
PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("verify archive", ("verify archive",)),
    ("staging copy", ("create raw", "copy", "analyze raw", "duplicate keys", "target duplicate keys")),
    (
        "unchanged rows",
        ("unchanged since", "target rows", "target rows held", "unchanged", "analyze unchanged"),
    ),
    (
        "key resolution",
        (
            "rows to resolve", "analyze rows to resolve", "keyed", "keyed+final", "final", "analyze keyed",
            "analyze final", "summary", "repeated ids", "unresolved", "forecast ids", "sequence position",
            "id range",
        ),
    ),
    ("drop constraints", ("lock exclusive", "drop fk", "drop index", "drop unique", "recreating")),
    ("insert", ("insert", "second pass", "defer constraints")),
    ("update", ("update", "changed rows", "skipped rows")),
    (
        "re-add constraints",
        (
            "re-add fk ", "re-add unique ", "constraint using index", "create index ", "comment",
            "analyze key columns",
            "deferred checks", "advance sequence",
        ),
    ),
    ("delete missing", ("delete missing", "rows to delete")),
    (
        "proof",
        (
            "observe start", "observe", "unplanned writes", "side effects", "compare written",
            "compare existing", "duplicates after", "tree positions", "cascades",
        ),
    ),
    ("commit", ("commit", "history", "certificate")),
)


def phase_of(step: str) -> str:
    for phase, steps in PHASES:
        if any(step == s or (s.endswith(" ") and step.startswith(s)) for s in steps):
            return phase
    return "other"


def phase_times(profile: list[dict[str, Any]], total: float) -> list[dict[str, Any]]:
    """Seconds per phase (``PHASES``), summed from the profile, in run order; phases
    that did not run are left out. The last entry, "untimed", is ``total`` less them."""
    sums: dict[str, float] = {}
    for entry in profile:
        phase = phase_of(str(entry["step"]))
        sums[phase] = sums.get(phase, 0.0) + float(entry["seconds"])
    order = [p for p, _ in PHASES] + ["other"]
    out = [{"phase": p, "seconds": round(sums[p], 3)} for p in order if p in sums]
    out.append({"phase": "untimed", "seconds": round(max(0.0, total - sum(sums.values())), 3)})
    return out


@dataclass
class TableResult:
    table: str
    expected: int = 0
    staged: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    present_after: int = 0
    skipped: int = 0  # on_conflict skip: existing rows that differ and were left as they are
    deleted: int = 0  # --delete-missing: target rows the archive does not hold, removed
    absent: int = 0  # target rows whose natural key the archive does not hold
    # what the transaction did to the table, read from pg_stat_xact_user_tables before
    # COMMIT: {"inserted": …, "updated": …, "deleted": …} (empty when not observed)
    observed: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """The counts the balance rule names."""
        return {
            "expected": self.expected,
            "staged": self.staged,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "present": self.present_after,
        }

    @property
    def balanced(self) -> bool:
        return balances(self.counts())

    def balance_refusal(self) -> str:
        return balance_refusal(self.table, self.counts())

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "expected": self.expected,
            "staged": self.staged,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "deleted": self.deleted,
            "present_after": self.present_after,
            "observed": self.observed,
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
    # proven in place (load.certificate): the history row whose certificate still holds,
    # {"import": id, "applied_at": ISO time, "certified_at": when the certificate was
    # taken}; nothing was staged. Empty: the program ran.
    unchanged_since: dict[str, Any] = field(default_factory=dict)
    current_step: str = ""  # the statement running when a server error struck
    # (step, table, seconds, rows) of every statement that touches many rows; in the
    # JSON report so a slow import can be explained without a debugger.
    profile: list[dict[str, Any]] = field(default_factory=list)
    # where the rows were staged: {"tables": "temporary"} on the import's own
    # connection, or {"tables": "unlogged", "schema": ..., "connections": N}
    staging: dict[str, Any] = field(default_factory=lambda: {"tables": "temporary", "connections": 1})
    # tables outside the archive this transaction wrote to, allowed: inserts (an audit
    # trigger's log) or tables named by --allow-side-effects; each {"table", "inserted",
    # "updated", "deleted", "cause"}
    side_effects: list[dict[str, Any]] = field(default_factory=list)

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
            "unchanged_since": self.unchanged_since or None,
            "inserted": self.inserted,
            "updated": self.updated,
            "tables": [t.to_dict() for t in self.tables],
            "problems": self.problems,
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
            "profile": self.profile,
            "phases": phase_times(self.profile, self.seconds),
            "staging": self.staging,
            "side_effects": self.side_effects,
        }


@dataclass
class ImportResult(ImportReport):
    """The import report plus what happened around it: the history row and the audit line."""

    history: str = "off"  # recorded | not recorded (rolled back) | skipped | off
    audit_log: str | None = None  # the audit file the line went to; None: off or not written

    @classmethod
    def of(cls, report: ImportReport, history: str, audit_log: str | None) -> ImportResult:
        values = {f.name: getattr(report, f.name) for f in fields(ImportReport)}
        return cls(**values, history=history, audit_log=audit_log)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "history": self.history, "audit_log": self.audit_log}


@dataclass
class CopyResult(ImportResult):
    """``copy``: the import report of the target (``archive`` is ``copy from SOURCE``,
    ``archive_id`` the copy's id) plus what the source sent, on which snapshot."""

    source: str = ""  # host:port/dbname, never a password
    snapshot: str = ""  # the source's exported snapshot: every table was read on it
    streamed: list[dict[str, Any]] = field(default_factory=list)  # table, rows, bytes as sent
    source_warnings: list[str] = field(default_factory=list)  # the export's (plan, excluded rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "source": self.source,
            "snapshot": self.snapshot,
            "streamed": self.streamed,
            "source_warnings": self.source_warnings,
        }


@dataclass
class DatabaseComparison:
    """``verify --dsn``: archive rows missing from the database, and rows that differ."""

    target: str
    matches: bool
    missing: int | None = None
    different: int | None = None
    tables: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None  # why the comparison could not run (schema drift, …)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "matches": self.matches,
            "missing": self.missing,
            "different": self.different,
            "tables": self.tables,
            "error": self.error,
        }


@dataclass
class VerifyResult:
    archive: str
    archive_id: str
    tables: list[dict[str, Any]] = field(default_factory=list)  # table, member, rows, ok
    damages: list[str] = field(default_factory=list)
    database: DatabaseComparison | None = None
    signature: SignatureInfo | None = None  # who signed the manifest; None: unsigned
    encrypted: bool = False
    warnings: list[str] = field(default_factory=list)  # key files readable by others

    @property
    def ok(self) -> bool:
        return not self.damages and (self.database is None or self.database.matches)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "archive": self.archive,
            "archive_id": self.archive_id,
            "tables": self.tables,
            "damages": self.damages,
            "database": self.database.to_dict() if self.database else None,
            "signature": self.signature.to_dict() if self.signature else None,
            "encrypted": self.encrypted,
            "warnings": self.warnings,
        }


@dataclass
class InspectResult:
    """The manifest of an archive, read without touching any member."""

    archive: str
    manifest: Manifest
    signature: SignatureInfo | None = None  # who signed the manifest; None: unsigned
    encrypted: bool = False
    warnings: list[str] = field(default_factory=list)  # key files readable by others

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "ok": True,
            "archive": self.archive,
            "signature": self.signature.to_dict() if self.signature else None,
            "encrypted": self.encrypted,
            "warnings": self.warnings,
            "archive_id": m.archive_id,
            "created_at": m.created_at,
            "tool_version": m.tool_version,
            "format_version": m.format_version,
            "source": m.source.to_dict(),
            "mapping_sha256": m.mapping_sha256,
            "manifest_sha256": m.sha256,
            "load_order": list(m.load_order),
            "tables": [
                {
                    "table": t.table,
                    "rows": t.rows,
                    "bytes": t.bytes,
                    "data_bytes": t.data_bytes,
                    "compression": t.compression,
                    "key_fields": list(t.key_fields),
                    "expansions": [dict(e) for e in t.expansions],
                    "fields": t.field_names,
                }
                for t in m.tables
            ],
            "lookups": [t.table for t in m.lookups],
        }


@dataclass
class PlanResult:
    """``plan``: load order, cycles, expansions, problems and the SQL of every step."""

    load_order: list[str]
    components: list[list[str]]
    cycles: list[dict[str, Any]]
    tables: list[dict[str, Any]]
    problems: list[dict[str, Any]]
    import_steps: list[dict[str, Any]]
    # with filters: per exported table {"table", "rule", "where"?, "owners"?, "needed_by"?, "describe"}
    subset: list[dict[str, Any]] | None = None

    @classmethod
    def from_dict(cls, info: dict[str, Any]) -> PlanResult:
        return cls(
            load_order=list(info["load_order"]),
            components=[list(c) for c in info["components"]],
            cycles=list(info["cycles"]),
            tables=list(info["tables"]),
            problems=list(info["problems"]),
            import_steps=list(info["import_steps"]),
            subset=list(info["subset"]) if info.get("subset") is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "load_order": self.load_order,
            "components": self.components,
            "cycles": self.cycles,
            "tables": self.tables,
            "problems": self.problems,
            "import_steps": self.import_steps,
            **({"subset": self.subset} if self.subset is not None else {}),
        }


@dataclass
class RunbookResult:
    """``sql``: the runbook's text (``script``), or the files written (``written``)."""

    kind: str
    script: str | None = None
    written: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "kind": self.kind, "script": self.script, "written": self.written}


@dataclass
class InitResult:
    """``init``: the first mapping, where it went, and the key guessed per table."""

    mapping: str
    tables: dict[str, tuple[str, ...] | None]
    output: str | None = None

    @property
    def keyed(self) -> int:
        return sum(1 for k in self.tables.values() if k)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "output": self.output,
            "tables": {n: list(k) if k else None for n, k in self.tables.items()},
            "mapping": self.mapping,
        }


__all__ = [
    "DatabaseComparison",
    "ImportResult",
    "InitResult",
    "InspectResult",
    "PlanResult",
    "RunbookResult",
    "VerifyResult",
]


@dataclass
class ExportResult:
    """What ``export`` wrote: the manifest exactly as published, and how long it took."""

    archive: str
    manifest: Manifest
    seconds: float
    warnings: list[str] = field(default_factory=list)
    audit_log: str | None = None  # the audit file the line went to; None: off or not written

    @property
    def archive_id(self) -> str:
        return self.manifest.archive_id

    @property
    def manifest_sha256(self) -> str:
        return self.manifest.sha256

    @property
    def tables(self) -> tuple[TableEntry, ...]:
        return self.manifest.tables

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "archive": self.archive,
            "archive_id": self.archive_id,
            "manifest_sha256": self.manifest_sha256,
            "tables": [
                {
                    "table": t.table,
                    "rows": t.rows,
                    "bytes": t.bytes,
                    "member": t.member,
                    **({"scope": t.scope} if t.scope is not None else {}),
                }
                for t in self.tables
            ],
            **({"filters": self.manifest.filters} if self.manifest.filters else {}),
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "warnings": self.warnings,
            "audit_log": self.audit_log,
        }


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


@dataclass(frozen=True)
class CycleEdge:
    """A foreign key inside a cycle (or a self-reference) and how the import satisfies it."""

    table: str
    constraint: str
    columns: tuple[str, ...]
    ref_table: str
    edge: str  # plan_model.EdgeKind: 'self' | 'ordered' | 'deferred' | 'unenforced' | 'second_pass' | ...
    nullable: bool | None  # None: unknown (from an archive)
    deferrable: bool | None

    @property
    def broken(self) -> bool:
        """True for the edge where the cycle is broken: it points at a table loaded later."""
        return self.edge in ("deferred", "unenforced", "second_pass")

    @property
    def how(self) -> str:
        return {
            "self": "one INSERT per table: rows referencing each other are checked at statement end",
            "ordered": "satisfied by the load order",
            "deferred": "constraint is DEFERRABLE: checked at the end of the component",
            "unenforced": "declared reference, not checked by the database: the pre-allocated id "
            "is inserted at once",
            "second_pass": "inserted as NULL, filled by an UPDATE once the referenced rows exist",
            "blocked": "NOT NULL and not deferrable: no insert order satisfies it "
            "(see the cycle-not-breakable error)",
            "lookup": "the referenced table is not exported: resolved against the target's rows",
        }.get(self.edge, self.edge)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "constraint": self.constraint,
            "columns": list(self.columns),
            "ref_table": self.ref_table,
            "edge": self.edge,
            "broken": self.broken,
            "nullable": self.nullable,
            "deferrable": self.deferrable,
            "how": self.how,
        }


@dataclass(frozen=True)
class Cycle:
    tables: tuple[str, ...]
    edges: tuple[CycleEdge, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"tables": list(self.tables), "edges": [e.to_dict() for e in self.edges]}


@dataclass
class CheckReport:
    source: str
    problems: list[Problem] = field(default_factory=list)
    cycles: list[Cycle] = field(default_factory=list)
    load_order: list[str] = field(default_factory=list)
    unmapped_tables: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "problems": [p.to_dict() for p in self.problems],
            "cycles": [c.to_dict() for c in self.cycles],
            "load_order": self.load_order,
            "unmapped_tables": self.unmapped_tables,
        }


@dataclass
class Leftovers:
    """What a sweep of staging schemas found."""

    dropped: list[str] = field(default_factory=list)
    # held by an import that is running now: left alone
    in_use: list[str] = field(default_factory=list)
    # owned by another role: only that role (or a superuser) can drop them
    not_owned: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "dropped": self.dropped,
            "in_use": self.in_use,
            "not_owned": [{"schema": s, "owner": o} for s, o in self.not_owned],
        }

    def notes(self) -> list[str]:
        """What an import warns about: the leftovers it dropped, and those it could not."""
        dropped = [
            f"dropped staging schema {s}, left behind by an import that did not finish" for s in self.dropped
        ]
        return dropped + self.not_owned_notes()

    def not_owned_notes(self) -> list[str]:
        return [
            f"staging schema {s} was left behind by an import of role {o}; this role may not drop it: "
            f"run edms-pgdump cleanup as {o}, or DROP SCHEMA {s} CASCADE as its owner"
            for s, o in self.not_owned
        ]


@dataclass
class RestoreResult:
    """One way of moving the data, and what it did to the target."""

    method: str
    command: str
    target: str
    exit_code: int
    tables: list[TableCheck] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def verified(self) -> bool:
        return self.exit_code == 0 and bool(self.tables) and all(t.ok for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "command": self.command,
            "target": self.target,
            "exit_code": self.exit_code,
            "error": self.error,
            "verified": self.verified,
            "rows_lost": sum(t.lost for t in self.tables),
            "rows_wrong": sum(t.wrong for t in self.tables),
            "tables": [t.to_dict() for t in self.tables],
            "seconds": round(self.seconds, 3),
        }


@dataclass
class DemoResult:
    server: str
    postgres_version: str
    scale: int
    source: str
    archive_id: str = ""
    manifest_sha256: str = ""
    restores: list[RestoreResult] = field(default_factory=list)
    reimport: dict[str, Any] = field(default_factory=dict)
    history_rows: int = 0
    audit_lines: list[dict[str, Any]] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # why the id-based side (pg_dump/pg_restore) did not run; None when it ran
    id_based_skipped: str | None = None
    seconds: float = 0.0
    # where the demo worked; deleted at the end unless --keep
    workdir: str = ""
    server_dir: str | None = None

    @property
    def ok(self) -> bool:
        """The demo's verdict: the natural-key side verified (the id side is expected to fail)."""
        return any(r.method == "edms-pgdump" and r.verified for r in self.restores)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "server": self.server,
            "postgres_version": self.postgres_version,
            "scale": self.scale,
            "source": self.source,
            "archive_id": self.archive_id,
            "manifest_sha256": self.manifest_sha256,
            "restores": [r.to_dict() for r in self.restores],
            "reimport": self.reimport,
            "history_rows": self.history_rows,
            "audit_lines": self.audit_lines,
            "id_based": {"ran": self.id_based_skipped is None, "skipped_because": self.id_based_skipped},
            "kept": self.kept,
            "notes": self.notes,
            "workdir": self.workdir,
            "server_dir": self.server_dir,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class TableCheck:
    """One table of one restore, compared with the source through natural keys."""

    table: str
    source: int
    before: int
    after: int
    intact: int = 0  # source rows present with identical values and relationships
    wrong: int = 0  # present by natural key, but a value or relationship differs
    lost: int = 0  # source rows whose natural key is absent from the target
    archive: int | None = None

    @property
    def ok(self) -> bool:
        return self.intact == self.source and self.wrong == 0 and self.lost == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "source": self.source,
            "before": self.before,
            "archive": self.archive,
            "after": self.after,
            "intact": self.intact,
            "wrong": self.wrong,
            "lost": self.lost,
            "ok": self.ok,
        }
