"""Cycles without superuser: deferrable edges are deferred, nullable ones filled in a
second pass, NOT NULL non-deferrable ones refused by the plan with the fix."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from edms_pgdump import (
    PlanError,
    build_plan,
    export_archive,
    import_archive,
    load_mapping_text,
    read_catalog,
)
from edms_pgdump.db import connect

SCHEMA = """
CREATE TABLE public.dept (
    id bigserial PRIMARY KEY, code text NOT NULL UNIQUE, head_id bigint);
CREATE TABLE public.emp (
    id bigserial PRIMARY KEY, badge text NOT NULL UNIQUE,
    dept_id bigint NOT NULL REFERENCES public.dept (id),
    buddy_id bigint REFERENCES public.emp (id));
ALTER TABLE public.dept ADD CONSTRAINT dept_head_fk FOREIGN KEY (head_id) REFERENCES public.emp (id);
-- multi-column FK onto a composite natural key
CREATE TABLE public.shift (
    site text NOT NULL, day date NOT NULL, note text, PRIMARY KEY (site, day));
CREATE TABLE public.roster (
    id serial PRIMARY KEY, badge text NOT NULL, site text, day date,
    FOREIGN KEY (site, day) REFERENCES public.shift (site, day), UNIQUE (badge, site, day));
-- a generic reference without a constraint, declared in the mapping
CREATE TABLE public.comment (
    id serial PRIMARY KEY, ref text NOT NULL UNIQUE, emp_object_id bigint, body text);
"""

MAPPING = """
version: 1
tables:
  public.dept: {natural_key: [code]}
  public.emp: {natural_key: [badge]}
  public.shift: {natural_key: [site, day]}
  public.roster: {natural_key: [badge, site, day]}
  public.comment:
    natural_key: [ref]
    references: [{columns: [emp_object_id], table: public.emp}]
"""

ROWS = """
INSERT INTO public.dept (code) VALUES ('eng'), ('ops');
INSERT INTO public.emp (badge, dept_id) VALUES ('e1', 1), ('e2', 1), ('e3', 2);
UPDATE public.emp SET buddy_id = 2 WHERE badge = 'e1';
UPDATE public.emp SET buddy_id = 1 WHERE badge = 'e2';
UPDATE public.dept SET head_id = 2 WHERE code = 'eng';
UPDATE public.dept SET head_id = 3 WHERE code = 'ops';
INSERT INTO public.shift VALUES ('paris', '2026-01-01', 'n'), ('rome', '2026-01-01', NULL);
INSERT INTO public.roster (badge, site, day) VALUES ('e1', 'paris', '2026-01-01'), ('e2', 'rome', '2026-01-01');
INSERT INTO public.comment (ref, emp_object_id, body) VALUES ('c1', 3, 'hi'), ('c2', NULL, 'none');
"""

VIEW = """
SELECT 'dept', d.code, h.badge, NULL FROM public.dept d LEFT JOIN public.emp h ON h.id = d.head_id
UNION ALL
SELECT 'emp', e.badge, d.code, b.badge FROM public.emp e JOIN public.dept d ON d.id = e.dept_id
  LEFT JOIN public.emp b ON b.id = e.buddy_id
UNION ALL
SELECT 'roster', r.badge, r.site, r.day::text FROM public.roster r
UNION ALL
SELECT 'comment', c.ref, e.badge, c.body FROM public.comment c LEFT JOIN public.emp e ON e.id = c.emp_object_id
ORDER BY 1, 2
"""


def _db(new_db, rows: str = "") -> str:  # type: ignore[no-untyped-def]
    dsn = new_db()
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(SCHEMA)
        if rows:
            c.execute(rows)
        else:  # a re-initialised target: ids far from the source's
            c.execute("SELECT setval('public.emp_id_seq', 1000); SELECT setval('public.dept_id_seq', 1000)")
    return dsn


def _view(dsn: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as c:
        return c.execute(VIEW).fetchall()  # type: ignore[arg-type]


def test_plan_breaks_the_nullable_cycle_edge(new_db) -> None:  # type: ignore[no-untyped-def]
    dsn = _db(new_db)
    with connect(dsn) as conn:
        plan = build_plan(load_mapping_text(MAPPING), read_catalog(conn))
    assert not plan.errors
    comp = next(c for c in plan.components if len(c) == 2)
    assert [str(n) for n in comp] == ["public.dept", "public.emp"]
    dept = plan.tables[comp[0]]
    assert dept.expansion("head_id").edge == "second_pass"
    emp = plan.tables[comp[1]]
    assert emp.expansion("buddy_id").edge == "self"
    comment = next(t for t in plan.exported if t.table.name == "comment")
    assert [f.name for f in comment.fields] == ["ref", "emp_object_id.badge", "body"]


def test_cycle_multi_column_fk_and_declared_reference_round_trip(new_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = _db(new_db, ROWS)
    dst = _db(new_db)
    export_archive(src, load_mapping_text(MAPPING), tmp_path / "c.edmsdump")
    report = import_archive(dst, tmp_path / "c.edmsdump")
    assert report.committed and report.inserted == 2 + 3 + 2 + 2 + 2
    assert _view(dst) == _view(src)
    with psycopg.connect(dst) as c:
        assert c.execute("SELECT min(id) FROM public.emp").fetchone()[0] > 1000  # type: ignore[index]
    again = import_archive(dst, tmp_path / "c.edmsdump")
    assert again.inserted == 0 and again.updated == 0


def test_not_null_cycle_without_deferrable_edge_is_refused(new_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dsn = new_db()
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(
            "CREATE TABLE public.a (id serial PRIMARY KEY, k text UNIQUE NOT NULL, b_id int NOT NULL);"
            "CREATE TABLE public.b (id serial PRIMARY KEY, k text UNIQUE NOT NULL,"
            " a_id int NOT NULL REFERENCES public.a);"
            "ALTER TABLE public.a ADD CONSTRAINT a_b_fk FOREIGN KEY (b_id) REFERENCES public.b;"
        )
    mapping = load_mapping_text(
        "version: 1\ntables:\n  public.a: {natural_key: [k]}\n  public.b: {natural_key: [k]}\n"
    )
    with pytest.raises(PlanError) as exc:
        export_archive(dsn, mapping, tmp_path / "x.edmsdump")
    msg = str(exc.value)
    assert "is part of a cycle" in msg and "NOT NULL and not deferrable" in msg
    assert "DEFERRABLE" in msg  # the fix
