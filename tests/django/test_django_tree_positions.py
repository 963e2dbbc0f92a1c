"""A treebeard materialized-path tree (``path``/``depth``/``numchild``) travels with the
source's positions (issue 24). The import observes the tree after its writes: a shared
ancestor's ``numchild`` overwritten with the source's count, or a node whose parent path
holds nothing, rolls back with the nodes named (library and psql runbook alike); a
target whose positions are free takes the tree, consistent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edms_pgdump import api
from edms_pgdump.errors import EdmsPgdumpError
from edms_pgdump.mapping import load_mapping_text
from tests.support.db import db_digest
from tests.support.real_schemas import fetch, make_db, push_sequences

SCHEMA = """
CREATE TABLE coll (id serial PRIMARY KEY, path varchar(255) NOT NULL UNIQUE, depth integer NOT NULL,
  numchild integer NOT NULL, name text NOT NULL UNIQUE);
CREATE TABLE image (id serial PRIMARY KEY, title text NOT NULL UNIQUE, coll_id integer NOT NULL REFERENCES coll (id));
"""
SOURCE = """
INSERT INTO coll (path, depth, numchild, name) VALUES ('0001', 1, 2, 'Root'), ('00010001', 2, 1, 'Photos'),
  ('000100010001', 3, 0, 'Holidays'), ('00010002', 2, 0, 'Downloads');
INSERT INTO image (title, coll_id) VALUES ('beach', 3), ('logo', 4);
"""
MAPPING = """
version: 1
tables:
  public.coll: {natural_key: [name], raw_columns: [path, depth, numchild]}
  public.image: {natural_key: [title]}
"""
TREE = "SELECT path, depth, numchild, name FROM coll ORDER BY path"


def _import_refused(dst: str, archive: Path) -> str:
    before = db_digest(dst)
    with pytest.raises(EdmsPgdumpError) as err:
        api.import_archive(dst, archive, audit_log=False)
    assert db_digest(dst) == before
    return str(err.value)


def test_a_free_target_takes_the_tree_consistent(new_db: Any, tmp_path: Path) -> None:
    src = make_db(new_db, SCHEMA, SOURCE)
    dst = make_db(new_db, SCHEMA, "INSERT INTO coll (path, depth, numchild, name) VALUES ('0001', 1, 0, 'Root')")
    push_sequences(dst)
    archive = tmp_path / "t.edms"
    api.export_archive(src, load_mapping_text(MAPPING), archive, audit_log=False)
    report = api.import_archive(dst, archive, audit_log=False)
    assert report.committed
    assert fetch(dst, TREE) == fetch(src, TREE)


def test_an_ancestor_count_overwritten_by_the_source_is_refused(new_db: Any, tmp_path: Path) -> None:
    """The target's root has a child of its own at a position the source does not use:
    the source's root row would set numchild to 2 while it has 3 children. Before: exit 0."""
    src = make_db(new_db, SCHEMA, SOURCE)
    dst = make_db(
        new_db,
        SCHEMA,
        "INSERT INTO coll (path, depth, numchild, name) VALUES ('0001', 1, 1, 'Root'), ('00010003', 2, 0, 'Target assets')",
    )
    archive = tmp_path / "t.edms"
    api.export_archive(src, load_mapping_text(MAPPING), archive, audit_log=False)
    message = _import_refused(dst, archive)
    assert "public.coll: after the writes its materialized-path tree is inconsistent" in message
    assert "path='0001'" in message and "numchild=2" in message and "children=3" in message
    assert "fix_tree()" in message


def test_a_node_under_no_parent_is_refused(new_db: Any, tmp_path: Path) -> None:
    """A node whose parent path holds nothing in the target after the writes (here the
    source's own tree was broken: Lost's parent 0005 does not exist)."""
    src = make_db(
        new_db, SCHEMA, SOURCE, "INSERT INTO coll (path, depth, numchild, name) VALUES ('00050001', 2, 0, 'Lost')"
    )
    dst = make_db(new_db, SCHEMA, "INSERT INTO coll (path, depth, numchild, name) VALUES ('0001', 1, 0, 'Root')")
    archive = tmp_path / "t.edms"
    api.export_archive(src, load_mapping_text(MAPPING), archive, audit_log=False)
    message = _import_refused(dst, archive)
    assert "path='00050001'" in message and "children=NULL" in message


def test_the_psql_runbook_refuses_the_same_tree(new_db: Any, tmp_path: Path, pg_server: Any) -> None:
    from tests.support.psql import runbook_roundtrip

    src = make_db(new_db, SCHEMA, SOURCE)
    dst = make_db(
        new_db,
        SCHEMA,
        "INSERT INTO coll (path, depth, numchild, name) VALUES ('0001', 1, 1, 'Root'), ('00010003', 2, 0, 'Target assets')",
    )
    mapping = load_mapping_text(MAPPING)
    before = db_digest(dst)
    res = runbook_roundtrip(pg_server, src, dst, mapping, tmp_path)
    assert res.returncode != 0
    assert "materialized-path tree is inconsistent" in res.stderr + res.stdout
    assert db_digest(dst) == before
