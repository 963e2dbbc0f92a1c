"""Subset export on a schema of its own, on a real PostgreSQL: an ownership chain three
levels deep (tenant -> project -> task -> task_label, the last with a composite primary
key), a tree keyed by (parent, name) whose filter keeps the matching folder's descendants
and its ancestors, a whole table (audit) whose rows pull another tenant's task, project
and tenant in as needed rows (outside the scope), and users needed by all of them.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from edms_pgdump.api import export_archive, import_archive, plan_mapping
from edms_pgdump.archive.package import ArchiveReader
from edms_pgdump.errors import PlanError
from edms_pgdump.mapping import load_mapping_text

from ..conftest import NewDb

SCHEMA = """
CREATE TABLE public.people (id serial PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE TABLE public.tenants (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE public.projects (
    id serial PRIMARY KEY, tenant_id int NOT NULL REFERENCES public.tenants, code text NOT NULL,
    lead_id int REFERENCES public.people, UNIQUE (tenant_id, code));
CREATE TABLE public.tasks (
    id serial PRIMARY KEY, project_id int NOT NULL REFERENCES public.projects, title text NOT NULL,
    assignee_id int REFERENCES public.people, UNIQUE (project_id, title));
CREATE TABLE public.labels (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE public.task_labels (
    task_id int NOT NULL REFERENCES public.tasks, label_id int NOT NULL REFERENCES public.labels,
    PRIMARY KEY (task_id, label_id));
CREATE TABLE public.audit (id serial PRIMARY KEY, note text NOT NULL UNIQUE, task_id int REFERENCES public.tasks);
CREATE TABLE public.folders (
    id serial PRIMARY KEY, parent_id int REFERENCES public.folders, name text NOT NULL,
    owner_id int REFERENCES public.people, UNIQUE NULLS NOT DISTINCT (parent_id, name));
"""

DATA = """
INSERT INTO public.people (email) SELECT 'p' || g || '@x.org' FROM generate_series(1, 9) g;
INSERT INTO public.tenants (name) VALUES ('acme'), ('globex'), ('initech');
INSERT INTO public.projects (tenant_id, code, lead_id) VALUES
    (1, 'p1', 1), (1, 'p2', NULL), (2, 'g1', 2), (2, 'g2', 3), (3, 'i1', 9);
INSERT INTO public.tasks (project_id, title, assignee_id)
    SELECT p.id, 't' || g, 3 + (p.id + g) % 4 FROM public.projects p, generate_series(1, 2) g;
INSERT INTO public.labels (name) VALUES ('red'), ('green'), ('blue');
INSERT INTO public.task_labels (task_id, label_id) SELECT t.id, 1 + t.id % 2 FROM public.tasks t;
INSERT INTO public.task_labels (task_id, label_id) SELECT t.id, 3 FROM public.tasks t
    JOIN public.projects p ON p.id = t.project_id WHERE p.code = 'g2';
-- globex g1's first task is named by an audit row: it comes as a needed row
INSERT INTO public.audit (note, task_id) SELECT 'closed', t.id FROM public.tasks t
    JOIN public.projects p ON p.id = t.project_id WHERE p.code = 'g1' AND t.title = 't1';
INSERT INTO public.audit (note, task_id) VALUES ('no task', NULL);
INSERT INTO public.folders (parent_id, name, owner_id) VALUES (NULL, 'root', 7);
INSERT INTO public.folders (parent_id, name, owner_id) VALUES (1, 'mid', NULL);
INSERT INTO public.folders (parent_id, name, owner_id) VALUES (2, 'leaf1', 8), (2, 'leaf2', NULL), (2, 'sub', NULL);
INSERT INTO public.folders (parent_id, name, owner_id) VALUES (5, 'subleaf', NULL);
INSERT INTO public.folders (parent_id, name, owner_id) VALUES (NULL, 'other', 9);
INSERT INTO public.folders (parent_id, name, owner_id) VALUES (7, 'mid', 9);
"""

MAPPING = """
version: 1
tables:
  public.people: {natural_key: [email]}
  public.tenants: {natural_key: [name], where: "name = 'acme'"}
  public.projects: {natural_key: [tenant_id, code]}
  public.tasks: {natural_key: [project_id, title]}
  public.labels: {natural_key: [name]}
  public.task_labels: {natural_key: [task_id, label_id]}
  public.audit: {natural_key: [note]}
  public.folders: {natural_key: [parent_id, name]}
"""

TABLES = ("people", "tenants", "projects", "tasks", "labels", "task_labels", "audit", "folders")


def _db(new_db: NewDb, data: bool) -> str:
    dsn = new_db()
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(SCHEMA)
        if data:
            c.execute(DATA)
    return dsn


def _counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as c:
        return {t: int(c.execute(f"SELECT count(*) FROM public.{t}").fetchone()[0]) for t in TABLES}  # type: ignore[index]


def _natural(dsn: str) -> dict[str, set[tuple[object, ...]]]:
    """Rows as natural values, so databases with other ids compare equal."""
    queries = {
        "projects": "SELECT t.name, p.code, l.email FROM public.projects p JOIN public.tenants t ON t.id = p.tenant_id"
        " LEFT JOIN public.people l ON l.id = p.lead_id",
        "tasks": "SELECT p.code, k.title, a.email FROM public.tasks k JOIN public.projects p ON p.id = k.project_id"
        " LEFT JOIN public.people a ON a.id = k.assignee_id",
        "task_labels": "SELECT p.code, k.title, l.name FROM public.task_labels x JOIN public.tasks k ON k.id = x.task_id"
        " JOIN public.projects p ON p.id = k.project_id JOIN public.labels l ON l.id = x.label_id",
        "folders": "SELECT f.name, p.name, o.email FROM public.folders f LEFT JOIN public.folders p ON p.id = f.parent_id"
        " LEFT JOIN public.people o ON o.id = f.owner_id",
        "audit": "SELECT a.note, k.title FROM public.audit a LEFT JOIN public.tasks k ON k.id = a.task_id",
    }
    with psycopg.connect(dsn) as c:
        return {t: {tuple(r) for r in c.execute(q).fetchall()} for t, q in queries.items()}


def test_ownership_chain_tree_and_whole_table_pull_in_what_they_need(new_db: NewDb, tmp_path: Path) -> None:
    src = _db(new_db, data=True)
    out = tmp_path / "subset.edmsdump"
    mapping = load_mapping_text(MAPPING)
    # the folder named mid under root (a subquery), not the one under other
    mid = "name = 'mid' AND parent_id IN (SELECT id FROM public.folders WHERE name = 'root')"
    result = export_archive(src, mapping, out, where=[("public.folders", mid)], audit_log=False)
    rows = {t.table.split(".")[1]: t.rows for t in result.tables}
    # tenants: acme (where) + globex (needed: the audit row's task's project's tenant); not initech
    # projects: p1, p2 (owned) + g1 (needed); tasks: 4 owned + globex g1/t1 (needed)
    # task_labels: only those of the 4 owned tasks; labels: only those they name (red, green)
    # folders: mid and its 4 descendants (where + descendants) + root (needed); not other, other/mid
    assert rows == {
        "people": _people_expected(src),
        "tenants": 2,
        "projects": 3,
        "tasks": 5,
        "labels": 2,
        "task_labels": 4,
        "audit": 2,
        "folders": 6,
    }
    with ArchiveReader(out) as reader:
        scopes = {t.table.split(".")[1]: t.scope for t in reader.manifest.tables}
    assert scopes["tenants"] == {"rule": "where", "where": "name = 'acme'", "rows_in_scope": 1}
    assert scopes["projects"] == {"rule": "owned", "owners": ["public.tenants"], "rows_in_scope": 2}
    assert scopes["tasks"] == {"rule": "owned", "owners": ["public.projects"], "rows_in_scope": 4}
    assert scopes["task_labels"] == {"rule": "owned", "owners": ["public.tasks"], "rows_in_scope": 4}
    assert scopes["folders"] is not None
    assert scopes["folders"]["rule"] == "where" and scopes["folders"]["descendants"] is True
    assert scopes["folders"]["rows_in_scope"] == 5
    assert scopes["audit"] == {"rule": "whole"}
    assert scopes["labels"] is not None and scopes["labels"]["rule"] == "needed"
    assert scopes["people"] is not None and scopes["people"]["rule"] == "needed"

    target = _db(new_db, data=False)
    report = import_archive(target, out, audit_log=False, history=False)
    assert report.committed
    assert _counts(target) == {k: rows[k] for k in TABLES}
    source_rows, target_rows = _natural(src), _natural(target)
    assert target_rows["audit"] == source_rows["audit"]
    assert target_rows["folders"] == {
        ("root", None, "p7@x.org"), ("mid", "root", None), ("leaf1", "mid", "p8@x.org"),
        ("leaf2", "mid", None), ("sub", "mid", None), ("subleaf", "sub", None),
    }  # fmt: skip
    for table in ("projects", "tasks", "task_labels"):
        assert target_rows[table] <= source_rows[table]
    assert {r[0] for r in target_rows["tasks"]} == {"p1", "p2", "g1"}
    assert {(r[0], r[1]) for r in target_rows["tasks"] if r[0] == "g1"} == {("g1", "t1")}


def _people_expected(dsn: str) -> int:
    """Users named by the kept projects, tasks and folders (written independently)."""
    with psycopg.connect(dsn) as c:
        row = c.execute(
            """SELECT count(DISTINCT id) FROM (
                 SELECT p.lead_id AS id FROM public.projects p WHERE p.code IN ('p1', 'p2', 'g1')
                 UNION ALL SELECT k.assignee_id FROM public.tasks k JOIN public.projects p ON p.id = k.project_id
                   WHERE p.code IN ('p1', 'p2') OR (p.code = 'g1' AND k.title = 't1')
                 UNION ALL SELECT owner_id FROM public.folders WHERE name IN ('root', 'leaf1')) x
               WHERE id IS NOT NULL"""
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_plan_names_each_rule(new_db: NewDb) -> None:
    src = _db(new_db, data=False)
    result = plan_mapping(src, load_mapping_text(MAPPING), where={"public.folders": "name = 'mid'"})
    assert result.subset is not None
    rules = {s["table"]: s["describe"] for s in result.subset}
    assert rules["public.tenants"] == "where name = 'acme'"
    assert rules["public.folders"] == "where name = 'mid' (and descendants)"
    assert rules["public.projects"] == "owned by public.tenants"
    assert rules["public.tasks"] == "owned by public.projects"
    assert rules["public.task_labels"] == "owned by public.tasks"
    assert rules["public.audit"] == "whole"
    assert rules["public.labels"] == "needed by public.task_labels"
    assert rules["public.people"].startswith("needed by ")
    assert set(rules["public.people"][len("needed by ") :].split(", ")) == {
        "public.projects", "public.tasks", "public.folders",
    }  # fmt: skip


def test_table_without_primary_key_in_a_closure_is_refused(new_db: NewDb, tmp_path: Path) -> None:
    dsn = new_db()
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(
            "CREATE TABLE public.shelves (id serial PRIMARY KEY, name text NOT NULL UNIQUE);"
            "CREATE TABLE public.books (shelf_id int NOT NULL REFERENCES public.shelves, title text NOT NULL,"
            " UNIQUE (shelf_id, title));"
            "INSERT INTO public.shelves (name) VALUES ('a'), ('b');"
            "INSERT INTO public.books VALUES (1, 'x'), (2, 'y');"
        )
    mapping = load_mapping_text(
        "version: 1\ntables:\n  public.shelves: {natural_key: [name]}\n"
        "  public.books: {natural_key: [shelf_id, title]}\n"
    )
    out = tmp_path / "x.edmsdump"
    with pytest.raises(PlanError) as info:
        export_archive(dsn, mapping, out, where=[("public.shelves", "name = 'a'")], audit_log=False)
    assert "public.books: has no primary key" in str(info.value)
    assert "owned by public.shelves" in str(info.value)
    assert not out.exists()
