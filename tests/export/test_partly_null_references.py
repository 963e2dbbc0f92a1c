"""A multi-column foreign key with some columns NULL and others set: PostgreSQL's default
MATCH SIMPLE does not check it and the export's join finds no referenced row.

Archive format 2 carries such a reference in parts: the reference is absent
(``(tenant_id,parent_id).#present`` false) and tenant_id, a plain value in parent, travels
as a value (``(tenant_id,parent_id).#value.tenant_id``), so (7, NULL) arrives as (7, NULL).
A row that sets the id column (NULL, 2) names no row whose key could carry the 2: the
library export, ``check`` and ``export.sql`` refuse it, naming the rows."""

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
PARTLY_NULL = "INSERT INTO public.child (ref, tenant_id, parent_id) VALUES ('b', 7, NULL)"
ID_WITHOUT_TENANT = "INSERT INTO public.child (ref, tenant_id, parent_id) VALUES ('e', NULL, 2), ('f', NULL, 1)"
MAPPING = """version: 1
tables:
  public.parent: {natural_key: [tenant_id, name]}
  public.child: {natural_key: [ref]}
"""
MESSAGE = (
    "reference partly NULL in public.child.tenant_id; nothing was exported. public.child.tenant_id "
    "[reference-partly-null]: 2 row(s) have some but not all columns of the foreign key child_parent_fk "
    "(tenant_id, parent_id) NULL, which PostgreSQL does not check (MATCH SIMPLE): "
    "(ref='e', tenant_id=NULL, parent_id=2), (ref='f', tenant_id=NULL, parent_id=1); such a row "
    "references no public.parent row, so parent_id (an id of public.parent) has no natural key to "
    "travel as and would be lost; fix: in those rows set parent_id NULL (the other columns travel as "
    "values) or fill in the NULL ones; re-create child_parent_fk with MATCH FULL so such rows cannot "
    "come back"
)


def _rows(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as c:
        return c.execute(
            "SELECT c.ref, c.tenant_id, p.name FROM public.child c "
            "LEFT JOIN public.parent p ON p.id = c.parent_id ORDER BY c.ref"
        ).fetchall()


def test_export_refuses_partly_null_references_naming_the_rows(tmp_path: Path, new_db: Any) -> None:
    dsn = _db(new_db, SCHEMA, SAFE_DATA, PARTLY_NULL, ID_WITHOUT_TENANT)
    out = tmp_path / "a.edms"
    with pytest.raises(DataRuleError) as info:
        api.export_archive(dsn, load_mapping_text(MAPPING), out, audit_log=False, compression="none")
    assert str(info.value) == MESSAGE
    assert [getattr(p, "code", None) for p in info.value.found] == ["reference-partly-null"]
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_check_reports_the_same_problem(new_db: Any) -> None:
    dsn = _db(new_db, SCHEMA, SAFE_DATA, PARTLY_NULL, ID_WITHOUT_TENANT)
    report = check_database(dsn, load_mapping_text(MAPPING))
    found = [p for p in report.problems if p.code == "reference-partly-null"]
    assert len(found) == 1
    p = found[0]
    assert (p.severity, p.table, p.column) == ("error", "public.child", "tenant_id")
    assert f"public.child.tenant_id [reference-partly-null]: {p.message}; fix: {p.fix}" in MESSAGE


def test_export_sql_fails_with_the_same_message(tmp_path: Path, pg_server: Server, new_db: Any) -> None:
    dsn = _db(new_db, SCHEMA, SAFE_DATA, PARTLY_NULL, ID_WITHOUT_TENANT)
    scripts = tmp_path / "scripts"
    write_runbooks(dsn, load_mapping_text(MAPPING), ["export"], scripts)
    data = tmp_path / "data"
    data.mkdir()
    res = run_psql(pg_server, dsn, scripts / "export.sql", data)
    assert res.returncode == 3, res.stderr
    assert _error(res.stderr) == MESSAGE
    assert list(data.iterdir()) == []


def test_all_null_partly_null_or_all_set_references_round_trip(
    tmp_path: Path, pg_server: Server, new_db: Any
) -> None:
    """The refusal's probe runs and finds nothing; tenant_id survives where a parent is set
    and where it is not (b: carried as a value), a reference that is wholly absent stays
    absent, and the re-import writes nothing. export.sql writes the same data."""
    src = _db(new_db, SCHEMA, SAFE_DATA, PARTLY_NULL)
    dst = _db(
        new_db, SCHEMA, "INSERT INTO public.parent (id, tenant_id, name) VALUES (50, 8, 'q'), (51, 7, 'p')"
    )
    mapping = load_mapping_text(MAPPING)
    out = tmp_path / "a.edms"
    api.export_archive(src, mapping, out, audit_log=False, compression="none")
    api.import_archive(dst, out, history=False, audit_log=False)
    expected = [("a", 7, "p"), ("b", 7, None), ("c", None, None), ("d", 8, "q")]
    assert _rows(src) == expected
    assert _rows(dst) == expected
    again = api.import_archive(dst, out, history=False, audit_log=False)
    assert [(t.table, t.inserted, t.updated) for t in again.tables] == [
        ("public.parent", 0, 0),
        ("public.child", 0, 0),
    ]
    with psycopg.connect(dst) as c:
        assert c.execute("SELECT parent_id FROM public.child WHERE ref = 'b'").fetchall() == [(None,)]
    assert "reference-partly-null" not in [p.code for p in check_database(src, mapping).problems]
    scripts = tmp_path / "scripts"
    write_runbooks(src, mapping, ["export"], scripts)
    data = tmp_path / "data"
    data.mkdir()
    res = run_psql(pg_server, src, scripts / "export.sql", data)
    assert res.returncode == 0, res.stderr
    assert "references partly NULL?" in (scripts / "export.sql").read_text()
    child = sorted((data / "0002.copy").read_text().splitlines())
    # ref, tenant_id,parent_id as parent's key (tenant_id, name), present, tenant_id as a value
    assert child == [
        "a\t7\tp\tt\t7",
        "b\t\\N\t\\N\tf\t7",
        "c\t\\N\t\\N\tf\t\\N",
        "d\t8\tq\tt\t8",
    ]
