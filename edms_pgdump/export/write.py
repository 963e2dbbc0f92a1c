"""Export: one consistent snapshot, server-side COPY, streamed into archive members.

The export is a program (``export.program``) run by ``export.run``; this module plans on
the snapshot, builds the program, runs it and writes the manifest. Tables may be
exported in parallel (``jobs``): the first connection exports its snapshot and every
worker adopts it, so all members describe the same instant.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import psycopg

from edms_pgdump import __version__
from edms_pgdump.analysis.app_shapes import excluded_with_rows
from edms_pgdump.analysis.generic_probe import plan_with_targets
from edms_pgdump.archive.keys import Recipient
from edms_pgdump.archive.manifest import (
    FORMAT_VERSION,
    FieldEntry,
    Manifest,
    Source,
    TableEntry,
    TableShape,
)
from edms_pgdump.archive.package import ArchiveWriter, MemberInfo
from edms_pgdump.archive.signing import Signer
from edms_pgdump.catalog.names import QualifiedName, parse_qualified_name
from edms_pgdump.catalog.read import Catalog, read_catalog
from edms_pgdump.db import Connection, connect, describe_dsn, server_error_message
from edms_pgdump.errors import DatabaseError, UsageError
from edms_pgdump.export.program import (
    EXPORT_SETTINGS,
    EXPORT_WORK_MEM,
    CopyOut,
    ExportProgram,
    export_opening,
    export_program,
    unmapped_types_step,
)
from edms_pgdump.export.run import Runner, refuse_unmapped_types, run_opening
from edms_pgdump.export.subset import Subset, WhereArgs, resolve_filters, subset_steps
from edms_pgdump.mapping import Mapping
from edms_pgdump.options import ExportOptions, NoProgress, Progress
from edms_pgdump.plan.build import Plan, TablePlan, build_plan, unmapped_tables
from edms_pgdump.results import ExportResult
from edms_pgdump.sqlgen import SESSION_SETTINGS
from edms_pgdump.sqlgen.where import RowFilter

Filters = dict[QualifiedName, RowFilter]


def table_shape(tp: TablePlan, catalog: Catalog) -> TableShape:
    """The plan facts an importer needs, stored beside the data."""
    return TableShape(
        table=str(tp.table),
        schema=tp.table.schema,
        name=tp.table.name,
        natural_key=tuple(tp.natural_key),
        key_fields=tuple(kf.name for kf in tp.key_fields),
        fields=tuple(
            FieldEntry(f.name, f.type, f.role, f.column or None, f.reference or None) for f in tp.fields
        ),
        expansions=(*(e.to_dict() for e in tp.expansions), *(g.to_dict() for g in tp.generic)),
        dropped_columns=tuple(c.name for c in tp.surrogate),
        estimated_rows=catalog.tables[tp.table].estimated_rows,
    )


def table_entry(tp: TablePlan, catalog: Catalog, info: MemberInfo) -> TableEntry:
    shape = table_shape(tp, catalog)
    return TableEntry(
        **{f.name: getattr(shape, f.name) for f in fields(TableShape)},
        member=info.member,
        rows=info.rows,
        bytes=info.bytes,
        sha256=info.sha256,
        data_bytes=info.data_bytes,
        data_sha256=info.data_sha256,
        compression=info.compression,
    )


def with_scope(entry: TableEntry, subset: Subset | None) -> TableEntry:
    """A subset export's entry records which rule chose its rows (``scope``)."""
    if subset is None:
        return entry
    return replace(entry, extra={**entry.extra, "scope": subset.scope(parse_qualified_name(entry.table))})


@dataclass
class OpenedExport:
    """An export planned on its snapshot, its refusals not yet run: what the archive's
    export and ``copy`` (load.copy_source) share before the first row moves."""

    catalog: Catalog
    plan: Plan
    program: ExportProgram
    excluded: list[str]  # rows no archive carries, with their counts (warnings)
    server_version: str
    estimated: dict[str, int]  # rows per table, from the statistics: biggest first

    def copy_steps(self) -> dict[QualifiedName, CopyOut]:
        return {c.table: c for c in self.program.copies()}


def open_export(conn: Connection, mapping: Mapping, options: ExportOptions, filters: Filters) -> OpenedExport:
    """Open the snapshot on ``conn`` (the program's opening), plan on it and build the
    export program; raise on a plan error or an unmapped generic type."""
    run_opening(conn, export_opening(read_only=not filters))
    catalog = read_catalog(conn)
    plan = build_plan(mapping, catalog)
    plan.raise_for_errors()
    # which tables the generic references name is data: found on this snapshot (a
    # type naming a table that is no target is the program's first refusal)
    plan, unmapped = plan_with_targets(conn, mapping, catalog, plan)
    if unmapped:
        # named before any other problem of the plan, by the program's first refusal
        step = unmapped_types_step(plan, catalog, mapping)
        if step is not None:
            refuse_unmapped_types(conn, step)
    plan.raise_for_errors()
    # rows no archive carries: named with their counts in the summary (on this snapshot)
    excluded = [str(p) for p in excluded_with_rows(conn, mapping, catalog)]
    subset = subset_steps(plan, catalog, filters) if filters else None
    program = export_program(plan, catalog, mapping, options, subset)
    version = conn.execute("SELECT current_setting('server_version')").fetchone()
    estimated = {str(t): catalog.tables[t].estimated_rows for t in plan.load_order}
    return OpenedExport(catalog, plan, program, excluded, str(version[0]) if version else "", estimated)


