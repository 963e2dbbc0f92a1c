"""Export: one consistent snapshot, server-side COPY, streamed into archive members.

Tables may be exported in parallel (``jobs``): the first connection exports its
snapshot and every worker adopts it, so all members describe the same instant.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import closing, suppress
from dataclasses import fields, replace
from pathlib import Path

import psycopg
from psycopg import sql

from edms_pgdump import __version__
from edms_pgdump.analysis.app_shapes import excluded_with_rows
from edms_pgdump.analysis.generic_probe import dangling_problems, plan_with_targets
from edms_pgdump.analysis.probes import refuse_unsafe_data
from edms_pgdump.archive.keys import Recipient
from edms_pgdump.archive.manifest import (
    COMPRESSIONS,
    FORMAT_VERSION,
    FieldEntry,
    Manifest,
    Source,
    TableEntry,
    TableShape,
)
from edms_pgdump.archive.package import ArchiveWriter, MemberInfo
from edms_pgdump.archive.signing import Signer
from edms_pgdump.catalog.names import parse_qualified_name
from edms_pgdump.catalog.read import Catalog, read_catalog
from edms_pgdump.db import Connection, connect, describe_dsn, server_error_message
from edms_pgdump.errors import ArchiveError, DatabaseError, PlanError, UsageError, sample_keys
from edms_pgdump.export.copy_blocks import copy_out_blocks
from edms_pgdump.export.member_writer import BackgroundMember
from edms_pgdump.export.subset import Subset, WhereArgs, compute_subset, resolve_filters
from edms_pgdump.mapping import Mapping
from edms_pgdump.options import NoProgress, Progress
from edms_pgdump.plan.build import Plan, TablePlan, build_plan, unmapped_tables
from edms_pgdump.results import ExportResult
from edms_pgdump.sqlgen import SESSION_SETTINGS, copy_out, tree_rows_off_path
from edms_pgdump.sqlgen.common import begin, set_local

# The natural-key joins of the export queries are hash joins over whole tables; with
# the default 4MB work_mem they spill to disk in many batches.
EXPORT_WORK_MEM = "256MB"
# The export's own transaction settings (as pg_dump's): the joins' memory, and no
# timeout of the role or database cuts a long COPY short, or the snapshot a parallel
# export's first connection holds, idle, while the others copy.
EXPORT_SETTINGS: tuple[tuple[str, str], ...] = (
    ("work_mem", EXPORT_WORK_MEM),
    ("statement_timeout", "0"),
    ("idle_in_transaction_session_timeout", "0"),
)


def _begin_snapshot(conn: Connection, snapshot: str | None = None, read_only: bool = True) -> None:
    # a subset export creates its temp tables first, then turns READ ONLY (subset.py)
    conn.execute(begin("REPEATABLE READ", read_only=read_only))
    for name, value in EXPORT_SETTINGS:
        conn.execute(set_local(name, value))
    if snapshot:
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))


class _Stopped(Exception):
    """A parallel export's table left off because another table failed (never reaches
    the caller: the other table's error does)."""


def _export_table(
    conn: Connection,
    plan: Plan,
    tp: TablePlan,
    writer: ArchiveWriter,
    index: int,
    compression: str,
    level: int,
    progress: Progress,
    ordered: bool = False,
    keep: sql.Composable | None = None,
    stop: threading.Event | None = None,
) -> MemberInfo:
    """One table's COPY into its member: blocks are read here while a worker thread
    hashes, compresses and writes the previous ones (export_copy.py, export_writer.py).
    ``stop`` (parallel exports): set when another table failed, this one then stops too."""
    member = BackgroundMember(writer.member(index, str(tp.table), compression, level))
    task = str(tp.table)
    try:
        with closing(copy_out_blocks(conn, copy_out(plan, tp, ordered, keep))) as blocks:
            for block, rows in blocks:
                if stop is not None and stop.is_set():
                    raise _Stopped(str(tp.table))
                member.write(block)
                progress.advance(task, rows, len(block))
        info = member.close()
    except psycopg.Error as exc:
        member.abort()
        msg = server_error_message(exc)
        if "row-level security" in msg:
            raise DatabaseError(
                f"{tp.table}: row-level security would hide rows from this role ({msg}); "
                "export as the table owner or a role with BYPASSRLS, nothing was written"
            ) from None
        raise DatabaseError(f"{tp.table}: export query failed: {msg}") from None
    except OSError as exc:
        member.abort()
        folder = writer.output.parent
        raise ArchiveError(
            f"{tp.table}: writing its member {member.member.member} in {folder} failed "
            f"({exc.strerror or exc}); free space in {folder} or export to another --output, "
            "nothing was published"
        ) from None
    except BaseException:
        member.abort()
        raise
    progress.finish(task)
    return info


