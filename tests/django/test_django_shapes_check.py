"""``check`` on the shapes a Django CMS keeps outside the mapping's sight (issue 24), on
plain-SQL schemas: excluded tables that hold rows, stored tree positions (treebeard,
mptt), ids inside JSON or text, and app-prefixed table names behind ``page_id``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edms_pgdump import api
from edms_pgdump.analysis.check import check_database
from edms_pgdump.mapping import load_mapping_text
from tests.support.real_schemas import make_db

SCHEMA = """
CREATE TABLE wagtailcore_page (id serial PRIMARY KEY, path varchar(255) NOT NULL UNIQUE,
  depth integer NOT NULL, numchild integer NOT NULL, slug text NOT NULL UNIQUE);
CREATE TABLE cms_category (id serial PRIMARY KEY, name text NOT NULL UNIQUE, parent_id integer
  REFERENCES cms_category (id), lft integer NOT NULL, rght integer NOT NULL, tree_id integer NOT NULL,
  level integer NOT NULL);
CREATE TABLE site_blogpage (id serial PRIMARY KEY, title text NOT NULL UNIQUE, body jsonb NOT NULL,
  intro text NOT NULL, settings jsonb NOT NULL);
CREATE TABLE wagtailcore_pagelogentry (id serial PRIMARY KEY, label text NOT NULL UNIQUE, page_id integer);
CREATE TABLE django_session (session_key text PRIMARY KEY, data text);
CREATE TABLE search_index (id serial PRIMARY KEY, body text);
INSERT INTO wagtailcore_page (path, depth, numchild, slug) VALUES ('0001', 1, 1, 'root'), ('00010001', 2, 0, 'home');
INSERT INTO cms_category (name, parent_id, lft, rght, tree_id, level) VALUES ('top', NULL, 1, 2, 1, 0);
INSERT INTO site_blogpage (title, body, intro, settings) VALUES
  ('a', '[{"id": "0c1d", "type": "image", "value": 7}]', '<p>see <a linktype="page" id="2">home</a></p>',
   '{"colour": "red", "count": 3}'),
  ('b', '[{"type": "heading", "value": "Hello"}]', '<p><embed embedtype="image" id="12" format="left"/></p>',
   '{"columns": 2}'),
  ('c', '[{"type": "paragraph", "value": "<p>plain</p>"}]', 'no ids here', '{}');
INSERT INTO wagtailcore_pagelogentry (label, page_id) VALUES ('created', 1), ('edited', 2);
INSERT INTO django_session VALUES ('k1', 'x'), ('k2', 'y'), ('k3', 'z');
"""

MAPPING = """
version: 1
tables:
  public.wagtailcore_page: {natural_key: [slug]}
  public.cms_category: {natural_key: [parent_id, name]}
  public.site_blogpage: {natural_key: [title]}
  public.wagtailcore_pagelogentry: {natural_key: [label]}
