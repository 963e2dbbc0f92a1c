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

from edms_pgdump import sqlgen
from edms_pgdump.catalog.names import QualifiedName, parse_qualified_name
from edms_pgdump.catalog.read import Catalog, read_catalog
from edms_pgdump.db import Connection, connect, describe_dsn
from edms_pgdump.django.fixture_plan import FixtureReader, KeptIds
from edms_pgdump.django.fixture_read import FixtureError
from edms_pgdump.errors import DatabaseError, UsageError
from edms_pgdump.load.transaction import (
    begin_import,
    failure_message,
    program_or_refusal,
    rollback_quietly,
    run_program,
)
from edms_pgdump.mapping import Mapping
from edms_pgdump.options import ImportOptions, NoProgress, Progress
from edms_pgdump.plan.build import build_plan
from edms_pgdump.plan.generic import target_of
from edms_pgdump.results import ImportReport
from edms_pgdump.sqlgen.fixture import kept_ids_missing, kept_ids_named


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
        reader.keep_ids()
        run_mapping = reader.mapping_keeping_ids(mapping)
        plan = build_plan(run_mapping, catalog, reader.generic_targets())
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
        check_kept_ids(conn, reader, catalog, run_mapping, report, opts.sample_size)
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


def check_kept_ids(
    conn: Connection,
    reader: FixtureReader,
    catalog: Catalog,
    mapping: Mapping,
    report: ImportReport,
    samples: int,
) -> None:
    """After the load, before COMMIT: the generic ids kept as they are (``KeptIds``). Ids
    that name no row of their table are refused, each group named (loaddata would write
    them, pointing at nothing); the others are named in a warning with the row each one
    names now, since the file cannot show that it is the row it named in the source."""
    problems: list[str] = []
    refused: list[str] = []
    for kept in sorted(reader.kept.values(), key=lambda k: (str(k.table), k.id_column, k.type_name)):
        if not kept.ids:
            continue
        target = target_of(catalog, mapping, kept.target)
        if target is None:
            problems.append(
                f"{_what(kept)}: {kept.target} has no one-column primary key, so they cannot be checked"
            )
            refused.append(kept.type_name)
            continue
        params = {"ids": list(kept.ids), "samples": samples}
        missing = conn.execute(kept_ids_missing(kept.target, target.id_column), params).fetchall()
        if missing:
            shown = ", ".join(f"{r[1]} (in {kept.ids[r[1]]})" for r in missing)
            more = f" and {missing[0][0] - len(missing)} more" if missing[0][0] > len(missing) else ""
            problems.append(
                f"{missing[0][0]} of the {_what(kept)} name no row of {kept.target} after the "
                f"import: {shown}{more}"
            )
            refused.append(kept.type_name)
            continue
        key = mapping.tables[kept.target].natural_key
        named = conn.execute(kept_ids_named(kept.target, target.id_column, key), params).fetchall()
        shown = ", ".join(f"{r[1]} -> {r[2] if len(key) == 1 else f'({r[2]})'}" for r in named)
        more = f" and {len(kept.ids) - len(named)} more" if len(kept.ids) > len(named) else ""
        report.warnings.append(
            f"{_what(kept)} are kept as they are, as loaddata keeps them: {_why(kept.type_name)}. "
            f"Each names the {kept.target} row with that id here (id -> {', '.join(key)}: {shown}{more}), "
            f"which is the row it named in the source only if every {kept.type_name} got the id it had "
            "there; dump with --natural-foreign alone to have them resolved by natural key"
        )
    if problems:
        why = _why(refused[0])
        message = (
            f"{reader.path}: {problems[0]}. {why[0].upper()}{why[1:]}; loaddata would write these ids "
            "as they are, pointing at nothing or at other rows. Dump with --natural-foreign alone "
            "(objects keep their pks and each id is resolved by natural key); nothing was imported"
        )
        raise FixtureError(message, [message, *(f"{reader.path}: {p}" for p in problems[1:])])


def _what(kept: KeptIds) -> str:
    return f"{len(kept.ids)} generic id(s) in {kept.table}.{kept.id_column} of type {kept.type_name}"


def _why(type_name: str) -> str:
    return (
        f"the fixture's {type_name} objects carry no pk (dumped with --natural-primary), so these "
        "are the source database's ids and the file does not say which object each one named"
    )
