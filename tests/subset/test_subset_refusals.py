"""What a subset filter may not be, on a real PostgreSQL: each refusal names the table
and what is wrong, comes before anything is written, and leaves the source untouched.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from edms_pgdump.api import export_archive
from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.cli import app
from edms_pgdump.demo import sample
from edms_pgdump.demo.resources import sample_mapping_path
from edms_pgdump.errors import DatabaseError, EdmsPgdumpError, MappingError, UsageError
from edms_pgdump.mapping import load_mapping_text
from edms_pgdump.sqlgen.where import parse_where

from ..conftest import NewDb

MAPPING = str(sample_mapping_path())
DOCS = QualifiedName("public", "documents")


@pytest.fixture
def source(new_db: NewDb, sample_template: str) -> str:
    dsn = new_db(sample_template)
    with psycopg.connect(dsn, autocommit=True) as c:
        sample.populate(c, sample.SampleSize.from_documents(30))
    return dsn


def _refused(dsn: str, out: Path, table: str, expr: str) -> EdmsPgdumpError:
    with pytest.raises(EdmsPgdumpError) as info:
        export_archive(dsn, MAPPING, out, where=[(table, expr)], audit_log=False)
    assert not out.exists(), "a refused subset export must write nothing"
    return info.value


def _documents(dsn: str) -> int:
    with psycopg.connect(dsn) as c:
        row = c.execute("SELECT count(*) FROM public.documents").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(
    ("expr", "says"),
    [
        ("status = 'draft'; DROP TABLE public.documents", "contains ';'"),
        ("DROP TABLE public.documents", "contains DROP"),
        ("id IN (WITH gone AS (DELETE FROM public.users RETURNING id) SELECT id FROM gone)", "contains DELETE"),
        ("owner_id IN (SELECT id FROM public.users WHERE id IN (WITH x AS (UPDATE public.users SET "
         "email = '' RETURNING id) SELECT id FROM x))", "contains UPDATE"),
        ("id IN (SELECT id INTO public.stolen FROM public.documents)", "SELECT … INTO"),
        ("id IN (SELECT id FROM public.documents FOR UPDATE)", "FOR UPDATE"),
        ("SELECT id FROM public.documents", "is a query, not a condition"),
        ("'published'", "not a boolean expression"),
        ("id + 1", "not a boolean expression"),
        ("owner_id IN (SELECT id FROM users)", "reads table 'users' without a schema"),
        ("u.username = 'x'", "names u.username"),
        ("status = (", "not valid SQL"),
        ("", "is empty"),
    ],
)
def test_filters_that_are_not_one_read_only_condition_are_refused(
    source: str, tmp_path: Path, expr: str, says: str
) -> None:
    exc = _refused(source, tmp_path / "x.edmsdump", "public.documents", expr)
    assert isinstance(exc, UsageError)
    assert str(exc).startswith("--where public.documents: "), str(exc)
    assert says in str(exc), str(exc)
    assert _documents(source) == 30


def test_unknown_column_is_refused_naming_table_and_column(source: str, tmp_path: Path) -> None:
    exc = _refused(source, tmp_path / "x.edmsdump", "public.documents", "colour = 'blue' AND status = 'draft'")
    assert "public.documents has no column 'colour'" in str(exc)
    assert "document_number" in str(exc)  # the table's real columns are listed


def test_non_boolean_column_is_refused(source: str, tmp_path: Path) -> None:
    exc = _refused(source, tmp_path / "x.edmsdump", "public.documents", "title")
    assert "the column title of type text, not a boolean expression" in str(exc)
    # a boolean column alone is a condition
    out = tmp_path / "active.edmsdump"
    result = export_archive(source, MAPPING, out, where=[("public.users", "is_active")], audit_log=False)
    assert {t.table: t.scope["rule"] for t in result.tables if t.scope}["public.users"] == "where"


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ("public.nope", "public.nope is not an exported table of the mapping; use one of:"),
        ("public.django_session", "public.django_session is not an exported table of the mapping"),
        ("documents", "'documents' must be schema.table"),
    ],
)
def test_unknown_table_in_where_is_refused(source: str, tmp_path: Path, table: str, says: str) -> None:
    exc = _refused(source, tmp_path / "x.edmsdump", table, "true")
    assert isinstance(exc, UsageError)
    assert str(exc).startswith(f"--where {table}"), str(exc)
    assert says in str(exc), str(exc)


def test_same_table_twice_is_refused(source: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="given twice; combine the conditions with AND"):
        export_archive(
            source,
            MAPPING,
            tmp_path / "x.edmsdump",
            where=[("public.documents", "true"), ("public.documents", "false")],
            audit_log=False,
        )


def test_a_filter_that_would_write_fails_read_only(source: str, tmp_path: Path) -> None:
    """Functions cannot be parsed for side effects; the filters run READ ONLY instead."""
    with psycopg.connect(source) as c:
        before = c.execute("SELECT last_value FROM public.documents_id_seq").fetchone()
    out = tmp_path / "x.edmsdump"
    with pytest.raises(DatabaseError) as info:
        export_archive(
            source, MAPPING, out, where=[("public.documents", "nextval('public.documents_id_seq') > 0")],
            audit_log=False,
        )  # fmt: skip
    assert "--where public.documents: the filter failed on public.documents" in str(info.value)
    assert "read-only transaction" in str(info.value)
    assert not out.exists()
    with psycopg.connect(source) as c:
        assert c.execute("SELECT last_value FROM public.documents_id_seq").fetchone() == before


def test_mapping_where_is_checked_when_the_mapping_loads() -> None:
    base = "version: 1\ntables:\n  public.documents: {natural_key: [document_number], where: %s}\n"
    with pytest.raises(MappingError, match=r'tables\."public\.documents"\.where: the filter of public\.documents '
                       "contains DROP"):  # fmt: skip
        load_mapping_text(base % '"DROP TABLE public.users"')
    with pytest.raises(MappingError, match=r"where: expected an SQL condition as a string, got 5"):
        load_mapping_text(base % "5")
    with pytest.raises(MappingError, match=r"the table is not exported \(export: false\); drop where"):
        load_mapping_text(
            "version: 1\ntables:\n  public.documents: {natural_key: [document_number], export: false, "
            "where: \"status = 'x'\"}\n"
        )


def test_cli_refusal_exits_2_and_names_the_table(source: str, tmp_path: Path) -> None:
    out = tmp_path / "x.edmsdump"
    res = CliRunner().invoke(
        app,
        ["export", "--dsn", source, "-m", MAPPING, "-o", str(out),
         "--where", "public.documents", "true; DELETE FROM public.documents"],
    )  # fmt: skip
    assert res.exit_code == 2
    assert "--where public.documents: the filter of public.documents contains ';'" in res.output
    assert "Traceback" not in res.output
    assert not out.exists()
    res = CliRunner().invoke(app, ["export", "--dsn", source, "-m", MAPPING, "-o", str(out), "--where", "x"])
    assert res.exit_code == 2 and "requires 2 arguments" in res.output


def test_what_runs_is_what_was_checked() -> None:
    """The server gets sqlglot's rendering of the checked tree: comments are dropped,
    dollar quotes become plain strings, so nothing hides behind the parser."""
    f = parse_where(DOCS, "status = $$a;b$$ -- ; DROP TABLE x", "--where public.documents")
    assert f.sql == "status = 'a;b'"
    assert f.columns == ("status",)
