"""Issue 24's crashes, each on a minimal plain-SQL schema shaped like Wagtail's: a page
table, a multi-table-inheritance child whose primary key is the FK to its parent, and
revisions naming pages through a generic reference (content type + object id) that is
part of their natural key, in a cycle with the page's ``latest_revision_id``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from edms_pgdump import api
from edms_pgdump.analysis.check import check_database
from edms_pgdump.cli import app
from edms_pgdump.mapping import load_mapping_text
from tests.support.db import db_digest
from tests.support.real_schemas import fetch, make_db, push_sequences, run

SCHEMA = """
CREATE TABLE django_content_type (id serial PRIMARY KEY, app_label text NOT NULL, model text NOT NULL,
  UNIQUE (app_label, model));
CREATE TABLE core_page (id serial PRIMARY KEY, slug text NOT NULL UNIQUE, title text NOT NULL,
  latest_revision_id integer);
CREATE TABLE site_blogpage (page_ptr_id integer PRIMARY KEY REFERENCES core_page (id), body text NOT NULL);
CREATE TABLE core_revision (id serial PRIMARY KEY,
  content_type_id integer NOT NULL REFERENCES django_content_type (id),
  object_id varchar(255) NOT NULL, created_at timestamptz NOT NULL,
  UNIQUE (content_type_id, object_id, created_at));
ALTER TABLE core_page ADD FOREIGN KEY (latest_revision_id) REFERENCES core_revision (id)
  DEFERRABLE INITIALLY DEFERRED;
"""

SOURCE = """
INSERT INTO django_content_type (app_label, model) VALUES ('core', 'page'), ('site', 'blogpage'),
  ('core', 'revision');
INSERT INTO core_page (slug, title) VALUES ('home', 'Home'), ('blog1', 'Blog one'), ('blog2', 'Blog two');
INSERT INTO site_blogpage VALUES (2, 'first post'), (3, 'second post');
INSERT INTO core_revision (content_type_id, object_id, created_at) VALUES
  (2, '2', '2024-01-01'), (1, '1', '2024-01-02'), (2, '3', '2024-01-03'), (2, '2', '2024-01-04');
UPDATE core_page SET latest_revision_id = CASE id WHEN 1 THEN 2 WHEN 2 THEN 4 ELSE 3 END;
"""

# a migrated target with content of its own, content types in another order, ids far ahead
TARGET = """
INSERT INTO django_content_type (app_label, model) VALUES ('other', 'thing'), ('site', 'blogpage'),
  ('core', 'revision'), ('core', 'page');
INSERT INTO core_page (slug, title) VALUES ('own', 'Own page');
"""


def _mapping(child_key: str) -> str:
    return f"""
version: 1
types:
  public.django_content_type: {{table_name: "{{app_label}}_{{model}}"}}
tables:
  public.django_content_type: {{natural_key: [app_label, model], export: false}}
  public.core_page: {{natural_key: [slug]}}
  public.site_blogpage: {{natural_key: [{child_key}]}}
  public.core_revision:
    natural_key: [content_type_id, object_id, created_at]
    generic_references: [{{type: content_type_id, id: object_id}}]