exclude: [public.django_session, public.search_index]
"""


def _found(dsn: str, mapping: str = MAPPING) -> dict[tuple[str, str, str | None], Any]:
    report = check_database(dsn, load_mapping_text(mapping))
    return {(p.code, p.table, p.column): p for p in report.problems}


def test_excluded_tables_holding_rows_are_named_with_their_counts(new_db: Any) -> None:
    dsn = make_db(new_db, SCHEMA)
    found = _found(dsn)
    session = found[("excluded-has-rows", "public.django_session", None)]
    assert session.severity == "warning" and session.message.startswith("3 row(s) are left out")
    assert ("excluded-has-rows", "public.search_index", None) not in found  # empty: nothing lost


def test_export_summary_names_excluded_rows(new_db: Any, tmp_path: Path) -> None:
    dsn = make_db(new_db, SCHEMA)
    decided = MAPPING.replace("{natural_key: [label]}", "{natural_key: [label], raw_columns: [page_id]}")
    result = api.export_archive(dsn, load_mapping_text(decided), tmp_path / "a.edms", audit_log=False)
    assert any("public.django_session" in w and "3 row(s)" in w for w in result.warnings)


def test_tree_positions_are_warned_about_until_acknowledged(new_db: Any) -> None:
    dsn = make_db(new_db, SCHEMA)
    found = _found(dsn)
    page = found[("tree-position", "public.wagtailcore_page", "path")]
    assert "path, depth, numchild" in page.message and "treebeard" in page.message
    assert "tree: {kind: materialized_path}" in page.fix
    category = found[("tree-position", "public.cms_category", "lft")]
    assert "django-mptt" in category.message and "tree: {kind: nested_set}" in category.fix
    declared = MAPPING.replace(
        "{natural_key: [slug]}", "{natural_key: [slug], tree: {kind: materialized_path}}"
    )
    assert ("tree-position", "public.wagtailcore_page", "path") not in _found(dsn, declared)
    acknowledged = MAPPING.replace(
        "{natural_key: [slug]}", "{natural_key: [slug], raw_columns: [path, depth, numchild]}"
    )
    assert ("tree-position", "public.wagtailcore_page", "path") not in _found(dsn, acknowledged)


def test_ids_inside_json_and_rich_text_are_warned_about(new_db: Any) -> None:
    dsn = make_db(new_db, SCHEMA)
    found = _found(dsn)
    body = found[("embedded-ids", "public.site_blogpage", "body")]
    assert body.message.startswith("1 of 3 row(s) read") and '"value": 7' in body.message
    intro = found[("embedded-ids", "public.site_blogpage", "intro")]
    assert intro.message.startswith("2 of 3 row(s) read")
    # numbers under other keys are data, not ids
    assert ("embedded-ids", "public.site_blogpage", "settings") not in found


def test_ids_inside_json_stored_as_a_string_are_seen(new_db: Any) -> None:
    """Revision content keeps a StreamField as a JSON string inside JSON: quotes escaped."""
    dsn = make_db(
        new_db,
        "CREATE TABLE rev (id serial PRIMARY KEY, created text NOT NULL UNIQUE, content jsonb NOT NULL)",
        """INSERT INTO rev (created, content) VALUES ('t1', jsonb_build_object('title', 'x', 'body',
           '[{"type": "image", "value": 31}]'))""",
    )
    found = _found(dsn, "version: 1\ntables:\n  public.rev: {natural_key: [created]}\n")
    assert ("embedded-ids", "public.rev", "content") in found


def test_page_id_is_seen_as_a_reference_to_an_app_prefixed_table(new_db: Any) -> None:
    dsn = make_db(new_db, SCHEMA)
    found = _found(dsn)
    likely = [p for (code, table, column), p in found.items()
              if table == "public.wagtailcore_pagelogentry" and column == "page_id"]  # fmt: skip
    assert likely and likely[0].severity == "error"
    assert "public.wagtailcore_page" in likely[0].message


def test_an_excluded_table_the_role_may_not_read_is_named_not_counted(new_db: Any, admin: Any) -> None:
    """An export role needs no privilege on excluded tables: check says it could not count."""
    import uuid

    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    dsn = make_db(new_db, SCHEMA)
    role = f"edms_shapes_{uuid.uuid4().hex[:8]}"
    admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        tables = ["wagtailcore_page", "cms_category", "site_blogpage", "wagtailcore_pagelogentry", "search_index"]
        with psycopg_connect(dsn) as c:
            for t in tables:
                c.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(t), sql.Identifier(role)))
        params = {**conninfo_to_dict(dsn), "user": role}
        params.pop("password", None)
        found = _found(make_conninfo(**params))
        uncounted = found[("excluded-uncounted", "public.django_session", None)]
        assert uncounted.severity == "warning" and "may not read" in uncounted.message
        assert ("excluded-has-rows", "public.django_session", None) not in found
    finally:
        with psycopg_connect(dsn) as c:
            c.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def psycopg_connect(dsn: str) -> Any:
    import psycopg

    return psycopg.connect(dsn, autocommit=True)
