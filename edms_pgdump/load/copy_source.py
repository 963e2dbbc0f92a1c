"""``copy``: a source database as the import's source, with no archive in between.

The source side is the export, run as far as its first COPY (``export.write.open_export``
and the body's refusals and subset closure, on one REPEATABLE READ snapshot); the target
side is ``load.import_transaction``, which asks this source for the plan and the rows.
Each table's ``COPY (SELECT … JOIN …) TO STDOUT`` on the source is read in blocks
(``export.copy_blocks``) and written straight into the target's staging ``COPY FROM
STDIN``, table by table in the import's order: nothing is written to disk, and the
manifest exists only in memory (``record``), so the import's drift checks, subset scopes
and history work on it as on an archive's.

Counts: the source server sends one message per row; what it sent is the table's
expected count, the target's COPY reports what it staged, and the import's proof
compares both with what its transaction observed (``pg_stat_xact_user_tables``).

With ``jobs`` > 1 the target stages over N connections (``load.parallel_staging``), each
reading from a source connection of its own that adopted the first one's snapshot
(``pg_export_snapshot``), as ``export -j`` does. A subset's tables that read its temp
tables are streamed from the first connection, one at a time.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field, replace

import psycopg

from edms_pgdump import sqlgen
from edms_pgdump.archive.manifest import Manifest
from edms_pgdump.archive.package import MemberInfo
from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import Catalog
from edms_pgdump.db import Connection, connect, describe_dsn, server_error_message
from edms_pgdump.errors import ArchiveError, DatabaseError
from edms_pgdump.export.copy_blocks import copy_out_blocks
from edms_pgdump.export.program import Commit, CopyOut, Counts, export_opening
from edms_pgdump.export.run import ExportRun, Runner, run_opening
from edms_pgdump.export.subset import resolve_filters
from edms_pgdump.export.write import OpenedExport, export_manifest, open_export
from edms_pgdump.load.transaction import ImportInput, Members, archive_input
from edms_pgdump.mapping import Mapping
from edms_pgdump.options import ExportOptions, ImportOptions
from edms_pgdump.program.run import MemberSource
from edms_pgdump.results import ImportReport

FROM_OPTION = "--from"
TO_OPTION = "--to"


@dataclass
class Streamed:
    """What the source sent of one table: its rows (one message each) and bytes."""

    rows: int = 0
    bytes: int = 0
    done: bool = False


@dataclass
class CopySource:
    """The source database of a ``copy``, as ``load.import_transaction`` reads it.

    ``open`` runs the export's opening and refusals on the source before the target is
    touched; ``close`` ends the snapshot. Rows stream only when the import's COPY steps
    ask for them (``blocks``)."""

    dsn: str
    mapping: Mapping
    options: ExportOptions = field(default_factory=ExportOptions)
    copy_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    conn: Connection | None = None
    opened: OpenedExport | None = None
    run: ExportRun = field(default_factory=ExportRun)
    record: Manifest | None = None  # the in-memory manifest: shapes, mapping, scopes
    streamed: dict[QualifiedName, Streamed] = field(default_factory=dict)
    workers: list[Connection] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)  # the first connection

    what = "copy"

    @property
    def origin(self) -> str:
        return f"copy from {describe_dsn(self.dsn)}"

    @property
    def area_key(self) -> str:
        return self.copy_id

    # -- the source side ----------------------------------------------------------------
    def open(self) -> None:
        """Snapshot, plan, refusals and subset closure on the source; raise as an export
        would (nothing moved yet)."""
        filters = resolve_filters(self.mapping, self.options.where)
        self.conn = connect(self.dsn, option=FROM_OPTION)
        try:
            self.opened = open_export(self.conn, self.mapping, self.options, filters)
            runner = Runner(self.conn, self.dsn, self.opened.program, None, self.options)
            for step in self.opened.program.body:
                if isinstance(step, (CopyOut, Counts, Commit)):
                    break  # the rows move when the import's staging asks; the snapshot stays open
                runner.step(step)
            self.run = runner.result
            self.run.snapshot = _export_snapshot(self.conn)
        except psycopg.Error as exc:
            raise DatabaseError(
                f"copy: reading the source {describe_dsn(self.dsn)} failed: {server_error_message(exc)}; "
                "nothing was written to the target"
            ) from None
        self.record = export_manifest(
            self.dsn,
            self.mapping,
            self.options,
            self.opened,
            self.run.snapshot,
            self.run.subset,
            self._member,
        )
        self.copy_id = self.record.archive_id

    def _member(self, index: int) -> MemberInfo:
        """The record's entry of data file ``index``: no file, so no sizes or checksums."""
        assert self.opened is not None
        table = str(self.opened.plan.exported[index - 1].table)
        return MemberInfo(table, f"stream/{index:04d}", 0, 0, "", 0, "", "none")

    @property
    def warnings(self) -> list[str]:
        assert self.opened is not None
        return [str(p) for p in self.opened.plan.warnings] + self.run.warnings + self.opened.excluded

    def close(self) -> None:
        for w in self.workers:
            w.close()
        self.workers.clear()
        if self.conn is not None:
            with suppress(psycopg.Error):
                if not self.conn.closed:
                    self.conn.execute(sqlgen.rollback())  # read only: nothing to keep
            self.conn.close()

    # -- the import's view ----------------------------------------------------------------
    def prepare(
        self, conn: Connection, catalog: Catalog, options: ImportOptions, report: ImportReport
    ) -> ImportInput:
        """The source's shapes checked against the target's catalog (schema drift, a
        subset's scope), as an archive's manifest is."""
        assert self.record is not None
        _, given = archive_input(self.record, self.origin, catalog, options, report)
        estimated = self.opened.estimated if self.opened is not None else {}
        return replace(
            given,
            members=_Streams(self, self.conn),
            reopen=self._reopened(),
            sizes=lambda name: int(estimated.get(str(name)) or 0),
        )

    def _reopened(self) -> Members:
        """Each parallel loader's own source connection, on the first one's snapshot."""

        @contextmanager
        def members() -> Iterator[MemberSource]:
            w = connect(self.dsn, option=FROM_OPTION)
            try:
                run_opening(w, export_opening(read_only=True), self.run.snapshot)
            except psycopg.Error as exc:
                w.close()
                raise DatabaseError(
                    f"copy: a parallel source connection to {describe_dsn(self.dsn)} could not adopt "
                    f"snapshot {self.run.snapshot}: {server_error_message(exc)}; copy with -j 1"
                ) from None
            try:
                yield _Streams(self, w)
            finally:
                w.close()

        return members

    def statement(self, table: QualifiedName) -> CopyOut:
        assert self.opened is not None
        return self.opened.copy_steps()[table]


