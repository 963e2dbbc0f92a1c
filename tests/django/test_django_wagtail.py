"""A real Django CMS end to end (issue 24's "Done when"), as one acceptance path: a Wagtail
site of our own (page types by multi-table inheritance, StreamField bodies with ids inside
JSON and rich text, revisions and drafts, tags, related links, images in collections,
groups with page and collection permissions) goes through ``init --django`` -> ``check``
-> (the mapping plus the docs' ``embedded_references:`` recipe, nothing else) ->
``export`` -> ``import`` into a migrated site whose own pages, collections, images, tags
and group already hold the first tree positions and ids. The site is then identical by
value (the target's own rows untouched), treebeard finds no problem, a re-import writes
nothing, and Wagtail publishes an imported draft and creates pages afterwards.

The source is seeded once; the archive is exported once and also imported into a freshly
migrated site (every node at the source's position). Wagtail is a test-only dependency;
this module runs once per CI, on the embedded PostgreSQL 18.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from edms_pgdump import api
from tests.support.db import db_digest
from tests.support.real_schemas import fetch, push_sequences

pytestmark = [
    pytest.mark.skipif(
        bool(os.environ.get("EDMS_PGDUMP_TEST_DSN")), reason="runs once per CI, on the embedded PostgreSQL 18"
    ),
]
pytest.importorskip("wagtail")

from tests.django_wagtail import harness, recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
WAGTAIL_PAGES = 100

# what every embedded id names, by value: (page, where, what, what it names)
NAMED = r"""
WITH bodies AS (
  SELECT p.url_path AS page, 'body' AS src, b.body AS body FROM site_app_blogpage b
  JOIN wagtailcore_page p ON p.id = b.page_ptr_id
  UNION ALL
  SELECT p.url_path || ' @ ' || r.created_at, 'revision', (r.content ->> 'body')::jsonb
  FROM wagtailcore_revision r JOIN wagtailcore_page p ON p.id::text = r.object_id
  WHERE r.content ? 'body'
)
SELECT b.page, b.src, 'image block', i.title FROM bodies b
  CROSS JOIN LATERAL jsonb_path_query(b.body, '$[*] ? (@.type == "image").value') AS v
  LEFT JOIN wagtailimages_image i ON i.id = (v #>> '{}')::int
UNION ALL SELECT b.page, b.src, 'page link', lp.url_path FROM bodies b
  CROSS JOIN LATERAL jsonb_path_query(b.body, '$[*] ? (@.type == "paragraph").value') AS v
  CROSS JOIN LATERAL regexp_matches(v #>> '{}', 'linktype="page" id="(\d+)"', 'g') AS m
  LEFT JOIN wagtailcore_page lp ON lp.id = m[1]::int
UNION ALL SELECT b.page, b.src, 'image embed', i.title FROM bodies b
  CROSS JOIN LATERAL jsonb_path_query(b.body, '$[*] ? (@.type == "paragraph").value') AS v
  CROSS JOIN LATERAL regexp_matches(v #>> '{}', 'embedtype="image"[^>]* id="(\d+)"', 'g') AS m
  LEFT JOIN wagtailimages_image i ON i.id = m[1]::int
UNION ALL SELECT p.url_path || ' @ ' || r.created_at, 'revision', 'hero', i.title
  FROM wagtailcore_revision r JOIN wagtailcore_page p ON p.id::text = r.object_id
  LEFT JOIN wagtailimages_image i ON i.id = (r.content ->> 'hero')::int WHERE r.content ? 'hero'
UNION ALL SELECT p.url_path || ' @ ' || r.created_at, 'revision', 'page', op.url_path
  FROM wagtailcore_revision r JOIN wagtailcore_page p ON p.id::text = r.object_id
  LEFT JOIN wagtailcore_page op ON op.id = (r.content ->> 'pk')::int
UNION ALL SELECT p.url_path || ' @ ' || r.created_at, 'revision', 'locale', l.language_code
  FROM wagtailcore_revision r JOIN wagtailcore_page p ON p.id::text = r.object_id
  LEFT JOIN wagtailcore_locale l ON l.id = (r.content ->> 'locale')::int
UNION ALL SELECT p.url_path || ' @ ' || r.created_at, 'revision', 'tag', t.name || ' on ' || tp.url_path
  FROM wagtailcore_revision r JOIN wagtailcore_page p ON p.id::text = r.object_id
  CROSS JOIN LATERAL jsonb_array_elements(r.content -> 'tagged_items') AS ti
  LEFT JOIN taggit_tag t ON t.id = (ti ->> 'tag')::int
  LEFT JOIN wagtailcore_page tp ON tp.id = (ti ->> 'content_object')::int
UNION ALL SELECT p.url_path || ' @ ' || r.created_at, 'revision', 'tag row', t.name || ' on ' || tp.url_path
  FROM wagtailcore_revision r JOIN wagtailcore_page p ON p.id::text = r.object_id
  CROSS JOIN LATERAL jsonb_array_elements(r.content -> 'tagged_items') AS ti
  LEFT JOIN site_app_blogpagetag bt ON bt.id = (ti ->> 'pk')::int
  LEFT JOIN taggit_tag t ON t.id = bt.tag_id LEFT JOIN wagtailcore_page tp ON tp.id = bt.content_object_id
UNION ALL SELECT p.url_path || ' @ ' || r.created_at, 'revision', 'link', lp.url_path || ' ' || (li ->> 'url')
  FROM wagtailcore_revision r JOIN wagtailcore_page p ON p.id::text = r.object_id
  CROSS JOIN LATERAL jsonb_array_elements(r.content -> 'related_links') AS li
  LEFT JOIN wagtailcore_page lp ON lp.id = (li ->> 'page')::int
UNION ALL SELECT p.url_path || ' @ ' || r.created_at, 'revision', 'link row', lp.url_path || ' ' || l.url
  FROM wagtailcore_revision r JOIN wagtailcore_page p ON p.id::text = r.object_id
  CROSS JOIN LATERAL jsonb_array_elements(r.content -> 'related_links') AS li
  LEFT JOIN site_app_blogpagerelatedlink l ON l.id = (li ->> 'pk')::int
  LEFT JOIN wagtailcore_page lp ON lp.id = l.page_id
ORDER BY 1, 2, 3, 4
"""

# the site by value: equal in two databases whose ids and tree positions differ
VIEWS = {
    "pages": """SELECT p.url_path, p.title, p.slug, p.depth, p.live, p.has_unpublished_changes,
                       ct.app_label || '.' || ct.model
                FROM wagtailcore_page p JOIN django_content_type ct ON ct.id = p.content_type_id
                ORDER BY 1""",
    # every node by its natural key and its parent's, never its position
    "page_tree": """SELECT c.url_path, p.url_path FROM wagtailcore_page c
                    LEFT JOIN wagtailcore_page p ON p.path = substr(c.path, 1, length(c.path) - 4)
                    ORDER BY 1""",
    "collections": """SELECT c.name, c.depth, p.name FROM wagtailcore_collection c
                      LEFT JOIN wagtailcore_collection p ON p.path = substr(c.path, 1, length(c.path) - 4)
                      ORDER BY 1""",
    "posts": """SELECT p.url_path, b.date, i.title FROM site_app_blogpage b
                JOIN wagtailcore_page p ON p.id = b.page_ptr_id
                LEFT JOIN wagtailimages_image i ON i.id = b.hero_id ORDER BY 1""",
    "tags": """SELECT p.url_path, t.name FROM site_app_blogpagetag bt JOIN taggit_tag t ON t.id = bt.tag_id
               JOIN wagtailcore_page p ON p.id = bt.content_object_id ORDER BY 1, 2""",
    "links": """SELECT p.url_path, l.sort_order, l.name, l.url FROM site_app_blogpagerelatedlink l
                JOIN wagtailcore_page p ON p.id = l.page_id ORDER BY 1, 2""",
    "images": """SELECT i.title, c.name FROM wagtailimages_image i
                 JOIN wagtailcore_collection c ON c.id = i.collection_id ORDER BY 1""",
    "image_tags": """SELECT i.title, t.name, t.slug FROM taggit_taggeditem ti JOIN taggit_tag t ON t.id = ti.tag_id
                     JOIN django_content_type ct ON ct.id = ti.content_type_id AND ct.model = 'image'
                     JOIN wagtailimages_image i ON i.id = ti.object_id ORDER BY 1, 2""",
    "revisions": """SELECT p.url_path, r.object_str, r.created_at, p.latest_revision_id = r.id,
                           p.live_revision_id = r.id
                    FROM wagtailcore_revision r JOIN wagtailcore_page p ON p.id::text = r.object_id
                    ORDER BY 1, 3""",
    "group_permissions": """SELECT g.name, ct.app_label, pm.codename FROM auth_group_permissions x
                            JOIN auth_group g ON g.id = x.group_id JOIN auth_permission pm ON pm.id = x.permission_id
                            JOIN django_content_type ct ON ct.id = pm.content_type_id ORDER BY 1, 2, 3""",
    "page_permissions": """SELECT g.name, p.url_path, pm.codename FROM wagtailcore_grouppagepermission x
                           JOIN auth_group g ON g.id = x.group_id JOIN wagtailcore_page p ON p.id = x.page_id
                           JOIN auth_permission pm ON pm.id = x.permission_id ORDER BY 1, 2, 3""",
    "collection_permissions": """SELECT g.name, c.name, pm.codename FROM wagtailcore_groupcollectionpermission x
                                 JOIN auth_group g ON g.id = x.group_id
                                 JOIN wagtailcore_collection c ON c.id = x.collection_id
                                 JOIN auth_permission pm ON pm.id = x.permission_id ORDER BY 1, 2, 3""",
    "embedded": NAMED,
}

# the target's own nodes with their positions and children
OWN = """SELECT 'page', url_path, path, numchild FROM wagtailcore_page WHERE slug = 'target-news'
UNION ALL SELECT 'collection', name, path, numchild FROM wagtailcore_collection WHERE name = 'Target assets'
UNION ALL SELECT 'image', i.title, c.path, i.id FROM wagtailimages_image i
  JOIN wagtailcore_collection c ON c.id = i.collection_id WHERE i.title = 'target-logo'
UNION ALL SELECT 'group', name, '', id FROM auth_group WHERE name = 'Target editors'
ORDER BY 1, 2"""

# Wagtail on the imported site: publish the first imported draft (a revision the import
# wrote), add a page under the source's blog index and one under the target's own page
AFTERWARDS = """
import django; django.setup()
from site_app.models import BlogIndexPage, BlogPage
from wagtail.models import Page
draft = BlogPage.objects.filter(has_unpublished_changes=True).order_by("path").first()
draft = draft.get_latest_revision_as_object()
draft.title = draft.title + " (published)"
draft.save_revision().publish()
blog = BlogIndexPage.objects.get(slug="blog")
blog.add_child(instance=BlogPage(title="After the import", slug="after-the-import", date="2025-01-01"))
news = BlogIndexPage.objects.get(slug="target-news")
news.add_child(instance=BlogPage(title="Target post", slug="target-post", date="2025-01-02"))
print(draft.url_path, Page.objects.get(slug="after-the-import").path)
"""


def _view(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    return {name: fetch(dsn, query) for name, query in VIEWS.items()}


def _cli(dsn: str, *args: str, check: bool = True) -> Any:
    """``edms-pgdump ARGS`` as a user runs it (a subprocess in the site's folder)."""
    return harness.run(dsn, "-m", "edms_pgdump", *args, check=check)


def _problems(dsn: str, mapping: Path) -> dict[tuple[str, str, str | None], dict[str, Any]]:
    proc = _cli(dsn, "check", "-m", str(mapping), "--json", "--dsn", dsn, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # warnings only
    return {(p["code"], p["table"], p.get("column")): p for p in json.loads(proc.stdout)["problems"]}


@pytest.fixture(scope="module")
def mapping_path(wagtail_source: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Step 1: what ``init --django`` writes, untouched."""
    out = tmp_path_factory.mktemp("wagtail") / "mapping.yaml"
    proc = _cli(wagtail_source, "init", "--django", "settings", "-o", str(out))
    assert "passes check" in proc.stderr, proc.stderr
    return out


@pytest.fixture(scope="module")
def recipe_mapping(mapping_path: Path) -> Path:
    """Step 3: init's mapping plus the docs' recipe, nothing else."""
    out = mapping_path.with_name("recipe.yaml")
    data = recipe.apply(yaml.safe_load(mapping_path.read_text()))
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


@pytest.fixture(scope="module")
def exported(wagtail_source: str, recipe_mapping: Path) -> tuple[Path, str]:
    """Step 4: ``export`` with that mapping (once for the module): the archive and what it said."""
    out = recipe_mapping.with_name("site.edms")
    proc = _cli(
        wagtail_source,
        "export",
        "--dsn",
        wagtail_source,
        "-m",
        str(recipe_mapping),
        "-o",
        str(out),
        "--verbose",
    )
    return out, proc.stdout + proc.stderr


def test_init_writes_the_keys_django_shapes_need(mapping_path: Path) -> None:
    text = mapping_path.read_text()
    tables = yaml.safe_load(text)["tables"]
    key = {name: tables[name]["natural_key"] for name in tables}
    # page types are keyed by their parent link, not the inherited natural_key() (url_path)
    assert key["public.site_app_blogpage"] == ["page_ptr_id"]
    assert key["public.site_app_blogindexpage"] == ["page_ptr_id"]
    # taggit's natural_key_fields (object_id) is part of a unique constraint: the constraint wins
    assert sorted(key["public.taggit_taggeditem"]) == ["content_type_id", "object_id", "tag_id"]
    # Wagtail's natural_key() (url_path) names no part of a constraint: it stays
    assert key["public.wagtailcore_page"] == ["url_path"]
    # a tree's positions are never a key; the treebeard trees are declared, page types hold none
    positions = {"path", "depth", "numchild"}
    assert not positions & set(key["public.wagtailcore_page"])
    assert not positions & set(key["public.wagtailcore_collection"])
    assert tables["public.wagtailcore_page"]["tree"] == {"kind": "materialized_path"}
    assert tables["public.wagtailcore_collection"]["tree"] == {"kind": "materialized_path"}
    assert "tree" not in tables["public.site_app_blogpage"]
    # tables with rows and no key travel (keyed by their values); page history's ids
    # without FKs travel as references
    assert "public.site_app_blogpagerelatedlink" in tables and "public.site_app_blogpagetag" in tables
    refs = {r["columns"][0]: r["table"] for r in tables["public.wagtailcore_pagelogentry"]["references"]}
    assert refs["page_id"] == "public.wagtailcore_page"
    assert refs["revision_id"] == "public.wagtailcore_revision"
    # permissions travel: groups, their page and collection permissions
    for table in ("auth_group", "wagtailcore_grouppagepermission", "wagtailcore_groupcollectionpermission"):
        assert f"public.{table}" in tables, table
    # only the rebuildable indexes and installation state are excluded
    exclude = yaml.safe_load(text)["exclude"]
    assert "public.wagtailcore_referenceindex" in exclude and "public.django_session" in exclude
    assert "public.wagtailcore_page" not in exclude and "public.taggit_tag" not in exclude


def test_docs_show_the_recipe_the_test_applies() -> None:
    """docs/django.md's ``embedded_references:`` block is the recipe this module applies."""
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs/django.md").read_text(), re.S)
    [shown] = [yaml.safe_load(b) for b in blocks if "embedded_references" in b]
    assert {table: shown[table]["embedded_references"] for table in shown} == recipe.RECIPE


def test_revision_content_keeps_the_stream_as_a_json_string(wagtail_source: str) -> None:
    """What the recipe's ``.json()`` step is for."""
    [(kind,)] = fetch(
        wagtail_source,
        "SELECT DISTINCT jsonb_typeof(content -> 'body') FROM wagtailcore_revision WHERE content ? 'body'",
    )
    assert kind == "string"


def test_a_site_moves_into_a_target_with_content_of_its_own(
    wagtail_source: str,
    wagtail_target: str,
    mapping_path: Path,
    recipe_mapping: Path,
    exported: tuple[Path, str],
) -> None:
    """The acceptance path of issue 24, step by step."""
    source, target = wagtail_source, wagtail_target

    # check on init's mapping: no error; it asks for the embedded ids (the recipe) and
    # names the rows of the rebuildable indexes it leaves out; nothing else
    found = _problems(source, mapping_path)
    assert not [p for p in found.values() if p["severity"] == "error"]
    asks = {key for key in found if key[0] == "embedded-ids"}
    assert asks == {
        ("embedded-ids", "public.site_app_blogpage", "body"),
        ("embedded-ids", "public.wagtailcore_revision", "content"),
    }
    assert all("embedded_references" in found[key]["fix"] for key in asks)
    [(indexed,)] = fetch(source, "SELECT count(*) FROM wagtailcore_referenceindex")
    left_out = found[("excluded-has-rows", "public.wagtailcore_referenceindex", None)]
    assert indexed > 0 and f"{indexed} row(s) are left out" in left_out["message"]
    assert ("tree-position", "public.wagtailcore_page", "path") not in found  # the trees are declared
    # with the recipe, check stops asking for it and says the same about the rest
    with_recipe = _problems(source, recipe_mapping)
    assert set(with_recipe) == set(found) - asks

    # export: it names the rows it leaves out
    archive, said = exported
    assert "wagtailcore_referenceindex" in said and "left out of every export" in said, said

    # import into a migrated site whose own nodes hold the first positions (and the first ids)
    own, own_view = fetch(target, OWN), _view(target)
    assert [kind for kind, *_ in own] == ["collection", "group", "image", "page"]
    proc = _cli(target, "import", "--dsn", target, str(archive))
    assert "committed" in proc.stdout, proc.stdout + proc.stderr

    # the site by value: the source's rows plus the target's own, nothing else
    source_view, target_view = _view(source), _view(target)
    assert len(source_view["pages"]) == WAGTAIL_PAGES + 3  # root, home, blog index
    for name, rows in source_view.items():
        assert rows, name
        assert Counter(target_view[name]) == Counter(rows) | Counter(own_view[name]), name
    named = source_view["embedded"]
    assert len(named) > 4 * WAGTAIL_PAGES and all(value is not None for *_, value in named)
    assert {what for _, _, what, _ in named} == {
        "image block",
        "page link",
        "image embed",
        "hero",
        "page",
        "locale",
        "tag",
        "tag row",
        "link",
        "link row",
    }
    # the target's own nodes keep their positions, children and ids
    assert fetch(target, OWN) == own
    # the ids really differ: an id travelling raw would name another row
    shifted = "SELECT min(id) FROM wagtailimages_image WHERE title LIKE 'photo-%'"
    assert fetch(target, shifted) != fetch(source, shifted)
    # treebeard: no problem; the shared ancestors count both sides' children
    assert harness.tree_problems(target) == (0, 0)
    [(home_children,)] = fetch(target, "SELECT numchild FROM wagtailcore_page WHERE depth = 2")
    assert home_children == 2  # Target news and Blog
    [(root_children,)] = fetch(target, "SELECT numchild FROM wagtailcore_collection WHERE depth = 1")
    assert root_children == 3  # Target assets, Photos, Downloads

    # a re-import writes nothing
    before = db_digest(target)
    again = _cli(target, "import", "--dsn", target, str(archive), "--no-history")
    assert "0 inserted, 0 updated" in again.stdout, again.stdout
    assert db_digest(target) == before

    # Wagtail afterwards: an imported draft is published with what it named in the source
    # (its images and page links land on the same rows, its tags and related links stay
    # its own rows, other pages' are untouched), pages are added on both sides
    children = {name: target_view[name] for name in ("tags", "links", "image_tags", "page_permissions")}
    out = harness.run(target, "-c", AFTERWARDS).stdout.split()
    assert out[0].startswith("/home/blog/post-") and len(out[1]) == 16
    page = out[0]
    [(title, live, draft)] = fetch(
        target, f"SELECT title, live, has_unpublished_changes FROM wagtailcore_page WHERE url_path = '{page}'"
    )
    assert title.endswith("(draft) (published)") and live and not draft
    named_now = fetch(target, NAMED)
    body = [row for row in named if row[0] == page and row[1] == "body"]
    assert body and [row for row in named_now if row[0] == page and row[1] == "body"] == body
    # every revision of it, the new one included, names this page and attaches its tags to it
    mine = [
        row for row in named_now if row[0].startswith(page + " @ ") and row[2] in ("page", "tag", "tag row")
    ]
    assert len(mine) == 3 * 7 and all(value.endswith(page) for *_, value in mine), mine
    for name, rows in children.items():
        now = fetch(target, VIEWS[name])
        assert now == rows, (name, sorted(set(now) - set(rows)), sorted(set(rows) - set(now)))
    assert harness.tree_problems(target) == (0, 0)
    [(blog_children,)] = fetch(target, "SELECT numchild FROM wagtailcore_page WHERE slug = 'blog'")
    assert blog_children == WAGTAIL_PAGES + 1


def test_a_fresh_target_gets_the_positions_and_ids_it_names(
    exported: tuple[Path, str], new_db: Any, wagtail_migrated: str, wagtail_source: str
) -> None:
    """With no content of its own in the way, every node lands at the source's position;
    with the target's ids far from the source's, every embedded id names the same row."""
    target = new_db(wagtail_migrated)
    push_sequences(target)
    assert api.import_archive(target, exported[0], audit_log=False).committed
    positions = "SELECT url_path, path FROM wagtailcore_page ORDER BY 1"
    assert fetch(target, positions) == fetch(wagtail_source, positions)
    assert fetch(target, NAMED) == fetch(wagtail_source, NAMED)
    [(moved,)] = fetch(target, "SELECT min(id) FROM wagtailimages_image WHERE title LIKE 'photo-%'")
    assert moved > 100_000
    assert harness.tree_problems(target) == (0, 0)
