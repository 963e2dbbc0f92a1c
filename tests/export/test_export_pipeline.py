"""The export's pipeline: COPY read in blocks straight from libpq (export_copy.py) while a
worker thread hashes, compresses and writes (export_writer.py). Against a real server:
the blocks are byte for byte what psycopg's own COPY reader returns, a server error in
the middle of a COPY is raised and leaves the connection usable, and a failing disk, a
cancelled export (Ctrl-C) or a failing table in a parallel export leave no archive, no
scratch folder, no worker thread and no COPY running on the server."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from edms_pgdump import export_archive, load_mapping_text
from edms_pgdump.errors import DatabaseError
from edms_pgdump.export.copy_blocks import copy_out_blocks
from tests.support.db import execute, member_texts, subprocess_env, unique_name

MAPPING = "version: 1\ntables:\n  public.notes: {natural_key: [name]}\n  public.tags: {natural_key: [label]}\n"
SCHEMA = """
CREATE TABLE public.tags (id serial PRIMARY KEY, label text NOT NULL UNIQUE);
CREATE TABLE public.notes (
    id serial PRIMARY KEY, name text NOT NULL UNIQUE, tag_id int REFERENCES public.tags, body text NOT NULL);
INSERT INTO public.tags (label) SELECT 'tag ' || g FROM generate_series(1, 50) g;
INSERT INTO public.notes (name, tag_id, body)
SELECT 'note ' || g, 1 + g % 50, repeat(md5(g::text), 3) || E'\\ttab\\nnewline\\\\' FROM generate_series(1, 40000) g;
ANALYZE;
"""


@pytest.fixture
def notes_db(new_db: Any) -> str:
    dsn: str = new_db()
    execute(dsn, SCHEMA)
    return dsn


def _psycopg_copy(dsn: str, query: str) -> bytes:
    """The reference: psycopg's own row-by-row COPY reader."""
    with psycopg.connect(dsn) as conn, conn.cursor() as cur, cur.copy(query.encode()) as copy:
        return b"".join(bytes(row) for row in copy)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _member_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("edms-pgdump ")]


def _copies_running(dsn: str) -> list[str]:
    """COPY statements still running on the server for this database (a stopped export
    must not leave one behind); backends need a moment to notice a closed socket."""
    for _ in range(50):
        with psycopg.connect(dsn, autocommit=True) as conn:
            found = [
                str(r[0])
                for r in conn.execute(
                    "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE 'COPY%'"
                )
            ]
        if not found:
            return []
        time.sleep(0.1)
    return found


def test_blocks_are_what_psycopg_reads(notes_db: str) -> None:
    query = "COPY (SELECT name, tag_id, body FROM public.notes ORDER BY id) TO STDOUT"
    expected = _psycopg_copy(notes_db, query)
    with psycopg.connect(notes_db) as conn:
        blocks = list(copy_out_blocks(conn, sql.SQL(query), block=64 * 1024))
        # the connection is idle in its transaction afterwards: the next statement works
        assert conn.execute("SELECT count(*) FROM public.notes").fetchone() == (40000,)
    assert len(blocks) > 10
    assert b"".join(b for b, _ in blocks) == expected
    assert sum(rows for _, rows in blocks) == 40000
    assert all(b.endswith(b"\n") for b, _ in blocks)  # blocks end at the end of a row


def test_server_error_in_the_middle_of_a_copy_is_raised(notes_db: str) -> None:
    """The error arrives after rows were sent (division by zero at row 30000): raised as
    psycopg's own error class, and the transaction can be rolled back and reused."""
    query = sql.SQL("COPY (SELECT name, body, 1 / (id - 30000) FROM public.notes ORDER BY id) TO STDOUT")
    got = 0
    with psycopg.connect(notes_db) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero):
            for block, _rows in copy_out_blocks(conn, query, block=64 * 1024):
                got += len(block)
        assert got > 0
        conn.rollback()
        assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_export_members_are_the_copy_text(notes_db: str, tmp_path: Path, jobs: int, compression: str) -> None:
    out = tmp_path / "a.edms"
    result = export_archive(
        notes_db, load_mapping_text(MAPPING), out, jobs=jobs, compression=compression, audit_log=False
    )
    texts = member_texts(out)  # decompressed and checked against the manifest's hashes
    reference = _psycopg_copy(
        notes_db,
        "COPY (SELECT t.name, r.label, t.body FROM public.notes t LEFT JOIN public.tags r ON r.id = t.tag_id) "
        "TO STDOUT",
    )
    assert sorted(texts["public.notes"].splitlines()) == sorted(reference.splitlines())
    assert {t.table: t.rows for t in result.tables} == {"public.notes": 40000, "public.tags": 50}
    assert _leftovers(tmp_path) == ["a.edms"]


