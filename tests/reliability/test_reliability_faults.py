"""Suite 2: atomicity under faults.

The import is killed (SIGKILL) or its backend terminated at several points, or its
COMMIT fails; the target's content (a digest over every table) is exactly as before.
Points are made deterministic with server-side sleeps (triggers on the target, which the
import must not disable) or with the library's hooks, instead of hoping a timer lands.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from edms_pgdump import DatabaseError, ImportOptions, import_archive, load_mapping
from edms_pgdump.demo import sample
from edms_pgdump.export.write import write_archive
from tests.support.db import db_digest, subprocess_env

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = 8_000
SLEEPY = """
CREATE FUNCTION public.sleep_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('edms_test.slept', true) IS DISTINCT FROM 'yes' THEN
        PERFORM set_config('edms_test.slept', 'yes', true);
        PERFORM pg_sleep({seconds});
    END IF;
    RETURN NULL;
END $$;
"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def big_archive(pg_server, admin, sample_template, tmp_path_factory) -> Iterator[tuple[Path, dict[str, int]]]:
    name = f"edms_faults_src_{os.getpid()}"
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{sample_template}"')
    try:
        with psycopg.connect(pg_server.dsn(name), autocommit=True) as c:
            sample.populate(c, sample.SampleSize.from_documents(DOCUMENTS))
        path = tmp_path_factory.mktemp("faults") / "big.edms"
        result = write_archive(pg_server.dsn(name), load_mapping(ROOT / "config" / "edms.yaml"), path)
        yield path, {t.table: t.rows for t in result.tables}
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def target(new_db, sample_template) -> str:
    dsn = new_db(sample_template)
    with psycopg.connect(dsn, autocommit=True) as c:
        sample.reinitialise(c)
    return dsn


def _dbname(dsn: str) -> str:
    with psycopg.connect(dsn) as c:
        return str(c.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]


def _import_backends(admin_conn: psycopg.Connection, db: str) -> list[tuple[int, str, str]]:
    return list(
        admin_conn.execute(
            "SELECT pid, state, query FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = 'edms-pgdump' AND pid <> pg_backend_pid()",
            (db,),
        ).fetchall()
    )


def _wait_for(pred: Callable[[], object], timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"import ended (rc {proc.returncode}) before {what}: {out}\n{err}")
        time.sleep(0.002)
    raise AssertionError(f"timed out waiting for {what}")


def _wait_gone(admin_conn: psycopg.Connection, db: str) -> None:
    _wait_for(lambda: not _import_backends(admin_conn, db), 60, "the import backend to end")


def _cli_import(archive: Path, dsn: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "edms_pgdump", "import", str(archive), "--dsn", dsn, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )


def _counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as c:
        return {
            t: int(c.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
            for t in sample.SAMPLE_TABLES
        }


def _assert_clean_reimport(dsn: str, archive: Path, before_counts: dict[str, int], rows: dict[str, int]):
    """After the fault, nothing is left behind: a normal import succeeds and adds every row."""
    report = import_archive(dsn, archive, options=ImportOptions(lock_timeout="5s"))
    assert report.committed
    assert report.inserted == sum(rows.values())
    after = _counts(dsn)
    assert {t: after[t] - before_counts[t] for t in after} == rows


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def test_kill9_mid_copy(big_archive, target, admin) -> None:
    archive, rows = big_archive
    db = _dbname(target)
    before, counts = db_digest(target), _counts(target)
    proc = _cli_import(archive, target)

    def copying() -> object:
        return admin.execute(
            "SELECT p.tuples_processed FROM pg_stat_progress_copy p JOIN pg_stat_activity a USING (pid) "
            "WHERE a.datname = %s AND a.application_name = 'edms-pgdump' AND p.command = 'COPY FROM' "
            "AND p.tuples_processed > 0",
            (db,),
        ).fetchone()

    # Freeze the client (SIGSTOP) between looks: while it is stopped, a COPY in progress
    # stays in progress on the server, so the look cannot race the COPY's end.
    deadline = time.monotonic() + 60
    caught = False
    while time.monotonic() < deadline and proc.poll() is None:
        os.kill(proc.pid, signal.SIGSTOP)
        if copying():
            caught = True
            break
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.003)
    assert caught, f"the import ended (rc {proc.poll()}) before a COPY was caught"
    _kill(proc)  # SIGKILL works on a stopped process
    _wait_gone(admin, db)
    assert db_digest(target) == before
    _assert_clean_reimport(target, archive, counts, rows)


