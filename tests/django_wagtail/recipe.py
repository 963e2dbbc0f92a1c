"""The ``embedded_references:`` recipe of docs/django.md for the test site: the ids inside
the blog page's StreamField (image chooser blocks, rich-text page links and image embeds)
and inside revision content (the same StreamField as a JSON string, the hero image, and
what publishing a draft restores from it). ``tests/django/test_django_wagtail.py`` checks
that docs/django.md shows exactly this."""

from __future__ import annotations

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
        # the page's own id: Wagtail keeps the live page's, but the child rows restored from
        # content are attached to this one when a draft is published
        {"column": "content", "json": "$.pk", "table": PAGES},
        # what publishing a draft restores from content: its locale, its child rows (tags and
        # related links: their own pks too, else Wagtail would overwrite the target's rows
        # that hold those ids), the tags and the pages they name
        {"column": "content", "json": "$.locale", "table": "public.wagtailcore_locale"},
        {"column": "content", "json": "$.tagged_items[*].pk", "table": "public.site_app_blogpagetag"},
        {"column": "content", "json": "$.tagged_items[*].tag", "table": "public.taggit_tag"},
        {"column": "content", "json": "$.tagged_items[*].content_object", "table": PAGES},
        {
            "column": "content",
            "json": "$.related_links[*].pk",
            "table": "public.site_app_blogpagerelatedlink",
        },
        {"column": "content", "json": "$.related_links[*].page", "table": PAGES},
    ],
}


def apply(mapping: dict[str, object]) -> dict[str, object]:
    """MAPPING (as ``init --django`` wrote it, parsed) with the recipe added."""
    tables = mapping["tables"]
    assert isinstance(tables, dict)
    for table, refs in RECIPE.items():
        tables[table]["embedded_references"] = refs
    return mapping
