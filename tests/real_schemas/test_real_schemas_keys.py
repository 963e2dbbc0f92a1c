"""Issue 10, keys that real schemas have, round trip into a target whose ids are elsewhere
and which already holds rows: a NOT NULL cycle closed by a declared reference (no FK in
the database), a tree keyed by (parent, label) whose roots have a NULL parent, and a
nullable unique e-mail as the natural key (NULLs match as equal), small and large.
The large cases record the import time in the test output (-s), never assert it."""

from __future__ import annotations

from pathlib import Path

from edms_pgdump import check_mapping
from tests.support.real_schema_texts import EMAIL, EMAIL_MAPPING, EMAIL_SOURCE, EMAIL_TARGET, TICKETS
from tests.support.real_schemas import (
    FAR,
    NewDb,
    assert_keyed_union,
    assert_union,
    counts,
    export_and_import,
    fetch,
    keyed_rows,
    make_db,
    natural_rows,
    push_sequences,
)

# -- a NOT NULL cycle closed by a declared reference -------------------------------------

CYCLE = """
CREATE TABLE public.department (id serial PRIMARY KEY, code text NOT NULL UNIQUE,
    head_employee_id int NOT NULL);  -- no FK: declared in the mapping
CREATE TABLE public.employee (id serial PRIMARY KEY, login text NOT NULL UNIQUE,
    department_id int NOT NULL REFERENCES public.department (id), mentor_id int REFERENCES public.employee (id));
"""

CYCLE_MAPPING = """
version: 1
tables:
  public.department:
    natural_key: [code]
    references: [{columns: [head_employee_id], table: public.employee}]
  public.employee: {natural_key: [login]}
"""

CYCLE_SOURCE = """
INSERT INTO public.department (id, code, head_employee_id) VALUES (1, 'eng', 10), (2, 'ops', 12), (3, 'hr', 13);
INSERT INTO public.employee (id, login, department_id, mentor_id) VALUES
    (10, 'ann', 1, NULL), (11, 'bob', 1, 10), (12, 'cy', 2, 11), (13, 'dee', 3, 12), (14, 'eve', 2, 12);
"""

# ids 1..3 and 10..14 taken by other rows, which also form a cycle
CYCLE_TARGET = """
INSERT INTO public.department (id, code, head_employee_id) VALUES (1, 'legal', 10), (2, 'ops', 11);
INSERT INTO public.employee (id, login, department_id) VALUES (10, 'lou', 1), (11, 'cy', 2);
"""

CYCLE_VIEW = (
    "SELECT d.code, h.login, string_agg(e.login || '<' || coalesce(m.login, '-'), ',' ORDER BY e.login)"
    " FROM public.department d JOIN public.employee h ON h.id = d.head_employee_id"
    " LEFT JOIN public.employee e ON e.department_id = d.id LEFT JOIN public.employee m ON m.id = e.mentor_id"
    " GROUP BY d.code, h.login ORDER BY d.code"
)


def test_not_null_cycle_closed_by_a_declared_reference_round_trips(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, CYCLE, CYCLE_SOURCE)
    dst = make_db(new_db, CYCLE, CYCLE_TARGET)
    push_sequences(dst)
    mapping = tmp_path / "m.yaml"
    mapping.write_text(CYCLE_MAPPING)
    check = check_mapping(dsn=src, mapping=mapping)
    assert check.errors == [], [str(p) for p in check.errors]
    before, source = keyed_rows(dst, CYCLE_MAPPING), keyed_rows(src, CYCLE_MAPPING)

    report, _ = export_and_import(src, dst, CYCLE_MAPPING, tmp_path)

    assert report.committed and report.ok, report.to_dict()
    # 'ops' (same head) and 'cy' (other mentor) exist in the target with other ids
    assert counts(report, "public.department") == (3, 2, 0, 1)
    assert counts(report, "public.employee") == (5, 4, 1, 0)
    # by natural values: the source's rows, plus the target's own (ops and cy now as in the source)
    assert_keyed_union(before, source, keyed_rows(dst, CYCLE_MAPPING))
    assert fetch(dst, CYCLE_VIEW) == [
        ("eng", "ann", "ann<-,bob<ann"),
        ("hr", "dee", "dee<cy"),
        ("legal", "lou", "lou<-"),
        ("ops", "cy", "cy<bob,eve<cy"),
    ]
    assert fetch(dst, f"SELECT count(*) FROM public.employee WHERE id > {FAR}") == [(4,)]


