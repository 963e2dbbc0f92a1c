"""Suite 5: concurrency. Export is one snapshot whatever writers do; import under
concurrent readers/writers does not deadlock; a lock wait beyond --lock-timeout is a clean
rollback with a message naming the option."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from edms_pgdump import (
    DatabaseError,
    EdmsPgdumpError,
    ImportOptions,
    export_archive,
    import_archive,
    load_mapping,
)
from tests.support.db import db_digest, manifest, subprocess_env

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "config" / "edms.yaml"


def _counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as c:
        return {
            t: int(c.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
            for t in (
                "public.users",
                "public.documents",
                "public.document_versions",
                "public.document_workflows",
            )
        }


def _write_pair(conn: psycopg.Connection, n: int, *, reown: bool = False) -> None:
    """One transaction: a new user, a document owned by it (child of an existing one),
    two versions and a workflow; optionally re-own an existing document."""
    with conn.transaction():
        uid = conn.execute(
            "INSERT INTO public.users (username, email) VALUES (%s, %s) RETURNING id",
            (f"writer-{n}", f"w{n}@example.org"),
        ).fetchone()[0]  # type: ignore[index]
        did = conn.execute(
            "INSERT INTO public.documents (document_number, title, owner_id, parent_id) "
            "SELECT %s, 'written during export', %s, min(id) FROM public.documents RETURNING id",
            (f"W-{n:08d}", uid),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO public.document_versions (document_id, version_number, content_hash, size_bytes, "
            "created_by_id) SELECT %s, v, md5(v::text), 1, %s FROM generate_series(1, 2) v",
            (did, uid),
        )
        conn.execute(
            "INSERT INTO public.document_workflows (document_id, workflow_type, state, assignee_id) "
            "VALUES (%s, 'review', 'open', %s)",
            (did, uid),
        )
        if reown:
            # an existing document now points at the brand-new user: an export that is not
            # one snapshot would carry an owner that is not in its users member
            conn.execute(
                "UPDATE public.documents SET owner_id = %s WHERE id = (SELECT max(id) FROM public.documents "
                "WHERE document_number NOT LIKE 'W-%%')",
                (uid,),
            )


class PauseAfterFirstTable:
    """Progress hook: when the first table is fully exported, a writer commits new rows."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.fired = False
        self.lock = threading.Lock()

    def start(self, task: str, total: int | None) -> None:
        pass

    def advance(self, task: str, rows: int, nbytes: int) -> None:
        pass

    def finish(self, task: str) -> None:
        with self.lock:
            if self.fired:
                return
            self.fired = True
            with psycopg.connect(self.dsn, autocommit=True) as c:
                for n in range(5):
                    _write_pair(c, n, reown=True)


@pytest.mark.parametrize("jobs", [1, 2])
def test_export_is_one_snapshot_with_writer_between_tables(sample_dbs, tmp_path: Path, jobs: int) -> None:
    src, dst = sample_dbs
    snapshot_counts = _counts(src)
    hook = PauseAfterFirstTable(src)
    archive = tmp_path / "a.edms"
    export_archive(src, load_mapping(MAPPING), archive, jobs=jobs, progress=hook)
    assert hook.fired
    assert _counts(src)["public.documents"] == snapshot_counts["public.documents"] + 5  # writer did commit
    got = {t["table"]: t["rows"] for t in manifest(archive)["tables"]}
    assert got == snapshot_counts
    before_dst = _counts(dst)
    report = import_archive(dst, archive)
    assert report.committed
    after = _counts(dst)
    assert {t: after[t] - before_dst[t] for t in after} == snapshot_counts
    with psycopg.connect(dst) as c:
        assert c.execute("SELECT count(*) FROM public.users WHERE username LIKE 'writer-%'").fetchone() == (
            0,
        )
        # the re-owned document kept its snapshot owner
        owners = c.execute(
            "SELECT count(*) FROM public.documents d JOIN public.users u ON u.id = d.owner_id "
            "WHERE u.username LIKE 'user%'"
        ).fetchone()
        assert owners == (snapshot_counts["public.documents"],)


