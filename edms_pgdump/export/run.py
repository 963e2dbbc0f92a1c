"""The psycopg interpreter of the export program (``export.program``).

Plumbing only: the steps say what runs and what each refusal says; here a refusal's
query runs, its holes are filled from the rows in Python (export.sql fills them in a
DO block), and the COPY steps stream into archive members, in parallel when asked
(``jobs``: the first connection exports its snapshot and every worker adopts it). The
COPY path is ``copy_blocks`` + ``member_writer``: no Python per row.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import closing, suppress
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from edms_pgdump.analysis.probes import unsafe_data_line
from edms_pgdump.archive.package import ArchiveWriter, MemberInfo
from edms_pgdump.db import Connection, connect, server_error_message
from edms_pgdump.errors import (
    ArchiveError,
    DatabaseError,
    DataRuleError,
    KeyNotUniqueError,
    LikelyReferenceError,
    PlanError,
    sample_keys,
)
from edms_pgdump.export.copy_blocks import copy_out_blocks
from edms_pgdump.export.member_writer import BackgroundMember
from edms_pgdump.export.program import (
    NOTHING_EXPORTED,
    Commit,
    CopyOut,
    Counts,
    ExportProgram,
    LikelyColumn,
    PinSession,
    RefuseDangling,
    RefuseLoopingTrees,
    RefusePlanWarnings,
    RefuseUnmappedTypes,
    RefuseUnsafeData,
    Sampled,
    Settings,
    Snapshot,
    Step,
    SubsetClosure,
    SubsetCounts,
    SubsetFilter,
    SubsetNeeded,
    SubsetStart,
    export_opening,
    fill,
    fill_problem,
    more,
)
from edms_pgdump.export.subset import Subset
from edms_pgdump.options import ExportOptions, NoProgress, Progress
from edms_pgdump.plan.build import Problem
from edms_pgdump.sqlgen import subset as q


def run_opening(conn: Connection, steps: Sequence[Step], snapshot: str | None = None) -> None:
    """The session, the snapshot and the settings; a parallel export's worker adopts the
    first connection's ``snapshot`` (after the settings, before any query)."""
    for step in steps:
        if isinstance(step, PinSession):
            for s in step.statements:
                conn.execute(s)
        elif isinstance(step, Snapshot):
            conn.execute(step.statement)
        elif isinstance(step, Settings):
            for s in step.statements:
                conn.execute(s)
        else:
            raise AssertionError(f"not an opening step: {step!r}")
    if snapshot:
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))


# -- refusals ---------------------------------------------------------------------------


def _sampled(conn: Connection, c: Sampled) -> Problem | None:
    """Run one sampled check: None when it finds nothing, else its problem, filled."""
    try:
        rows = conn.execute(c.query).fetchall()
    except psycopg.DataError:
        if not c.failed:
            raise
        raise DataRuleError(c.failed, [c.failed]) from None
    if not rows:
        return None
    first = rows[0]
    if c.times:
        samples = ", ".join(f"{sample_keys([r[c.lead : -1]], list(c.names))} {r[-1]} times" for r in rows)
    else:
        samples = sample_keys((r[c.lead :] for r in rows), list(c.names))
    values = {"n": str(first[0]), "values": f"{int(first[0]):,}", "s": samples}
    if c.lead > 1:
        values["rows"] = f"{int(first[1]):,}"
    return fill_problem(c.problem, values)


def refuse_unmapped_types(conn: Connection, step: RefuseUnmappedTypes) -> None:
    found: list[str] = []
    for c in step.checks:
        for n, label, named, status, why in conn.execute(c.query).fetchall():
            values = {"count": str(n), "label": str(label), "named": str(named), "why": str(why)}
            found.append(fill(c.stale if status == "stale" else c.unmapped, values))
    if found:
        raise PlanError(found[0] + more(len(found)) + NOTHING_EXPORTED, found)


def refuse_dangling(conn: Connection, step: RefuseDangling) -> list[str]:
    """Generic ids naming nothing: an error under on_dangling: error (all of them in one
    message), else warnings saying how many rows lose the reference or are left out."""
    errors: list[str] = []
    warnings: list[str] = []
    for c in step.checks:
        p = _sampled(conn, c)
        if p is not None:
            (warnings if c.warn else errors).append(str(p))
    if errors:
        raise PlanError(errors[0] + more(len(errors)) + NOTHING_EXPORTED, errors)
    return warnings


def refuse_looping_trees(conn: Connection, step: RefuseLoopingTrees) -> None:
    for c in step.checks:
        p = _sampled(conn, c)
        if p is not None:
            raise PlanError(p.message)


def _likely(conn: Connection, c: LikelyColumn) -> Problem | None:
    """The first candidate whose every non-NULL value is an id of its table names the
    problem; the other tables matched in full follow it (a partial match is chance)."""
    hits: list[tuple[int, int]] = []
    for i, cand in enumerate(c.candidates):
        row = conn.execute(cand.query).fetchone()
        assert row is not None
        total, matched = int(row[0]), int(row[1])
        if total and matched == total:
            hits.append((i, total))
    if not hits:
        return None
    first, total = hits[0]
    n = f"{total:,}"
    if len(hits) == 1:
        return fill_problem(c.candidates[first].alone, {"n": n})
    also = ", ".join(str(c.candidates[i].target) for i, _ in hits[1:])
    return fill_problem(c.candidates[first].more, {"n": n, "also": also})


