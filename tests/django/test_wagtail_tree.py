"""Wagtail's trees by natural key (issue 24, item 3): ``init --django`` declares the
treebeard trees (pages, collections) as ``tree: {kind: materialized_path}``, and a site
moves into a migrated target whose own page and collection already hold the first tree
positions. The target's nodes keep their positions and children, the source's land
after them under the same parents, treebeard's ``find_problems()`` reports nothing, a
re-import writes nothing, and Wagtail publishes a draft and adds a page afterwards.

Reuses the site and fixtures of ``test_django_wagtail``; runs once per CI, on the
embedded PostgreSQL 18.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from edms_pgdump import api
from edms_pgdump.mapping import load_mapping
from tests.support.db import db_digest
from tests.support.django_dbs import wagtail_migrated, wagtail_source, wagtail_target
from tests.support.real_schemas import fetch

pytestmark = [
    pytest.mark.skipif(
        bool(os.environ.get("EDMS_PGDUMP_TEST_DSN")), reason="runs once per CI, on the embedded PostgreSQL 18"
    ),
]
pytest.importorskip("wagtail")

from tests.django.test_django_wagtail import VIEWS, mapping_path  # noqa: E402
from tests.django_wagtail import harness  # noqa: E402

__all__ = ["mapping_path", "wagtail_migrated", "wagtail_source", "wagtail_target"]

WAGTAIL_PAGES = 40

# every node by value: its natural key (url_path, name) and its parent's, never its position
PAGE_TREE = """SELECT c.url_path, c.title, c.slug, c.depth, p.url_path FROM wagtailcore_page c
LEFT JOIN wagtailcore_page p ON p.path = substr(c.path, 1, length(c.path) - 4) AND c.depth > 1 ORDER BY 1"""
COLLECTION_TREE = """SELECT c.name, c.depth, p.name FROM wagtailcore_collection c
LEFT JOIN wagtailcore_collection p ON p.path = substr(c.path, 1, length(c.path) - 4) AND c.depth > 1
ORDER BY 1"""
OWN = """SELECT 'page', url_path, path, numchild FROM wagtailcore_page WHERE slug = 'target-news'
UNION ALL SELECT 'collection', name, path, numchild FROM wagtailcore_collection WHERE name = 'Target assets'
UNION ALL SELECT 'image', i.title, c.path, 0 FROM wagtailimages_image i
  JOIN wagtailcore_collection c ON c.id = i.collection_id WHERE i.title = 'target-logo'
ORDER BY 1, 2"""

AFTERWARDS = """
import django; django.setup()
from site_app.models import BlogIndexPage, BlogPage
from wagtail.models import Page
draft = BlogPage.objects.filter(has_unpublished_changes=True).order_by("path").first()
draft.title = draft.title + " (published)"
draft.save_revision().publish()
blog = BlogIndexPage.objects.get(slug="blog")
blog.add_child(instance=BlogPage(title="After the import", slug="after-the-import", date="2025-01-01"))
news = BlogIndexPage.objects.get(slug="target-news")
news.add_child(instance=BlogPage(title="Target post", slug="target-post", date="2025-01-02"))
print(draft.url_path, Page.objects.get(slug="after-the-import").path)
"""


@pytest.fixture(scope="module")
def archive(wagtail_source: str, mapping_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wagtail_tree") / "site.edms"
    api.export_archive(wagtail_source, load_mapping(mapping_path), out, audit_log=False)
    return out


def test_init_declares_the_treebeard_trees(mapping_path: Path) -> None:
    tables = yaml.safe_load(mapping_path.read_text())["tables"]
    assert tables["public.wagtailcore_page"]["tree"] == {"kind": "materialized_path"}
    assert tables["public.wagtailcore_collection"]["tree"] == {"kind": "materialized_path"}
    # a page type's table holds no tree of its own (its parent's table does)
    assert "tree" not in tables["public.site_app_blogpage"]


def test_check_no_longer_warns_about_declared_positions(mapping_path: Path, wagtail_source: str) -> None:
    report = api.check_mapping(dsn=wagtail_source, mapping=mapping_path)
    assert not [p for p in report.problems if p.code == "tree-position"]


def test_a_target_with_its_own_tree_takes_the_site_beside_it(
    archive: Path, wagtail_source: str, wagtail_target: str
) -> None:
    own = fetch(wagtail_target, OWN)
    assert own  # the target's page and collection sit at the first positions under their parents
    report = api.import_archive(wagtail_target, archive, audit_log=False)
    assert report.committed
    # the source's nodes under the same parents, by natural key
    assert set(fetch(wagtail_source, PAGE_TREE)) <= set(fetch(wagtail_target, PAGE_TREE))
    assert set(fetch(wagtail_source, COLLECTION_TREE)) <= set(fetch(wagtail_target, COLLECTION_TREE))
    for name in ("posts", "tags", "links", "images", "image_tags", "revisions"):
        assert set(fetch(wagtail_source, VIEWS[name])) <= set(fetch(wagtail_target, VIEWS[name])), name
    # the target's own nodes keep their positions, children and images
    assert fetch(wagtail_target, OWN) == own
    assert harness.tree_problems(wagtail_target) == (0, 0)
    # the shared ancestors count both sides' children
    [(home_children,)] = fetch(wagtail_target, "SELECT numchild FROM wagtailcore_page WHERE depth = 2")
    assert home_children == 2  # Target news and Blog
    [(root_children,)] = fetch(wagtail_target, "SELECT numchild FROM wagtailcore_collection WHERE depth = 1")
    assert root_children == 3  # Target assets, Photos, Downloads

    before = db_digest(wagtail_target)
    again = api.import_archive(wagtail_target, archive, audit_log=False, history=False)
    assert again.committed and sum(t.inserted + t.updated for t in again.tables) == 0
    assert db_digest(wagtail_target) == before

    # Wagtail works on the tree afterwards: publish a draft, add pages on both sides
    out = harness.run(wagtail_target, "-c", AFTERWARDS).stdout.split()
    assert out[0].startswith("/home/blog/post-") and len(out[1]) == 16
    assert harness.tree_problems(wagtail_target) == (0, 0)
    [(blog_children,)] = fetch(wagtail_target, "SELECT numchild FROM wagtailcore_page WHERE slug = 'blog'")
    assert blog_children == WAGTAIL_PAGES + 1


def test_the_fresh_target_gets_the_positions_the_source_had(
    archive: Path, new_db: Any, wagtail_migrated: str, wagtail_source: str
) -> None:
    """With no content of its own in the way, every node lands at the source's position."""
    target = new_db(wagtail_migrated)
    assert api.import_archive(target, archive, audit_log=False).committed
    assert fetch(target, "SELECT url_path, path FROM wagtailcore_page ORDER BY 1") == fetch(
        wagtail_source, "SELECT url_path, path FROM wagtailcore_page ORDER BY 1"
    )
    assert harness.tree_problems(target) == (0, 0)
