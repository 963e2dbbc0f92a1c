"""The one import transaction: archive import, fixture import, ``verify --dsn`` and ``diff``.

Named ``load`` because ``import`` is a Python keyword. The algorithm itself is
``program.import_program`` (shared with the psql runbook), transaction frame included:
``import_transaction`` runs the program's opening (pinned session, BEGIN, settings),
reads the target's catalog in that transaction, asks its source for the plan and the
rows, builds and runs the program, then its closing (COMMIT, or ROLLBACK for a dry run).

What differs between callers comes in two typed parts:
- an ``ImportSource`` (an archive here, a Django fixture in ``django.fixture_import``,
  a source database streamed by ``load.copy_source``)
  turns the catalog into an ``ImportInput``: the plan and the COPY text per table;
- ``ImportHooks`` (history, diff's samples, the fixture's kept ids) receive the catalog
  and the program as arguments and return the steps they add, run by the same
  interpreter; what a hook learns stays in its own fields.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import psycopg

from edms_pgdump import sqlgen
from edms_pgdump.archive.integrity import IntegrityReport, check_integrity, check_layout, member_damage
from edms_pgdump.archive.manifest import Manifest, TableEntry
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
from edms_pgdump.options import ImportOptions, NoProgress, Progress, Steps
from edms_pgdump.plan.build import Plan
from edms_pgdump.program.build import import_program, transaction_opening
from edms_pgdump.program.run import MemberSource, ProgramRunner, run_frame
from edms_pgdump.program.steps import (
    EXPECTED,
    PRESENT,
    STAGED,
    UNCHANGED,
    Program,
    ProgramRefused,
    Step,
)
from edms_pgdump.results import ImportReport

Members = Callable[[], AbstractContextManager[MemberSource]]
Prestage = Callable[[Connection, Program, Progress, ImportReport], dict[QualifiedName, int]]


@dataclass(frozen=True)
class ImportInput:
    """What a source brings to the transaction once the target's catalog is read."""

    catalog: Catalog
    plan: Plan
    loaded: dict[QualifiedName, tuple[str, ...]]  # COPY field order per table
    members: MemberSource
    archive_id: str
    sha256: str  # of the manifest, or of the fixture file
    archive_types: dict[QualifiedName, dict[str, str]] = field(default_factory=dict)
    # a subset archive's rules: --delete-missing deletes only within them
    scopes: dict[QualifiedName, TableScope] = field(default_factory=dict)
    reopen: Members | None = None  # each parallel loader's own reader; None: one connection
    # rows per table to order parallel loaders by (largest first), when the source knows
    # them only once streamed (copy); None: members.rows
    sizes: Callable[[QualifiedName], int] | None = None
    # stages every raw table on the import's connection before the program runs, in the
    # source's own order (a stream read once, load.stream_staging); the rows each received
    prestage: Prestage | None = None
    # reads and checks every member against the manifest, for an import that stages none
    # (``load.certificate``); None: this source's rows can only be read by staging them
    read_whole: Callable[[Progress], None] | None = None


class ImportSource(Protocol):
    """An archive or a fixture, as the transaction reads it."""

    # the key of the private schema a parallel import stages in (the archive id);
    # None: always temporary tables on the import's connection
    @property
    def area_key(self) -> str | None: ...

    # what failed, for the error: "import", "import of FILE"
    @property
    def what(self) -> str: ...

    def prepare(
        self, conn: Connection, catalog: Catalog, options: ImportOptions, report: ImportReport
    ) -> ImportInput: ...


class ImportHooks:
    """What a caller adds to the transaction; by default nothing.

    ``before_program`` runs once the program is built, before its first step (nothing
    staged yet); ``after_program`` after its last (every table loaded and balanced),
    before the closing COMMIT or ROLLBACK. Both return the steps they add."""

    def before_program(
        self, conn: Connection, given: ImportInput, program: Program, report: ImportReport
    ) -> Sequence[Step]:
        return ()

    def after_program(self, conn: Connection, program: Program, report: ImportReport) -> Sequence[Step]:
        return ()

    def proven_in_place(
        self, conn: Connection, given: ImportInput, program: Program, report: ImportReport
    ) -> bool:
        """Called after ``before_program``: True when the hook has proven that the target
        already holds every row of the source as the program would leave it, so that
        nothing needs staging (``load.certificate``)."""
        return False


