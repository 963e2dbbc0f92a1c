"""Issue 12, parallel staging (`import -j N`): the archive loaded over N connections into
UNLOGGED tables of a private schema, then one transaction that resolves and writes.
The target ends exactly as with one connection; a failure rolls everything back; the
schema is always dropped, and one that a killed import left behind is found and dropped
by `cleanup` and by the next import, while one a running import holds is left alone; a
role that may not create a schema stages on one connection and is told so."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from edms_pgdump import ImportOptions, export_archive, import_archive, load_mapping_text
from edms_pgdump.api import cleanup_staging, diff, verify_archive
from edms_pgdump.errors import DatabaseError, ImportRejected
from edms_pgdump.results import DiffResult
from edms_pgdump.sqlgen.staging_area import LOCK_CLASS, staging_schema_name
from tests.support.db import db_digest, manifest, subprocess_env
from tests.support.real_schemas import NewDb, fetch, make_db, run
from tests.support.security import make_age_key, make_sign_key

SCHEMA = """
CREATE TABLE public.region (id serial PRIMARY KEY, code text NOT NULL UNIQUE);
CREATE TABLE public.store (id bigserial PRIMARY KEY, region_id int NOT NULL REFERENCES public.region,
    name text NOT NULL, opened date, UNIQUE (region_id, name));
CREATE TABLE public.sale (id bigserial PRIMARY KEY, store_id bigint NOT NULL REFERENCES public.store,
    ref text NOT NULL UNIQUE, amount numeric(12, 2) NOT NULL, tags text[]);
"""

MAPPING = """
version: 1
tables:
  public.region: {natural_key: [code]}
  public.store: {natural_key: [region_id, name]}
  public.sale: {natural_key: [ref]}