# -- a tree keyed by (parent, label), roots with a NULL parent ---------------------------

TREE = """
CREATE TABLE public.node (id serial PRIMARY KEY, parent_id int REFERENCES public.node (id),
    label text NOT NULL, weight int, UNIQUE (parent_id, label));
CREATE TABLE public.doc (id serial PRIMARY KEY, ref text NOT NULL UNIQUE,
    node_id int NOT NULL REFERENCES public.node (id));
"""

TREE_MAPPING = """
version: 1
tables:
  public.node: {natural_key: [parent_id, label]}
  public.doc: {natural_key: [ref]}
"""

TREE_SOURCE = """
INSERT INTO public.node (id, parent_id, label, weight) VALUES
    (1, NULL, 'a', 1), (2, NULL, 'b', 2), (3, 1, 'x', 3), (4, 2, 'x', 4), (5, 3, 'leaf', 5),
    (6, 4, 'leaf', 6), (7, NULL, 'shared', 7), (8, 7, 'x', 8);
INSERT INTO public.doc (ref, node_id) VALUES ('d-ax', 3), ('d-bx', 4), ('d-axleaf', 5), ('d-bxleaf', 6),
    ('d-b', 2), ('d-shared-x', 8);
"""

# 'shared' and 'shared/x' already exist, identical: matched through the NULL parent, not doubled.
# The other rows use the source's ids for other nodes.
TREE_TARGET = """
INSERT INTO public.node (id, parent_id, label, weight) VALUES
    (1, NULL, 'other', 0), (2, 1, 'x', 0), (3, 2, 'leaf', 0), (7, NULL, 'shared', 7), (8, 7, 'x', 8);
INSERT INTO public.doc (ref, node_id) VALUES ('d-other', 3);
"""

PATHS = """
WITH RECURSIVE p AS (
    SELECT id, label::text AS path FROM public.node WHERE parent_id IS NULL
    UNION ALL SELECT n.id, p.path || '/' || n.label FROM public.node n JOIN p ON n.parent_id = p.id)
"""


def test_tree_keyed_by_nullable_parent_round_trips(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, TREE, TREE_SOURCE)
    dst = make_db(new_db, TREE, TREE_TARGET)
    push_sequences(dst)
    before, source = natural_rows(dst, TREE_MAPPING), natural_rows(src, TREE_MAPPING)

    report, _ = export_and_import(src, dst, TREE_MAPPING, tmp_path)

    assert report.committed and report.ok, report.to_dict()
    assert counts(report, "public.node") == (8, 6, 0, 2)
    assert counts(report, "public.doc") == (6, 6, 0, 0)
    assert_union(before, source, natural_rows(dst, TREE_MAPPING))
    nodes = PATHS + "SELECT path, count(*) FROM p GROUP BY path ORDER BY path"
    assert fetch(dst, nodes) == [
        (p, 1)
        for p in [
            "a", "a/x", "a/x/leaf", "b", "b/x", "b/x/leaf", "other", "other/x", "other/x/leaf", "shared", "shared/x",
        ]
    ]
    docs = PATHS + "SELECT d.ref, p.path FROM public.doc d JOIN p ON p.id = d.node_id ORDER BY d.ref"
    assert fetch(dst, docs) == [
        ("d-ax", "a/x"),
        ("d-axleaf", "a/x/leaf"),
        ("d-b", "b"),
        ("d-bx", "b/x"),
        ("d-bxleaf", "b/x/leaf"),
        ("d-other", "other/x/leaf"),
        ("d-shared-x", "shared/x"),
    ]
    assert fetch(dst, "SELECT count(*) FROM public.node WHERE parent_id IS NULL") == [(4,)]


LARGE_TREE_SOURCE = """
INSERT INTO public.node (parent_id, label, weight) SELECT NULL, 'r' || r, r FROM generate_series(1, 20) r;
INSERT INTO public.node (parent_id, label, weight)
    SELECT n.id, 'c' || c, c FROM public.node n, generate_series(1, 20) c WHERE n.parent_id IS NULL;
INSERT INTO public.node (parent_id, label, weight)
    SELECT n.id, 'g' || g, g FROM public.node n JOIN public.node p ON p.id = n.parent_id
    CROSS JOIN generate_series(1, 20) g WHERE p.parent_id IS NULL;
INSERT INTO public.doc (ref, node_id) SELECT 'd' || id, id FROM public.node WHERE id % 5 = 0;
"""