def import_transaction(
    dsn: str,
    source: ImportSource,
    report: ImportReport,
    options: ImportOptions,
    progress: Progress | None = None,
    hooks: Sequence[ImportHooks] = (),
) -> ImportReport:
    """Run the import of ``source`` into ``dsn`` in one transaction; raise on any problem,
    having written nothing (``ImportRejected.report`` tells what was found)."""
    progress = progress or NoProgress()
    conn = connect(dsn)
    area: StagingArea | None = None
    try:
        # verify and diff write nothing, not even a sweep
        if source.area_key is not None and not options.compare_only:
            area = StagingArea.open(conn, source.area_key, options.jobs, report)
        # the opening depends on the options alone (import_program adds the same steps
        # to the program), so the catalog is read inside the transaction
        run_frame(conn, transaction_opening(options), options, report)
        catalog = read_catalog(conn)
        given = source.prepare(conn, catalog, options, report)
        schema = area.schema if area is not None else None
        program = _program_or_refusal(given, options, report, schema)
        runner = ProgramRunner(conn, program, given.members, report, progress)
        runner.run_more(tuple(s for h in hooks for s in h.before_program(conn, given, program, report)))
        if any(h.proven_in_place(conn, given, program, report) for h in hooks):
            assert given.read_whole is not None
            t0 = time.perf_counter()
            given.read_whole(progress)
            runner.timed("verify archive", None, t0)
            _in_place(runner, given)
        else:
            if area is not None and given.reopen is not None and options.jobs > 1:
                sizes = given.sizes or given.members.rows
                jobs = options.jobs
                runner.staged = load_in_parallel(dsn, program, given.reopen, jobs, progress, report, sizes)
            elif given.prestage is not None:
                runner.staged = given.prestage(conn, program, progress, report)
            runner.run()
        _stale_views(program, report)
        runner.run_more(tuple(s for h in hooks for s in h.after_program(conn, program, report)))
        runner.run_more(program.closing)
    except psycopg.Error as exc:
        _rollback_quietly(conn)
        msg = _failure_message(exc, report)
        raise DatabaseError(
            f"{source.what} into {describe_dsn(dsn)} failed and was rolled back: {msg}"
        ) from None
    except BaseException:
        _rollback_quietly(conn)
        raise
    finally:
        if area is not None:
            area.close(report)
        conn.close()
    return report


def _program_or_refusal(
    given: ImportInput, options: ImportOptions, report: ImportReport, staging_schema: str | None
) -> Program:
    """The import program, or ImportRejected (with the report) when the options ask for
    something this target does not allow."""
    try:
        return import_program(
            given.plan,
            given.catalog,
            options,
            given.loaded,
            given.archive_types,
            staging_schema,
            given.scopes,
        )
    except ProgramRefused as exc:
        report.problems.append(str(exc))
        raise ImportRejected(str(exc), report) from None


def _in_place(runner: ProgramRunner, given: ImportInput) -> None:
    """The report of an import proven in place: every row staged from the archive is
    in the target, unchanged; nothing was written."""
    for name in runner.results:
        rows = given.members.rows(name)
        for count in (EXPECTED, STAGED, UNCHANGED, PRESENT):
            runner.counts[name][count] = rows
    runner.sync_results()
    runner.report.staging = {"tables": "none", "connections": 0}


def _stale_views(program: Program, report: ImportReport) -> None:
    if program.views and not program.options.refresh_materialized_views:
        report.warnings.append(
            "materialized views reading the imported tables were not refreshed and may be "
            "stale: "
            + ", ".join(str(v) for v in program.views)
            + "; refresh them, or import with --refresh-materialized-views"
        )


def _failure_message(exc: psycopg.Error, report: ImportReport) -> str:
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


def _rollback_quietly(conn: Connection) -> None:
    try:
        if not conn.closed:
            conn.execute(sqlgen.rollback())
    except psycopg.Error:
        pass


# -- archives -----------------------------------------------------------------------


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

    def damage(self, table: QualifiedName) -> ArchiveError | None:
        """The member read once more, whole, after its COPY failed: why it fails its
        manifest entry, or None (the failure is not the archive's)."""
        return _member_refused(self.reader, self.prep.entries[table])


def _reopened(reader: ArchiveReader, prep: Prepared) -> Members:
    """Each parallel loader's own reader of the archive."""

    @contextmanager
    def members() -> Iterator[MemberSource]:
        other = reader.reopen()
        try:
            yield _ArchiveMembers(other, prep)
        finally:
            other.close()

    return members


class ArchiveSource:
    """An open archive: checked against the target's catalog (schema drift, a subset's
    scope), then streamed member by member."""

    what = "import"

    def __init__(self, reader: ArchiveReader, verified: bool = True) -> None:
        """``verified``: every member was read and checked already; otherwise only their
        sizes were, and each is checked as it is staged (``load_archive``)."""
        self.reader = reader
        self.verified = verified

    @property
    def area_key(self) -> str:
        return self.reader.manifest.archive_id

    def prepare(
        self, conn: Connection, catalog: Catalog, options: ImportOptions, report: ImportReport
    ) -> ImportInput:
        prep, given = archive_input(self.reader.manifest, str(self.reader.origin), catalog, options, report)
        if not self.verified:
            self.check_unstaged(prep)
        return replace(
            given,
            members=_ArchiveMembers(self.reader, prep),
            reopen=_reopened(self.reader, prep),
            read_whole=self.read_whole,
        )

    def read_whole(self, progress: Progress) -> None:
        """Every member read and checked against the manifest, as ``verify`` does, for an
        import proven in place: it stages none."""
        if self.verified:
            return
        integrity = verify_members(self.reader, progress)
        if not integrity.ok:
            raise _refused(self.reader, integrity.damages)

    def check_unstaged(self, prep: Prepared) -> None:
        """The members this import does not stage (--skip-tables, a table the plan leaves
        out), read whole here: an archive is proven whole before anything is written,
        even where some of its rows are not used."""
        staged = {prep.entries[n].member for n in prep.loaded}
        for entry in self.reader.manifest.tables:
            if entry.member not in staged and (refused := _member_refused(self.reader, entry)):
                raise refused


