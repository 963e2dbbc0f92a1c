"""Trees that store their positions (issue 24, ``tree:`` in the mapping): a
materialized-path tree (django-treebeard's ``path``/``depth``/``numchild``) and a
nested-set tree (django-mptt's ``lft``/``rght``/``tree_id``/``level`` beside ``parent_id``)
move into a target whose own nodes already hold the first positions.

Each node travels by its parent's natural key; the import places inserted nodes under
their parent after its existing children, keeps the positions of the nodes the target
holds, recomputes the counters, and a re-import writes nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from edms_pgdump import api
from edms_pgdump.errors import EdmsPgdumpError, MappingError
from edms_pgdump.mapping import load_mapping_text
from edms_pgdump.options import ImportOptions
from tests.support.db import db_digest
from tests.support.real_schemas import fetch, make_db, push_sequences

MP_SCHEMA = """
CREATE TABLE coll (id serial PRIMARY KEY, path varchar(255) NOT NULL UNIQUE, depth integer NOT NULL,
  numchild integer NOT NULL DEFAULT 0, name text NOT NULL UNIQUE);
CREATE TABLE image (id serial PRIMARY KEY, title text NOT NULL UNIQUE, coll_id integer NOT NULL REFERENCES coll (id));
"""
MP_SOURCE = """
INSERT INTO coll (path, depth, numchild, name) VALUES ('0001', 1, 2, 'Root'), ('00010001', 2, 1, 'Photos'),
  ('000100010001', 3, 0, 'Holidays'), ('00010002', 2, 0, 'Downloads'), ('0002', 1, 1, 'Other root'),
  ('00020001', 2, 0, 'Under other');
INSERT INTO image (title, coll_id) VALUES ('beach', 3), ('logo', 4), ('root logo', 1);
"""
# the target's own nodes at the first positions: 'Target assets' sits where the source
# keeps 'Photos', and the target's root already has two children
MP_TARGET = """
INSERT INTO coll (path, depth, numchild, name) VALUES ('0001', 1, 2, 'Root'), ('00010001', 2, 1, 'Target assets'),
  ('000100010001', 3, 0, 'Target sub'), ('00010002', 2, 0, 'Target docs');
INSERT INTO image (title, coll_id) VALUES ('target image', 2);
"""
MP_MAPPING = """
version: 1
tables:
  public.coll: {natural_key: [name], tree: {kind: materialized_path}}
  public.image: {natural_key: [title]}
"""
MP_VIEW = """SELECT c.name, p.name FROM coll c LEFT JOIN coll p ON p.path = substr(c.path, 1, length(c.path) - 4)
AND c.depth > 1 ORDER BY 1"""
# nodes whose numchild is not their children, whose depth is not their path's steps, or
# whose parent path holds no node (set-based: the large case has 20,000 nodes)
MP_PROBLEMS = """SELECT p.path, p.numchild, coalesce(k.n, 0), p.depth FROM coll p
LEFT JOIN (SELECT substr(path, 1, length(path) - 4) AS parent, count(*) AS n FROM coll GROUP BY 1) k
  ON k.parent = p.path
