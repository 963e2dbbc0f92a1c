"""Import: verify the archive, then run the import program in one transaction.

Named ``load`` because ``import`` is a Python keyword. The algorithm itself is
``program.import_program`` (shared with the psql runbook); this module opens the
archive and the connection, pins the session, and commits or rolls back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import psycopg

from edms_pgdump import sqlgen
from edms_pgdump.archive.integrity import check_integrity
from edms_pgdump.archive.package import ArchiveReader
from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import Catalog, read_catalog
from edms_pgdump.db import Connection, connect, describe_dsn, server_error_message
from edms_pgdump.errors import ArchiveError, DatabaseError, EdmsPgdumpError, ImportRejected, UsageError
from edms_pgdump.export.subset import TableScope
from edms_pgdump.load.parallel_staging import load_in_parallel
from edms_pgdump.load.prepare import Prepared, prepare_import
from edms_pgdump.load.staging_area import StagingArea
from edms_pgdump.load.subset_scope import archive_scopes
from edms_pgdump.options import ImportOptions, NoProgress, Progress
from edms_pgdump.plan.build import Plan
from edms_pgdump.program.build import import_program
from edms_pgdump.program.run import MemberSource, ProgramRunner
from edms_pgdump.program.steps import Program, ProgramRefused
from edms_pgdump.results import ImportReport


class _ArchiveMembers:
    """The archive's members as the program's COPY sources."""

    def __init__(self, reader: ArchiveReader, prep: Prepared) -> None:
        self.reader = reader
        self.prep = prep

    def rows(self, table: QualifiedName) -> int:
        return self.prep.entries[table].rows

    def blocks(self, table: QualifiedName) -> Any:
        entry = self.prep.entries[table]
        return self.reader.iter_entry(entry)


def _reopened(reader: ArchiveReader, prep: Prepared) -> Callable[[], AbstractContextManager[MemberSource]]:
    """Each parallel loader's own reader of the archive."""

    @contextmanager
    def members() -> Iterator[MemberSource]:
        other = reader.reopen()
        try:
            yield _ArchiveMembers(other, prep)
        finally:
            other.close()

    return members


def import_archive(
    dsn: str,
    archive: str | Path | None = None,
    *,
    reader: ArchiveReader | None = None,
    options: ImportOptions | None = None,
    progress: Progress | None = None,
    hooks: Any = None,
) -> ImportReport:
    """Import an archive into ``dsn`` in one transaction; raise on any problem.

    On success returns the report (committed, or rolled back for a dry run). On
    failure raises an ``EdmsPgdumpError`` subclass; ``ImportRejected.report`` tells
    what was found. Nothing is ever partially written.
    """
    opts = options or ImportOptions()
    opts.validate()
    progress = progress or NoProgress()
    started = time.monotonic()
    # The caller's open reader is used as it is (one open per import, so the history
    # records the archive that was read); otherwise the path is opened here.
    owned = reader is None
    if reader is None:
        if archive is None:
            raise UsageError("import_archive needs an archive path or an open reader")
        reader = ArchiveReader(archive)
    archive = reader.origin
    report = ImportReport(str(archive), reader.manifest.archive_id, describe_dsn(dsn), opts.dry_run)
    try:
        t0 = time.perf_counter()
        integrity = check_integrity(reader)
        report.profile.append({"step": "verify archive", "seconds": round(time.perf_counter() - t0, 4)})
        if not integrity.ok:
            raise ArchiveError(f"{archive}: {integrity.damages[0]}; nothing was imported", integrity.damages)
        conn = connect(dsn)
        area: StagingArea | None = None
        try:
            if not opts.compare_only:  # verify and diff write nothing, not even a sweep
                area = StagingArea.open(conn, reader.manifest.archive_id, opts.jobs, report)
            begin_import(conn, opts)
            catalog = read_catalog(conn)
            prep = prepare_import(
                reader.manifest, catalog, str(archive), opts.ignore_columns, opts.skip_tables
            )
            report.warnings += prep.warnings
            if hooks is not None:
                hooks.catalog = catalog
                hooks.before_load(conn, report)
            loaded = {name: tuple(fields) for name, fields in prep.loaded.items()}
            schema = area.schema if area is not None else None
            # a subset archive deletes only within its scope, checked here before any write
            scopes = {}
            if opts.delete_missing:
                scopes = archive_scopes(reader.manifest, prep.plan, catalog, loaded, str(archive))
            program = program_or_refusal(
                prep.plan, catalog, opts, loaded, report, prep.archive_types, schema, scopes
            )
            if hooks is not None:
                hooks.program = program
            members = _ArchiveMembers(reader, prep)
            staged = None
            if area is not None:
                loaders = _reopened(reader, prep)
                staged = load_in_parallel(dsn, program, loaders, opts.jobs, progress, report, members.rows)
            run_program(conn, program, members, report, progress, staged)
            if hooks is not None:
                hooks.after_load(conn, report)
            if opts.dry_run:
                conn.execute(sqlgen.rollback())
            else:
                t0 = time.perf_counter()
                conn.execute(sqlgen.commit())
                report.profile.append({"step": "commit", "seconds": round(time.perf_counter() - t0, 4)})
                report.committed = True
        except psycopg.Error as exc:
            rollback_quietly(conn)
            msg = failure_message(exc, report)
            raise DatabaseError(
                f"import into {describe_dsn(dsn)} failed and was rolled back: {msg}"
            ) from None
        except BaseException:
            rollback_quietly(conn)
            raise
        finally:
            if area is not None:
                area.close(report)
            conn.close()
    finally:
        if owned:
            reader.close()
        report.seconds = time.monotonic() - started
    return report


