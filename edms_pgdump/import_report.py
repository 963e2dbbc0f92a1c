"""What an import did, table by table: the counts that must balance before COMMIT."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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

    @property
    def balanced(self) -> bool:
        return (
            self.expected == self.staged == self.inserted + self.updated + self.unchanged + self.skipped
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
            "skipped": self.skipped,
            "deleted": self.deleted,
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
    current_step: str = ""  # the statement running when a server error struck
    # (step, table, seconds, rows) of every statement that touches many rows; in the
    # JSON report so a slow import can be explained without a debugger.
    profile: list[dict[str, Any]] = field(default_factory=list)
    # where the rows were staged: {"tables": "temporary"} on the import's own
    # connection, or {"tables": "unlogged", "schema": ..., "connections": N}
    staging: dict[str, Any] = field(default_factory=lambda: {"tables": "temporary", "connections": 1})

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
            "profile": self.profile,
            "staging": self.staging,
        }
