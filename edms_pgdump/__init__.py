"""edms_pgdump: natural-key logical export/import for PostgreSQL at COPY speed."""

from __future__ import annotations

__version__ = "0.1.0"

from .api import export_archive, import_archive, inspect_archive, verify_archive
from .audit import default_audit_path
from .audit import read_lines as read_audit_log
from .catalog import read_catalog
from .errors import (
    ArchiveError,
    DatabaseError,
    EdmsPgdumpError,
    ImportRejected,
    MappingError,
    PlanError,
    SchemaDriftError,
    UsageError,
)
from .export import ExportResult
from .history import read_history
from .load import ImportOptions, ImportReport
from .mapping import Mapping, load_mapping, load_mapping_text
from .plan import Plan, build_plan

__all__ = [
    "ArchiveError",
    "DatabaseError",
    "EdmsPgdumpError",
    "ExportResult",
    "ImportOptions",
    "ImportRejected",
    "ImportReport",
    "Mapping",
    "MappingError",
    "Plan",
    "PlanError",
    "SchemaDriftError",
    "UsageError",
    "build_plan",
    "default_audit_path",
    "export_archive",
    "import_archive",
    "inspect_archive",
    "load_mapping",
    "load_mapping_text",
    "read_audit_log",
    "read_catalog",
    "read_history",
    "verify_archive",
]