@pytest.mark.slow
def test_export_under_continuous_writer(sample_dbs, new_db, sample_template, tmp_path: Path) -> None:
    src, _dst = sample_dbs
    stop = threading.Event()
    written: list[int] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with psycopg.connect(src, autocommit=True) as c:
                n = 1000
                while not stop.is_set():
                    _write_pair(c, n, reown=(n % 3 == 0))
                    written.append(n)
                    n += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    th = threading.Thread(target=writer)
    th.start()
    archives = []
    try:
        for i, jobs in enumerate((1, 2, 3)):
            time.sleep(0.05)
            path = tmp_path / f"a{i}.edms"
            export_archive(src, load_mapping(MAPPING), path, jobs=jobs)
            archives.append(path)
    finally:
        stop.set()
        th.join(30)
    assert not errors, errors
    assert len(written) > 3, "the writer did not run during the exports"
    for path in archives:
        rows = {t["table"]: t["rows"] for t in manifest(path)["tables"]}
        # every writer transaction adds 1 user, 1 document, 2 versions, 1 workflow and so
        # does every sample document (2 versions, 1 workflow): one snapshot keeps the ratios
        assert rows["public.document_versions"] == 2 * rows["public.documents"]
        assert rows["public.document_workflows"] == rows["public.documents"]
        target = new_db(sample_template)
        report = import_archive(target, path)
        assert report.committed
        assert _counts(target) == rows


def test_import_lock_timeout_is_clean_rollback(sample_dbs, tmp_path: Path) -> None:
    src, dst = sample_dbs
    archive = tmp_path / "a.edms"
    export_archive(src, load_mapping(MAPPING), archive)
    before = db_digest(dst)
    with psycopg.connect(dst) as other:
        # an uncommitted insert holds ROW EXCLUSIVE on documents
        other.execute(
            "INSERT INTO public.documents (document_number, title, owner_id) "
            "SELECT 'OTHER-1', 'other session', min(id) FROM public.users"
        )
        t0 = time.monotonic()
        with pytest.raises(DatabaseError) as err:
            import_archive(dst, archive, options=ImportOptions(lock_timeout="300ms"))
        assert time.monotonic() - t0 < 10
        msg = str(err.value)
        assert "lock timeout" in msg
        assert "--lock-timeout" in msg
        assert "rolled back" in msg

        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "edms_pgdump",
                "import",
                str(archive),
                "--dsn",
                dst,
                "--lock-timeout",
                "300ms",
            ],
            capture_output=True,
            text=True,
            env=subprocess_env(),
            timeout=120,
        )
        assert proc.returncode == 1, proc
        assert "--lock-timeout" in proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        other.rollback()
    assert db_digest(dst) == before
    # once the other session is gone the same import goes through
    assert import_archive(dst, archive, options=ImportOptions(lock_timeout="5s")).committed


def test_import_with_concurrent_readers_and_writers(sample_dbs, tmp_path: Path) -> None:
    src, dst = sample_dbs
    archive = tmp_path / "a.edms"
    export_archive(src, load_mapping(MAPPING), archive)
    src_counts = _counts(src)
    before = _counts(dst)
    stop = threading.Event()
    errors: list[BaseException] = []
    inserted: list[int] = []
    reads: list[int] = []

    def reader() -> None:
        try:
            with psycopg.connect(dst, autocommit=True) as c:
                while not stop.is_set():
                    c.execute(
                        "SELECT count(*) FROM public.documents d JOIN public.document_versions v "
                        "ON v.document_id = d.id"
                    ).fetchone()
                    reads.append(1)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    def writer() -> None:
        try:
            with psycopg.connect(dst, autocommit=True) as c:
                n = 0
                while not stop.is_set():
                    c.execute("INSERT INTO public.users (username) VALUES (%s)", (f"concurrent-{n}",))
                    c.execute(
                        "UPDATE public.documents SET title = title || '' WHERE id = "
                        "(SELECT min(id) FROM public.documents)"
                    )
                    inserted.append(n)
                    n += 1
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [
        threading.Thread(target=reader),
        threading.Thread(target=reader),
        threading.Thread(target=writer),
    ]
    for th in threads:
        th.start()
    try:
        time.sleep(0.1)
        report = import_archive(dst, archive, options=ImportOptions(lock_timeout="20s"))
        time.sleep(0.1)
    finally:
        stop.set()
        for th in threads:
            th.join(30)
    assert not errors, errors
    assert report.committed
    assert reads and inserted
    after = _counts(dst)
    assert after["public.users"] == before["public.users"] + src_counts["public.users"] + len(inserted)
    for t in ("public.documents", "public.document_versions", "public.document_workflows"):
        assert after[t] == before[t] + src_counts[t]


