"""edms_pgdump: natural-key logical export/import for PostgreSQL at COPY speed."""

from __future__ import annotations

__version__ = "0.1.0"

from .api import inspect_archive, verify_archive
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
from .export import ExportResult, export_archive
from .load import ImportOptions, ImportReport, import_archive
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
    "export_archive",
    "import_archive",
    "inspect_archive",
    "load_mapping",
    "load_mapping_text",
    "read_catalog",
    "verify_archive",
]