LEFT JOIN coll up ON up.path = substr(p.path, 1, length(p.path) - 4)
WHERE p.numchild <> coalesce(k.n, 0) OR p.depth <> length(p.path) / 4 OR (p.depth > 1 AND up.id IS NULL)"""


def _export(src: str, mapping: str, tmp_path: Path) -> Path:
    archive = tmp_path / "tree.edms"
    api.export_archive(src, load_mapping_text(mapping), archive, audit_log=False)
    return archive


def test_materialized_path_nodes_get_new_positions_under_their_parent(new_db: Any, tmp_path: Path) -> None:
    src = make_db(new_db, MP_SCHEMA, MP_SOURCE)
    dst = make_db(new_db, MP_SCHEMA, MP_TARGET)
    push_sequences(dst)
    own = fetch(dst, "SELECT name, path, depth FROM coll WHERE name LIKE 'Target%' ORDER BY 1")
    archive = _export(src, MP_MAPPING, tmp_path)
    report = api.import_archive(dst, archive, audit_log=False, history=False)
    assert report.committed
    # the source's nodes under the same parents, by name
    src_view = fetch(src, MP_VIEW)
    dst_view = fetch(dst, MP_VIEW)
    assert set(src_view) <= set(dst_view)
    # the target's own nodes keep their positions
    assert fetch(dst, "SELECT name, path, depth FROM coll WHERE name LIKE 'Target%' ORDER BY 1") == own
    # new children of the shared root come after its existing ones; new roots after the root
    paths = dict(fetch(dst, "SELECT name, path FROM coll"))
    assert paths["Root"] == "0001"
    assert sorted([paths["Photos"], paths["Downloads"]]) == ["00010003", "00010004"]
    assert paths["Holidays"] == paths["Photos"] + "0001"
    assert paths["Other root"] == "0002" and paths["Under other"] == "00020001"
    assert fetch(dst, MP_PROBLEMS) == []
    assert dict(fetch(dst, "SELECT name, numchild FROM coll"))["Root"] == 4
    # references to the nodes resolved by name
    assert fetch(dst, "SELECT i.title, c.name FROM image i JOIN coll c ON c.id = i.coll_id ORDER BY 1") == [
        ("beach", "Holidays"),
        ("logo", "Downloads"),
        ("root logo", "Root"),
        ("target image", "Target assets"),
    ]
    # a re-import writes nothing
    before = db_digest(dst)
    again = api.import_archive(dst, archive, audit_log=False, history=False)
    assert again.committed and sum(t.inserted + t.updated for t in again.tables) == 0
    assert db_digest(dst) == before


@pytest.mark.parametrize("policy", ["skip", "error"])
def test_counters_are_no_conflict(new_db: Any, tmp_path: Path, policy: str) -> None:
    """A shared parent's numchild grows with the new children: recounted apart from the
    UPDATE of changed rows, so on_conflict skip or error neither skips nor refuses it."""
    src = make_db(new_db, MP_SCHEMA, MP_SOURCE)
    dst = make_db(new_db, MP_SCHEMA, MP_TARGET)
    archive = _export(src, MP_MAPPING, tmp_path)
    report = api.import_archive(dst, archive, audit_log=False, options=ImportOptions(on_conflict=policy))
    assert report.committed and not report.warnings
    assert fetch(dst, MP_PROBLEMS) == []
    assert dict(fetch(dst, "SELECT name, numchild FROM coll"))["Root"] == 4


def test_a_mirror_import_recounts_the_parents_that_lost_children(new_db: Any, tmp_path: Path) -> None:
    """--delete-missing removes the target's own nodes; the parents that lost them are
    recounted (planned, so the observation balances) and the tree stays consistent."""
    src = make_db(new_db, MP_SCHEMA, MP_SOURCE)
    dst = make_db(new_db, MP_SCHEMA, MP_TARGET)
    archive = _export(src, MP_MAPPING, tmp_path)
    options = ImportOptions(delete_missing=True, max_deletes=10)
    report = api.import_archive(dst, archive, audit_log=False, options=options)
    assert report.committed
    assert fetch(dst, MP_PROBLEMS) == []
    assert sorted(fetch(dst, "SELECT name FROM coll")) == sorted(fetch(src, "SELECT name FROM coll"))
    assert dict(fetch(dst, "SELECT name, numchild FROM coll"))["Root"] == 2
    assert set(fetch(src, MP_VIEW)) == set(fetch(dst, MP_VIEW))


def test_a_target_node_outside_the_archive_gets_its_children_counted(new_db: Any, tmp_path: Path) -> None:
    """A subset of the source whose parent the target holds but the archive does not:
    the parent is found by key, its numchild recounted after the insert (planned, so the
    transaction's observation still balances)."""
    src = make_db(new_db, MP_SCHEMA, MP_SOURCE)
    dst = make_db(new_db, MP_SCHEMA, MP_TARGET)
    mapping = MP_MAPPING.replace(
        "tree: {kind: materialized_path}}", "tree: {kind: materialized_path}, where: \"name <> 'Root'\"}"
    )
    mapping = mapping.replace(
        "public.image: {natural_key: [title]}", "public.image: {natural_key: [title], where: 'false'}"
    )
    archive = tmp_path / "subset.edms"
    api.export_archive(src, load_mapping_text(mapping), archive, audit_log=False)
    report = api.import_archive(dst, archive, audit_log=False, history=False)
    assert report.committed
    assert fetch(dst, MP_PROBLEMS) == []
    assert dict(fetch(dst, "SELECT name, numchild FROM coll"))["Root"] == 4


def test_a_parent_found_nowhere_is_refused(new_db: Any, tmp_path: Path) -> None:
    src = make_db(new_db, MP_SCHEMA, MP_SOURCE)
    dst = make_db(
        new_db, MP_SCHEMA, "INSERT INTO coll (path, depth, numchild, name) VALUES ('0001', 1, 0, 'Top')"
    )
    mapping = MP_MAPPING.replace(
        "tree: {kind: materialized_path}}", "tree: {kind: materialized_path}, where: \"name <> 'Root'\"}"
    )
    mapping = mapping.replace(
        "public.image: {natural_key: [title]}", "public.image: {natural_key: [title], where: 'false'}"
    )
    archive = tmp_path / "subset.edms"
    api.export_archive(src, load_mapping_text(mapping), archive, audit_log=False)
    before = db_digest(dst)
    with pytest.raises(EdmsPgdumpError) as err:
        api.import_archive(dst, archive, audit_log=False, history=False)
    assert db_digest(dst) == before
    message = str(err.value)
    assert "node(s) of the path tree cannot be placed" in message
    assert '["Root"]' in message and "parent not found" in message


def test_the_declaration_is_checked() -> None:
    with pytest.raises(
        MappingError,
        match=r'tables\."public\.coll"\.tree\.kind: required, one of materialized_path, nested_set',
    ):
        load_mapping_text(
            "version: 1\ntables:\n  public.coll: {natural_key: [name], tree: {kind: adjacency}}"
        )
    with pytest.raises(MappingError, match=r"unknown key 'lft' for kind materialized_path"):
        load_mapping_text(
            "version: 1\ntables:\n  public.coll: {natural_key: [name], tree: {kind: materialized_path, lft: x}}"
        )


NS_SCHEMA = """
CREATE TABLE cat (id serial PRIMARY KEY, name text NOT NULL, parent_id integer REFERENCES cat (id),
  lft integer NOT NULL, rght integer NOT NULL, tree_id integer NOT NULL, level integer NOT NULL,
  UNIQUE NULLS NOT DISTINCT (parent_id, name));
CREATE INDEX ON cat (tree_id, lft);
"""
NS_MAPPING = """
version: 1
tables:
  public.cat: {natural_key: [parent_id, name], tree: {kind: nested_set}}
"""
# Root(A(A1, A2), B) in tree 1 and Solo in tree 2
NS_SOURCE = """
INSERT INTO cat (id, name, parent_id, lft, rght, tree_id, level) VALUES
 (1, 'Root', NULL, 1, 10, 1, 0), (2, 'A', 1, 2, 7, 1, 1), (3, 'A1', 2, 3, 4, 1, 2), (4, 'A2', 2, 5, 6, 1, 2),
 (5, 'B', 1, 8, 9, 1, 1), (6, 'Solo', NULL, 1, 2, 2, 0);
SELECT setval('cat_id_seq', 6);
"""
# the target's Root holds its own child T first, and a tree of its own (Mine)
NS_TARGET = """
INSERT INTO cat (id, name, parent_id, lft, rght, tree_id, level) VALUES
 (1, 'Root', NULL, 1, 6, 1, 0), (2, 'T', 1, 2, 5, 1, 1), (3, 'T1', 2, 3, 4, 1, 2), (4, 'Mine', NULL, 1, 2, 2, 0);
SELECT setval('cat_id_seq', 4);
"""
NS_VIEW = "SELECT c.name, p.name FROM cat c LEFT JOIN cat p ON p.id = c.parent_id ORDER BY 1"
# every node's lft/rght/level agrees with its parent links: contiguous numbering per tree
NS_PROBLEMS = """
WITH RECURSIVE walk AS (SELECT id, tree_id, lft, rght, level, 0 AS depth FROM cat WHERE parent_id IS NULL
  UNION ALL SELECT c.id, c.tree_id, c.lft, c.rght, c.level, w.depth + 1 FROM cat c JOIN walk w ON c.parent_id = w.id)
SELECT w.id FROM walk w JOIN cat p ON true WHERE false
UNION ALL SELECT id FROM walk WHERE level <> depth OR rght <= lft
UNION ALL SELECT c.id FROM cat c JOIN cat p ON p.id = c.parent_id
  WHERE NOT (p.lft < c.lft AND c.rght < p.rght AND p.tree_id = c.tree_id)
UNION ALL SELECT r.id FROM cat r WHERE r.parent_id IS NULL AND (r.lft <> 1 OR r.rght <> 2 * (SELECT count(*) FROM cat x WHERE x.tree_id = r.tree_id))
UNION ALL SELECT x.tree_id FROM (SELECT tree_id, count(*) n, count(DISTINCT lft) + count(DISTINCT rght) AS d FROM cat GROUP BY 1) x WHERE x.d <> 2 * x.n
"""


def test_nested_sets_are_renumbered_for_the_trees_touched(new_db: Any, tmp_path: Path) -> None:
    src = make_db(new_db, NS_SCHEMA, NS_SOURCE)
    dst = make_db(new_db, NS_SCHEMA, NS_TARGET)
    push_sequences(dst)
    archive = _export(src, NS_MAPPING, tmp_path)
    report = api.import_archive(dst, archive, audit_log=False, history=False)
    assert report.committed
    assert set(fetch(src, NS_VIEW)) <= set(fetch(dst, NS_VIEW))
    assert fetch(dst, NS_PROBLEMS) == []
    rows = {r[0]: r[1:] for r in fetch(dst, "SELECT name, lft, rght, tree_id, level FROM cat")}
    # the target's own child T keeps its place first under Root; A and B come after it
    assert rows["Root"] == (1, 14, 1, 0)
    assert rows["T"][:2] == (2, 5) and rows["T1"][:2] == (3, 4)
    assert rows["A"][0] > rows["T"][1] and rows["B"][0] > rows["A"][1]
    # the target's own tree untouched; the new root gets the next tree
    assert rows["Mine"] == (1, 2, 2, 0)
    assert rows["Solo"] == (1, 2, 3, 0)
    before = db_digest(dst)
    again = api.import_archive(dst, archive, audit_log=False, history=False)
    assert again.committed and sum(t.inserted + t.updated for t in again.tables) == 0
    assert db_digest(dst) == before


DIGIT = "substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ', {} + 1, 1)"
# 20 roots, 10 children each, 10 grandchildren each, 9 great-grandchildren each: 20,220 nodes
BIG_SOURCE = f"""
INSERT INTO coll (path, depth, numchild, name)
SELECT p, length(p) / 4, 0, 'n' || p FROM (
  SELECT '000' || {DIGIT.format("a")} AS p FROM generate_series(1, 20) a
  UNION ALL SELECT '000' || {DIGIT.format("a")} || '000' || {DIGIT.format("b")}
    FROM generate_series(1, 20) a, generate_series(1, 10) b
  UNION ALL SELECT '000' || {DIGIT.format("a")} || '000' || {DIGIT.format("b")} || '000' || {DIGIT.format("c")}
    FROM generate_series(1, 20) a, generate_series(1, 10) b, generate_series(1, 10) c
  UNION ALL SELECT '000' || {DIGIT.format("a")} || '000' || {DIGIT.format("b")} || '000' || {DIGIT.format("c")}
    || '000' || {DIGIT.format("d")}
    FROM generate_series(1, 20) a, generate_series(1, 10) b, generate_series(1, 10) c, generate_series(1, 9) d
) x;
UPDATE coll p SET numchild = k.n FROM (SELECT substr(path, 1, length(path) - 4) AS parent, count(*) AS n
  FROM coll GROUP BY 1) k WHERE k.parent = p.path;
"""
# the target's own 5 roots with 3 children each, at the first positions
BIG_TARGET = f"""
INSERT INTO coll (path, depth, numchild, name)
SELECT '000' || {DIGIT.format("a")}, 1, 3, 'own ' || a FROM generate_series(1, 5) a
UNION ALL SELECT '000' || {DIGIT.format("a")} || '000' || {DIGIT.format("b")}, 2, 0, 'own ' || a || '.' || b
FROM generate_series(1, 5) a, generate_series(1, 3) b;
"""


# the same 20,220 nodes as a nested set: parents by id, the source's lft only orders siblings
BIG_NS_SOURCE = """
INSERT INTO cat (name, parent_id, lft, rght, tree_id, level)
SELECT 'r' || a, NULL, 1, 2, a, 0 FROM generate_series(1, 20) a;
INSERT INTO cat (name, parent_id, lft, rght, tree_id, level)
SELECT 'c' || b, p.id, b, b, p.tree_id, 1 FROM cat p, generate_series(1, 10) b WHERE p.level = 0;
INSERT INTO cat (name, parent_id, lft, rght, tree_id, level)
SELECT 'g' || c, p.id, c, c, p.tree_id, 2 FROM cat p, generate_series(1, 10) c WHERE p.level = 1;
INSERT INTO cat (name, parent_id, lft, rght, tree_id, level)
SELECT 'l' || d, p.id, d, d, p.tree_id, 3 FROM cat p, generate_series(1, 9) d WHERE p.level = 2;
"""


def test_twenty_thousand_nested_set_nodes_are_renumbered_set_based(new_db: Any, tmp_path: Path) -> None:
    src = make_db(new_db, NS_SCHEMA, BIG_NS_SOURCE)
    dst = make_db(new_db, NS_SCHEMA, NS_TARGET)
    archive = _export(src, NS_MAPPING, tmp_path)
    started = time.perf_counter()
    report = api.import_archive(dst, archive, audit_log=False, history=False)
    took = time.perf_counter() - started
    assert report.committed and sum(t.inserted for t in report.tables) == 20_220
    assert fetch(dst, NS_PROBLEMS) == []
    # the target's own trees are not touched
    assert fetch(dst, "SELECT lft, rght, tree_id FROM cat WHERE name IN ('Root', 'Mine') ORDER BY 3") == [
        (1, 6, 1),
        (1, 2, 2),
    ]
    assert fetch(dst, "SELECT min(tree_id), max(tree_id), max(rght) FROM cat WHERE name LIKE 'r%'") == [
        (3, 22, 2 * 1011)
    ]
    again = api.import_archive(dst, archive, audit_log=False, history=False)
    assert again.committed and sum(t.inserted + t.updated for t in again.tables) == 0
    print(f"20,220 nested-set nodes: import {took:.2f} s")
    assert took < 30, took  # quadratic work would take minutes at this size; a loaded machine, seconds


def test_twenty_thousand_nodes_are_placed_set_based(new_db: Any, tmp_path: Path) -> None:
    """20,220 nodes into a target whose own nodes hold the first positions: placed level
    by level in one statement, then a re-import that writes nothing."""
    src = make_db(new_db, MP_SCHEMA, BIG_SOURCE)
    dst = make_db(new_db, MP_SCHEMA, BIG_TARGET)
    archive = _export(src, MP_MAPPING.replace("  public.image: {natural_key: [title]}\n", ""), tmp_path)
    own = fetch(dst, "SELECT name, path FROM coll ORDER BY 1")
    started = time.perf_counter()
    report = api.import_archive(dst, archive, audit_log=False, history=False)
    took = time.perf_counter() - started
    assert report.committed and sum(t.inserted for t in report.tables) == 20_220
    assert fetch(dst, "SELECT count(*) FROM coll") == [(20_240,)]
    assert fetch(dst, MP_PROBLEMS) == []
    assert fetch(dst, "SELECT name, path FROM coll WHERE name LIKE 'own%' ORDER BY 1") == own
    # the source's roots follow the target's five
    assert fetch(dst, "SELECT min(path), max(path) FROM coll WHERE depth = 1 AND name LIKE 'n%'") == [
        ("0006", "000P")
    ]
    assert set(fetch(src, MP_VIEW)) <= set(fetch(dst, MP_VIEW))
    started = time.perf_counter()
    again = api.import_archive(dst, archive, audit_log=False, history=False)
    again_took = time.perf_counter() - started
    assert again.committed and sum(t.inserted + t.updated for t in again.tables) == 0
    assert took < 30, took  # quadratic work would take minutes at this size; a loaded machine, seconds
    print(f"20,220 nodes: import {took:.2f} s, re-import {again_took:.2f} s")


def test_a_node_without_parent_is_refused_at_export(new_db: Any, tmp_path: Path) -> None:
    """A broken source tree: its parent's key would travel as NULL and the node arrive
    as a root, so the export refuses it, naming the path (library and export.sql alike)."""
    src = make_db(
        new_db, MP_SCHEMA, MP_SOURCE, "INSERT INTO coll (path, depth, name) VALUES ('00050001', 2, 'Lost')"
    )
    with pytest.raises(EdmsPgdumpError) as err:
        _export(src, MP_MAPPING, tmp_path)
    message = str(err.value)
    assert "public.coll: 1 node(s) of the path tree have no parent" in message
    assert "00050001" in message and "nothing was exported" in message
    assert not (tmp_path / "tree.edms").exists()


@pytest.mark.parametrize("kind", ["materialized_path", "nested_set"])
def test_the_psql_runbook_places_the_same_nodes(
    new_db: Any, tmp_path: Path, pg_server: Any, kind: str
) -> None:
    from tests.support.psql import runbook_roundtrip

    if kind == "materialized_path":
        schema, source, target, text, view = MP_SCHEMA, MP_SOURCE, MP_TARGET, MP_MAPPING, MP_VIEW
        problems = MP_PROBLEMS
    else:
        schema, source, target, text, view = NS_SCHEMA, NS_SOURCE, NS_TARGET, NS_MAPPING, NS_VIEW
        problems = NS_PROBLEMS
    src = make_db(new_db, schema, source)
    by_library = make_db(new_db, schema, target)
    by_psql = make_db(new_db, schema, target)
    mapping = load_mapping_text(text)
    res = runbook_roundtrip(pg_server, src, by_psql, mapping, tmp_path)
    assert res.returncode == 0, res.stderr
    assert api.import_archive(by_library, _export(src, text, tmp_path), audit_log=False).committed
    assert fetch(by_psql, problems) == []
    assert set(fetch(src, view)) <= set(fetch(by_psql, view))
    positions = (
        "SELECT * FROM coll ORDER BY path" if kind == "materialized_path" else "SELECT * FROM cat ORDER BY 1"
    )
    assert fetch(by_psql, positions) == fetch(by_library, positions)