def test_two_imports_of_the_same_archive_at_once(sample_dbs, tmp_path: Path) -> None:
    """Both run; the second waits for the first's locks and then finds every row present:
    no duplicates, no deadlock, counts exact."""
    src, dst = sample_dbs
    archive = tmp_path / "a.edms"
    export_archive(src, load_mapping(MAPPING), archive)
    src_counts, before = _counts(src), _counts(dst)
    results: list[object] = []

    def run() -> None:
        try:
            results.append(import_archive(dst, archive, options=ImportOptions(lock_timeout="60s")))
        except BaseException as exc:  # pragma: no cover - reported below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert all(not isinstance(r, BaseException) for r in results), results
    inserted = sorted(r.inserted for r in results)  # type: ignore[attr-defined]
    assert inserted == [0, 0, sum(src_counts.values())]
    after = _counts(dst)
    assert {t: after[t] - before[t] for t in after} == src_counts


@pytest.mark.parametrize("directory", [False, True], ids=["file", "dir"])
def test_concurrent_exports_to_the_same_path(
    new_db, sample_template, tmp_path: Path, directory: bool
) -> None:
    """Two exports racing to publish one output: both succeed, the result is always one
    whole archive (never members of one with the manifest of the other)."""
    from edms_pgdump import verify_archive
    from edms_pgdump.demo import sample

    srcs = []
    for n in (1500, 1000):
        d = new_db(sample_template)
        with psycopg.connect(d, autocommit=True) as c:
            sample.populate(c, sample.SampleSize.from_documents(n))
        srcs.append(d)
    out = tmp_path / ("same.dir" if directory else "same.edms")
    m = load_mapping(MAPPING)
    for _ in range(4):
        errors: list[BaseException] = []

        def run(dsn: str, errors: list[BaseException]) -> None:
            try:
                export_archive(dsn, m, out, directory=directory)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(d, errors)) for d in srcs]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        assert not [e for e in errors if not isinstance(e, EdmsPgdumpError)], errors
        assert verify_archive(out).ok
        docs = {t["table"]: t["rows"] for t in manifest(out)["tables"]}["public.documents"]
        assert docs in (1500, 1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_lock_order_deadlock_with_a_writer_ends_cleanly(sample_dbs, tmp_path: Path) -> None:
    """A writer holds workflows and then wants versions while the import holds versions and
    wants workflows. PostgreSQL's deadlock detector breaks the cycle within a second: one
    side fails cleanly, nothing hangs, and a failed import leaves none of its rows."""
    src, dst = sample_dbs
    archive = tmp_path / "a.edms"
    export_archive(src, load_mapping(MAPPING), archive)
    before = _counts(dst)
    outcome: dict[str, object] = {}
    with psycopg.connect(dst) as writer:
        writer.execute(
            "INSERT INTO public.document_workflows (document_id, workflow_type, state) "
            "SELECT min(id), 'deadlock-test', 'open' FROM public.documents"
        )

        def run() -> None:
            try:
                outcome["import"] = import_archive(dst, archive, options=ImportOptions(lock_timeout="20s"))
            except BaseException as exc:
                outcome["import"] = exc

        th = threading.Thread(target=run)
        th.start()
        with psycopg.connect(dst, autocommit=True) as watcher:
            deadline = time.monotonic() + 20
            while (
                time.monotonic() < deadline
                and not watcher.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name = 'edms-pgdump' AND wait_event_type = 'Lock'"
                ).fetchone()
            ):
                time.sleep(0.01)
        t0 = time.monotonic()
        try:
            writer.execute(
                "INSERT INTO public.document_versions (document_id, version_number, content_hash, size_bytes) "
                "SELECT min(id), 99, 'x', 1 FROM public.documents"
            )
            writer.commit()
            outcome["writer"] = "committed"
        except psycopg.errors.DeadlockDetected:
            writer.rollback()
            outcome["writer"] = "deadlock"
        th.join(60)
        assert not th.is_alive()
        assert time.monotonic() - t0 < 20
    result = outcome["import"]
    if isinstance(result, BaseException):
        assert isinstance(result, DatabaseError), result
        assert "deadlock detected" in str(result) and "rolled back" in str(result)
        assert outcome["writer"] == "committed"
        after = _counts(dst)
        assert after["public.users"] == before["public.users"]  # none of the archive's rows
    else:
        assert outcome["writer"] == "deadlock"
        assert result.committed  # type: ignore[attr-defined]
        after = _counts(dst)
        assert after["public.documents"] == before["public.documents"] + _counts(src)["public.documents"]
