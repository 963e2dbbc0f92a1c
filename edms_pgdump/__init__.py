"""edms_pgdump: natural-key logical export/import for PostgreSQL at COPY speed."""

from __future__ import annotations

__version__ = "0.1.0"

from .api import (
    check_mapping,
    cleanup_staging,
    demo_story,
    export_archive,
    import_archive,
    import_fixture,
    init_mapping,
    inspect_archive,
    plan_archive,
    plan_mapping,
    sql_runbook,
    verify_archive,
)
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
from .import_options import ImportOptions
from .import_report import ImportReport
from .manifest import FieldEntry, Manifest, Source, TableEntry, TableShape
from .mapping import Mapping, load_mapping, load_mapping_text
from .plan import Plan, build_plan
from .results import (
    DatabaseComparison,
    ImportResult,
    InitResult,
    InspectResult,
    PlanResult,
    RunbookResult,
    VerifyResult,
)

__all__ = [
    "ArchiveError",
    "DatabaseComparison",
    "DatabaseError",
    "EdmsPgdumpError",
    "ExportResult",
    "FieldEntry",
    "ImportOptions",
    "ImportRejected",
    "ImportReport",
    "ImportResult",
    "InitResult",
    "InspectResult",
    "Manifest",
    "Mapping",
    "MappingError",
    "Plan",
    "PlanError",
    "PlanResult",
    "RunbookResult",
    "SchemaDriftError",
    "Source",
    "TableEntry",
    "TableShape",
    "UsageError",
    "VerifyResult",
    "build_plan",
    "check_mapping",
    "cleanup_staging",
    "default_audit_path",
    "demo_story",
    "export_archive",
    "import_archive",
    "import_fixture",
    "init_mapping",
    "inspect_archive",
    "load_mapping",
    "load_mapping_text",
    "plan_archive",
    "plan_mapping",
    "read_audit_log",
    "read_catalog",
    "read_history",
    "sql_runbook",
    "verify_archive",
]
