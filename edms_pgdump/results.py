"""What each command returns: typed results the CLI only prints.

Each has ``to_dict()``, the document ``--json`` prints (documented in docs/), so a
script calling the library and one parsing the CLI's JSON see the same fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from .import_report import ImportReport
from .manifest import Manifest
from .signing import SignatureInfo


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