# -- what every import transaction shares (archives here, Django fixtures in fixture_import)


def begin_import(conn: Connection, opts: ImportOptions) -> None:
    """BEGIN and the transaction's own settings."""
    # a comparison reads one consistent snapshot, and turns read only once its staging
    # tables exist
    conn.execute(sqlgen.begin("REPEATABLE READ" if opts.compare_only else None))
    # temp_buffers can only change before this session's first temporary table (a
    # pooled connection may have had one): a bigger value is a nicety, so a refusal is
    # ignored
    conn.execute(sqlgen.savepoint("edms_temp_buffers"))
    try:
        conn.execute(sqlgen.set_local("temp_buffers", opts.temp_buffers))
    except psycopg.errors.InvalidParameterValue:
        conn.execute(sqlgen.rollback_to("edms_temp_buffers"))
    conn.execute(sqlgen.release("edms_temp_buffers"))
    for stmt in sqlgen.import_settings(opts.lock_timeout, opts.statement_timeout, opts.work_mem):
        conn.execute(stmt)


def program_or_refusal(
    plan: Plan,
    catalog: Catalog,
    opts: ImportOptions,
    loaded: dict[QualifiedName, tuple[str, ...]],
    report: ImportReport,
    archive_types: dict[QualifiedName, dict[str, str]] | None = None,
    staging_schema: str | None = None,
    scopes: dict[QualifiedName, TableScope] | None = None,
) -> Program:
    """The import program, or ImportRejected (with the report) when the options ask for
    something this target does not allow."""
    try:
        return import_program(plan, catalog, opts, loaded, archive_types, staging_schema, scopes)
    except ProgramRefused as exc:
        report.problems.append(str(exc))
        raise ImportRejected(str(exc), report) from None


def run_program(
    conn: Connection,
    program: Program,
    source: MemberSource,
    report: ImportReport,
    progress: Progress,
    staged: dict[QualifiedName, int] | None = None,
) -> None:
    """Run the program (``staged``: its raw tables were loaded ahead, in parallel); then
    name the materialized views it leaves stale."""
    ProgramRunner(conn, program, source, report, progress, staged).run()
    if program.views and not program.options.refresh_materialized_views:
        report.warnings.append(
            "materialized views reading the imported tables were not refreshed and may be "
            "stale: "
            + ", ".join(str(v) for v in program.views)
            + "; refresh them, or import with --refresh-materialized-views"
        )


def failure_message(exc: psycopg.Error, report: ImportReport) -> str:
    """A server error during the import: where it struck, PostgreSQL's own words and,
    for the failures an operator can act on, what to do; recorded in the report."""
    msg = server_error_message(exc)
    if report.current_step:
        msg = f"{report.current_step}: {msg}"
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        msg += "; another session holds a lock on a target table: retry, or raise --lock-timeout"
    elif isinstance(exc, psycopg.errors.ProgramLimitExceeded):
        msg += "; a natural-key value is too long for the target's index: shorten it or index a hash of it"
    elif isinstance(exc, psycopg.errors.DeadlockDetected):
        msg += "; another session locked the same tables in another order: retry the import"
    report.problems.append(msg)
    return msg


def rollback_quietly(conn: Connection) -> None:
    try:
        if not conn.closed:
            conn.execute(sqlgen.rollback())
    except psycopg.Error:
        pass


__all__ = ["EdmsPgdumpError", "ImportOptions", "ImportReport", "import_archive"]