def test_kill9_mid_upsert(big_archive, target, admin) -> None:
    """Killed while inserting the last table: users, documents and versions are already
    written inside the transaction. None of them may survive."""
    archive, rows = big_archive
    db = _dbname(target)
    with psycopg.connect(target, autocommit=True) as c:
        c.execute(SLEEPY.format(seconds=1).encode())
        c.execute(
            b"CREATE TRIGGER slow AFTER INSERT ON public.document_workflows "
            b"FOR EACH STATEMENT EXECUTE FUNCTION public.sleep_once()"
        )
    before, counts = db_digest(target), _counts(target)
    proc = _cli_import(archive, target)
    _wait_for(
        lambda: [
            b
            for b in _import_backends(admin, db)
            if "pg_sleep" in b[2]
            or ("document_workflows" in b[2] and b[2].lstrip().upper().startswith("INSERT"))
        ],
        60,
        "the upsert of document_workflows",
        proc,
    )
    # prove the earlier tables really were written (uncommitted) at this point
    _kill(proc)
    _wait_gone(admin, db)
    assert db_digest(target) == before
    _assert_clean_reimport(target, archive, counts, rows)


HOOK_SCRIPT = textwrap.dedent(
    """
    import sys, time, pathlib
    from edms_pgdump.load import transaction as load

    class PauseBeforeCommit(load.ImportHooks):
        def after_program(self, conn, program, report):
            written = conn.execute("SELECT count(*) FROM public.document_workflows").fetchone()[0]
            pathlib.Path(sys.argv[3]).write_text(str(written))
            time.sleep(120)
            return ()

    load.load_archive(sys.argv[1], sys.argv[2], hooks=[PauseBeforeCommit()])
    """
)


