"""Parallel staging: the archive's members loaded over N connections, ahead of the
import's one transaction.

Each loading connection takes the next table (largest first), creates its raw
staging table in the private schema and COPYs the member into it, one short
transaction per table. Nothing here touches a real table: the transaction that
resolves, writes and checks is the import's own, afterwards, with every check as
with one connection (the staged counts are compared with the manifest there). The
first failure stops the other loaders and is raised, naming the table.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import psycopg

from edms_pgdump import sqlgen
from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.db import connect, copy_in, server_error_message
from edms_pgdump.errors import DatabaseError, EdmsPgdumpError
from edms_pgdump.options import Progress, copy_progress
from edms_pgdump.program.run import MemberSource
from edms_pgdump.program.steps import CREATE_RAW, CopyIn, Execute, Program
from edms_pgdump.results import ImportReport


class _LockedProgress:
    """One progress display fed by several threads."""

    def __init__(self, inner: Progress) -> None:
        self.inner = inner
        self.lock = threading.Lock()

    def start(self, task: str, total: int | None) -> None:
        with self.lock:
            self.inner.start(task, total)

    def advance(self, task: str, rows: int, nbytes: int) -> None:
        with self.lock:
            self.inner.advance(task, rows, nbytes)

    def finish(self, task: str) -> None:
        with self.lock:
            self.inner.finish(task)


def staging_loads(program: Program) -> dict[QualifiedName, tuple[Execute, CopyIn]]:
    """Each table's create-raw and COPY steps."""
    creates = {s.table: s for s in program.walk() if isinstance(s, Execute) and s.step == CREATE_RAW}
    copies = {s.table: s for s in program.walk() if isinstance(s, CopyIn)}
    return {name: (creates[name], copies[name]) for name in program.tables if name in creates}


def load_in_parallel(
    dsn: str,
    program: Program,
    open_source: Callable[[], AbstractContextManager[MemberSource]],
    jobs: int,
    progress: Progress,
    report: ImportReport,
    rows: Callable[[QualifiedName], int],
) -> dict[QualifiedName, int]:
    """Create and fill every raw staging table over ``jobs`` connections; the rows each
    received. ``open_source`` gives each loader its own reader of the archive; ``rows``
    (the manifest's counts) puts the largest tables first."""
    loads = staging_loads(program)
    work: queue.Queue[QualifiedName] = queue.Queue()
    for name in sorted(loads, key=lambda n: -rows(n)):
        work.put(name)
    staged: dict[QualifiedName, int] = {}
    timings: list[dict[str, Any]] = []
    failures: list[BaseException] = []
    stop = threading.Event()
    shown = _LockedProgress(progress)
    lock = threading.Lock()

    def loader() -> None:
        try:
            conn = connect(dsn)
        except BaseException as exc:
            failures.append(exc)
            stop.set()
            return
        try:
            with open_source() as source:
                while not stop.is_set():
                    try:
                        name = work.get_nowait()
                    except queue.Empty:
                        return
                    rows, seconds = _load_one(conn, name, loads[name], source, shown, stop)
                    with lock:
                        staged[name] = rows
                        timings.append({"step": "copy", "table": str(name), "seconds": seconds, "rows": rows})
        except BaseException as exc:
            failures.append(exc)
            stop.set()
        finally:
            conn.close()

    threads = [threading.Thread(target=loader, name=f"edms-load-{i}") for i in range(min(jobs, len(loads)))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except BaseException:  # Ctrl-C: the loaders stop after their current block
        stop.set()
        for t in threads:
            t.join()
        raise
    report.profile.extend(sorted(timings, key=lambda e: str(e["table"])))
    if failures:
        first = failures[0]
        if isinstance(first, EdmsPgdumpError):
            raise first
        if isinstance(first, psycopg.Error):
            raise DatabaseError(f"parallel staging failed: {server_error_message(first)}") from None
        raise first
    return staged


def _load_one(
    conn: Any,
    name: QualifiedName,
    steps: tuple[Execute, CopyIn],
    source: MemberSource,
    progress: Progress,
    stop: threading.Event,
) -> tuple[int, float]:
    create, copy_step = steps
    task = str(name)
    progress.start(task, source.rows(name))
    t0 = time.perf_counter()
    try:
        conn.execute(sqlgen.begin())
        conn.execute(create.statement)
        advance = copy_progress(progress, task)

        def each(block: bytes) -> None:
            if stop.is_set():
                raise _Stopped()
            advance(block)

        rows = copy_in(conn, copy_step.statement, source.blocks(name), each)
        conn.execute(sqlgen.commit())
    except _Stopped:
        conn.execute(sqlgen.rollback())
        return 0, 0.0
    except psycopg.Error as exc:
        raise DatabaseError(f"{name}: staging: {server_error_message(exc)}") from None
    finally:
        progress.finish(task)
    return rows, round(time.perf_counter() - t0, 4)


class _Stopped(Exception):
    """Another loader failed: this one gives up its table."""
