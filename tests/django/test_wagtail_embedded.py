"""Wagtail's ids inside JSON and text (issue 24, item 4): StreamField image chooser
blocks, rich-text page links and image embeds inside StreamField paragraphs, and the
same inside revision content (where the StreamField is a JSON string inside JSON), with
the ``embedded_references:`` recipe of docs/django.md added to the mapping
``init --django`` writes. After an import into a migrated site whose ids differ from the
source's, every block, link and embed names the same image or page, a re-import writes
nothing, and ``check`` no longer warns about the declared columns. PostgreSQL 18 only,
like the rest of the Wagtail suite."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from edms_pgdump import api
from edms_pgdump.mapping import load_mapping
from tests.support.django_dbs import wagtail_migrated, wagtail_source  # noqa: F401 (fixtures)
from tests.support.real_schemas import fetch, push_sequences

pytestmark = [
    pytest.mark.skipif(
        bool(os.environ.get("EDMS_PGDUMP_TEST_DSN")), reason="runs once per CI, on the embedded PostgreSQL 18"
    ),
]
pytest.importorskip("wagtail")

from tests.django_wagtail import harness  # noqa: E402

WAGTAIL_PAGES = 40

# the recipe of docs/django.md, for this site's page type and revisions
IMAGES = "public.wagtailimages_image"
PAGES = "public.wagtailcore_page"
PARAGRAPHS = '[*] ? (@.type == "paragraph").value'
LINK = r'<a linktype="page" id="(\d+)"'
EMBED = r'<embed[^>]* embedtype="image"[^>]* id="(\d+)"'
RECIPE: dict[str, list[dict[str, str]]] = {
    "public.site_app_blogpage": [
        {"column": "body", "json": '$[*] ? (@.type == "image").value', "table": IMAGES},
        {"column": "body", "json": "$" + PARAGRAPHS, "pattern": LINK, "table": PAGES},
        {"column": "body", "json": "$" + PARAGRAPHS, "pattern": EMBED, "table": IMAGES},
    ],
    "public.wagtailcore_revision": [
        {"column": "content", "json": '$.body.json()[*] ? (@.type == "image").value', "table": IMAGES},
        {"column": "content", "json": "$.body.json()" + PARAGRAPHS, "pattern": LINK, "table": PAGES},
        {"column": "content", "json": "$.body.json()" + PARAGRAPHS, "pattern": EMBED, "table": IMAGES},
        {"column": "content", "json": "$.hero", "table": IMAGES},
        # what publishing a draft restores from content: its locale, its tags, its links' page
        {"column": "content", "json": "$.locale", "table": "public.wagtailcore_locale"},
        {"column": "content", "json": "$.tagged_items[*].tag", "table": "public.taggit_tag"},
        {"column": "content", "json": "$.tagged_items[*].content_object", "table": PAGES},
        {"column": "content", "json": "$.related_links[*].page", "table": PAGES},
    ],
}

# what every embedded id names, by value: (page, where, what it names)
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
UNION ALL SELECT p.url_path || ' @ ' || r.created_at, 'revision', 'locale', l.language_code
  FROM wagtailcore_revision r JOIN wagtailcore_page p ON p.id::text = r.object_id
  LEFT JOIN wagtailcore_locale l ON l.id = (r.content ->> 'locale')::int
UNION ALL SELECT p.url_path || ' @ ' || r.created_at, 'revision', 'tag', t.name || ' on ' || tp.url_path
  FROM wagtailcore_revision r JOIN wagtailcore_page p ON p.id::text = r.object_id
  CROSS JOIN LATERAL jsonb_array_elements(r.content -> 'tagged_items') AS ti
  LEFT JOIN taggit_tag t ON t.id = (ti ->> 'tag')::int
  LEFT JOIN wagtailcore_page tp ON tp.id = (ti ->> 'content_object')::int
UNION ALL SELECT p.url_path || ' @ ' || r.created_at, 'revision', 'link', lp.url_path || ' ' || (li ->> 'url')
  FROM wagtailcore_revision r JOIN wagtailcore_page p ON p.id::text = r.object_id
  CROSS JOIN LATERAL jsonb_array_elements(r.content -> 'related_links') AS li
  LEFT JOIN wagtailcore_page lp ON lp.id = (li ->> 'page')::int
ORDER BY 1, 2, 3, 4
"""


@pytest.fixture(scope="module")
def recipe_mapping(wagtail_source: str, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    out = tmp_path_factory.mktemp("wagtail_embedded") / "mapping.yaml"
    harness.run(wagtail_source, "-m", "edms_pgdump", "init", "--django", "settings", "-o", str(out))
    data = yaml.safe_load(out.read_text())
    for table, refs in RECIPE.items():
        data["tables"][table]["embedded_references"] = refs
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def test_revision_content_keeps_the_stream_as_a_json_string(wagtail_source: str) -> None:  # noqa: F811
    """What the recipe's ``.json()`` step is for."""
    [(kind,)] = fetch(
        wagtail_source,
        "SELECT DISTINCT jsonb_typeof(content -> 'body') FROM wagtailcore_revision WHERE content ? 'body'",
    )
    assert kind == "string"


def test_check_stops_warning_once_declared(wagtail_source: str, recipe_mapping: Path) -> None:  # noqa: F811
    proc = harness.run(wagtail_source, "-m", "edms_pgdump", "check", "-m", str(recipe_mapping), "--json",
                       "--dsn", wagtail_source, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    problems = json.loads(proc.stdout)["problems"]
    embedded = {(p["table"], p["column"]) for p in problems if p["code"] == "embedded-ids"}
    assert ("public.site_app_blogpage", "body") not in embedded
    assert ("public.wagtailcore_revision", "content") not in embedded
    assert not [p for p in problems if p["severity"] == "error"]


def test_images_and_pages_inside_json_and_text_land_on_the_same_rows(
    wagtail_source: str,  # noqa: F811
    wagtail_migrated: str,  # noqa: F811
    recipe_mapping: Path,
    new_db: Any,
    tmp_path: Path,
) -> None:
    archive = tmp_path / "site.edms"
    api.export_archive(wagtail_source, load_mapping(recipe_mapping), archive, audit_log=False)
    target = new_db(wagtail_migrated)
    push_sequences(target)  # the target's new ids are far from the source's
    report = api.import_archive(target, archive, audit_log=False)
    assert report.committed
    named = fetch(wagtail_source, NAMED)
    kinds = {(src, what) for _, src, what, _ in named}
    blocks = {(s, w) for s in ("body", "revision") for w in ("image block", "page link", "image embed")}
    assert kinds == blocks | {("revision", w) for w in ("hero", "locale", "tag", "link")}
    assert len(named) > 4 * WAGTAIL_PAGES and all(value is not None for *_, value in named)
    assert fetch(target, NAMED) == named
    # the ids really changed: no block names the image that had its id in the source
    [(moved,)] = fetch(target, "SELECT min(id) FROM wagtailimages_image WHERE title LIKE 'photo-%'")
    assert moved > 100_000
    again = api.import_archive(target, archive, audit_log=False)
    assert sum(t.inserted + t.updated for t in again.tables) == 0
    assert harness.tree_problems(target) == (0, 0)