"""


# revisions with what they name, by value: equal in two databases whose ids differ
REVISIONS_BY_NAME = """
SELECT ct.model, p.slug, b.body, r.created_at, lp.slug FROM core_revision r
JOIN django_content_type ct ON ct.id = r.content_type_id
LEFT JOIN core_page p ON p.id::text = r.object_id
LEFT JOIN site_blogpage b ON ct.model = 'blogpage' AND b.page_ptr_id::text = r.object_id
LEFT JOIN core_page lp ON lp.latest_revision_id = r.id
ORDER BY 4
"""


def _codes(report: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in report.problems:
        out.setdefault(p.code, []).append(p.message)
    return out


def test_check_names_a_generic_target_whose_own_key_is_broken(new_db: Any) -> None:
    """The child mapped with the key Django's inherited natural_key() suggests (a column
    of the parent table): check reports both, no KeyError."""
    src = make_db(new_db, SCHEMA, SOURCE)
    run(src, "DELETE FROM core_revision WHERE content_type_id = 3")
    report = check_database(src, load_mapping_text(_mapping("url_path")))
    codes = _codes(report)
    assert "key-column-missing" in codes
    [unmapped] = codes["generic-type-unmapped"]
    assert "site.blogpage" in unmapped and "error in its own mapping entry" in unmapped
    assert any(p.severity == "error" for p in report.problems)


def test_cli_check_and_plan_on_a_broken_generic_target_exit_with_a_report(new_db: Any, tmp_path: Path) -> None:
    src = make_db(new_db, SCHEMA, SOURCE)
    run(src, "DELETE FROM core_revision WHERE content_type_id = 3")
    path = tmp_path / "m.yaml"
    path.write_text(_mapping("url_path"))
    for command in ("check", "plan"):
        res = CliRunner().invoke(app, [command, "--dsn", src, "-m", str(path)])
        assert res.exit_code == 1, res.output
        assert res.exception is None or isinstance(res.exception, SystemExit)
        assert "url_path" in res.output


def test_a_generic_key_that_names_its_own_table_is_refused_not_recursed(new_db: Any, tmp_path: Path) -> None:
    """A revision of a revision: the key would contain itself. Before: RecursionError in
    plan and check; now an error naming the column and the way out."""
    src = make_db(new_db, SCHEMA, SOURCE)
    run(src, "INSERT INTO core_revision (content_type_id, object_id, created_at) VALUES (3, '1', '2024-02-01')")
    report = check_database(src, load_mapping_text(_mapping("page_ptr_id")))
    [cycle] = _codes(report)["generic-key-cycle"]
    assert "public.core_revision" in cycle and "would contain itself" in cycle
    path = tmp_path / "m.yaml"
    path.write_text(_mapping("page_ptr_id"))
    res = CliRunner().invoke(app, ["plan", "--dsn", src, "-m", str(path)])
    assert res.exit_code == 1 and "would contain itself" in res.output
    assert not isinstance(res.exception, RecursionError)
    before = db_digest(src)
    res = CliRunner().invoke(app, ["export", "--dsn", src, "-m", str(path), "-o", str(tmp_path / "x.edms")])
    assert res.exit_code == 1 and "would contain itself" in res.output
    assert not (tmp_path / "x.edms").exists() and db_digest(src) == before


def test_child_keyed_by_its_parent_link_is_a_generic_target_inside_a_cycle(new_db: Any, tmp_path: Path) -> None:
    """Before: ``analyze keyed: column "page_ptr_id" ... does not exist``. The child's id
    is its parent's, known once its reference is resolved: the cycle resolves it first."""
    src = make_db(new_db, SCHEMA, SOURCE)
    run(src, "DELETE FROM core_revision WHERE content_type_id = 3")
    dst = make_db(new_db, SCHEMA, TARGET)
    push_sequences(dst)
    mapping = load_mapping_text(_mapping("page_ptr_id"))
    archive = tmp_path / "a.edms"
    api.export_archive(src, mapping, archive, audit_log=False)
    report = api.import_archive(dst, archive, audit_log=False)
    assert report.committed
    assert fetch(dst, REVISIONS_BY_NAME) == fetch(src, REVISIONS_BY_NAME)
    assert len(fetch(dst, REVISIONS_BY_NAME)) == 4
    assert fetch(dst, "SELECT slug FROM core_page ORDER BY 1") == [("blog1",), ("blog2",), ("home",), ("own",)]
    again = api.import_archive(dst, archive, audit_log=False)
    assert sum(t.inserted + t.updated for t in again.tables) == 0


def test_psql_runbooks_resolve_the_child_like_the_library(new_db: Any, tmp_path: Path, pg_server: Any) -> None:
    from tests.support.psql import runbook_roundtrip

    src = make_db(new_db, SCHEMA, SOURCE)
    # a runbook is written before data is read: ready for every type the type table names,
    # so the revision type (whose key would contain itself) is not there at all
    drop_type = "DELETE FROM django_content_type WHERE model = 'revision'"
    run(src, "DELETE FROM core_revision WHERE content_type_id = 3", drop_type)
    dst = make_db(new_db, SCHEMA, TARGET, drop_type)
    push_sequences(dst)
    mapping = load_mapping_text(_mapping("page_ptr_id"))
    res = runbook_roundtrip(pg_server, src, dst, mapping, tmp_path)
    assert res.returncode == 0, res.stderr
    assert fetch(dst, REVISIONS_BY_NAME) == fetch(src, REVISIONS_BY_NAME)