class _CtrlC:
    """Progress whose second block is interrupted, as Ctrl-C would (KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.blocks = 0

    def start(self, task: str, total: int | None) -> None:
        pass

    def advance(self, task: str, rows: int, nbytes: int) -> None:
        self.blocks += 1
        if self.blocks == 2:
            raise KeyboardInterrupt

    def finish(self, task: str) -> None:
        pass


@pytest.mark.parametrize("jobs", [1, 2])
def test_cancelled_export_leaves_nothing(notes_db: str, tmp_path: Path, jobs: int) -> None:
    out = tmp_path / "a.edms"
    with pytest.raises(KeyboardInterrupt):
        export_archive(
            notes_db, load_mapping_text(MAPPING), out, jobs=jobs, compression="none", progress=_CtrlC(),
            audit_log=False,
        )
    assert _leftovers(tmp_path) == []  # no archive, no scratch folder
    assert _member_threads() == []
    assert _copies_running(notes_db) == []


def test_table_failing_in_a_parallel_export_stops_the_others(notes_db: str, tmp_path: Path) -> None:
    """-j 2: one table's query fails (the role may not read it) while the other streams;
    the error names the table and nothing is published."""
    role = unique_name("edms_pipe_reader")
    execute(notes_db, f"CREATE ROLE {role} LOGIN", f"GRANT SELECT ON public.notes TO {role}")
    try:
        dsn = psycopg.conninfo.make_conninfo(notes_db, user=role)
        out = tmp_path / "a.edms"
        with pytest.raises(DatabaseError, match="tags"):
            export_archive(dsn, load_mapping_text(MAPPING), out, jobs=2, audit_log=False)
        assert _leftovers(tmp_path) == []
        assert _member_threads() == []
        assert _copies_running(notes_db) == []
    finally:
        execute(notes_db, f"DROP OWNED BY {role}", f"DROP ROLE {role}")


DISK_FULL = textwrap.dedent(
    """
    import resource, signal, sys
    from edms_pgdump import export_archive, load_mapping_text
    from edms_pgdump.errors import EdmsPgdumpError
    # files may not grow past 1 MB: the member's write fails as on a full disk (EFBIG)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    try:
        export_archive(sys.argv[1], load_mapping_text(sys.argv[2]), sys.argv[3], jobs=int(sys.argv[4]),
                       compression="none", audit_log=False)
    except EdmsPgdumpError as exc:
        print(type(exc).__name__, exc)
        sys.exit(1)
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SIGXFSZ as on Linux")
@pytest.mark.parametrize("jobs", [1, 2])
def test_write_failure_aborts_the_export(notes_db: str, tmp_path: Path, jobs: int) -> None:
    """A member that cannot be written (the process may not grow a file past 1 MB, as a
    full disk refuses it): one error naming the table and the fix, nothing published."""
    folder = tmp_path / "out"
    folder.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", DISK_FULL, notes_db, MAPPING, str(folder / "a.edms"), str(jobs)],
        capture_output=True, text=True, env=subprocess_env(), timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert re.match(rf"ArchiveError public\.notes: writing its member data/\d{{4}}\.copy in {folder} failed ", done.stdout), (
        done.stdout
    )
    assert f"(File too large); free space in {folder} or export to another --output" in done.stdout
    assert _leftovers(folder) == []
    assert _copies_running(notes_db) == []


class _TerminateBackend(_CtrlC):
    """Progress that, at the first block, has the server end the export's connection
    (pg_terminate_backend), as a server restart or an administrator would."""

    def __init__(self, dsn: str) -> None:
        super().__init__()
        self.dsn = dsn

    def advance(self, task: str, rows: int, nbytes: int) -> None:
        self.blocks += task == "public.notes"
        if self.blocks == 1 and task == "public.notes":  # its first block of several
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                ended = conn.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE 'COPY%'"
                ).fetchone()
            assert ended == (1,)


def test_connection_lost_mid_copy_is_a_database_error(notes_db: str, tmp_path: Path) -> None:
    # 10x the notes (about 48 MB of COPY): the server is still sending when the client
    # reaches its first block, even on a loaded machine (with 4.8 MB it had sometimes sent
    # everything by then, and there was no COPY left to end)
    execute(
        notes_db,
        "INSERT INTO public.notes (name, tag_id, body) SELECT 'more ' || g, 1 + g % 50, repeat(md5(g::text), 3) "
        "FROM generate_series(1, 360000) g",
    )
    out = tmp_path / "a.edms"
    lost = r"public\.notes: export query failed: .*(terminating connection|server closed the connection)"
    with pytest.raises(DatabaseError, match=lost):
        export_archive(
            notes_db, load_mapping_text(MAPPING), out, compression="none", progress=_TerminateBackend(notes_db),
            audit_log=False,
        )
    assert _leftovers(tmp_path) == []
    assert _member_threads() == []
