"""A foreign key to a UNIQUE column that is not the primary key, with on_conflict: skip.
The target's units keep their own codes (swapped against the source's); each line must
point at the unit the archive names by natural key, through the code the target really
has, never through the archive's code (which is the other unit's in the target).
"""

from __future__ import annotations

from pathlib import Path

from edms_pgdump import ImportOptions, export_archive, import_archive, load_mapping_text
from edms_pgdump.demo.servers import Server
from edms_pgdump.runbook.scripts import write_runbooks
from tests.support.psql import run_psql
from tests.support.real_schemas import NewDb, counts, fetch, make_db, natural_rows

SCHEMA = """
CREATE TABLE public.unit (id serial PRIMARY KEY, name text NOT NULL UNIQUE, code text NOT NULL UNIQUE);
CREATE TABLE public.line (id serial PRIMARY KEY, label text NOT NULL UNIQUE,
    unit_code text NOT NULL REFERENCES public.unit (code));
"""

SOURCE = """
INSERT INTO public.unit (name, code) VALUES ('alpha', 'X'), ('beta', 'Y'), ('gamma', 'Z');
INSERT INTO public.line (label, unit_code) VALUES ('L1', 'X'), ('L2', 'Y'), ('L3', 'Z');
"""

# the same units, their codes swapped; gamma is new to the target
TARGET = "INSERT INTO public.unit (name, code) VALUES ('alpha', 'Y'), ('beta', 'X')"

MAPPING = """
version: 1
tables:
  public.unit: {natural_key: [name], on_conflict: skip}
  public.line: {natural_key: [label]}
"""

LINE_ONLY = """
version: 1
tables:
  public.unit: {natural_key: [name], export: false}
  public.line: {natural_key: [label]}
"""

POINTS_AT = "SELECT l.label, u.name FROM public.line l JOIN public.unit u ON u.code = l.unit_code ORDER BY 1"


def test_lines_point_at_the_unit_the_target_keeps(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, SCHEMA, SOURCE)
    dst = make_db(new_db, SCHEMA, TARGET)
    archive = tmp_path / "a.edmsdump"
    export_archive(src, load_mapping_text(MAPPING), archive, audit_log=False)
    report = import_archive(dst, archive, audit_log=False)
    assert report.committed and report.ok, report.to_dict()
    unit = next(t for t in report.tables if t.table == "public.unit")
    assert (unit.inserted, unit.skipped) == (1, 2), unit.to_dict()
    assert fetch(dst, "SELECT name, code FROM public.unit ORDER BY 1") == [
        ("alpha", "Y"),
        ("beta", "X"),
        ("gamma", "Z"),
    ]
    assert fetch(dst, POINTS_AT) == [("L1", "alpha"), ("L2", "beta"), ("L3", "gamma")]
    assert natural_rows(dst, LINE_ONLY) == natural_rows(src, LINE_ONLY)

    again = import_archive(dst, archive, audit_log=False)
    assert again.committed and again.ok
    assert counts(again, "public.line") == (3, 0, 0, 3)
    assert next(t for t in again.tables if t.table == "public.unit").inserted == 0


def test_runbook_resolves_to_the_kept_value(new_db: NewDb, tmp_path: Path, pg_server: Server) -> None:
    src = make_db(new_db, SCHEMA, SOURCE)
    dst = make_db(new_db, SCHEMA, TARGET)
    mapping = load_mapping_text(MAPPING)
    write_runbooks(src, mapping, ["export"], tmp_path)
    write_runbooks(dst, mapping, ["import"], tmp_path, ImportOptions())
    data = tmp_path / "data"
    data.mkdir()
    assert run_psql(pg_server, src, tmp_path / "export.sql", data).returncode == 0
    res = run_psql(pg_server, dst, tmp_path / "import.sql", data)
    assert res.returncode == 0, res.stderr
    assert fetch(dst, POINTS_AT) == [("L1", "alpha"), ("L2", "beta"), ("L3", "gamma")]