def refuse_unsafe_data(conn: Connection, step: RefuseUnsafeData) -> None:
    """Every probe run, every problem gathered, then one error naming each kind with its
    places and the first problem in full (``found`` holds them all)."""
    by_code: dict[str, list[tuple[str, Problem]]] = {code: [] for code, _ in step.heads}
    for c in step.checks:
        p = _likely(conn, c) if isinstance(c, LikelyColumn) else _sampled(conn, c)
        if p is not None:
            by_code[c.code].append((c.place, p))
    found = [p for code, _ in step.heads for _, p in by_code[code]]
    if not found:
        return
    heads = [
        head + ", ".join(place for place, _ in by_code[code]) for code, head in step.heads if by_code[code]
    ]
    lines = [unsafe_data_line(p) for p in found]
    message = "; ".join(heads) + NOTHING_EXPORTED + ". " + lines[0] + more(len(lines))
    kinds = {code for code, problems in by_code.items() if problems}
    cls = DataRuleError
    if kinds == {"key-not-unique-data"}:
        cls = KeyNotUniqueError
    elif kinds == {"likely-reference"}:
        cls = LikelyReferenceError
    raise cls(message, lines, found)


# -- the subset closure -----------------------------------------------------------------


def _run(conn: Connection, statement: sql.Composed, what: str) -> int:
    try:
        cur = conn.execute(statement)
    except psycopg.Error as exc:
        raise DatabaseError(f"{what}: {server_error_message(exc)}{NOTHING_EXPORTED}") from None
    return max(cur.rowcount, 0)


def _closure(conn: Connection, subset: Subset, step: SubsetClosure) -> None:
    """Repeat the statements until no kept set grows."""
    for _ in range(step.rounds):
        subset.rounds += 1
        grown = sum(_run(conn, s, what) for s, what in step.statements)
        if not grown:
            return
        for kept in step.kept:
            conn.execute(q.analyze_kept(kept))
    raise PlanError(step.overflow)


# -- the copies -------------------------------------------------------------------------


def _export_snapshot(conn: Connection) -> str:
    row = conn.execute("SELECT pg_export_snapshot()").fetchone()
    assert row is not None
    return str(row[0])


class _Stopped(Exception):
    """A parallel export's table left off because another table failed (never reaches
    the caller: the other table's error does)."""


def copy_table(
    conn: Connection,
    step: CopyOut,
    writer: ArchiveWriter,
    options: ExportOptions,
    progress: Progress,
    stop: threading.Event | None = None,
) -> MemberInfo:
    """One table's COPY into its member: blocks are read here while a worker thread
    hashes, compresses and writes the previous ones (copy_blocks, member_writer).
    ``stop`` (parallel exports): set when another table failed, this one then stops too."""
    member = BackgroundMember(writer.member(step.index, str(step.table), options.compression, options.level))
    task = str(step.table)
    try:
        with closing(copy_out_blocks(conn, step.statement)) as blocks:
            for block, rows in blocks:
                if stop is not None and stop.is_set():
                    raise _Stopped(task)
                member.write(block)
                progress.advance(task, rows, len(block))
        info = member.close()
    except psycopg.Error as exc:
        member.abort()
        msg = server_error_message(exc)
        if "row-level security" in msg:
            raise DatabaseError(
                f"{task}: row-level security would hide rows from this role ({msg}); "
                "export as the table owner or a role with BYPASSRLS, nothing was written"
            ) from None
        raise DatabaseError(f"{task}: export query failed: {msg}") from None
    except OSError as exc:
        member.abort()
        folder = writer.scratch.parent  # beside the output, or $TMPDIR for -o -
        elsewhere = "point TMPDIR at a larger disk" if writer.to_stdout else "export to another --output"
        raise ArchiveError(
            f"{task}: writing its member {member.member.member} in {folder} failed "
            f"({exc.strerror or exc}); free space in {folder} or {elsewhere}, "
            "nothing was published"
        ) from None
    except BaseException:
        member.abort()
        raise
    progress.finish(task)
    return info


@dataclass
class ExportRun:
    """What running the program's body leaves for the manifest."""

    snapshot: str = ""
    warnings: list[str] = field(default_factory=list)
    subset: Subset | None = None
    infos: dict[int, MemberInfo] = field(default_factory=dict)  # by CopyOut.index


