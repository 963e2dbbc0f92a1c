"""A multi-column foreign key with some columns NULL and others set: PostgreSQL's default
MATCH SIMPLE does not check it, the export's join finds no referenced row, and the
archive would carry the whole reference as NULL (tenant_id = 7 arriving as NULL, or an
import failing on NOT NULL). The library export, ``check`` and ``export.sql`` refuse such
rows, naming them; rows whose reference is all NULL or all set travel as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from edms_pgdump import api
from edms_pgdump.analysis.check import check_database
from edms_pgdump.demo.servers import Server
from edms_pgdump.errors import DataRuleError
from edms_pgdump.mapping import load_mapping_text
from edms_pgdump.runbook.scripts import write_runbooks
from tests.runbook.test_runbook_checks import _error
from tests.support.psql import run_psql
from tests.support.real_schemas import make_db as _db

SCHEMA = """
CREATE TABLE public.parent (id serial PRIMARY KEY, tenant_id integer NOT NULL, name text NOT NULL,
  UNIQUE (tenant_id, id), UNIQUE (tenant_id, name));
CREATE TABLE public.child (id serial PRIMARY KEY, ref text UNIQUE NOT NULL, tenant_id integer,
  parent_id integer, CONSTRAINT child_parent_fk FOREIGN KEY (tenant_id, parent_id)
  REFERENCES public.parent (tenant_id, id));
"""
SAFE_DATA = """
INSERT INTO public.parent (id, tenant_id, name) VALUES (1, 7, 'p'), (2, 8, 'q');
INSERT INTO public.child (ref, tenant_id, parent_id) VALUES ('a', 7, 1), ('c', NULL, NULL), ('d', 8, 2);
"""
PARTLY_NULL = "INSERT INTO public.child (ref, tenant_id, parent_id) VALUES ('b', 7, NULL), ('e', NULL, 2)"
MAPPING = """version: 1
tables:
  public.parent: {natural_key: [tenant_id, name]}
  public.child: {natural_key: [ref]}
"""
MESSAGE = (
    "reference partly NULL in public.child.tenant_id; nothing was exported. public.child.tenant_id "
    "[reference-partly-null]: 2 row(s) have some but not all columns of the foreign key child_parent_fk "
    "(tenant_id, parent_id) NULL, which PostgreSQL does not check (MATCH SIMPLE): "
    "(ref='b', tenant_id=7, parent_id=NULL), (ref='e', tenant_id=NULL, parent_id=2); the reference "
    "to public.parent would be exported as NULL in every column, so the non-NULL parts would be lost; "
    "fix: in those rows set tenant_id, parent_id all NULL (no reference) or fill in the NULL ones; "
    "re-create child_parent_fk with MATCH FULL so such rows cannot come back"
)


def _rows(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as c:
        return c.execute(
            "SELECT c.ref, c.tenant_id, p.name FROM public.child c "
            "LEFT JOIN public.parent p ON p.id = c.parent_id ORDER BY c.ref"
        ).fetchall()


def test_export_refuses_partly_null_references_naming_the_rows(tmp_path: Path, new_db: Any) -> None:
    dsn = _db(new_db, SCHEMA, SAFE_DATA, PARTLY_NULL)
    out = tmp_path / "a.edms"
    with pytest.raises(DataRuleError) as info:
        api.export_archive(dsn, load_mapping_text(MAPPING), out, audit_log=False, compression="none")
    assert str(info.value) == MESSAGE
    assert [getattr(p, "code", None) for p in info.value.found] == ["reference-partly-null"]
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_check_reports_the_same_problem(new_db: Any) -> None:
    dsn = _db(new_db, SCHEMA, SAFE_DATA, PARTLY_NULL)
    report = check_database(dsn, load_mapping_text(MAPPING))
    found = [p for p in report.problems if p.code == "reference-partly-null"]
    assert len(found) == 1
    p = found[0]
    assert (p.severity, p.table, p.column) == ("error", "public.child", "tenant_id")
    assert f"public.child.tenant_id [reference-partly-null]: {p.message}; fix: {p.fix}" in MESSAGE


def test_export_sql_fails_with_the_same_message(tmp_path: Path, pg_server: Server, new_db: Any) -> None:
    dsn = _db(new_db, SCHEMA, SAFE_DATA, PARTLY_NULL)
    scripts = tmp_path / "scripts"
    write_runbooks(dsn, load_mapping_text(MAPPING), ["export"], scripts)
    data = tmp_path / "data"
    data.mkdir()
    res = run_psql(pg_server, dsn, scripts / "export.sql", data)
    assert res.returncode == 3, res.stderr
    assert _error(res.stderr) == MESSAGE
    assert list(data.iterdir()) == []


def test_all_null_or_all_set_references_round_trip(tmp_path: Path, pg_server: Server, new_db: Any) -> None:
    """The refusal's probe runs and finds nothing; tenant_id survives where a parent is set,
    and a reference that is wholly absent stays absent. export.sql passes its checks too."""
    src = _db(new_db, SCHEMA, SAFE_DATA)
    dst = _db(
        new_db, SCHEMA, "INSERT INTO public.parent (id, tenant_id, name) VALUES (50, 8, 'q'), (51, 7, 'p')"
    )
    mapping = load_mapping_text(MAPPING)
    out = tmp_path / "a.edms"
    api.export_archive(src, mapping, out, audit_log=False, compression="none")
    api.import_archive(dst, out, history=False, audit_log=False)
    expected = [("a", 7, "p"), ("c", None, None), ("d", 8, "q")]
    assert _rows(src) == expected
    assert _rows(dst) == expected
    assert "reference-partly-null" not in [p.code for p in check_database(src, mapping).problems]
    scripts = tmp_path / "scripts"
    write_runbooks(src, mapping, ["export"], scripts)
    data = tmp_path / "data"
    data.mkdir()
    res = run_psql(pg_server, src, scripts / "export.sql", data)
    assert res.returncode == 0, res.stderr
    assert "references partly NULL?" in (scripts / "export.sql").read_text()
