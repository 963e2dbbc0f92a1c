"""edms_pgdump: natural-key logical export/import for PostgreSQL at COPY speed.

The public names below are imported on first use (PEP 562), so ``edms-pgdump --version``
and ``--help`` do not pay for psycopg, sqlglot and the planner.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from edms_pgdump.api import (
        check_mapping,
        cleanup_staging,
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
    from edms_pgdump.archive.manifest import FieldEntry, Manifest, Source, TableEntry, TableShape
    from edms_pgdump.catalog.read import read_catalog
    from edms_pgdump.demo.story import run_demo as demo_story
    from edms_pgdump.errors import (
        ArchiveError,
        DatabaseError,
        EdmsPgdumpError,
        ImportRejected,
        MappingError,
        PlanError,
        SchemaDriftError,
        UsageError,
    )
    from edms_pgdump.load.audit import default_audit_path
    from edms_pgdump.load.audit import read_lines as read_audit_log
    from edms_pgdump.load.history import read_history
    from edms_pgdump.mapping import Mapping, load_mapping, load_mapping_text
    from edms_pgdump.options import ExportOptions, ImportOptions
    from edms_pgdump.plan.build import Plan, build_plan
    from edms_pgdump.results import (
        DatabaseComparison,
        ExportResult,
        ImportReport,
        ImportResult,
        InitResult,
        InspectResult,
        PlanResult,
        RunbookResult,
        VerifyResult,
    )

_WHERE: dict[str, tuple[str, str]] = {
    "ArchiveError": ("edms_pgdump.errors", "ArchiveError"),
    "DatabaseComparison": ("edms_pgdump.results", "DatabaseComparison"),
    "DatabaseError": ("edms_pgdump.errors", "DatabaseError"),
    "EdmsPgdumpError": ("edms_pgdump.errors", "EdmsPgdumpError"),
    "ExportOptions": ("edms_pgdump.options", "ExportOptions"),
    "ExportResult": ("edms_pgdump.export.write", "ExportResult"),
    "FieldEntry": ("edms_pgdump.archive.manifest", "FieldEntry"),
    "ImportOptions": ("edms_pgdump.options", "ImportOptions"),
    "ImportRejected": ("edms_pgdump.errors", "ImportRejected"),
    "ImportReport": ("edms_pgdump.results", "ImportReport"),
    "ImportResult": ("edms_pgdump.results", "ImportResult"),
    "InitResult": ("edms_pgdump.results", "InitResult"),
    "InspectResult": ("edms_pgdump.results", "InspectResult"),
    "Manifest": ("edms_pgdump.archive.manifest", "Manifest"),
    "Mapping": ("edms_pgdump.mapping", "Mapping"),
    "MappingError": ("edms_pgdump.errors", "MappingError"),
    "Plan": ("edms_pgdump.plan.build", "Plan"),
    "PlanError": ("edms_pgdump.errors", "PlanError"),
    "PlanResult": ("edms_pgdump.results", "PlanResult"),
    "RunbookResult": ("edms_pgdump.results", "RunbookResult"),
    "SchemaDriftError": ("edms_pgdump.errors", "SchemaDriftError"),
    "Source": ("edms_pgdump.archive.manifest", "Source"),
    "TableEntry": ("edms_pgdump.archive.manifest", "TableEntry"),
    "TableShape": ("edms_pgdump.archive.manifest", "TableShape"),
    "UsageError": ("edms_pgdump.errors", "UsageError"),
    "VerifyResult": ("edms_pgdump.results", "VerifyResult"),
    "build_plan": ("edms_pgdump.plan.build", "build_plan"),
    "check_mapping": ("edms_pgdump.api", "check_mapping"),
    "cleanup_staging": ("edms_pgdump.api", "cleanup_staging"),
    "default_audit_path": ("edms_pgdump.load.audit", "default_audit_path"),
    "demo_story": ("edms_pgdump.demo.story", "run_demo"),
    "export_archive": ("edms_pgdump.api", "export_archive"),
    "import_archive": ("edms_pgdump.api", "import_archive"),
    "import_fixture": ("edms_pgdump.api", "import_fixture"),
    "init_mapping": ("edms_pgdump.api", "init_mapping"),
    "inspect_archive": ("edms_pgdump.api", "inspect_archive"),
    "load_mapping": ("edms_pgdump.mapping", "load_mapping"),
    "load_mapping_text": ("edms_pgdump.mapping", "load_mapping_text"),
    "plan_archive": ("edms_pgdump.api", "plan_archive"),
    "plan_mapping": ("edms_pgdump.api", "plan_mapping"),
    "read_audit_log": ("edms_pgdump.load.audit", "read_lines"),
    "read_catalog": ("edms_pgdump.catalog.read", "read_catalog"),
    "read_history": ("edms_pgdump.load.history", "read_history"),
    "sql_runbook": ("edms_pgdump.api", "sql_runbook"),
    "verify_archive": ("edms_pgdump.api", "verify_archive"),
}


def __getattr__(name: str) -> Any:
    found = _WHERE.get(name)
    if found is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = found
    return getattr(importlib.import_module(module), attr)


__all__ = [
    "ArchiveError",
    "DatabaseComparison",
    "DatabaseError",
    "EdmsPgdumpError",
    "ExportOptions",
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
