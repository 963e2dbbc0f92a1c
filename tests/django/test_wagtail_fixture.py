"""``import-fixture`` of a Wagtail site's ``dumpdata`` backups (issue 24, item 5), against
what Django's ``loaddata`` restores from the same dump.

The dumps hold both shapes that were refused before: page types by multi-table
inheritance (with ``--natural-foreign`` a ``site_app.blogpage`` object carries only its
pk, the pk of its separate ``wagtailcore.page`` object; with ``--natural-primary`` no pk
and a ``page_ptr`` field holding the page's natural key), and ``Collection``'s natural
key, the names of its ancestors (``["Root", "Photos"]``), against a mapping keyed by
``name``. The target is a migrated site with content of its own (an image with a tag, a
group) at the first ids, which ``loaddata`` of a ``--natural-foreign`` dump overwrites
(it writes by pk). Trees whose target holds its own nodes at the source's positions are
another matter (``test_django_wagtail``). Wagtail is a test-only dependency; this module
runs once per CI, on the embedded PostgreSQL 18.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from edms_pgdump import api
from edms_pgdump.demo.servers import Server
from edms_pgdump.errors import EdmsPgdumpError
from edms_pgdump.mapping import load_mapping
from tests.support.db import db_digest
from tests.support.real_schemas import fetch

pytestmark = [
    pytest.mark.skipif(
        bool(os.environ.get("EDMS_PGDUMP_TEST_DSN")), reason="runs once per CI, on the embedded PostgreSQL 18"
    ),
]
pytest.importorskip("wagtail")

from tests.django_wagtail import harness  # noqa: E402

WAGTAIL_PAGES = 30

# installation state and what the application rebuilds (update_index, rebuild_references_index)
EXCLUDE = ("-e", "contenttypes", "-e", "auth.permission", "-e", "sessions", "-e", "admin",
           "-e", "wagtailsearch.indexentry", "-e", "wagtailcore.referenceindex")  # fmt: skip

# the site by value: equal in two databases whose ids differ
VIEWS = {
    "pages": """SELECT p.url_path, p.title, p.slug, p.path, p.depth, p.numchild, p.live,
                       p.has_unpublished_changes, ct.app_label || '.' || ct.model, o.username
                FROM wagtailcore_page p JOIN django_content_type ct ON ct.id = p.content_type_id
                LEFT JOIN auth_user o ON o.id = p.owner_id ORDER BY 1""",
    "posts": """SELECT p.url_path, b.date, i.title, b.body FROM site_app_blogpage b
                JOIN wagtailcore_page p ON p.id = b.page_ptr_id
                LEFT JOIN wagtailimages_image i ON i.id = b.hero_id ORDER BY 1""",
    "indexes": """SELECT p.url_path, b.intro FROM site_app_blogindexpage b
                  JOIN wagtailcore_page p ON p.id = b.page_ptr_id ORDER BY 1""",
    "tags": """SELECT p.url_path, t.name FROM site_app_blogpagetag bt JOIN taggit_tag t ON t.id = bt.tag_id
               JOIN wagtailcore_page p ON p.id = bt.content_object_id ORDER BY 1, 2""",
    "links": """SELECT p.url_path, l.sort_order, l.name, l.url FROM site_app_blogpagerelatedlink l
                JOIN wagtailcore_page p ON p.id = l.page_id ORDER BY 1, 2""",
    "collections": "SELECT name, path, depth, numchild FROM wagtailcore_collection ORDER BY path",
    "images": """SELECT i.title, c.name, i.created_at FROM wagtailimages_image i
                 JOIN wagtailcore_collection c ON c.id = i.collection_id ORDER BY 1""",
    "image_tags": """SELECT i.title, t.name FROM taggit_taggeditem ti JOIN taggit_tag t ON t.id = ti.tag_id
                     JOIN django_content_type ct ON ct.id = ti.content_type_id AND ct.model = 'image'
                     JOIN wagtailimages_image i ON i.id = ti.object_id ORDER BY 1, 2""",
    "revisions": """SELECT p.url_path, r.object_str, r.created_at, p.latest_revision_id = r.id,
                           p.live_revision_id = r.id
                    FROM wagtailcore_revision r JOIN wagtailcore_page p ON p.id::text = r.object_id
                    ORDER BY 1, 3""",
    "history": """SELECT p.url_path, l.action, l.timestamp, r.object_str FROM wagtailcore_pagelogentry l
                  JOIN wagtailcore_page p ON p.id = l.page_id
                  LEFT JOIN wagtailcore_revision r ON r.id = l.revision_id ORDER BY 1, 3, 2""",
    "permissions": """SELECT g.name, c.name, pm.codename FROM wagtailcore_groupcollectionpermission x
                      JOIN auth_group g ON g.id = x.group_id JOIN wagtailcore_collection c ON c.id = x.collection_id
                      JOIN auth_permission pm ON pm.id = x.permission_id ORDER BY 1, 2, 3""",
    "groups": "SELECT name FROM auth_group ORDER BY 1",
}

# content of the target's own, at the ids the source's first image, tag and group have
OWN_CONTENT = (
    "import django; django.setup(); "
    "from django.contrib.auth.models import Group; "
    "from wagtail.images.models import Image; from wagtail.models import Collection; "
    "image = Image.objects.create(title='target-logo', file='original_images/target-logo.png', width=10, "
    "height=10, collection=Collection.get_first_root_node()); "
    "image.tags.add('target-tag'); Group.objects.create(name='Target editors')"
)


def _view(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    return {name: fetch(dsn, query) for name, query in VIEWS.items()}


def _with_own(restored: dict[str, list[Any]], own: dict[str, list[Any]], base: dict[str, list[Any]]) -> Any:
    """What the target should hold: the restored site plus the target's own rows
    (those the migrated site did not have)."""
    out = {}
    for name, rows in restored.items():
        mine = [r for r in own[name] if r not in base[name] and r not in rows]
        out[name] = sorted([*rows, *mine], key=repr)
    return out


def _sorted(view: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {name: sorted(rows, key=repr) for name, rows in view.items()}


@pytest.fixture(scope="module")
def databases(pg_server: Server, admin: psycopg.Connection, wagtail_migrated: str) -> Iterator[Any]:
    """Factory of module-lived databases: ``make(suffix)`` a freshly migrated site,
    ``make(suffix, own=True)`` one with content of its own (made once, then copied)."""
    made: list[str] = []

    def create(suffix: str, template: str) -> str:
        name = f"{wagtail_migrated}_{suffix}"
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        made.append(name)
        return name

    def make(suffix: str, own: bool = False) -> str:
        if not own:
            return pg_server.dsn(create(suffix, wagtail_migrated))
        template = f"{wagtail_migrated}_own"
        if template not in made:
            harness.run(pg_server.dsn(create("own", wagtail_migrated)), "-c", OWN_CONTENT)
        return pg_server.dsn(create(suffix, template))

    yield make
    for name in made:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def mapping_path(wagtail_source: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wagtail_fixture") / "mapping.yaml"
    proc = harness.run(wagtail_source, "-m", "edms_pgdump", "init", "--django", "settings", "-o", str(out))
    assert "passes check" in proc.stderr, proc.stderr
    return out


def _dump(source: str, out: Path, *flags: str) -> Path:
    harness.run(source, "-m", "django", "dumpdata", *flags, "-o", str(out))
    return out


@pytest.fixture(scope="module")
def dumps(wagtail_source: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("wagtail_dumps")
    return {
        "nf": _dump(wagtail_source, folder / "nf.json", "--natural-foreign", *EXCLUDE),
        "np": _dump(wagtail_source, folder / "np.json", "--natural-foreign", "--natural-primary", *EXCLUDE),
    }


@pytest.fixture(scope="module")
def by_loaddata(databases: Any, dumps: dict[str, Path]) -> dict[str, list[Any]]:
    """What loaddata restores from the --natural-foreign dump into a freshly migrated site
    (into a site with content of its own it would write the source's image 1 over the
    target's: it writes by pk)."""
    dsn = databases("ld")
    harness.run(dsn, "-m", "django", "loaddata", str(dumps["nf"]))
    return _view(dsn)


@pytest.fixture(scope="module")
def migrated_view(databases: Any) -> dict[str, list[Any]]:
    return _view(databases("base"))


def test_natural_foreign_dump_restores_what_loaddata_restores(
    databases: Any,
    dumps: dict[str, Path],
    mapping_path: Path,
    by_loaddata: dict[str, list[Any]],
    migrated_view: dict[str, list[Any]],
) -> None:
    target = databases("nf", own=True)
    own = _view(target)
    report = api.import_fixture(target, dumps["nf"], load_mapping(mapping_path), audit_log=False)
    assert report.committed
    rows = {t.table: t for t in report.tables}
    assert rows["public.site_app_blogpage"].inserted == WAGTAIL_PAGES
    assert rows["public.wagtailcore_collection"].inserted == 2
    assert _sorted(_view(target)) == _with_own(by_loaddata, own, migrated_view)
    assert ("target-logo", "target-tag") in fetch(target, VIEWS["image_tags"])
    assert harness.tree_problems(target) == (0, 0)
    again = api.import_fixture(target, dumps["nf"], load_mapping(mapping_path), audit_log=False)
    assert again.inserted == 0 and again.updated == 0


def test_loaddata_cannot_read_a_natural_primary_wagtail_dump(databases: Any, dumps: dict[str, Path]) -> None:
    """Wagtail's Collection.natural_key() walks the saved tree, so loaddata cannot find an
    unsaved collection by it: a --natural-primary dump of a Wagtail site fails."""
    dsn = databases("ld_np")
    before = db_digest(dsn)
    proc = harness.run(dsn, "-m", "django", "loaddata", str(dumps["np"]), check=False)
    assert proc.returncode == 1 and "At least one path name must be provided" in proc.stderr
    assert db_digest(dsn) == before


def test_natural_primary_dump_is_refused_for_workflow_pages_and_both_fixes_work(
    databases: Any,
    dumps: dict[str, Path],
    mapping_path: Path,
    wagtail_source: str,
    by_loaddata: dict[str, list[Any]],
    migrated_view: dict[str, list[Any]],
    tmp_path: Path,
) -> None:
    """--natural-primary drops the pages' pks but keeps WorkflowPage's (it has no
    natural_key()), whose pk is the page's id: nothing in the file says which page.
    Refused before any write, naming both fixes; --natural-foreign alone is the test
    above, and the dump without wagtailcore.workflowpage (migrate made the root's
    workflow page in every site) restores the site: page types by their page_ptr
    (the page's natural key), collections by their path of names, revisions' page ids
    kept as loaddata would keep them and checked."""
    mapping = load_mapping(mapping_path)
    target = databases("np", own=True)
    own, before = _view(target), db_digest(target)
    with pytest.raises(EdmsPgdumpError) as exc:
        api.import_fixture(target, dumps["np"], mapping, audit_log=False)
    message = str(exc.value)
    assert (
        ".pk holds pk 1 of wagtailcore.page, but the fixture's wagtailcore.page objects carry no pk"
        in message
    )
    assert "dump with --natural-foreign alone" in message
    assert "leave wagtailcore.workflowpage out of this dump (dumpdata -e wagtailcore.workflowpage)" in message
    assert db_digest(target) == before
    without = _dump(wagtail_source, tmp_path / "np2.json", "--natural-foreign", "--natural-primary", *EXCLUDE,
                    "-e", "wagtailcore.workflowpage")  # fmt: skip
    report = api.import_fixture(target, without, mapping, audit_log=False)
    assert report.committed
    kept = [w for w in report.warnings if "are kept as they are" in w]
    # each kept id shown with the page it names now: the source's, as the target's pages got the source's ids
    assert any(
        "public.wagtailcore_revision.object_id of type site_app.blogpage" in w
        and "(id -> page_ptr_id.url_path: 4 -> /home/blog/post-000/, 5 -> /home/blog/post-001/" in w
        for w in kept
    )
    assert _sorted(_view(target)) == _with_own(by_loaddata, own, migrated_view)
    assert harness.tree_problems(target) == (0, 0)
    again = api.import_fixture(target, without, mapping, audit_log=False)
    assert again.inserted == 0 and again.updated == 0


def test_images_without_their_collections_are_refused_and_the_fix_works(
    databases: Any, wagtail_source: str, mapping_path: Path, tmp_path: Path
) -> None:
    """Images name their collection by its path of names; without the collections in the
    dump, into a site that lacks them, there is no tree to find the path in: refused,
    naming the fix, which works. Once the target has them, their paths are found there."""
    mapping = load_mapping(mapping_path)
    target = databases("images")
    before = db_digest(target)
    images = _dump(wagtail_source, tmp_path / "images.json", "--natural-foreign", "wagtailimages")
    with pytest.raises(EdmsPgdumpError) as exc:
        api.import_fixture(target, images, mapping, audit_log=False)
    message = str(exc.value)
    assert (
        "natural key ['Root', 'Downloads'] has 2 value(s) but public.wagtailcore_collection is keyed by 1"
        in message
    )
    assert "include wagtailcore.collection in the dump" in message
    assert db_digest(target) == before
    fixed = _dump(wagtail_source, tmp_path / "fixed.json", "--natural-foreign", "wagtailcore.collection",
                  "wagtailimages")  # fmt: skip
    assert api.import_fixture(target, fixed, mapping, audit_log=False).committed
    source_images = [(t, c) for t, c, _ in fetch(wagtail_source, VIEWS["images"])]
    assert [(t, c) for t, c, _ in fetch(target, VIEWS["images"])] == source_images
    # the target holds the collections now: the first dump finds the paths in its tree
    again = api.import_fixture(target, images, mapping, audit_log=False)
    assert again.committed and again.inserted == 0 and again.updated == 0
    assert harness.tree_problems(target) == (0, 0)