def test_kill9_just_before_commit(big_archive, target, admin, tmp_path: Path) -> None:
    archive, rows = big_archive
    db = _dbname(target)
    script = tmp_path / "pause.py"
    script.write_text(HOOK_SCRIPT)
    flag = tmp_path / "ready"
    before, counts = db_digest(target), _counts(target)
    proc = subprocess.Popen(
        [sys.executable, str(script), target, str(archive), str(flag)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    _wait_for(flag.exists, 120, "the import to reach COMMIT", proc)
    time.sleep(0.05)
    # everything was loaded and balanced inside the transaction...
    assert int(flag.read_text()) == counts["public.document_workflows"] + rows["public.document_workflows"]
    _kill(proc)  # ...and then the process died before sending COMMIT
    _wait_gone(admin, db)
    assert db_digest(target) == before
    _assert_clean_reimport(target, archive, counts, rows)


def test_kill9_during_commit_is_all_or_nothing(big_archive, target, admin) -> None:
    """A deferred trigger makes COMMIT itself take time; the client dies while the server
    commits. The server finishes the COMMIT: the result must be all rows, never part."""
    archive, rows = big_archive
    db = _dbname(target)
    with psycopg.connect(target, autocommit=True) as c:
        c.execute(SLEEPY.format(seconds=1).encode())
        c.execute(
            b"CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON public.users "
            b"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.sleep_once()"
        )
    before, counts = db_digest(target), _counts(target)
    proc = _cli_import(archive, target)
    _wait_for(
        lambda: [
            b for b in _import_backends(admin, db) if b[2].strip().upper() == "COMMIT" and b[1] == "active"
        ],
        120,
        "COMMIT",
        proc,
    )
    _kill(proc)
    _wait_gone(admin, db)
    after = _counts(target)
    if db_digest(target) != before:
        assert {t: after[t] - counts[t] for t in after} == rows, "partial commit"
    else:  # pragma: no cover - the server aborted the commit: equally atomic
        assert after == counts


def test_backend_terminated_mid_upsert(big_archive, target, admin) -> None:
    archive, rows = big_archive
    db = _dbname(target)
    with psycopg.connect(target, autocommit=True) as c:
        c.execute(SLEEPY.format(seconds=30).encode())
        c.execute(
            b"CREATE TRIGGER slow AFTER INSERT ON public.document_versions "
            b"FOR EACH STATEMENT EXECUTE FUNCTION public.sleep_once()"
        )
    before, counts = db_digest(target), _counts(target)
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            import_archive(target, archive)
        except BaseException as exc:
            outcome["error"] = exc

    th = threading.Thread(target=run)
    th.start()
    pids = _wait_for(
        lambda: [
            b[0]
            for b in _import_backends(admin, db)
            if "pg_sleep" in b[2]
            or ("document_versions" in b[2] and b[2].lstrip().upper().startswith("INSERT"))
        ],
        60,
        "the upsert of document_versions",
    )
    admin.execute("SELECT pg_terminate_backend(%s)", (pids[0],))
    th.join(60)
    assert not th.is_alive()
    err = outcome.get("error")
    assert isinstance(err, DatabaseError), err
    assert "terminat" in str(err) or "connection" in str(err), str(err)
    _wait_gone(admin, db)
    assert db_digest(target) == before
    with psycopg.connect(target, autocommit=True) as c:
        c.execute(b"DROP TRIGGER slow ON public.document_versions")
    _assert_clean_reimport(target, archive, counts, rows)


def test_statement_timeout_rolls_back(big_archive, target) -> None:
    archive, _rows = big_archive
    with psycopg.connect(target, autocommit=True) as c:
        c.execute(SLEEPY.format(seconds=5).encode())
        c.execute(
            b"CREATE TRIGGER slow AFTER INSERT ON public.document_workflows "
            b"FOR EACH STATEMENT EXECUTE FUNCTION public.sleep_once()"
        )
    before = db_digest(target)
    with pytest.raises(DatabaseError) as err:
        import_archive(target, archive, options=ImportOptions(statement_timeout="1s"))
    assert "statement timeout" in str(err.value)
    assert "rolled back" in str(err.value)
    assert db_digest(target) == before


@pytest.mark.parametrize("kind", ["deferred unique", "deferred constraint trigger"])
def test_failing_commit_rolls_back(big_archive, target, kind: str) -> None:
    archive, _rows = big_archive
    with psycopg.connect(target, autocommit=True) as c:
        if kind == "deferred unique":
            # the re-initialised target's legacy documents share titles with the archive's
            c.execute(
                b"ALTER TABLE public.documents ADD CONSTRAINT documents_title_key "
                b"UNIQUE (title) DEFERRABLE INITIALLY DEFERRED"
            )
        else:
            c.execute(
                b"CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                b"RAISE EXCEPTION 'refused at commit by %', TG_NAME; END $$"
            )
            c.execute(
                b"CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON public.document_workflows "
                b"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.refuse()"
            )
    before, counts = db_digest(target), _counts(target)
    with pytest.raises(DatabaseError) as err:
        import_archive(target, archive)
    msg = str(err.value)
    assert "rolled back" in msg
    if kind == "deferred unique":
        assert "documents_title_key" in msg
    else:
        assert "refused at commit by refuse_at_commit" in msg
    assert db_digest(target) == before
    assert _counts(target) == counts


def test_dry_run_leaves_target_unchanged(big_archive, target) -> None:
    archive, rows = big_archive
    before = db_digest(target)
    report = import_archive(target, archive, options=ImportOptions(dry_run=True))
    assert report.dry_run and not report.committed
    assert report.inserted == sum(rows.values())
    assert db_digest(target) == before


EXPORT_SCRIPT = textwrap.dedent(
    """
    import sys
    from edms_pgdump import export_archive, load_mapping
    export_archive(sys.argv[1], load_mapping(sys.argv[2]), sys.argv[3], jobs=int(sys.argv[4]))
    """
)


@pytest.mark.parametrize("jobs", [1, 2])
def test_kill9_mid_export_keeps_previous_archive(sample_dbs, admin, tmp_path: Path, jobs: int) -> None:
    """The export blocks on a locked table after writing other members; killed there, the
    archive already at the output path is untouched and no half archive is published."""
    from edms_pgdump import verify_archive

    src, _dst = sample_dbs
    out = tmp_path / "nightly.edms"
    write_archive(src, load_mapping(ROOT / "config" / "edms.yaml"), out)
    old_bytes = out.read_bytes()
    script = tmp_path / "export.py"
    script.write_text(EXPORT_SCRIPT)
    db = _dbname(src)
    with psycopg.connect(src) as locker:
        locker.execute("LOCK TABLE public.document_workflows IN ACCESS EXCLUSIVE MODE")
        proc = subprocess.Popen(
            [sys.executable, str(script), src, str(ROOT / "config" / "edms.yaml"), str(out), str(jobs)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env(),
        )
        _wait_for(
            lambda: admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = %s AND application_name = 'edms-pgdump' "
                "AND wait_event_type = 'Lock'",
                (db,),
            ).fetchone(),
            60,
            "the export to wait for the locked table",
            proc,
        )
        _kill(proc)
        locker.rollback()
    _wait_gone(admin, db)
    assert out.read_bytes() == old_bytes
    assert verify_archive(out).ok
    assert not (tmp_path / "nightly.edms.tmp").exists()


RECREATE_SCRIPT = textwrap.dedent(
    """
    import sys
    from edms_pgdump.load import transaction as load
    load.load_archive(sys.argv[1], sys.argv[2], options=load.ImportOptions(constraints="recreate"))
    """
)


def _schema_objects(dsn: str) -> list[tuple[str, ...]]:
    with psycopg.connect(dsn) as c:
        return [
            tuple(str(x) for x in r)
            for r in c.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE connamespace = 'public'::regnamespace UNION ALL "
                "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2"
            ).fetchall()
        ]


def test_kill9_while_foreign_keys_are_dropped(big_archive, target, admin, tmp_path: Path) -> None:
    """constraints=recreate drops foreign keys and indexes inside the transaction to load
    faster. Killed while they are gone, the rollback must bring every one of them back."""
    from edms_pgdump.load import transaction as load

    if "constraints" not in load.ImportOptions.__dataclass_fields__:
        pytest.skip("this build has no constraints=recreate import mode")
    archive, rows = big_archive
    db = _dbname(target)
    with psycopg.connect(target, autocommit=True) as c:
        c.execute(SLEEPY.format(seconds=1).encode())
        c.execute(
            b"CREATE TRIGGER slow AFTER INSERT ON public.document_workflows "
            b"FOR EACH STATEMENT EXECUTE FUNCTION public.sleep_once()"
        )
    before, objects, counts = db_digest(target), _schema_objects(target), _counts(target)
    script = tmp_path / "recreate.py"
    script.write_text(RECREATE_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), target, str(archive)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    pid = _wait_for(
        lambda: [
            b[0]
            for b in _import_backends(admin, db)
            if "document_workflows" in b[2] and b[2].lstrip().upper().startswith("INSERT")
        ],
        60,
        "the upsert of document_workflows",
        proc,
    )[0]
    # evidence that recreate really ran: the import holds ACCESS EXCLUSIVE locks
    with psycopg.connect(target, autocommit=True) as look:  # pg_class of the target database
        exclusive = look.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE l.pid = %s AND l.mode = 'AccessExclusiveLock' AND c.relnamespace = 'public'::regnamespace",
            (pid,),
        ).fetchone()[0]  # type: ignore[index]
    _kill(proc)
    _wait_gone(admin, db)
    assert exclusive > 0, "constraints=recreate did not drop anything; the test proves nothing"
    assert _schema_objects(target) == objects
    assert db_digest(target) == before
    with psycopg.connect(target, autocommit=True) as c:
        c.execute(b"DROP TRIGGER slow ON public.document_workflows")
    _assert_clean_reimport(target, archive, counts, rows)