"""


def _source(new_db: NewDb, sales: int) -> str:
    return make_db(
        new_db,
        SCHEMA,
        "INSERT INTO public.region (code) SELECT 'r' || i FROM generate_series(1, 20) i",
        "INSERT INTO public.store (region_id, name, opened) SELECT 1 + i % 20, 'store ' || i, "
        "date '2020-01-01' + i FROM generate_series(1, 500) i",
        "INSERT INTO public.sale (store_id, ref, amount, tags) SELECT 1 + i % 500, 'S' || i, i / 100.0, "
        f"ARRAY['a' || i % 3, NULL] FROM generate_series(1, {sales}) i",
    )


def _target(new_db: NewDb) -> str:
    # ids far from the source's, so an id that travelled raw would point elsewhere
    return make_db(
        new_db,
        SCHEMA,
        "SELECT setval('public.region_id_seq', 5000)",
        "SELECT setval('public.store_id_seq', 90000)",
    )


def _export(src: str, tmp_path: Path) -> Path:
    archive = tmp_path / f"{uuid.uuid4().hex[:8]}.edmsdump"
    export_archive(src, load_mapping_text(MAPPING), archive, audit_log=False)
    return archive


def _staging_schemas(dsn: str) -> list[str]:
    rows = fetch(dsn, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'edms\\_pgdump\\_stage\\_%'")
    return sorted(r[0] for r in rows)


def _natural(dsn: str) -> list[tuple[object, ...]]:
    return fetch(
        dsn,
        "SELECT r.code, st.name, s.ref, s.amount, s.tags FROM public.sale s "
        "JOIN public.store st ON st.id = s.store_id JOIN public.region r ON r.id = st.region_id ORDER BY s.ref",
    )


def test_parallel_staging_writes_what_one_connection_writes(new_db: NewDb, tmp_path: Path) -> None:
    src = _source(new_db, 20_000)
    one, two = _target(new_db), _target(new_db)
    archive = _export(src, tmp_path)
    report_one = import_archive(one, archive)
    report_two = import_archive(two, archive, options=ImportOptions(jobs=2))
    schema = staging_schema_name(manifest(archive)["archive_id"])
    # one connection stages in the same private schema, where joins may run in parallel
    assert report_one.staging == {"tables": "unlogged", "schema": schema, "connections": 1}
    assert report_two.staging == {"tables": "unlogged", "schema": schema, "connections": 2}
    assert report_two.committed and report_two.inserted == report_one.inserted == 20_520
    assert _natural(two) == _natural(one) == _natural(src)
    assert len(_natural(two)) == 20_000
    copies = {e["table"]: e["rows"] for e in report_two.profile if e["step"] == "copy"}
    assert copies == {"public.region": 20, "public.store": 500, "public.sale": 20_000}
    assert _staging_schemas(two) == []
    # a second parallel import of the same archive finds every row unchanged
    again = import_archive(two, archive, options=ImportOptions(jobs=2))
    assert again.inserted == 0 and again.updated == 0
    assert [t.unchanged for t in again.tables] == [20, 500, 20_000]
    assert _staging_schemas(two) == []


def test_parallel_staging_failure_rolls_back_and_drops_the_schema(new_db: NewDb, tmp_path: Path) -> None:
    src = _source(new_db, 2_000)
    dst = _target(new_db)
    archive = _export(src, tmp_path)
    import_archive(dst, archive)
    run(dst, "UPDATE public.sale SET amount = amount + 1 WHERE ref IN ('S7', 'S8')")
    before = db_digest(dst)
    with pytest.raises(ImportRejected) as err:
        import_archive(dst, archive, options=ImportOptions(jobs=2, on_conflict="error"))
    assert "public.sale" in str(err.value) and "S7" in str(err.value)
    assert db_digest(dst) == before
    assert _staging_schemas(dst) == []


def test_dry_run_in_parallel_writes_nothing(new_db: NewDb, tmp_path: Path) -> None:
    src = _source(new_db, 3_000)
    dst = _target(new_db)
    archive = _export(src, tmp_path)
    before = db_digest(dst)
    report = import_archive(dst, archive, options=ImportOptions(jobs=3, dry_run=True))
    assert not report.committed and report.inserted == 3_520
    assert db_digest(dst) == before
    assert _staging_schemas(dst) == []


def _start_import(archive: Path, dsn: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "edms_pgdump", "import", str(archive), "--dsn", dsn, "--quiet", *args],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _kill_during_staging(archive: Path, dsn: str) -> str:
    """Start a parallel import, SIGKILL it once its staging schema holds a raw table,
    wait until its sessions are gone; the schema it left."""
    proc = _start_import(archive, dsn, "-j", "2")
    deadline = time.monotonic() + 60
    found: list[tuple[object, ...]] = []
    while not found and proc.poll() is None and time.monotonic() < deadline:
        found = fetch(
            dsn,
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname LIKE 'edms\\_pgdump\\_stage\\_%' AND c.relname LIKE '%\\_raw'",
        )
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert found, (
        "the import finished (or failed) before its staging could be seen: " + proc.stderr.read().decode()
    )
    db = dsn.rsplit("/", 1)[-1]
    while time.monotonic() < deadline and fetch(
        dsn, f"SELECT 1 FROM pg_stat_activity WHERE datname = '{db}' AND application_name = 'edms-pgdump'"
    ):
        time.sleep(0.05)
    return str(found[0][0])


def test_killed_import_leaves_staging_that_cleanup_and_the_next_import_drop(
    new_db: NewDb, tmp_path: Path
) -> None:
    src = _source(new_db, 300_000)  # enough rows that the kill lands while it stages
    dst = _target(new_db)
    archive = _export(src, tmp_path)
    schema = _kill_during_staging(archive, dst)
    assert schema == staging_schema_name(manifest(archive)["archive_id"])
    assert _staging_schemas(dst) == [schema]
    assert fetch(dst, "SELECT count(*) FROM public.sale") == [(0,)]  # nothing reached a real table

    out = subprocess.run(
        [sys.executable, "-m", "edms_pgdump", "cleanup", "--dsn", dst, "--json"],
        env=subprocess_env(),
        capture_output=True,
        check=True,
    )
    assert json.loads(out.stdout) == {"dropped": [schema], "in_use": [], "not_owned": []}
    assert _staging_schemas(dst) == []

    # killed again; this time the next import (one connection) sweeps it and says so
    schema = _kill_during_staging(archive, dst)
    assert _staging_schemas(dst) == [schema]
    report = import_archive(dst, archive)
    assert report.committed and report.inserted == 300_520
    assert any(w.startswith(f"dropped staging schema {schema}") for w in report.warnings)
    assert _staging_schemas(dst) == []


def test_cleanup_leaves_a_running_imports_schema_alone(new_db: NewDb) -> None:
    dsn = new_db()
    live, dead = staging_schema_name(str(uuid.uuid4())), staging_schema_name(str(uuid.uuid4()))
    run(dsn, f'CREATE SCHEMA "{live}"', f'CREATE SCHEMA "{dead}"', f'CREATE TABLE "{dead}".t (x int)')
    with psycopg.connect(dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, live))
        found = cleanup_staging(dsn)
        assert (found.dropped, found.in_use) == ([dead], [live])
        assert _staging_schemas(dsn) == [live]
    # its import gone (the lock died with its session), the schema is a leftover
    assert cleanup_staging(dsn).dropped == [live]
    assert _staging_schemas(dsn) == []


def test_an_import_while_the_same_archive_stages_next_door(new_db: NewDb, tmp_path: Path) -> None:
    """Two imports of one archive share the schema's name: with one connection the
    second stages in temporary tables instead; with -j 2 it is refused, naming the schema."""
    src = _source(new_db, 500)
    dst = _target(new_db)
    archive = _export(src, tmp_path)
    schema = staging_schema_name(manifest(archive)["archive_id"])
    with psycopg.connect(dst, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, schema))
        with pytest.raises(DatabaseError, match=f"another import of archive .* is staging now \\(schema {schema}\\)"):
            import_archive(dst, archive, options=ImportOptions(jobs=2), history=False)
        report = import_archive(dst, archive, history=False)
        assert report.committed and report.staging == {"tables": "temporary", "connections": 1}
        assert report.inserted == 1_020
    assert _natural(dst) == _natural(src)


def test_role_that_may_not_create_a_schema_stages_on_one_connection(
    new_db: NewDb, admin: psycopg.Connection, tmp_path: Path
) -> None:
    src = _source(new_db, 1_000)
    dst = _target(new_db)
    archive = _export(src, tmp_path)
    role = f"edms_nocreate_{uuid.uuid4().hex[:8]}"
    r = sql.Identifier(role)
    admin.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER").format(r))
    try:
        with psycopg.connect(dst, autocommit=True) as c:
            for grant in (
                "GRANT USAGE ON SCHEMA public TO {}",
                "GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {}",
                "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {}",
            ):
                c.execute(sql.SQL(grant).format(r))
        as_role = psycopg.conninfo.make_conninfo(dst, user=role)
        report = import_archive(as_role, archive, options=ImportOptions(jobs=2), history=False)
        assert report.committed and report.inserted == 1_520
        assert report.staging == {"tables": "temporary", "connections": 1}
        assert any(
            "may not create a schema" in w and "GRANT CREATE ON DATABASE" in w for w in report.warnings
        )
        assert _natural(dst) == _natural(src)
        assert _staging_schemas(dst) == []
        # with one connection it stages in temporary tables without a word: nothing is lost
        again = import_archive(as_role, archive, history=False)
        assert again.committed and again.staging == {"tables": "temporary", "connections": 1}
        assert not any("may not create a schema" in w for w in again.warnings)
        assert (again.inserted, again.updated) == (0, 0)
    finally:
        with psycopg.connect(dst, autocommit=True) as c:
            c.execute(sql.SQL("DROP OWNED BY {}").format(r))
        admin.execute(sql.SQL("DROP ROLE {}").format(r))


def test_encrypted_and_signed_archive_stages_in_parallel(new_db: NewDb, tmp_path: Path) -> None:
    """Each loader decrypts its own stream and checks its members against the manifest
    whose signature the import verified."""
    src = _source(new_db, 5_000)
    dst = _target(new_db)
    key = make_age_key(tmp_path, "ops")
    signer = make_sign_key(tmp_path, "release")
    archive = tmp_path / "sealed.edmsdump"
    export_archive(
        src,
        load_mapping_text(MAPPING),
        archive,
        audit_log=False,
        encrypt_to=[key.recipient],
        sign_key=signer.secret_file,
    )
    report = import_archive(
        dst,
        archive,
        options=ImportOptions(jobs=2),
        identities=[key.identity_file],
        trusted_keys=[signer.public_file],
        audit_log=False,
    )
    assert report.committed and report.staging["connections"] == 2
    assert _natural(dst) == _natural(src)
    assert _staging_schemas(dst) == []


def test_verify_and_diff_leave_a_leftover_alone(new_db: NewDb, tmp_path: Path) -> None:
    """Comparisons write nothing, not even the sweep: the next import drops the leftover."""
    src = _source(new_db, 500)
    archive = _export(src, tmp_path)
    leftover = staging_schema_name(str(uuid.uuid4()))
    run(src, f'CREATE SCHEMA "{leftover}"')
    assert verify_archive(archive, src).ok
    found = diff(archive, dsn=src)
    assert isinstance(found, DiffResult) and found.identical
    assert _staging_schemas(src) == [leftover]
    report = import_archive(src, archive)
    assert report.inserted == 0 and _staging_schemas(src) == []
