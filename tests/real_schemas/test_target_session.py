"""The session the import writes in is the application's: the database's own search_path
and TimeZone (set with ALTER DATABASE, as an application's deployment does). A citext
natural key compares case-insensitively (no duplicate), a trigger function with
unqualified names finds its tables, a trigger computing ``created_at::date`` writes the
application's day; both interpreters. And the tool's own SQL keeps its meaning when a
hostile schema comes first on that path: an ``=`` for varchar or citext that says
everything is equal, and tables named like the import's staging tables."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from edms_pgdump import ImportOptions, export_archive, import_archive, load_mapping_text, verify_archive
from edms_pgdump.demo.servers import Server
from edms_pgdump.runbook.scripts import write_runbooks
from tests.support.psql import run_psql
from tests.support.real_schemas import NewDb, counts, fetch, make_db, natural_rows, run

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public;
CREATE SCHEMA app;
CREATE TABLE app.member (id serial PRIMARY KEY, email public.citext NOT NULL, name text NOT NULL,
    created_at timestamptz NOT NULL, created_day date);
CREATE TABLE app.tag (id serial PRIMARY KEY, code varchar(20) NOT NULL, note text);
CREATE TABLE app.audit_log (email text, day date);
CREATE FUNCTION app.stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.created_day := NEW.created_at::date;        -- in the session's TimeZone
    INSERT INTO audit_log VALUES (NEW.email, NEW.created_day);  -- unqualified, as apps write
    RETURN NEW;
END $$;
CREATE TRIGGER stamp BEFORE INSERT OR UPDATE ON app.member FOR EACH ROW EXECUTE FUNCTION app.stamp();
"""

SETTINGS = """
DO $$ BEGIN
    EXECUTE format('ALTER DATABASE %I SET search_path = app, public', current_database());
    EXECUTE format('ALTER DATABASE %I SET TimeZone = %L', current_database(), 'Pacific/Auckland');
END $$;
"""

# 11:30 UTC on March 1st is already March 2nd in Auckland
SOURCE = """
INSERT INTO member (email, name, created_at) VALUES
    ('Alice@Example.com', 'Alice', '2024-03-01 11:30:00+00'),
    ('bob@example.com', 'Bob', '2024-03-01 11:45:00+00');
INSERT INTO tag (code, note) VALUES ('a', 'new note'), ('c', 'third');
"""

TARGET = """
INSERT INTO member (email, name, created_at) VALUES ('alice@example.com', 'old', '2024-03-01 11:30:00+00');
INSERT INTO tag (code, note) VALUES ('a', 'old note'), ('b', 'second');
"""

MAPPING = """
version: 1
tables:
  app.member: {natural_key: [email]}
  app.tag: {natural_key: [code]}
exclude: [app.audit_log]
"""

# a schema first on the path whose "=" for citext and varchar says everything matches,
# and tables named like the import's staging tables
HOSTILE = """
CREATE SCHEMA evil;
CREATE FUNCTION evil.yes(public.citext, public.citext) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION evil.yes(varchar, varchar) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR evil.= (LEFTARG = public.citext, RIGHTARG = public.citext, FUNCTION = evil.yes);
CREATE OPERATOR evil.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = evil.yes);
DO $$ BEGIN
    FOR i IN 1..3 LOOP
        EXECUTE format('CREATE TABLE evil.%I (x int)', format('edms_%s_member_final', lpad(i::text, 3, '0')));
        EXECUTE format('CREATE TABLE evil.%I (x int)', format('edms_%s_tag_final', lpad(i::text, 3, '0')));
        EXECUTE format('CREATE TABLE evil.%I (x int)', format('edms_%s_tag_keyed', lpad(i::text, 3, '0')));
    END LOOP;
    EXECUTE format('ALTER DATABASE %I SET search_path = evil, app, public', current_database());
END $$;
"""


