"""The audit trail: one JSON line per export or import, appended to a local file.

Why a file and not a table: the audit must survive an import that rolled back and an
export from a read-only replica, so it cannot live in either database. One line per
operation, written with a single ``write`` on a file opened for appending, so
concurrent runs on one machine do not interleave within a line.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from psycopg import conninfo

from edms_pgdump.db import describe_dsn

ENV_VAR = "EDMS_PGDUMP_AUDIT_LOG"
OFF_VALUES = ("", "off", "none", "-")
NOT_WRITTEN = "audit log"  # first words of the warning when the file could not be written

# What callers may pass as ``audit_log``: a path, None (the default location), or
# False (no audit line at all).
AuditTarget = str | os.PathLike[str] | Literal[False] | None


def default_audit_path() -> Path:
    """$XDG_STATE_HOME/edms-pgdump/audit.jsonl, else ~/.local/state/edms-pgdump/audit.jsonl."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "edms-pgdump" / "audit.jsonl"


def resolve_audit_path(target: AuditTarget) -> Path | None:
    """The file to append to, or None when auditing is switched off.

    Precedence: an explicit path, then $EDMS_PGDUMP_AUDIT_LOG (``off`` disables), then
    the default under the user's state directory.
    """
    if target is False:
        return None
    if target is not None:
        return Path(target).expanduser()
    env = os.environ.get(ENV_VAR)
    if env is not None:
        return None if env.strip().lower() in OFF_VALUES else Path(env).expanduser()
    return default_audit_path()


def os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def dsn_role(dsn: str) -> str | None:
    """The role a DSN would log in as, before connecting (libpq's defaults apply)."""
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except Exception:
        return None
    user = params.get("user") or os.environ.get("PGUSER")
    return str(user) if user else os_user()


@dataclass
class AuditRecord:
    """One operation; ``to_dict`` is the documented line format (see README)."""

    operation: Literal["export", "import", "import-fixture"]
    dsn: str
    archive: str
    tool_version: str
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    db_role: str | None = None
    archive_id: str | None = None
    manifest_sha256: str | None = None
    tables: list[dict[str, Any]] = field(default_factory=list)
    result: Literal["ok", "failed"] = "failed"
    error: str | None = None
    error_kind: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ts": self.started.isoformat(timespec="milliseconds"),
            "operation": self.operation,
            "result": self.result,
            "error": self.error,
            "error_kind": self.error_kind,
            "os_user": os_user(),
            "client_host": socket.gethostname(),
            "db_role": self.db_role or dsn_role(self.dsn),
            "database": describe_dsn(self.dsn),
            "archive": self.archive,
            "archive_id": self.archive_id,
            "manifest_sha256": self.manifest_sha256,
            "tables": self.tables,
            "rows": sum(int(t.get("rows", t.get("expected", 0)) or 0) for t in self.tables),
            **self.details,
            "seconds": round(self.seconds, 3),
            "tool_version": self.tool_version,
            "pid": os.getpid(),
        }


def append(path: Path, record: AuditRecord) -> None:
    """Append one line; raise OSError when the file cannot be written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record.to_dict(), default=str, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def write(target: AuditTarget, record: AuditRecord) -> tuple[Path | None, str | None]:
    """Append ``record`` if auditing is on: (path written, or None; warning text, or None).

    An audit file that cannot be written never fails an import that already committed;
    it becomes a warning naming the file and the fix. Callers keep the path as a typed
    field of their result (``audit_log``), never by re-reading the warning text.
    """
    path = resolve_audit_path(target)
    if path is None:
        return None, None
    try:
        append(path, record)
    except OSError as exc:
        return None, (
            f"{NOT_WRITTEN} {path} not written ({exc.strerror or exc}); pass --audit-log PATH or set "
            f"{ENV_VAR} to a writable file"
        )
    return path, None


def read_lines(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every record in an audit file, oldest first (for tests and tooling)."""
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
