"""The Python interpreter of the import program: psycopg executes each step.

It adds only what psql cannot express the same way: streaming the archive's members
into ``COPY``, counts kept in memory, a savepoint around an INSERT whose unique index
may name duplicate keys, timings for the report's profile, and sample rows formatted
for people.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from typing import Any, Protocol

import psycopg

from edms_pgdump import sqlgen
from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.db import Connection, copy_in, server_error_message
from edms_pgdump.errors import ArchiveError, ImportRejected, sample_keys
from edms_pgdump.options import PHASE, ImportOptions, NoProgress, Progress, copy_progress
from edms_pgdump.program.proof import OBSERVED, SIDE_EFFECTS
from edms_pgdump.program.steps import (
    ABSENT,
    CREATE_RAW,
    DELETED,
    EXPECTED,
    INSERTED,
    PRESENT,
    SKIPPED,
    STAGED,
    UNCHANGED,
    UPDATED,
    Balance,
    Check,
    CompareCounts,
    Condition,
    CopyIn,
    Derive,
    End,
    Execute,
    Message,
    Program,
    Record,
    Refuse,
    Setting,
    Step,
    When,
)
from edms_pgdump.results import ImportReport, TableResult
from edms_pgdump.sqlgen.common import current_setting

# How long an optional lock (ACCESS EXCLUSIVE before dropping foreign keys) may wait:
# well below PostgreSQL's default deadlock_timeout (1 s), so in a lock-order cycle with a
# reader it is this step that gives up (the keys stay, checked row by row), never the reader.
OPTIONAL_LOCK_WAIT = "200ms"


class MemberSource(Protocol):
    """Where CopyIn reads a table's COPY text from (an archive member, or a source
    database's COPY for ``copy``). ``rows``: the count the source vouches for, read
    again once ``blocks`` is exhausted (a stream counts while it runs)."""

    def rows(self, table: QualifiedName) -> int: ...

    def blocks(self, table: QualifiedName) -> Any: ...

    def damage(self, table: QualifiedName) -> ArchiveError | None:
        """Asked after ``blocks`` or its COPY failed: the source's own damage that
        explains it, as the error to raise (an archive member that fails its manifest
        entry), or None."""
        ...


class _NoMembers:
    """The source of a frame that copies nothing (the transaction's opening)."""

    def rows(self, table: QualifiedName) -> int:
        return 0

    def blocks(self, table: QualifiedName) -> Any:
        return iter(())

    def damage(self, table: QualifiedName) -> ArchiveError | None:
        return None


def run_frame(
    conn: Connection, steps: tuple[Step, ...], options: ImportOptions, report: ImportReport
) -> None:
    """Run steps that name no table before the program exists: the transaction's
    opening, which must precede reading the catalog the program is built from."""
    frame = Program((), {}, {}, steps, {}, options)
    ProgramRunner(conn, frame, _NoMembers(), report, NoProgress()).run_more(steps)
    report.current_step = ""  # a failure from here on is not the opening's


class _SkipRest(Exception):
    """An optional step was refused: the rest of its When is skipped."""


class ProgramRunner:
    def __init__(
        self,
        conn: Connection,
        program: Program,
        source: MemberSource,
        report: ImportReport,
        progress: Progress,
        staged: dict[QualifiedName, int] | None = None,
    ) -> None:
        """``staged``: the rows each raw staging table received, when they were created
        and loaded ahead of this transaction (parallel staging); their steps are skipped."""
        self.conn = conn
        self.staged = staged
        self.program = program
        self.source = source
        self.report = report
        self.progress = progress
        self.counts: dict[QualifiedName, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.gathered: list[str] = []
        self.results = {n: TableResult(str(n)) for n in program.tables}
        self.phase: str | None = None  # the step shown as progress (options.PHASE)
        self.report.tables = [self.results[n] for n in program.tables]

    # -- plumbing --------------------------------------------------------------------
    def timed(self, step: str, table: QualifiedName | None, t0: float, rows: int = -1) -> None:
        entry: dict[str, Any] = {"step": step, "seconds": round(time.perf_counter() - t0, 4)}
        if table is not None:
            entry["table"] = str(table)
        if rows >= 0:
            entry["rows"] = rows
        self.report.profile.append(entry)

    def fail(self, message: str, problems: list[str] | None = None) -> None:
        self.report.problems.extend(problems or [message])
        self.sync_results()
        raise ImportRejected(message, self.report)

    def flush_gathered(self) -> None:
        if self.gathered:
            problems, self.gathered = self.gathered, []
            self.fail(problems[0], problems)

    def holds(self, condition: Condition) -> bool:
        return all(
            sum(t.factor * self.counts[t.table][t.count] for t in terms) >= minimum
            for terms, minimum in condition.bounds
        )

    # -- the steps -------------------------------------------------------------------
    def run(self) -> None:
        for name in self.program.tables:
            self.counts[name][EXPECTED] = self.source.rows(name)
        self.run_more(self.program.steps)

    def run_more(self, steps: tuple[Step, ...]) -> None:
        """Steps after (or around) the program's own: what hooks add, the closing."""
        try:
            self.steps(steps)
        finally:
            self.show_phase(None)
        self.flush_gathered()
        self.sync_results()

    def steps(self, steps: tuple[Step, ...]) -> None:
        for step in steps:
            # a gathering check (inside a When, too) and the tables' balances add to the
            # failures reported together
            if not ((isinstance(step, Check) and step.gather) or isinstance(step, (When, Balance))):
                self.flush_gathered()
            self.step(step)

    def step(self, step: Step) -> None:
        if isinstance(step, When):
            if self.holds(step.condition):
                with contextlib.suppress(_SkipRest):
                    self.steps(step.steps)
        elif isinstance(step, Execute):
            if not (self.staged is not None and step.step == CREATE_RAW):
                self.execute(step)
        elif isinstance(step, CopyIn):
            if self.staged is not None:
                self.counts[step.table][STAGED] = self.staged[step.table]
            else:
                self.copy_in(step)
        elif isinstance(step, Record):
            self.record(step)
        elif isinstance(step, Derive):
            counts = self.counts
            counts[step.table][step.count] = sum(t.factor * counts[t.table][t.count] for t in step.terms)
        elif isinstance(step, Check):
            self.check(step)
        elif isinstance(step, CompareCounts):
            self.compare(step)
        elif isinstance(step, Refuse):
            value = self.counts[step.value.table][step.value.count]
            self.fail(f"{step.message.head}{value}{step.message.tail}")
        elif isinstance(step, Balance):
            self.balance(step)
        elif isinstance(step, Setting):
            self.setting(step)
        elif isinstance(step, End):
            self.end(step)
        else:  # pragma: no cover - exhaustive
            raise TypeError(step)

    def begin_step(self, step: str, table: QualifiedName | None) -> None:
        # remembered so that a server error can name the table and the step
        self.report.current_step = f"{table}: {step}" if table is not None else step
        self.show_phase(f"{PHASE}{step}" + (f" {table}" if table is not None else ""))

    def show_phase(self, phase: str | None) -> None:
        if self.phase is not None:
            self.progress.finish(self.phase)
        self.phase = phase
        if phase is not None:
            self.progress.start(phase, None)

    def execute(self, step: Execute) -> None:
        self.begin_step(step.step, step.table)
        t0 = time.perf_counter()
        if step.on_unique_violation:
            self.conn.execute(sqlgen.savepoint("edms_insert"))
            try:
                cur = self.conn.execute(step.statement)
            except psycopg.errors.UniqueViolation:
                self.conn.execute(sqlgen.rollback_to("edms_insert"))
                for check in step.on_unique_violation:
                    self.check(check)
                raise
            self.conn.execute(sqlgen.release("edms_insert"))
        elif step.optional:
            row = self.conn.execute(current_setting("lock_timeout")).fetchone()
            self.conn.execute(sqlgen.savepoint("edms_optional"))
            # Wait only briefly: a reader that holds one of these tables while it waits for
            # another this statement already locked would otherwise wait long enough for
            # PostgreSQL's deadlock check (deadlock_timeout, 1 s by default) to cancel the
            # reader's query, the application's, instead of this optional step.
            self.conn.execute(sqlgen.set_local("lock_timeout", OPTIONAL_LOCK_WAIT))
            try:
                cur = self.conn.execute(step.statement)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable) as exc:
                # also undoes the SET LOCAL above, and releases what the statement locked
                self.conn.execute(sqlgen.rollback_to("edms_optional"))
                self.report.warnings.append(
                    f"{step.step}: {server_error_message(exc)}; another session holds these tables, so "
                    "their foreign keys stay in place and are checked row by row"
                )
                raise _SkipRest() from None
            self.conn.execute(sqlgen.release("edms_optional"))
            if row is not None:
                self.conn.execute(sqlgen.set_local("lock_timeout", str(row[0])))
        elif step.refusal is not None:
            try:
                cur = self.conn.execute(step.statement)
            except psycopg.errors.IntegrityError as exc:
                self.fail(
                    f"{step.refusal} ({server_error_message(exc)}); the import was rolled back and "
                    "nothing was written"
                )
                raise  # pragma: no cover - fail() raises
        else:
            cur = self.conn.execute(step.statement)
        self.timed(step.step, step.table, t0, cur.rowcount)
        if step.count is not None and step.table is not None:
            self.counts[step.table][step.count] = max(cur.rowcount, 0)

    def copy_in(self, step: CopyIn) -> None:
        name = step.table
        self.begin_step("copy", name)
        task = str(name)
        self.progress.start(task, self.counts[name][EXPECTED])
        t0 = time.perf_counter()
        blocks = self.source.blocks(name)
        try:
            copied = copy_in(self.conn, step.statement, blocks, copy_progress(self.progress, task))
        except (psycopg.DataError, ArchiveError) as exc:
            # The member was not verified before the transaction (one read, not two): a
            # damaged one fails here, as text COPY rejects (a data exception) or at its
            # hash, and is named as the damage it is, as a verification would have named
            # it. Another failure (a timeout, a lost connection) is not read about again.
            try:
                refused = self.source.damage(name)
            except Exception:  # the second read failed too: the first failure stands
                raise exc from None
            if refused is None:
                raise
            raise refused from None
        self.timed("copy", name, t0, copied)
        self.progress.finish(task)
        self.counts[name][STAGED] = copied
        # a streamed source (copy from a database) knows its count only at the end
        self.counts[name][EXPECTED] = self.source.rows(name)

    def record(self, step: Record) -> None:
        self.begin_step(step.step, step.table)
        t0 = time.perf_counter()
        row = self.conn.execute(step.query).fetchone()
        self.timed(step.step, step.table, t0)
        for name, value in zip(step.counts, row or ()):
            self.counts[step.table][name] = int(value or 0)

    def compare(self, step: CompareCounts) -> None:
        left = self.counts[step.table][step.left]
        right = self.counts[step.table][step.right]
        if left == right:
            return
        for check in step.explain:
            self.check(check)
        m = step.message
        self.fail(f"{m.head}{left}{m.middle or ''}{right}{m.tail}")

    def check(self, step: Check) -> None:
        self.begin_step(step.step, step.table)
        t0 = time.perf_counter()
        rows = list(self.conn.execute(step.query).fetchall())
        self.timed(step.step, step.table, t0)
        if not rows:
            return
        if step.shape == "exists":
            for check in step.explain:
                self.check(check)
            self.fail(_message(step.message, None, ""))
            return
        if step.shape == "total_first":
            total: int | None = int(rows[0][0])
            samples = sample_keys((r[1:] for r in rows), list(step.fields))
        else:
            total = None
            samples = sample_keys((r[:-1] for r in rows), list(step.fields))
        message = _message(step.message, total, samples)
        if step.step == SIDE_EFFECTS and step.warn:
            # listed on their own (the CLI prints them, --json has them), not as a warning
            names = ("table", "inserted", "updated", "deleted", "cause")
            self.report.side_effects += [dict(zip(names, r[1:])) for r in rows]
            return
        if step.count is not None and step.table is not None:
            self.counts[step.table][step.count] = total if total is not None else len(rows)
        if step.warn:
            self.report.warnings.append(message)
        elif step.gather:
            self.gathered.append(message)
        else:
            self.fail(message)

    def balance(self, step: Balance) -> None:
        self.sync_results()
        result = self.results[step.table]
        if not result.balanced:
            self.gathered.append(result.balance_refusal())

    def setting(self, step: Setting) -> None:
        if not step.best_effort:
            self.conn.execute(step.statement)
            return
        self.conn.execute(sqlgen.savepoint("edms_setting"))
        try:
            self.conn.execute(step.statement)
        except psycopg.errors.InvalidParameterValue:
            self.conn.execute(sqlgen.rollback_to("edms_setting"))
        self.conn.execute(sqlgen.release("edms_setting"))

    def end(self, step: End) -> None:
        self.begin_step("commit" if step.commit else "rollback", None)
        t0 = time.perf_counter()
        self.conn.execute(sqlgen.commit() if step.commit else sqlgen.rollback())
        if step.commit:
            self.timed("commit", None, t0)
        self.report.committed = step.commit

    def sync_results(self) -> None:
        for name, r in self.results.items():
            c = self.counts[name]
            r.expected, r.staged, r.inserted = c[EXPECTED], c[STAGED], c[INSERTED]
            r.updated, r.skipped, r.unchanged = c[UPDATED], c[SKIPPED], c[UNCHANGED]
            r.present_after = c[PRESENT]
            r.deleted, r.absent = c[DELETED], c[ABSENT]
            if OBSERVED[0] in c:
                r.observed = {k.split()[1]: c[k] for k in OBSERVED}


def _message(m: Message, total: int | None, samples: str) -> str:
    if m.middle is None or total is None:
        return f"{m.head}{samples}{m.tail}"
    return f"{m.head}{total}{m.middle}{samples}{m.tail}"