class _Streams:
    """The source's COPY of each table, on one source connection, as the program's
    member source."""

    def __init__(self, source: CopySource, conn: Connection | None) -> None:
        self.source = source
        self.conn = conn

    def rows(self, table: QualifiedName) -> int:
        s = self.source.streamed.get(table)
        return s.rows if s is not None and s.done else 0

    def damage(self, table: QualifiedName) -> ArchiveError | None:
        return None  # a source database's COPY: its errors are its own

    def blocks(self, table: QualifiedName) -> Iterator[bytes | bytearray]:
        step = self.source.statement(table)
        first = self.source.conn
        assert first is not None and self.conn is not None
        if step.on_snapshot_connection and self.conn is not first:
            with self.source.lock:  # a subset's temp tables live on the first connection
                yield from self._stream(first, step)
        else:
            yield from self._stream(self.conn, step)

    def _stream(self, conn: Connection, step: CopyOut) -> Iterator[bytes | bytearray]:
        counted = Streamed()
        self.source.streamed[step.table] = counted
        try:
            with closing(copy_out_blocks(conn, step.statement)) as blocks:
                for block, rows in blocks:
                    counted.rows += rows
                    counted.bytes += len(block)
                    yield block
        except psycopg.Error as exc:
            raise DatabaseError(
                f"{step.table}: reading it from the source {describe_dsn(self.source.dsn)} failed "
                f"after {counted.rows} row(s): {server_error_message(exc)}; the copy was rolled back and "
                "nothing was written to the target: copy again once the source answers"
            ) from None
        counted.done = True


def _export_snapshot(conn: Connection) -> str:
    row = conn.execute("SELECT pg_export_snapshot()").fetchone()
    assert row is not None
    return str(row[0])


__all__ = ["FROM_OPTION", "TO_OPTION", "CopySource", "Streamed"]
