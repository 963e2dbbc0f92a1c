"""``import -``: an archive staged while it is read from a pipe, proven before any write.

The stream is read once (``archive.stream_reader``): the manifest and its signature
first, then each member in the stream's order (the export's, which is the manifest's),
COPYed into its raw staging table (temporary, in the import's own transaction) while
its stored bytes and text are hashed and its rows counted. The import program stages
in its load order instead; staging is independent per table, so the raw tables are
created and filled here ahead of the program (as parallel staging does) and the
program's own create-raw and COPY steps are skipped (``ProgramRunner.staged``). A
member of a table the import skips is read and proven all the same.

Only after the stream's last byte (no member missing, none extra, an age stream's last
chunk authenticated) does the program run its first statement on a real table. A
member whose SHA-256, size, rows or text hash differ from the manifest raises
ArchiveError naming it, the transaction rolls back and its temporary tables go with it:
nothing is written, and no temporary file ever held the data.

With ``-j N`` (N > 1) a stream is still spooled to ``$TMPDIR`` (``archive.pipe``) and
staged in parallel from that file: N loaders need N readers, and a pipe has one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from edms_pgdump.archive.stream_reader import StreamArchive
from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import Catalog
from edms_pgdump.db import Connection, copy_in, describe_dsn
from edms_pgdump.errors import ArchiveError
from edms_pgdump.load.parallel_staging import staging_loads
from edms_pgdump.load.prepare import Prepared
from edms_pgdump.load.transaction import ImportHooks, ImportInput, archive_input, import_transaction
from edms_pgdump.options import ImportOptions, Progress, copy_progress
from edms_pgdump.program.steps import Program
from edms_pgdump.results import ImportReport


class _ManifestCounts:
    """The program's view of the members: the manifest's counts. The rows themselves
    were staged ahead of it (``StreamSource.stage``), so ``blocks`` is never asked."""

    def __init__(self, prep: Prepared) -> None:
        self.prep = prep

    def rows(self, table: QualifiedName) -> int:
        return self.prep.entries[table].rows

    def blocks(self, table: QualifiedName) -> Any:
        raise AssertionError(f"{table}: a stream's member is staged ahead of the program")

    def damage(self, table: QualifiedName) -> ArchiveError | None:
        return None


class StreamSource:
    """An archive on a pipe, as ``load.import_transaction`` reads it."""

    what = "import"

    def __init__(self, stream: StreamArchive) -> None:
        self.stream = stream
        self.prep: Prepared | None = None

    @property
    def area_key(self) -> str:
        return self.stream.manifest.archive_id

    def prepare(
        self, conn: Connection, catalog: Catalog, options: ImportOptions, report: ImportReport
    ) -> ImportInput:
        self.prep, given = archive_input(self.stream.manifest, self.stream.origin, catalog, options, report)
        return replace(given, members=_ManifestCounts(self.prep), prestage=self.stage)

    def stage(
        self, conn: Connection, program: Program, progress: Progress, report: ImportReport
    ) -> dict[QualifiedName, int]:
        """Every member into its raw staging table, in the stream's order; then the rest
        of the stream, proven whole. The rows each table received."""
        assert self.prep is not None
        loads = staging_loads(program)
        tables = {self.prep.entries[name].member: name for name in loads}
        staged: dict[QualifiedName, int] = {}
        for entry, text in self.stream.members():
            name = tables.get(entry.member)
            if name is None:  # a table this import skips: proven all the same
                for _ in text:
                    pass
                continue
            create, copy_step = loads[name]
            task = str(name)
            report.current_step = f"{name}: copy"
            progress.start(task, entry.rows)
            t0 = time.perf_counter()
            conn.execute(create.statement)
            staged[name] = copy_in(conn, copy_step.statement, text, copy_progress(progress, task))
            progress.finish(task)
            report.profile.append(
                {
                    "step": "copy",
                    "table": task,
                    "seconds": round(time.perf_counter() - t0, 4),
                    "rows": staged[name],
                }
            )
        report.current_step = "read the rest of the stream"
        t0 = time.perf_counter()
        self.stream.finish()
        report.profile.append({"step": "verify archive", "seconds": round(time.perf_counter() - t0, 4)})
        report.current_step = ""
        return staged


def load_stream(
    dsn: str,
    stream: StreamArchive,
    *,
    options: ImportOptions | None = None,
    progress: Progress | None = None,
    hooks: Sequence[ImportHooks] = (),
) -> ImportReport:
    """Import the archive on ``stream`` into ``dsn`` in one transaction, staging while
    it reads; raise on any problem, having written nothing (``load_archive``'s twin)."""
    opts = options or ImportOptions()
    started = time.monotonic()
    report = ImportReport(stream.origin, stream.manifest.archive_id, describe_dsn(dsn), opts.dry_run)
    report.staging = {**report.staging, "read": "staged while read from the stream, no temporary file"}
    try:
        import_transaction(dsn, StreamSource(stream), report, opts, progress, hooks)
    finally:
        report.seconds = time.monotonic() - started
    return report


__all__ = ["StreamSource", "load_stream"]
