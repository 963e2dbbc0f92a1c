"""``import-fixture``: a Django JSON fixture through the same import program as an archive.

The fixture is read and turned into per-table COPY spools inside the import's
transaction (the plan needs the target's catalog); then ``program.import_program`` and
``ProgramRunner`` stage, resolve, upsert and verify exactly as ``import`` does, so the
guarantees are the same: one transaction, counts proven, unresolved references named,
history recorded in the same transaction.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg

from . import sqlgen
from .catalog import read_catalog
from .db import connect, describe_dsn
from .errors import DatabaseError, UsageError
from .fixture import FixtureReader
from .fixture_read import FixtureError
from .import_options import ImportOptions
from .import_report import ImportReport
from .load import begin_import, failure_message, program_or_refusal, rollback_quietly, run_program
from .mapping import Mapping
from .names import QualifiedName, parse_qualified_name
from .plan import build_plan
from .progress import NoProgress, Progress


def parse_table_overrides(items: list[str] | tuple[str, ...] | None) -> dict[str, QualifiedName]:
    """``--table app.model=schema.table`` (or ``app.model.field=schema.table`` for an M2M's
    through table), for tables that do not follow Django's ``app_model`` naming."""
    out: dict[str, QualifiedName] = {}
    for item in items or ():
        label, sep, table = item.partition("=")
        if not sep or "." not in label or not table:
            raise UsageError(
                f"--table {item!r}: expected app.model=schema.table, e.g. auth.user=public.auth_user"
            )
        try:
            out[label.lower()] = parse_qualified_name(table)
        except ValueError as exc:
            raise UsageError(f"--table {item!r}: {exc}") from None
    return out


def import_fixture_file(
    dsn: str,
    fixture: str | Path,
    mapping: Mapping,
    *,
    options: ImportOptions | None = None,
    tables: dict[str, QualifiedName] | None = None,
    progress: Progress | None = None,
    hooks: Any = None,
) -> ImportReport:
    """Restore ``fixture`` into ``dsn`` in one transaction; raise on any problem, having
    written nothing. ``hooks`` as for ``load.import_archive`` (history); ``hooks.fixture_sha256``
    is set before ``before_load`` runs."""
    opts = options or ImportOptions()
    opts.validate()
    path = Path(fixture)
    if not path.is_file():
        raise FixtureError(f"{path}: no such fixture file; check the path")
    progress = progress or NoProgress()
    started = time.monotonic()
    report = ImportReport(str(path), "", describe_dsn(dsn), opts.dry_run)
    conn = connect(dsn)
    spool = None
    try:
        begin_import(conn, opts)
        catalog = read_catalog(conn)
        t0 = time.perf_counter()
        types = tuple(mapping.types.values())
        reader = FixtureReader(path, build_plan(mapping, catalog), catalog, mapping.exclude, tables, types)
        reader.survey()
        plan = build_plan(mapping, catalog, reader.generic_targets())
        plan.raise_for_errors()
        reader.rebind(plan)
        reader.shape_all()
        report.profile.append({"step": "read fixture", "seconds": round(time.perf_counter() - t0, 4)})
        report.archive_id = f"fixture:{reader.sha256}"
        t0 = time.perf_counter()
        spool = reader.spool()
        report.profile.append({"step": "spool fixture", "seconds": round(time.perf_counter() - t0, 4)})
        report.warnings.extend(reader.warnings)
        report.warnings.extend(str(p) for p in plan.warnings)
        if hooks is not None:
            hooks.archive_id = report.archive_id
            hooks.manifest_sha256 = reader.sha256
            hooks.catalog = catalog
            hooks.before_load(conn, report)
        program = program_or_refusal(plan, catalog, opts, spool.loaded, report)
        run_program(conn, program, spool, report, progress)
        if hooks is not None:
            hooks.after_load(conn, report)
        if opts.dry_run:
            conn.execute(sqlgen.rollback())
        else:
            conn.execute(sqlgen.commit())
            report.committed = True
    except psycopg.Error as exc:
        rollback_quietly(conn)
        msg = failure_message(exc, report)
        raise DatabaseError(
            f"import of {path} into {describe_dsn(dsn)} failed and was rolled back: {msg}"
        ) from None
    except BaseException:
        rollback_quietly(conn)
        raise
    finally:
        if spool is not None:
            spool.close()
        conn.close()
        report.seconds = time.monotonic() - started
    return report