def test_large_tree_keyed_by_nullable_parent(new_db: NewDb, tmp_path: Path) -> None:
    """8,420 nodes on three levels (20 roots, 400 children, 8,000 grandchildren): enough that
    a per-level or per-row resolution would show, small enough for every CI run."""
    src = make_db(new_db, TREE, LARGE_TREE_SOURCE)
    dst = make_db(new_db, TREE, TREE_TARGET)
    push_sequences(dst)
    before, source = natural_rows(dst, TREE_MAPPING), natural_rows(src, TREE_MAPPING)
    assert len(source["public.node"]) == 8_420

    report, seconds = export_and_import(src, dst, TREE_MAPPING, tmp_path)

    print(f"\nlarge tree: 8,420 nodes + 1,684 docs imported in {seconds:.2f} s")
    assert report.committed and report.ok, report.to_dict()
    assert counts(report, "public.node") == (8_420, 8_420, 0, 0)
    assert counts(report, "public.doc") == (1_684, 1_684, 0, 0)
    assert_union(before, source, natural_rows(dst, TREE_MAPPING))
    deepest = PATHS + "SELECT count(*) FROM p WHERE path LIKE 'r%/c%/g%'"
    assert fetch(dst, deepest) == [(8_000,)]


# -- a nullable unique column as the natural key (schema in tests/support/real_schema_texts.py)

def test_nullable_unique_natural_key_round_trips(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, EMAIL, EMAIL_SOURCE)
    dst = make_db(new_db, EMAIL, EMAIL_TARGET)
    push_sequences(dst)
    before, source = keyed_rows(dst, EMAIL_MAPPING), keyed_rows(src, EMAIL_MAPPING)

    report, _ = export_and_import(src, dst, EMAIL_MAPPING, tmp_path)

    assert report.committed and report.ok, report.to_dict()
    assert counts(report, "public.person") == (3, 2, 1, 0)
    assert counts(report, "public.ticket") == (3, 3, 0, 0)
    assert fetch(dst, f"SELECT email, name, id > {FAR} FROM public.person ORDER BY email NULLS FIRST") == [
        (None, "Nobody", False),
        ("ann@x", "Ann", True),
        ("bob@x", "Bob", True),
        ("cy@x", "Cy", False),
        ("zed@x", "Zed", False),
    ]
    assert fetch(dst, TICKETS) == [
        ("t1", "ann@x", "Ann"),
        ("t3", "bob@x", "Bob"),
        ("t6", "ann@x", "Ann"),
        ("z1", None, "Nobody"),
        ("z2", "zed@x", "Zed"),
    ]
    assert_keyed_union(before, source, keyed_rows(dst, EMAIL_MAPPING))


LARGE_EMAIL_SOURCE = """
INSERT INTO public.person (email, name) VALUES (NULL, 'Nobody');
INSERT INTO public.person (email, name) SELECT 'p' || i || '@x', 'P' || i FROM generate_series(1, 10000) i;
INSERT INTO public.ticket (code, person_id)
    SELECT 't' || split_part(email, '@', 1), id FROM public.person WHERE email IS NOT NULL;
"""


def test_large_nullable_unique_natural_key(new_db: NewDb, tmp_path: Path) -> None:
    """10,001 people keyed by a nullable e-mail (one NULL), 10,000 tickets referencing them."""
    src = make_db(new_db, EMAIL, LARGE_EMAIL_SOURCE)
    dst = make_db(new_db, EMAIL, EMAIL_TARGET)
    push_sequences(dst)
    before, source = keyed_rows(dst, EMAIL_MAPPING), keyed_rows(src, EMAIL_MAPPING)

    report, seconds = export_and_import(src, dst, EMAIL_MAPPING, tmp_path)

    print(f"\nnullable e-mail key: 10,001 people + 10,000 tickets imported in {seconds:.2f} s")
    assert report.committed and report.ok, report.to_dict()
    assert counts(report, "public.person") == (10_001, 10_000, 1, 0)
    assert counts(report, "public.ticket") == (10_000, 10_000, 0, 0)
    assert_keyed_union(before, source, keyed_rows(dst, EMAIL_MAPPING))
    assert fetch(dst, "SELECT count(*), count(email) FROM public.person") == [(10_003, 10_002)]
    pointing = (
        "SELECT count(*) FROM public.ticket t JOIN public.person p ON p.id = t.person_id"
        " WHERE p.email = substr(t.code, 2) || '@x'"
    )
    assert fetch(dst, pointing) == [(10_000,)]