def _refuse_dangling(conn: Connection, plan: Plan) -> list[str]:
    """Generic ids naming nothing: an error under on_dangling: error (all of them in one
    message), else warnings saying how many rows lose the reference or are left out."""
    found = dangling_problems(conn, plan)
    errors = [p for p in found if p.severity == "error"]
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise PlanError(str(errors[0]) + more + "; nothing was exported", [str(p) for p in errors])
    return [str(p) for p in found]


def _refuse_looping_trees(conn: Connection, plan: Plan) -> None:
    for tp in plan.exported:
        query = tree_rows_off_path(tp)
        if query is None:
            continue
        rows = conn.execute(query).fetchall()
        if rows:
            exp = tp.tree_expansion
            assert exp is not None
            names = [*exp.fk.columns, *tp.tree_steps]
            sample = sample_keys((r[1:] for r in rows), names)
            raise PlanError(
                f"{tp.table}: {rows[0][0]} row(s) have a parent but no path from a root (the parent "
                f"chain loops), so their natural key cannot be written: {sample}; break the loop "
                "in the data, nothing was exported"
            )


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


def check_export_options(jobs: int, compression: str, level: int) -> None:
    """Refuse options before connecting; each message names the option and what is allowed."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise UsageError(f"jobs={jobs!r} (--jobs): use a whole number of at least 1")
    if compression not in COMPRESSIONS:
        allowed = ", ".join(COMPRESSIONS)
        raise UsageError(f"compression={compression!r} (--compression): use one of {allowed}")
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 19:
        raise UsageError(f"level={level!r} (--level): use a zstd level from 1 to 19")


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
    """The export stage (``api.export_archive`` is the public entry, which also audits):
    every mapped table on one snapshot into an archive at ``output``.

    ``allow_warnings=False`` refuses a plan with warnings (a natural key without a
    unique constraint, a nullable key part…) before anything is written. ``recipients``
    age-encrypts the published file; ``signer`` signs its manifest (see archive.py).
    ``where`` ((table, expression) pairs) and the mapping's ``where:`` make it a subset
    export: the closure of subset.py, computed on the same snapshot."""
    check_export_options(jobs, compression, level)
    filters = resolve_filters(mapping, where)
    if recipients and directory:
        raise UsageError(f"{output}: --encrypt-to writes one encrypted file; drop --format dir")
    progress = progress or NoProgress()
    started = time.monotonic()
    out = Path(output)
    if out.exists() and not directory and out.is_dir():
        raise UsageError(f"{out}: is a directory; pass --format dir or another file name")
    conn = connect(dsn)
    writer: ArchiveWriter | None = None
    workers: list[Connection] = []
    try:
        _begin_snapshot(conn, read_only=not filters)
        catalog = read_catalog(conn)
        plan = build_plan(mapping, catalog)
        plan.raise_for_errors()
        # which tables the generic references name is data: found on this snapshot
        plan, unmapped = plan_with_targets(conn, mapping, catalog, plan)
        if unmapped:
            raise PlanError(
                f"error: {unmapped[0].table}: {unmapped[0].message}; fix: {unmapped[0].fix}"
                + (f" (and {len(unmapped) - 1} more)" if len(unmapped) > 1 else "")
                + "; nothing was exported",
                [str(p) for p in unmapped],
            )
        plan.raise_for_errors()
        generic_warnings = _refuse_dangling(conn, plan)
        if not allow_warnings and plan.warnings:
            found = [str(p) for p in plan.warnings]
            raise PlanError(
                f"{found[0]}; the export was asked to allow no warnings (allow_warnings=False): "
                "fix them or allow warnings, nothing was exported",
                found,
            )
        _refuse_looping_trees(conn, plan)
        # rows no archive carries: named with their counts in the summary
        generic_warnings += [str(p) for p in excluded_with_rows(conn, mapping, catalog)]
        # natural keys unique, no likely reference left raw: proven on this snapshot
        refuse_unsafe_data(conn, plan, catalog)
        subset = compute_subset(conn, plan, catalog, filters) if filters else None
        snapshot = str(conn.execute("SELECT pg_export_snapshot()").fetchone()[0])  # type: ignore[index]
        version = conn.execute("SELECT current_setting('server_version')").fetchone()
        writer = ArchiveWriter(out, directory=directory, recipients=recipients, signer=signer)
        tables = plan.exported
        for tp in tables:
            progress.start(str(tp.table), catalog.tables[tp.table].estimated_rows or None)
        infos: dict[int, MemberInfo] = {}
        if jobs == 1 or len(tables) <= 1:
            for i, tp in enumerate(tables):
                infos[i] = _export_table(
                    conn, plan, tp, writer, i + 1, compression, level, progress, sort_rows,
                    subset.keep(tp.table) if subset else None,
                )
        else:
            n = min(jobs, len(tables))
            for _ in range(n):
                w = connect(dsn)
                _begin_snapshot(w, snapshot)
                workers.append(w)
            pool_conns = list(workers)
            lock = threading.Lock()

            shared_writer = writer

            stop = threading.Event()

            def run(i: int) -> MemberInfo:
                if stop.is_set():
                    raise _Stopped(str(tables[i].table))
                with lock:
                    c = pool_conns.pop()
                try:
                    return _export_table(
                        c, plan, tables[i], shared_writer, i + 1, compression, level, progress, sort_rows,
                        stop=stop,
                    )
                finally:
                    with lock:
                        pool_conns.append(c)

            # biggest tables first so the slowest one starts early
            order = sorted(
                range(len(tables)),
                key=lambda i: -catalog.tables[tables[i].table].estimated_rows,
            )
            # a subset's kept keys are temp tables of this connection: those tables
            # are exported here while the workers take the others
            on_main = [i for i in order if subset is not None and subset.keep(tables[i].table) is not None]
            with ThreadPoolExecutor(max_workers=n) as pool:
                futures = {i: pool.submit(run, i) for i in order if i not in on_main}
                try:
                    for i in on_main:
                        assert subset is not None
                        infos[i] = _export_table(
                            conn, plan, tables[i], shared_writer, i + 1, compression, level, progress,
                            sort_rows, subset.keep(tables[i].table), stop,
                        )
                    # the first failure, as it happens (not in table order): the others stop
                    for fut in as_completed(futures.values()):
                        fut.result()
                except BaseException:
                    # a failed table or Ctrl-C: the others stop at their next block, and a
                    # query still building its hash tables is cancelled
                    stop.set()
                    for w in workers:
                        with suppress(psycopg.Error):
                            w.cancel_safe(timeout=5)
                    raise
                infos.update((i, fut.result()) for i, fut in futures.items())
        conn.execute("COMMIT")
        manifest = Manifest(
            archive_id=str(uuid.uuid4()),
            created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            tables=tuple(
                with_scope(table_entry(tp, catalog, infos[i]), subset) for i, tp in enumerate(tables)
            ),
            mapping=mapping.to_dict(),
            format_version=FORMAT_VERSION,
            tool_version=__version__,
            source=Source(
                server=describe_dsn(dsn),
                database=catalog.database,
                server_version=str(version[0]) if version else "",
                server_version_num=catalog.server_version,
                snapshot=snapshot,
                role=catalog.current_user,
            ),
            settings=dict(SESSION_SETTINGS),
            mapping_sha256=mapping.sha256,
            sorted_rows=sort_rows,
            mapping_text=mapping.source_text,
            load_order=tuple(str(n) for n in plan.load_order),
            components=tuple(tuple(str(n) for n in comp) for comp in plan.components),
            unmapped_tables=tuple(str(n) for n in unmapped_tables(mapping, catalog)),
            problems=tuple(p.to_dict() for p in plan.problems),
            lookups=tuple(table_shape(tp, catalog) for tp in plan.tables.values() if not tp.export),
            extra={"filters": subset.filters} if subset else {},
        )
        published = writer.publish(manifest)
        writer = None
        return ExportResult(
            archive=str(out),
            manifest=published,
            seconds=time.monotonic() - started,
            warnings=[str(p) for p in plan.warnings] + generic_warnings,
        )
    except psycopg.Error as exc:
        raise DatabaseError(f"export from {describe_dsn(dsn)} failed: {server_error_message(exc)}") from None
    finally:
        if writer is not None:
            writer.abort()
        for w in workers:
            w.close()
        conn.close()


__all__ = ["ExportResult", "check_export_options", "table_shape", "write_archive"]
