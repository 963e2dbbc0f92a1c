"""The public Python API: one function per CLI command."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from . import __version__, audit
from . import export as _export
from . import load as _load
from .archive import ArchiveReader, check_integrity
from .audit import AuditRecord, AuditTarget
from .errors import EdmsPgdumpError, ImportRejected
from .export import ExportResult
from .history import HistoryHooks
from .load import ImportOptions, ImportReport
from .mapping import Mapping
from .progress import Progress


def inspect_archive(archive: str | Path) -> dict[str, Any]:
    """The manifest's facts without reading any member."""
    with ArchiveReader(archive) as reader:
        m = reader.manifest.data
        return {
            "archive": str(archive),
            "archive_id": m["archive_id"],
            "created_at": m["created_at"],
            "tool_version": m.get("tool_version"),
            "format_version": m.get("format_version"),
            "source": m.get("source", {}),
            "mapping_sha256": m.get("mapping_sha256"),
            "manifest_sha256": reader.manifest.sha256,
            "load_order": m.get("load_order", []),
            "tables": [
                {
                    "table": t["table"],
                    "rows": t["rows"],
                    "bytes": t["bytes"],
                    "data_bytes": t.get("data_bytes"),
                    "compression": t["compression"],
                    "key_fields": t.get("key_fields", []),
                    "expansions": t.get("expansions", []),
                    "fields": [f["name"] for f in t["fields"]],
                }
                for t in m["tables"]
            ],
            "lookups": [t["table"] for t in m.get("lookups", [])],
        }


def verify_archive(archive: str | Path, dsn: str | None = None) -> dict[str, Any]:
    """Integrity of every member; with ``dsn``, whether the database holds the same rows.

    The database comparison is a dry-run import: rows it would insert are missing from
    the database, rows it would update differ. Nothing is written.
    """
    with ArchiveReader(archive) as reader:
        report = check_integrity(reader)
    result = report.to_dict()
    if dsn and report.ok:
        try:
            opts = ImportOptions(dry_run=True, on_conflict="update")
            imp = _load.import_archive(dsn, archive, options=opts)
        except ImportRejected as exc:
            result["ok"] = False
            result["database"] = {
                "target": dsn,
                "matches": False,
                "error": str(exc),
                "missing": None,
                "different": None,
            }
            return result
        result["database"] = {
            "target": imp.target,
            "missing": imp.inserted,
            "different": imp.updated,
            "matches": imp.inserted == 0 and imp.updated == 0,
            "tables": [t.to_dict() for t in imp.tables],
        }
        result["ok"] = result["ok"] and result["database"]["matches"]
    return result


def _archive_facts(archive: str | Path) -> tuple[str | None, str | None, dict[str, Any]]:
    """(archive id, manifest SHA-256, source) of an archive, or Nones if it is unreadable."""
    try:
        with ArchiveReader(archive) as reader:
            m = reader.manifest
            return m.archive_id, m.sha256, dict(m.data.get("source", {}))
    except EdmsPgdumpError:
        return None, None, {}


def _failed(record: AuditRecord, exc: BaseException) -> None:
    record.result = "failed"
    record.error = str(exc) or type(exc).__name__
    record.error_kind = type(exc).__name__


def export_archive(
    dsn: str,
    mapping: Mapping,
    output: str | Path,
    *,
    jobs: int = 1,
    compression: str = "zstd",
    level: int = 3,
    directory: bool = False,
    allow_warnings: bool = True,
    progress: Progress | None = None,
    audit_log: AuditTarget = None,
    sort_rows: bool = False,
) -> ExportResult:
    """Export every mapped table on one snapshot, and append the outcome to the audit log.

    ``audit_log``: a path, None for the default (``$EDMS_PGDUMP_AUDIT_LOG`` or the user's
    state directory), or False for no audit line. A failed export is audited too.
    """
    record = AuditRecord("export", dsn, str(output), __version__)
    started = time.monotonic()
    try:
        result = _export.export_archive(
            dsn,
            mapping,
            output,
            jobs=jobs,
            compression=compression,
            level=level,
            directory=directory,
            allow_warnings=allow_warnings,
            progress=progress,
            sort_rows=sort_rows,
        )
    except BaseException as exc:
        _failed(record, exc)
        record.seconds = time.monotonic() - started
        audit.write(audit_log, record)
        raise
    record.result = "ok"
    record.archive_id = result.archive_id
    record.manifest_sha256 = result.manifest_sha256
    record.tables = [{"table": t["table"], "rows": t["rows"], "bytes": t["bytes"]} for t in result.tables]
    _, _, source = _archive_facts(output)
    record.db_role = source.get("role")
    record.details = {"mapping_sha256": mapping.sha256, "snapshot": source.get("snapshot")}
    record.seconds = time.monotonic() - started
    _, warning = audit.write(audit_log, record)
    if warning:
        result.warnings.append(warning)
    return result


def import_archive(
    dsn: str,
    archive: str | Path,
    *,
    options: ImportOptions | None = None,
    progress: Progress | None = None,
    history: bool = True,
    audit_log: AuditTarget = None,
) -> ImportReport:
    """Import in one transaction, record it in ``edms_pgdump.history`` (same transaction)
    and append the outcome, committed or not, to the audit log.

    ``report.already_applied`` says the history already held this archive. With
    ``history=False`` the target is not touched beyond the mapped tables.
    """
    opts = options or ImportOptions()
    archive_id, manifest_sha, source = _archive_facts(archive)
    record = AuditRecord("import", dsn, str(archive), __version__)
    record.archive_id = archive_id
    record.manifest_sha256 = manifest_sha
    record.details = {"dry_run": opts.dry_run, "committed": False, "already_applied": False}
    hooks = HistoryHooks(archive_id or "", manifest_sha or "", __version__, source, enabled=history)
    started = time.monotonic()
    try:
        report = _load.import_archive(dsn, archive, options=opts, progress=progress, hooks=hooks)
    except BaseException as exc:
        _failed(record, exc)
        record.db_role = hooks.db_role
        failed_report = getattr(exc, "report", None)
        if isinstance(failed_report, ImportReport):
            record.tables = [t.to_dict() for t in failed_report.tables]
            record.details["already_applied"] = failed_report.already_applied
        record.seconds = time.monotonic() - started
        audit.write(audit_log, record)
        raise
    record.result = "ok"
    record.db_role = hooks.db_role
    record.tables = [t.to_dict() for t in report.tables]
    record.details.update(
        committed=report.committed,
        already_applied=report.already_applied,
        inserted=report.inserted,
        updated=report.updated,
        history=hooks.available and report.committed,
    )
    record.seconds = time.monotonic() - started
    _, warning = audit.write(audit_log, record)
    if warning:
        report.warnings.append(warning)
    return report
