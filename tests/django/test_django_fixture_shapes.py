"""import-fixture on Django's two shapes Wagtail dumps have (issue 24), on a minimal
plain-SQL schema with fixtures written as dumpdata writes them:

* a multi-table-inheritance child (``site.blogpage``, primary key ``page_ptr_id``, the
  link to its parent ``core.page``): with ``--natural-foreign`` it carries only its pk
  (the parent's pk; the parent is a separate object), with ``--natural-primary`` no pk
  and a ``page_ptr`` field holding the parent's natural key;
* a natural key that is a path of ancestors' names (Wagtail's ``Collection``:
  ``["Root", "Photos"]``) against a mapping keyed by one column (``name``), resolved in
  the fixture's own treebeard tree, or refused with a fix that is then shown to work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edms_pgdump import api
from edms_pgdump.errors import EdmsPgdumpError
from edms_pgdump.mapping import load_mapping_text
from tests.support.db import db_digest
from tests.support.real_schemas import fetch, make_db

SCHEMA = """
CREATE TABLE core_page (id serial PRIMARY KEY, url_path text NOT NULL UNIQUE, title text NOT NULL);
CREATE TABLE site_blogpage (page_ptr_id integer PRIMARY KEY REFERENCES core_page (id), body text NOT NULL);
CREATE TABLE core_workflowpage (page_id integer PRIMARY KEY REFERENCES core_page (id), name text NOT NULL);
CREATE TABLE core_collection (id serial PRIMARY KEY, path varchar(255) NOT NULL UNIQUE, depth integer NOT NULL,
  numchild integer NOT NULL, name text NOT NULL UNIQUE);
CREATE TABLE media_image (id serial PRIMARY KEY, title text NOT NULL UNIQUE,
  collection_id integer NOT NULL REFERENCES core_collection (id),
  post_id integer REFERENCES site_blogpage (page_ptr_id));
"""

# a migrated target with content of its own at the first ids
TARGET = """
INSERT INTO core_page (url_path, title) VALUES ('/', 'Root'), ('/own/', 'Own page');
INSERT INTO core_collection (path, depth, numchild, name) VALUES ('0001', 1, 0, 'Root');
SELECT setval('core_collection_id_seq', 50);
"""

MAPPING = load_mapping_text("""
version: 1
tables:
  public.core_page: {natural_key: [url_path]}
  public.site_blogpage: {natural_key: [page_ptr_id]}
  public.core_workflowpage: {natural_key: [page_id]}
  public.core_collection: {natural_key: [name]}
  public.media_image: {natural_key: [title]}
""")

COLLECTIONS_NF = [
    {
        "model": "core.collection",
        "pk": 1,
        "fields": {"path": "0001", "depth": 1, "numchild": 2, "name": "Root"},
    },
    {
        "model": "core.collection",
        "pk": 2,
        "fields": {"path": "00010001", "depth": 2, "numchild": 1, "name": "Photos"},
    },
    {
        "model": "core.collection",
        "pk": 3,
        "fields": {"path": "000100010001", "depth": 3, "numchild": 0, "name": "Raw"},
    },
    {
        "model": "core.collection",
        "pk": 4,
        "fields": {"path": "00010002", "depth": 2, "numchild": 0, "name": "Docs"},
    },
]
PAGES_NF = [
    {"model": "core.page", "pk": 1, "fields": {"url_path": "/", "title": "Root"}},
    {"model": "core.page", "pk": 2, "fields": {"url_path": "/blog/", "title": "Blog"}},
    {"model": "core.page", "pk": 3, "fields": {"url_path": "/blog/two/", "title": "Two"}},
    {"model": "site.blogpage", "pk": 2, "fields": {"body": "first post"}},
    {"model": "site.blogpage", "pk": 3, "fields": {"body": "second post"}},
]
IMAGES = [
    {
        "model": "media.image",
        "pk": 1,
        "fields": {"title": "a", "collection": ["Root", "Photos"], "post": ["/blog/"]},
    },
    {
        "model": "media.image",
        "pk": 2,
        "fields": {"title": "b", "collection": ["Root", "Photos", "Raw"], "post": None},
    },
    {
        "model": "media.image",
        "pk": 3,
        "fields": {"title": "c", "collection": ["Root"], "post": ["/blog/two/"]},
    },
    {
        "model": "media.image",
        "pk": 4,
        "fields": {"title": "d", "collection": ["Root", "Docs"], "post": ["/blog/two/"]},
    },
]


def _natural_primary(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What --natural-primary makes of them: no pk where the model has natural_key()
    (all of these), and the child's parent link written as the parent's natural key."""
    out = []
    urls = {o["pk"]: o["fields"]["url_path"] for o in objects if o["model"] == "core.page"}
    for o in objects:
        o = {k: v for k, v in o.items() if k != "pk"}
        if o["model"] == "site.blogpage":
            pk = next(p for p in PAGES_NF if p["model"] == "site.blogpage" and p["fields"] == o["fields"])[
                "pk"
            ]
            o["fields"] = {"page_ptr": [urls[pk]], **o["fields"]}
        out.append(o)
    return out


