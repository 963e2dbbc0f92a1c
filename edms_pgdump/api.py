"""The public Python API: one function per CLI command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .archive import ArchiveReader, check_integrity
from .errors import ImportRejected
from .load import ImportOptions, import_archive


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
            imp = import_archive(dsn, archive, options=ImportOptions(dry_run=True, on_conflict="update"))
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