@dataclass
class Runner:
    """Runs an export program's body on ``conn``, whose transaction ``run_opening`` began.
    The refusals run first, on the snapshot; only then is any member written. Runs
    ``refuse_unsafe_data`` by its module name: ``tests.support.db`` swaps it out to write
    archives as an export from before the data proofs did."""

    conn: Connection
    dsn: str  # for a parallel export's workers
    program: ExportProgram
    writer: ArchiveWriter | None  # None: the body's refusals only (copy streams the rows)
    options: ExportOptions = field(default_factory=ExportOptions)
    progress: Progress = field(default_factory=NoProgress)
    estimated_rows: dict[str, int] = field(default_factory=dict)  # biggest tables start first
    result: ExportRun = field(default_factory=ExportRun)
    workers: list[Connection] = field(default_factory=list)

    def run(self) -> ExportRun:
        try:
            copies: list[CopyOut] = []
            for step in self.program.body:
                if isinstance(step, CopyOut):
                    copies.append(step)  # run together, in parallel when asked
                    continue
                if copies:
                    self.copy(copies)
                    copies = []
                self.step(step)
            if copies:
                self.copy(copies)
        finally:
            for w in self.workers:
                w.close()
        return self.result

    def step(self, step: Step) -> None:
        conn = self.conn
        if isinstance(step, RefuseUnmappedTypes):
            refuse_unmapped_types(conn, step)
        elif isinstance(step, RefuseDangling):
            self.result.warnings += refuse_dangling(conn, step)
        elif isinstance(step, RefusePlanWarnings):
            raise PlanError(step.message, list(step.problems))
        elif isinstance(step, RefuseLoopingTrees):
            refuse_looping_trees(conn, step)
        elif isinstance(step, RefuseUnsafeData):
            refuse_unsafe_data(conn, step)
        elif isinstance(step, SubsetStart):
            self.result.subset = Subset({r.table: r for r in step.rules}, {k.table: k for k in step.kept})
            try:
                for kept in step.kept:
                    conn.execute(q.create_kept(kept))
                conn.execute(q.read_only_from_now())
            except psycopg.Error as exc:
                raise DatabaseError(
                    f"subset export: cannot create its temp tables: {server_error_message(exc)}"
                ) from None
        elif isinstance(step, SubsetFilter):
            _run(conn, step.statement, step.failed)
        elif isinstance(step, SubsetClosure):
            assert self.result.subset is not None
            _closure(conn, self.result.subset, step)
        elif isinstance(step, SubsetNeeded):
            _run(conn, step.statement, step.what)
        elif isinstance(step, SubsetCounts):
            assert self.result.subset is not None
            conn.execute(q.analyze_kept(step.kept))
            row = conn.execute(q.kept_counts(step.kept)).fetchone()
            assert row is not None
            self.result.subset.counts[step.table] = (int(row[0]), int(row[1]))
        elif isinstance(step, Counts):
            # each member counted its rows from its own text as it was written (the
            # manifest's counts); every table of the program must have its member
            missing = [str(e.table) for e in step.entries if e.index not in self.result.infos]
            assert not missing, missing
        elif isinstance(step, Commit):
            if not self.result.snapshot:  # no table to copy: the manifest still names it
                self.result.snapshot = _export_snapshot(conn)
            conn.execute(step.statement)
        else:
            raise AssertionError(f"not a step of the export's body: {step!r}")

    def copy(self, copies: list[CopyOut]) -> None:
        """The COPY steps: on this connection one after the other, or over ``jobs``
        connections on this one's snapshot (biggest tables first; a table reading a
        subset's temp tables stays on this connection)."""
        conn, writer = self.conn, self.writer
        assert writer is not None, "an export that writes members needs its archive"
        self.result.snapshot = _export_snapshot(conn)
        for c in copies:
            self.progress.start(str(c.table), self.estimated_rows.get(str(c.table)) or None)
        infos = self.result.infos
        jobs = self.options.jobs
        if jobs == 1 or len(copies) <= 1:
            for c in copies:
                infos[c.index] = copy_table(conn, c, writer, self.options, self.progress)
            return
        n = min(jobs, len(copies))
        for _ in range(n):
            w = connect(self.dsn)
            run_opening(w, export_opening(read_only=True), self.result.snapshot)
            self.workers.append(w)
        pool_conns = list(self.workers)
        lock = threading.Lock()
        stop = threading.Event()

        def run(c: CopyOut) -> MemberInfo:
            if stop.is_set():
                raise _Stopped(str(c.table))
            with lock:
                w = pool_conns.pop()
            try:
                return copy_table(w, c, writer, self.options, self.progress, stop)
            finally:
                with lock:
                    pool_conns.append(w)

        order = sorted(copies, key=lambda c: -self.estimated_rows.get(str(c.table), 0))
        on_main = [c for c in order if c.on_snapshot_connection]
        with ThreadPoolExecutor(max_workers=n) as pool:
            futures = {c.index: pool.submit(run, c) for c in order if not c.on_snapshot_connection}
            try:
                for c in on_main:
                    infos[c.index] = copy_table(conn, c, writer, self.options, self.progress, stop)
                # the first failure, as it happens (not in table order): the others stop
                for fut in as_completed(futures.values()):
                    fut.result()
            except BaseException:
                # a failed table or Ctrl-C: the others stop at their next block, and a
                # query still building its hash tables is cancelled
                stop.set()
                for w in self.workers:
                    with suppress(psycopg.Error):
                        w.cancel_safe(timeout=5)
                raise
            infos.update((i, fut.result()) for i, fut in futures.items())


__all__ = ["ExportRun", "Runner", "copy_table", "run_opening"]