def _refused(reader: ArchiveReader, damages: list[str]) -> ArchiveError:
    """A damaged archive, refused by the import: the first damage named, all listed."""
    return ArchiveError(f"{reader.origin}: {damages[0]}; nothing was imported", damages)


def _member_refused(reader: ArchiveReader, entry: TableEntry) -> ArchiveError | None:
    """The member read whole: the import's refusal if it fails its manifest entry."""
    found = member_damage(reader, entry)
    return None if found is None else _refused(reader, [f"{entry.table}: {found}"])


def archive_input(
    manifest: Manifest, origin: str, catalog: Catalog, options: ImportOptions, report: ImportReport
) -> tuple[Prepared, ImportInput]:
    """An archive's manifest checked against the target's catalog (schema drift, a
    subset's scope); the input's members are the caller's to fill in."""
    prep = prepare_import(manifest, catalog, origin, options.ignore_columns, options.skip_tables)
    report.warnings += prep.warnings
    loaded = {name: tuple(fields) for name, fields in prep.loaded.items()}
    # a subset archive deletes only within its scope, checked here before any write
    scopes = {}
    if options.delete_missing:
        scopes = archive_scopes(manifest, prep.plan, catalog, loaded, origin)
    return prep, ImportInput(
        catalog,
        prep.plan,
        loaded,
        _NoMembersYet(),
        manifest.archive_id,
        manifest.sha256,
        prep.archive_types,
        scopes,
    )


class _NoMembersYet:
    def rows(self, table: QualifiedName) -> int:
        return 0

    def blocks(self, table: QualifiedName) -> Any:
        raise AssertionError(f"{table}: no member source was given")

    def damage(self, table: QualifiedName) -> ArchiveError | None:
        return None


def verify_members(reader: ArchiveReader, progress: Progress | None) -> IntegrityReport:
    """``check_integrity``, each member a phase (reading a large archive takes a while)."""
    with Steps(progress) as steps:
        return check_integrity(reader, lambda table, i, n: steps.step(f"verify archive {table}", i, n))


def load_archive(
    dsn: str,
    archive: str | Path | None = None,
    *,
    reader: ArchiveReader | None = None,
    options: ImportOptions | None = None,
    progress: Progress | None = None,
    hooks: Sequence[ImportHooks] = (),
    verified: IntegrityReport | None = None,
) -> ImportReport:
    """Verify an archive's members, then import it into ``dsn`` in one transaction; raise
    on any problem. On success returns the report (committed, or rolled back for a dry
    run). Nothing is ever partially written. ``api.import_archive`` adds history and the
    audit line; ``verify --dsn`` and ``diff`` call this with a comparison's options."""
    opts = options or ImportOptions()
    started = time.monotonic()
    # The caller's open reader is used as it is (one open per import, so the history
    # records the archive that was read); otherwise the path is opened here.
    owned = reader is None
    if reader is None:
        if archive is None:
            raise UsageError("load_archive needs an archive path or an open reader")
        reader = ArchiveReader(archive)
    report = ImportReport(str(reader.origin), reader.manifest.archive_id, describe_dsn(dsn), opts.dry_run)
    try:
        t0 = time.perf_counter()
        # ``verified``: the caller (verify) has just checked this open reader's members.
        # Otherwise the members' sizes only: the staging COPY reads each member once,
        # hashing and counting it as it streams, and a member that fails there is named
        # as damaged (``_ArchiveMembers.damage``) before anything is written (1M documents:
        # a second read of 0.7-0.9 s saved; docs/performance.md). Parallel staging reads
        # on other connections, so its members are all read first, as before.
        whole = verified is not None or opts.jobs > 1  # every member read before staging
        if verified is not None:
            integrity = verified
        else:
            integrity = verify_members(reader, progress) if whole else check_layout(reader)
        report.profile.append({"step": "verify archive", "seconds": round(time.perf_counter() - t0, 4)})
        if not integrity.ok:
            raise _refused(reader, integrity.damages)
        import_transaction(dsn, ArchiveSource(reader, verified=whole), report, opts, progress, hooks)
    finally:
        if owned:
            reader.close()
        report.seconds = time.monotonic() - started
    return report


__all__ = [
    "ArchiveSource",
    "EdmsPgdumpError",
    "ImportHooks",
    "ImportInput",
    "ImportOptions",
    "ImportReport",
    "ImportSource",
    "Prestage",
    "archive_input",
    "import_transaction",
    "load_archive",
]