def export_manifest(
    dsn: str,
    mapping: Mapping,
    options: ExportOptions,
    opened: OpenedExport,
    snapshot: str,
    subset: Subset | None,
    member: Callable[[int], MemberInfo],
) -> Manifest:
    """The manifest of an export run on ``opened``; ``member(i)`` is data file ``i``'s."""
    plan, catalog = opened.plan, opened.catalog
    return Manifest(
        archive_id=str(uuid.uuid4()),
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        tables=tuple(
            with_scope(table_entry(tp, catalog, member(i)), subset)
            for i, tp in enumerate(plan.exported, start=1)
        ),
        mapping=mapping.to_dict(),
        format_version=FORMAT_VERSION,
        tool_version=__version__,
        source=Source(
            server=describe_dsn(dsn),
            database=catalog.database,
            server_version=opened.server_version,
            server_version_num=catalog.server_version,
            snapshot=snapshot,
            role=catalog.current_user,
        ),
        settings=dict(SESSION_SETTINGS),
        mapping_sha256=mapping.sha256,
        sorted_rows=options.sort_rows,
        mapping_text=mapping.source_text,
        load_order=tuple(str(n) for n in plan.load_order),
        components=tuple(tuple(str(n) for n in comp) for comp in plan.components),
        unmapped_tables=tuple(str(n) for n in unmapped_tables(mapping, catalog)),
        problems=tuple(p.to_dict() for p in plan.problems),
        lookups=tuple(table_shape(tp, catalog) for tp in plan.tables.values() if not tp.export),
        extra={"filters": subset.filters} if subset else {},
    )


def write_archive(
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
    sort_rows: bool = False,
    recipients: Sequence[Recipient] = (),
    signer: Signer | None = None,
    where: WhereArgs = (),
) -> ExportResult:
    """``export_to_archive`` with the options as keywords (and the keys already read)."""
    if recipients and directory:
        raise UsageError(f"{output}: --encrypt-to writes one encrypted file; drop --format dir")
    options = ExportOptions(
        jobs=jobs,
        compression=compression,
        level=level,
        directory=directory,
        allow_warnings=allow_warnings,
        sort_rows=sort_rows,
        where=where,  # type: ignore[arg-type]  # a dict or pairs, kept as pairs
    )
    return export_to_archive(
        dsn, mapping, output, options, progress=progress, recipients=recipients, signer=signer
    )


def export_to_archive(
    dsn: str,
    mapping: Mapping,
    output: str | Path,
    options: ExportOptions,
    *,
    progress: Progress | None = None,
    recipients: Sequence[Recipient] = (),
    signer: Signer | None = None,
) -> ExportResult:
    """The export stage (``api.export_archive`` is the public entry, which also audits
    and reads the keys): every mapped table on one snapshot into an archive at ``output``.

    The export is a program (``export.program``): this opens the snapshot (its opening
    steps), plans on it, builds the program and runs it (``export.run``), then writes
    the manifest. ``options.where`` and the mapping's ``where:`` make it a subset export:
    the closure of subset.py, computed on the same snapshot. ``recipients``
    age-encrypts the published file; ``signer`` signs its manifest (see archive/)."""
    filters = resolve_filters(mapping, options.where)
    progress = progress or NoProgress()
    started = time.monotonic()
    out = Path(output)
    if out.exists() and not options.directory and out.is_dir():
        raise UsageError(f"{out}: is a directory; pass --format dir or another file name")
    conn = connect(dsn)
    writer: ArchiveWriter | None = None
    try:
        opened = open_export(conn, mapping, options, filters)
        writer = ArchiveWriter(output, directory=options.directory, recipients=recipients, signer=signer)
        done = Runner(conn, dsn, opened.program, writer, options, progress, opened.estimated).run()
        manifest = export_manifest(
            dsn, mapping, options, opened, done.snapshot, done.subset, lambda i: done.infos[i]
        )
        published = writer.publish(manifest)
        writer = None
        return ExportResult(
            archive=str(output),
            manifest=published,
            seconds=time.monotonic() - started,
            warnings=[str(p) for p in opened.plan.warnings] + done.warnings + opened.excluded,
        )
    except psycopg.Error as exc:
        raise DatabaseError(f"export from {describe_dsn(dsn)} failed: {server_error_message(exc)}") from None
    finally:
        if writer is not None:
            writer.abort()
        conn.close()


__all__ = [
    "EXPORT_SETTINGS",
    "EXPORT_WORK_MEM",
    "ExportResult",
    "OpenedExport",
    "export_manifest",
    "export_to_archive",
    "open_export",
    "table_shape",
    "write_archive",
]
