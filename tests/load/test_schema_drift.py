"""Schema drift between an archive and its target, decided before any write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from edms_pgdump import api
from edms_pgdump.cli import app
from edms_pgdump.errors import EdmsPgdumpError, SchemaDriftError
from edms_pgdump.mapping import load_mapping_text
from edms_pgdump.options import ImportOptions
from tests.support.db import db_digest

MAPPING = "version: 1\ntables:\n  public.teams: {natural_key: [name]}\n  public.notes: {natural_key: [ref]}\n"
SOURCE = """
CREATE TABLE public.teams (id serial PRIMARY KEY, name text NOT NULL UNIQUE, legacy text);
CREATE TABLE public.notes (id serial PRIMARY KEY, ref text NOT NULL UNIQUE, n text);
INSERT INTO public.teams (name, legacy) VALUES ('a', 'old'), ('b', NULL);
INSERT INTO public.notes (ref, n) VALUES ('x', '1'), ('y', '2');
"""


def _archive(new_db: Any, tmp_path: Path) -> Path:
    src = new_db()
    with psycopg.connect(src, autocommit=True) as c:
        c.execute(SOURCE.encode())
    out = tmp_path / "d.edms"
    api.export_archive(src, load_mapping_text(MAPPING), out, audit_log=False)
    return out


def _target(new_db: Any, ddl: str) -> str:
    dsn: str = new_db()
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(ddl.encode())
    return dsn


def test_a_target_column_the_archive_lacks_is_fine_with_a_default(new_db: Any, tmp_path: Path) -> None:
    archive = _archive(new_db, tmp_path)
    dst = _target(
        new_db,
        "CREATE TABLE public.teams (id serial PRIMARY KEY, name text NOT NULL UNIQUE, legacy text, "
        "added int NOT NULL DEFAULT 7);"
        "CREATE TABLE public.notes (id serial PRIMARY KEY, ref text NOT NULL UNIQUE, n text)",
    )
    api.import_archive(dst, archive, audit_log=False)
    with psycopg.connect(dst) as c:
        assert c.execute("SELECT name, added FROM teams ORDER BY 1").fetchall() == [("a", 7), ("b", 7)]


def test_a_not_null_column_without_default_the_archive_lacks_is_refused(new_db: Any, tmp_path: Path) -> None:
    archive = _archive(new_db, tmp_path)
    dst = _target(
        new_db,
        "CREATE TABLE public.teams (id serial PRIMARY KEY, name text NOT NULL UNIQUE, legacy text, added int NOT NULL);"
        "CREATE TABLE public.notes (id serial PRIMARY KEY, ref text NOT NULL UNIQUE, n text)",
    )
    with pytest.raises(SchemaDriftError, match=r"public.teams.added: NOT NULL column without default"):
        api.plan_archive(archive, dst)
    before = db_digest(dst)
    with pytest.raises(SchemaDriftError):
        api.import_archive(dst, archive, audit_log=False)
    assert db_digest(dst) == before


def test_an_archive_column_the_target_lacks_is_refused_unless_ignored(new_db: Any, tmp_path: Path) -> None:
    archive = _archive(new_db, tmp_path)
    dst = _target(
        new_db,
        "CREATE TABLE public.teams (id serial PRIMARY KEY, name text NOT NULL UNIQUE);"
        "CREATE TABLE public.notes (id serial PRIMARY KEY, ref text NOT NULL UNIQUE, n text)",
    )
    before = db_digest(dst)
    with pytest.raises(SchemaDriftError) as info:
        api.import_archive(dst, archive, audit_log=False)
    assert "archive field legacy has no matching column" in str(info.value)
    assert "--ignore-column public.teams.legacy" in str(info.value)
    assert db_digest(dst) == before
    res = CliRunner().invoke(app, ["plan", str(archive), "--dsn", dst, "--no-sql"])
    assert res.exit_code == 1 and "--ignore-column public.teams.legacy" in res.output
    report = api.import_archive(
        dst, archive, options=ImportOptions(ignore_columns=("public.teams.legacy",)), audit_log=False
    )
    assert report.committed and report.inserted == 4
    assert any("legacy" in w and "--ignore-column" in w for w in report.warnings)


def test_a_table_the_target_lacks_is_refused_unless_skipped(new_db: Any, tmp_path: Path) -> None:
    archive = _archive(new_db, tmp_path)
    dst = _target(
        new_db, "CREATE TABLE public.teams (id serial PRIMARY KEY, name text NOT NULL UNIQUE, legacy text)"
    )
    with pytest.raises(EdmsPgdumpError, match=r"public.notes"):
        api.import_archive(dst, archive, audit_log=False)
    report = api.import_archive(
        dst, archive, options=ImportOptions(skip_tables=("public.notes",)), audit_log=False
    )
    assert [t.table for t in report.tables] == ["public.teams"]
    assert any("left out (--skip-table)" in w for w in report.warnings)


def test_a_changed_type_is_converted_and_a_value_that_does_not_convert_is_named(
    new_db: Any, tmp_path: Path
) -> None:
    archive = _archive(new_db, tmp_path)
    dst = _target(
        new_db,
        "CREATE TABLE public.teams (id serial PRIMARY KEY, name text NOT NULL UNIQUE, legacy text);"
        "CREATE TABLE public.notes (id serial PRIMARY KEY, ref text NOT NULL UNIQUE, n integer)",
    )
    result = api.plan_archive(archive, dst)
    assert any("type differs (archive text, target integer)" in p["message"] for p in result.problems)
    api.import_archive(dst, archive, audit_log=False)
    with psycopg.connect(dst) as c:
        assert c.execute("SELECT ref, n FROM notes ORDER BY 1").fetchall() == [("x", 1), ("y", 2)]


def test_plan_archive_shows_a_skipped_table_as_left_out(new_db: Any, tmp_path: Path) -> None:
    archive = _archive(new_db, tmp_path)
    dst = _target(
        new_db, "CREATE TABLE public.teams (id serial PRIMARY KEY, name text NOT NULL UNIQUE, legacy text)"
    )
    res = CliRunner().invoke(
        app, ["plan", str(archive), "--dsn", dst, "--skip-table", "public.notes", "--no-sql"]
    )
    assert res.exit_code == 0, res.output
    assert "public.notes: left out (--skip-table)" in res.output