def _database(new_db: NewDb, *extra: str) -> str:
    dsn = make_db(new_db, "CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public")
    run(dsn, SCHEMA, SETTINGS, *extra)
    return dsn  # later connections get the database's settings


def _citext_or_skip(new_db: NewDb) -> None:
    dsn = new_db()
    try:
        run(dsn, "CREATE EXTENSION citext")
    except psycopg.Error as exc:
        pytest.skip(f"this server has no citext extension ({exc})")


def _pair(new_db: NewDb, *extra: str) -> tuple[str, str]:
    _citext_or_skip(new_db)
    src = _database(new_db)
    run(src, SOURCE)
    dst = _database(new_db)
    run(dst, TARGET)
    run(dst, *extra)
    return src, dst


def _check_target(src: str, dst: str) -> None:
    assert fetch(dst, "SELECT email::text, name, created_day::text FROM app.member ORDER BY 1") == [
        ("Alice@Example.com", "Alice", "2024-03-02"),  # case-only change written, one row
        ("bob@example.com", "Bob", "2024-03-02"),  # the application's day, not UTC's
    ]
    assert fetch(dst, "SELECT code, note FROM app.tag ORDER BY 1") == [
        ("a", "new note"),
        ("b", "second"),
        ("c", "third"),
    ]
    # the trigger found its unqualified audit_log through the application's path
    assert ("bob@example.com", "2024-03-02") in [
        tuple(map(str, r)) for r in fetch(dst, "SELECT * FROM app.audit_log")
    ]
    assert natural_rows(dst, MAPPING)["app.member"] == natural_rows(src, MAPPING)["app.member"]


def test_writes_run_in_the_applications_session(new_db: NewDb, tmp_path: Path) -> None:
    src, dst = _pair(new_db)
    archive = tmp_path / "a.edmsdump"
    export_archive(src, load_mapping_text(MAPPING), archive, audit_log=False)
    report = import_archive(dst, archive, audit_log=False)
    assert report.committed and report.ok, report.to_dict()
    assert counts(report, "app.member") == (2, 1, 1, 0)
    assert counts(report, "app.tag") == (2, 1, 1, 0)
    _check_target(src, dst)
    again = import_archive(dst, archive, audit_log=False)
    assert again.committed and again.ok
    for t in again.tables:
        assert (t.inserted, t.updated) == (0, 0), t.to_dict()
    verified = verify_archive(archive, dst).database
    assert verified is not None and verified.matches, verified


def test_hostile_path_cannot_change_the_tools_sql(new_db: NewDb, tmp_path: Path) -> None:
    src, dst = _pair(new_db, HOSTILE)
    # the hostile "=" does fool a bare comparison in this database's own session
    assert fetch(dst, "SELECT count(*) FROM app.tag t JOIN app.tag u ON t.code = u.code") == [(4,)]
    archive = tmp_path / "a.edmsdump"
    export_archive(src, load_mapping_text(MAPPING), archive, audit_log=False)
    report = import_archive(dst, archive, audit_log=False)
    assert report.committed and report.ok, report.to_dict()
    assert counts(report, "app.member") == (2, 1, 1, 0)
    assert counts(report, "app.tag") == (2, 1, 1, 0)
    _check_target(src, dst)
    assert fetch(dst, "SELECT count(*) FROM evil.edms_001_member_final") == [(0,)]


def test_runbook_writes_in_the_applications_session(new_db: NewDb, tmp_path: Path, pg_server: Server) -> None:
    src, dst = _pair(new_db, HOSTILE)
    mapping = load_mapping_text(MAPPING)
    write_runbooks(src, mapping, ["export"], tmp_path)
    write_runbooks(dst, mapping, ["import"], tmp_path, ImportOptions())
    data = tmp_path / "data"
    data.mkdir()
    assert run_psql(pg_server, src, tmp_path / "export.sql", data).returncode == 0
    res = run_psql(pg_server, dst, tmp_path / "import.sql", data)
    assert res.returncode == 0, res.stderr
    _check_target(src, dst)