# the labels a mapping's types: entry gives (init --django writes them); here as --table
LABELS = {"core.collection": "public.core_collection"}

# the site by value: equal in two databases whose ids differ
VIEW = {
    "posts": "SELECT p.url_path, p.title, b.body FROM site_blogpage b JOIN core_page p ON p.id = b.page_ptr_id "
    "ORDER BY 1",
    "images": "SELECT i.title, c.name, c.path, p.url_path FROM media_image i "
    "JOIN core_collection c ON c.id = i.collection_id LEFT JOIN core_page p ON p.id = i.post_id ORDER BY 1",
}
EXPECTED = {
    "posts": [("/blog/", "Blog", "first post"), ("/blog/two/", "Two", "second post")],
    "images": [
        ("a", "Photos", "00010001", "/blog/"),
        ("b", "Raw", "000100010001", None),
        ("c", "Root", "0001", "/blog/two/"),
        ("d", "Docs", "00010002", "/blog/two/"),
    ],
}


def _write(path: Path, objects: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(objects))
    return path


def _view(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    return {k: fetch(dsn, q) for k, q in VIEW.items()}


@pytest.mark.parametrize("primary", [False, True], ids=["natural-foreign", "natural-primary"])
def test_child_by_parent_link_and_collection_by_path_of_names(
    new_db: Any, tmp_path: Path, primary: bool
) -> None:
    objects = [*COLLECTIONS_NF, *PAGES_NF, *IMAGES]
    fixture = _write(tmp_path / "dump.json", _natural_primary(objects) if primary else objects)
    dst = make_db(new_db, SCHEMA, TARGET)
    report = api.import_fixture(dst, fixture, MAPPING, audit_log=False)
    assert report.committed
    assert _view(dst) == EXPECTED
    # the child's pk is its parent's id in the target (ids differ from the fixture's)
    assert fetch(dst, "SELECT p.url_path, b.page_ptr_id FROM site_blogpage b JOIN core_page p ON p.id = b.page_ptr_id "
                 "ORDER BY 1") == [("/blog/", 3), ("/blog/two/", 4)]  # fmt: skip
    assert fetch(dst, "SELECT url_path FROM core_page ORDER BY id") == [
        ("/",),
        ("/own/",),
        ("/blog/",),
        ("/blog/two/",),
    ]
    again = api.import_fixture(dst, fixture, MAPPING, audit_log=False)
    assert again.inserted == 0 and again.updated == 0


def test_a_path_of_names_without_the_tree_in_the_fixture_is_refused_and_the_fix_works(
    new_db: Any, tmp_path: Path
) -> None:
    dst = make_db(new_db, SCHEMA, TARGET)
    before = db_digest(dst)
    only_images = _write(tmp_path / "images.json", [*PAGES_NF, *IMAGES])
    with pytest.raises(EdmsPgdumpError) as exc:
        api.import_fixture(dst, only_images, MAPPING, audit_log=False, tables=LABELS)
    message = str(exc.value)
    assert "natural key ['Root', 'Photos'] has 2 value(s) but public.core_collection is keyed by 1" in message
    assert "the fixture holds no core.collection objects" in message
    assert "no public.core_collection row of the target has that path of names either" in message
    assert "include core.collection in the dump" in message
    assert db_digest(dst) == before
    # the fix the message names: the collections in the same dump
    with_tree = _write(tmp_path / "with_tree.json", [*COLLECTIONS_NF, *PAGES_NF, *IMAGES])
    assert api.import_fixture(dst, with_tree, MAPPING, audit_log=False).committed
    assert _view(dst) == EXPECTED
    # now the target holds the collections: the paths are found in its tree, as loaddata's
    # get_by_natural_key() finds them
    changed = [
        {**o, "fields": {**o["fields"], "post": None}} if o["model"] == "media.image" else o for o in IMAGES
    ]
    again = api.import_fixture(
        dst, _write(tmp_path / "again.json", [*PAGES_NF, *changed]), MAPPING, audit_log=False
    )
    assert again.committed and again.updated == 3
    assert [r[:3] for r in _view(dst)["images"]] == [r[:3] for r in EXPECTED["images"]]
    assert fetch(dst, "SELECT count(*) FROM media_image WHERE post_id IS NOT NULL") == [(0,)]


def test_a_path_that_names_no_collection_is_refused(new_db: Any, tmp_path: Path) -> None:
    dst = make_db(new_db, SCHEMA, TARGET)
    before = db_digest(dst)
    bad = [
        *IMAGES[:1],
        {
            "model": "media.image",
            "pk": 9,
            "fields": {"title": "z", "collection": ["Root", "Nope"], "post": None},
        },
    ]
    fixture = _write(tmp_path / "bad.json", [*COLLECTIONS_NF, *PAGES_NF, *bad])
    with pytest.raises(EdmsPgdumpError) as exc:
        api.import_fixture(dst, fixture, MAPPING, audit_log=False)
    message = str(exc.value)
    assert "media.image (object 11).collection: natural key ['Root', 'Nope']" in message
    assert "no object in the fixture has that path of name values" in message
    assert db_digest(dst) == before


def test_a_natural_primary_pk_naming_an_object_without_pk_is_refused_and_both_fixes_work(
    new_db: Any, tmp_path: Path
) -> None:
    """A one-to-one primary key to a model with natural_key() (Wagtail's WorkflowPage):
    --natural-primary keeps the holder's pk (it has no natural_key()) but drops the
    page's, so nothing in the file says which page it was."""
    workflow = {"model": "core.workflowpage", "pk": 2, "fields": {"name": "review"}}
    dst = make_db(new_db, SCHEMA, TARGET)
    before = db_digest(dst)
    fixture = _write(
        tmp_path / "np.json", [*_natural_primary([*COLLECTIONS_NF, *PAGES_NF, *IMAGES]), workflow]
    )
    with pytest.raises(EdmsPgdumpError) as exc:
        api.import_fixture(dst, fixture, MAPPING, audit_log=False)
    message = str(exc.value)
    assert "core.workflowpage (object 14).pk holds pk 2 of core.page" in message
    assert "dump with --natural-foreign alone" in message
    assert "leave core.workflowpage out of this dump (dumpdata -e core.workflowpage)" in message
    assert db_digest(dst) == before
    # fix 1: --natural-foreign alone (pks kept): the workflow lands on /blog/
    nf = _write(tmp_path / "nf.json", [*COLLECTIONS_NF, *PAGES_NF, *IMAGES, workflow])
    assert api.import_fixture(dst, nf, MAPPING, audit_log=False).committed
    assert fetch(
        dst, "SELECT p.url_path, w.name FROM core_workflowpage w JOIN core_page p ON p.id = w.page_id"
    ) == [("/blog/", "review")]
    # fix 2: the same natural-primary dump without the holder
    other = make_db(new_db, SCHEMA, TARGET)
    without = _write(tmp_path / "np2.json", _natural_primary([*COLLECTIONS_NF, *PAGES_NF, *IMAGES]))
    assert api.import_fixture(other, without, MAPPING, audit_log=False).committed
    assert _view(other) == EXPECTED


GENERIC_SCHEMA = """
CREATE TABLE django_content_type (id serial PRIMARY KEY, app_label text NOT NULL, model text NOT NULL,
  UNIQUE (app_label, model));
CREATE TABLE media_photo (id serial PRIMARY KEY, title text NOT NULL, taken_at timestamptz NOT NULL,
  price numeric(8, 2) NOT NULL, UNIQUE (title, taken_at, price));
CREATE TABLE core_note (id serial PRIMARY KEY, label text NOT NULL UNIQUE,
  content_type_id integer NOT NULL REFERENCES django_content_type (id), object_id integer NOT NULL);
INSERT INTO django_content_type (app_label, model) VALUES ('other', 'thing'), ('media', 'photo'), ('core', 'note');
"""

GENERIC_MAPPING = load_mapping_text("""
version: 1
types:
  public.django_content_type: {table_name: "{app_label}_{model}"}
tables:
  public.django_content_type: {natural_key: [app_label, model], export: false}
  public.media_photo: {natural_key: [title, taken_at, price]}
  public.core_note: {natural_key: [label], generic_references: [{type: content_type_id, id: object_id}]}
""")


def test_a_generic_id_naming_a_row_keyed_by_a_timestamp_and_a_decimal(new_db: Any, tmp_path: Path) -> None:
    """Django dumps a DateTimeField as ``...T09:30:00.125Z`` and a DecimalField as a
    string; the generic id's key is compared with the one the target builds from its
    typed columns (``...T09:30:00.125+00:00``, ``12.50``): both spellings must meet."""
    objects = [
        {"model": "media.photo", "pk": 7, "fields": {"title": "a", "taken_at": "2024-05-01T09:30:00.125Z", "price": "12.50"}},
        {"model": "media.photo", "pk": 8, "fields": {"title": "a", "taken_at": "2024-05-01T11:30:00+02:00", "price": "3.00"}},
        {"model": "core.note", "pk": 1, "fields": {"label": "n1", "content_type": ["media", "photo"], "object_id": 7}},
        {"model": "core.note", "pk": 2, "fields": {"label": "n2", "content_type": ["media", "photo"], "object_id": 8}},
    ]  # fmt: skip
    fixture = _write(tmp_path / "generic.json", objects)
    dst = make_db(new_db, GENERIC_SCHEMA, "SELECT setval('media_photo_id_seq', 500)")
    assert api.import_fixture(dst, fixture, GENERIC_MAPPING, audit_log=False).committed
    named = fetch(dst, "SELECT n.label, p.id, p.taken_at::text, p.price::text FROM core_note n "
                  "JOIN media_photo p ON p.id = n.object_id ORDER BY 1")  # fmt: skip
    assert [(label, taken, price) for label, _, taken, price in named] == [
        ("n1", "2024-05-01 09:30:00.125+00", "12.50"),
        ("n2", "2024-05-01 09:30:00+00", "3.00"),
    ]
    assert all(pk > 500 for _, pk, _, _ in named)
    again = api.import_fixture(dst, fixture, GENERIC_MAPPING, audit_log=False)
    assert again.inserted == 0 and again.updated == 0
