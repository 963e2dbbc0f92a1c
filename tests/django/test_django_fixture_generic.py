"""import-fixture and generic relations (content_type + object_id) against Django's own
dumpdata/loaddata on a real PostgreSQL.

``dumpdata --natural-primary`` leaves the pk out of every object whose model has
``natural_key()``, and writes a generic ``object_id`` as the plain number (or text) it
holds: the source database's pk. ``loaddata`` writes that value as it is. So does
import-fixture, then checks it: an id that names no row after the load is refused, the
others are named in a warning. Where the fixture's objects carry pks, each id is
resolved through them by natural key instead. The project has one generic relation with
an integer object id (Comment) and one with a text object id (Link)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

pytest.importorskip("django", reason="the Django tests need the django extra (pip install '.[test]')")

from edms_pgdump import api, read_audit_log
from edms_pgdump.errors import EdmsPgdumpError
from edms_pgdump.load.history import read_history
from edms_pgdump.options import ImportOptions
from tests.conftest import NewDb
from tests.django_project import harness
from tests.support.db import db_digest
from tests.support.django_dbs import mapping_file, migrated, source  # fixtures

# documents of the seeded source: the ids 1..N a freshly migrated target would give
SEED_DOCUMENTS = 30

NATURAL_PRIMARY = ("--natural-foreign", "--natural-primary", *harness.EXCLUDE_STATE)

# every generic id as stored, with the object it belongs to: loaddata's values, compared as they are
GENERIC_IDS = """
    SELECT 'comment', ct.model, c.number::text, c.object_id::text
    FROM edms_app_comment c JOIN django_content_type ct ON ct.id = c.content_type_id
    UNION ALL
    SELECT 'link', ct.model, l.label, l.object_pk
    FROM edms_app_link l JOIN django_content_type ct ON ct.id = l.content_type_id
    ORDER BY 1, 2, 4, 3"""


def _generic_ids(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(GENERIC_IDS).fetchall()


def _empty(dsn: str) -> bool:
    return all(n == 0 for name, n in harness.counts(dsn).items() if name != "permissions")


def _kept(warnings: list[str]) -> dict[str, str]:
    """'table.column type' -> the warning about the ids kept as they are."""
    out = {}
    for w in warnings:
        if "are kept as they are" in w:
            words = w.split()
            out[f"{words[4]} {words[7]}"] = w
    return out


def test_natural_primary_backup_gives_the_database_loaddata_gives(
    source: str, migrated: str, new_db: NewDb, mapping_file: Path, tmp_path: Path
) -> None:
    """Into re-initialised targets: every generic id is the value loaddata writes, new
    rows get the ids loaddata gives them, so the databases are the same by natural key
    (and the source's, whose ids had no gaps). The kept ids are named in a warning."""
    fixture = harness.dumpdata(source, tmp_path / "np.json", *NATURAL_PRIMARY)
    objects = json.loads(fixture.read_text())
    assert not any("pk" in o for o in objects if o["model"] in ("edms_app.document", "edms_app.tag"))
    by_loaddata, by_us = new_db(migrated), new_db(migrated)
    harness.django(by_loaddata, "loaddata", str(fixture))
    result = api.import_fixture(by_us, fixture, mapping_file, audit_log=False)
    assert result.committed
    view = harness.natural_view(by_us)
    assert view == harness.natural_view(by_loaddata) == harness.natural_view(source)
    assert len(view["comments"]) == 40 and len(view["links"]) == 8
    assert _generic_ids(by_us) == _generic_ids(by_loaddata) == _generic_ids(source)
    kept = _kept(result.warnings)
    assert set(kept) == {
        "public.edms_app_comment.object_id edms_app.document",
        "public.edms_app_comment.object_id edms_app.tag",
        "public.edms_app_link.object_pk edms_app.document",
        "public.edms_app_link.object_pk edms_app.tag",
    }
    doc = kept["public.edms_app_comment.object_id edms_app.document"]
    assert doc.startswith("20 generic id(s) in public.edms_app_comment.object_id of type edms_app.document")
    assert "(id -> document_number: 1 -> DOC-000000, 2 -> DOC-000001," in doc and "and 15 more" in doc
    assert "carry no pk (dumped with --natural-primary)" in doc
    assert "dump with --natural-foreign alone" in doc
    # the same file again: nothing changes ({"raw": "7"} in staging and in the target alike)
    again = api.import_fixture(by_us, fixture, mapping_file, audit_log=False)
    assert again.already_applied and again.inserted == 0 and again.updated == 0


def test_ids_naming_no_row_are_refused_where_loaddata_leaves_them_dangling(
    source: str, migrated: str, new_db: NewDb, mapping_file: Path, tmp_path: Path
) -> None:
    """Targets whose sequences were moved: the documents and tags get ids from 1001, so
    the source's ids 1-20 name nothing. loaddata commits that silently; import-fixture
    names the ids and the objects holding them, and writes nothing."""
    fixture = harness.dumpdata(source, tmp_path / "np.json", *NATURAL_PRIMARY)
    by_loaddata, by_us = new_db(migrated), new_db(migrated)
    harness.shift_ids(by_loaddata)
    harness.shift_ids(by_us)
    harness.django(by_loaddata, "loaddata", str(fixture))
    dangling = harness.natural_view(by_loaddata)
    assert len(dangling["comments"]) == 40 and all(r[2] is None for r in dangling["comments"])
    assert len(dangling["links"]) == 8 and all(r[2] is None for r in dangling["links"])
    with pytest.raises(EdmsPgdumpError) as exc:
        api.import_fixture(by_us, fixture, mapping_file, audit_log=False)
    message = str(exc.value)
    assert (
        "np.json: 20 of the 20 generic id(s) in public.edms_app_comment.object_id of type "
        "edms_app.document name no row of public.edms_app_document after the import: "
        "1 (in edms_app.comment (object"
    ) in message
    assert (
        "and 15 more. The fixture's edms_app.document objects carry no pk (dumped with --natural-primary)"
        in message
    )
    assert "Dump with --natural-foreign alone" in message and "nothing was imported" in message
    problems = exc.value.problems  # type: ignore[attr-defined]
    assert [p.split(" of the ")[1].split(" name ")[0] for p in problems] == [
        "20 generic id(s) in public.edms_app_comment.object_id of type edms_app.document",
        "10 generic id(s) in public.edms_app_comment.object_id of type edms_app.tag",
        "5 generic id(s) in public.edms_app_link.object_pk of type edms_app.document",
        "3 generic id(s) in public.edms_app_link.object_pk of type edms_app.tag",
    ]
    assert _empty(by_us)
    with pytest.raises(EdmsPgdumpError, match=r"name no row of public\.edms_app_document"):  # a dry run too
        api.import_fixture(by_us, fixture, mapping_file, options=ImportOptions(dry_run=True), audit_log=False)


def test_ids_naming_the_targets_own_rows_are_refused(
    source: str, migrated: str, new_db: NewDb, mapping_file: Path, tmp_path: Path
) -> None:
    """A target with documents of its own at the first ids: the source's ids 1-20 name
    them after the load, rows that are none of the fixture's documents, so certainly not
    the ones the comments named. loaddata commits that silently (a warning would not do):
    refused, naming the rows, with nothing written; the fix it names works."""
    fixture = harness.dumpdata(source, tmp_path / "np.json", *NATURAL_PRIMARY)
    target = new_db(migrated)
    with psycopg.connect(target) as conn:
        conn.execute(
            "INSERT INTO auth_user (username, password, is_superuser, first_name, last_name, email, "
            "is_staff, is_active, date_joined) VALUES ('own', '', false, '', '', '', false, true, now())"
        )
        conn.execute("INSERT INTO edms_app_document (document_number, title, owner_id, created_at, size_bytes, "
                     "metadata) SELECT 'OWN-' || i, 'own', 1, now(), 0, '{}' FROM generate_series(1, 40) AS i")  # fmt: skip
    before = db_digest(target)
    with pytest.raises(EdmsPgdumpError) as exc:
        api.import_fixture(target, fixture, mapping_file, audit_log=False)
    message = str(exc.value)
    assert (
        "20 of the 20 generic id(s) in public.edms_app_comment.object_id of type edms_app.document name a row "
        "of public.edms_app_document that is none of the fixture's edms_app.document objects (the target's "
        "own) after the import: 1 (in edms_app.comment (object"
    ) in message
    assert 'names ["OWN-1"]' in message and "Dump with --natural-foreign alone" in message
    assert db_digest(target) == before
    nf = harness.dumpdata(source, tmp_path / "nf.json", "--natural-foreign", *harness.EXCLUDE_STATE)
    assert api.import_fixture(target, nf, mapping_file, audit_log=False).committed
    view = harness.natural_view(target)
    assert view["comments"] == harness.natural_view(source)["comments"]


def _delete_first_document(dsn: str) -> None:
    """DOC-000000 (id 1) and what hangs on it: the source now has a gap in its ids."""
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE edms_app_document SET parent_id = NULL WHERE parent_id = 1")
        conn.execute("DELETE FROM edms_app_documentworkflow WHERE document_id = 1")
        conn.execute("DELETE FROM edms_app_document_tags WHERE document_id = 1")
        doc_type = "(SELECT id FROM django_content_type WHERE app_label = 'edms_app' AND model = 'document')"
        conn.execute(f"DELETE FROM edms_app_comment WHERE object_id = 1 AND content_type_id = {doc_type}")
        conn.execute(f"DELETE FROM edms_app_link WHERE object_pk = '1' AND content_type_id = {doc_type}")
        conn.execute("DELETE FROM edms_app_document WHERE id = 1")


def test_after_a_deleted_row_the_kept_ids_follow_loaddata_and_are_named(
    migrated: str, new_db: NewDb, mapping_file: Path, tmp_path: Path
) -> None:
    """The source lost its first document before the backup. In a re-initialised target
    every later document gets an id one lower than in the source, so an id the backup
    holds names the next document: loaddata's result, silently. import-fixture gives
    the same database, and its warning shows where each id points now."""
    gap = new_db(migrated)
    harness.seed(gap, 30)
    _delete_first_document(gap)
    fixture = harness.dumpdata(gap, tmp_path / "gap.json", *NATURAL_PRIMARY)
    by_loaddata, by_us = new_db(migrated), new_db(migrated)
    harness.django(by_loaddata, "loaddata", str(fixture))
    result = api.import_fixture(by_us, fixture, mapping_file, audit_log=False)
    assert result.committed
    view, before = harness.natural_view(by_us), harness.natural_view(gap)
    assert view == harness.natural_view(by_loaddata)
    assert {k: v for k, v in view.items() if k not in ("comments", "links")} == {
        k: v for k, v in before.items() if k not in ("comments", "links")
    }
    # the comment on DOC-000001 (source id 2) now names DOC-000002, in both databases
    assert ("edms_app", "document", "DOC-000001", 1, "on DOC-000001") in before["comments"]
    assert ("edms_app", "document", "DOC-000002", 1, "on DOC-000001") in view["comments"]
    assert ("edms_app", "document", "DOC-000020", 1, "on DOC-000019") in view["comments"]
    # tags had no gap: their ids still name the right rows
    assert [r for r in view["comments"] if r[1] == "tag"] == [r for r in before["comments"] if r[1] == "tag"]
    doc = _kept(result.warnings)["public.edms_app_comment.object_id edms_app.document"]
    assert doc.startswith("19 generic id(s)") and "2 -> DOC-000002" in doc


def _swap_id_types(objects: list[dict[str, Any]]) -> None:
    """Write each generic id in the other JSON type than dumpdata does: the integer
    column's as a string, the text column's as a number (a hand-written fixture)."""
    for o in objects:
        if o["model"] == "edms_app.comment":
            o["fields"]["object_id"] = str(o["fields"]["object_id"])
        elif o["model"] == "edms_app.link":
            o["fields"]["object_pk"] = int(o["fields"]["object_pk"])


def test_text_and_integer_object_ids_from_either_json_type(
    source: str, migrated: str, new_db: NewDb, mapping_file: Path, tmp_path: Path
) -> None:
    """Pks kept (--natural-foreign alone), in a target whose ids differ: the integer
    object_id and the text object_pk are both resolved through the fixture's pks and
    written as the target's new ids, whichever JSON type the file holds them in."""
    plain = harness.dumpdata(source, tmp_path / "nf.json", "--natural-foreign", *harness.EXCLUDE_STATE)
    objects = json.loads(plain.read_text())
    assert {type(o["fields"]["object_pk"]) for o in objects if o["model"] == "edms_app.link"} == {str}
    _swap_id_types(objects)
    swapped = tmp_path / "swapped.json"
    swapped.write_text(json.dumps(objects))
    for fixture in (plain, swapped):
        target = new_db(migrated)
        harness.shift_ids(target)
        result = api.import_fixture(target, fixture, mapping_file, audit_log=False)
        assert result.committed and not _kept(result.warnings)
        assert harness.natural_view(target) == harness.natural_view(source)
        with psycopg.connect(target) as conn:
            ids = conn.execute(
                "SELECT min(object_id), min(object_pk) FROM edms_app_comment, edms_app_link"
            ).fetchone()
        assert ids is not None and ids[0] > 1000 and int(ids[1]) > 1000


def test_kept_ids_from_either_json_type_match_on_a_second_import(
    source: str, migrated: str, new_db: NewDb, mapping_file: Path, tmp_path: Path
) -> None:
    """Natural-primary with the ids' JSON types swapped: loaddata converts them to the
    column's type; so does import-fixture, and the kept ids compare as text, so a
    second import finds every row unchanged."""
    objects = json.loads(harness.dumpdata(source, tmp_path / "np.json", *NATURAL_PRIMARY).read_text())
    _swap_id_types(objects)
    fixture = tmp_path / "swapped.json"
    fixture.write_text(json.dumps(objects))
    by_loaddata, by_us = new_db(migrated), new_db(migrated)
    harness.django(by_loaddata, "loaddata", str(fixture))
    result = api.import_fixture(by_us, fixture, mapping_file, audit_log=False)
    assert result.committed and len(_kept(result.warnings)) == 4
    assert harness.natural_view(by_us) == harness.natural_view(by_loaddata) == harness.natural_view(source)
    assert _generic_ids(by_us) == _generic_ids(by_loaddata)
    again = api.import_fixture(by_us, fixture, mapping_file, audit_log=False)
    assert again.inserted == 0 and again.updated == 0


def test_mixed_fixture_resolves_the_types_whose_objects_carry_pks(
    source: str, migrated: str, new_db: NewDb, mapping_file: Path, tmp_path: Path
) -> None:
    """Tags carry pks (500 above the source's, and the ids naming them likewise),
    documents do not: ids of tags are resolved through the fixture by natural key,
    ids of documents are kept. Both restores are right; loaddata keeps the tags' pks."""
    objects = json.loads(harness.dumpdata(source, tmp_path / "np.json", *NATURAL_PRIMARY).read_text())
    tags = [o for o in objects if o["model"] == "edms_app.tag"]
    for pk, tag in enumerate(tags, start=501):
        tag["pk"] = pk
    for o in objects:
        if o["model"] in ("edms_app.comment", "edms_app.link") and o["fields"]["content_type"][1] == "tag":
            field = "object_id" if o["model"] == "edms_app.comment" else "object_pk"
            o["fields"][field] = type(o["fields"][field])(int(o["fields"][field]) + 500)
    fixture = tmp_path / "mixed.json"
    fixture.write_text(json.dumps(objects))
    by_loaddata, by_us = new_db(migrated), new_db(migrated)
    harness.django(by_loaddata, "loaddata", str(fixture))
    result = api.import_fixture(by_us, fixture, mapping_file, audit_log=False)
    assert result.committed
    assert harness.natural_view(by_us) == harness.natural_view(by_loaddata) == harness.natural_view(source)
    assert set(_kept(result.warnings)) == {
        "public.edms_app_comment.object_id edms_app.document",
        "public.edms_app_link.object_pk edms_app.document",
    }
    with psycopg.connect(by_us) as conn:  # our tags got new ids 1-10, and the ids naming them too
        tag_ids = conn.execute(
            "SELECT DISTINCT c.object_id FROM edms_app_comment c JOIN django_content_type ct "
            "ON ct.id = c.content_type_id WHERE ct.model = 'tag' ORDER BY 1"
        ).fetchall()
    assert [r[0] for r in tag_ids] == list(range(1, 11))


def test_audit_and_history_record_import_fixture(
    source: str, migrated: str, new_db: NewDb, mapping_file: Path, tmp_path: Path
) -> None:
    """The audit line's operation is import-fixture (not import), failed or not; the
    history row names the fixture by its SHA-256."""
    fixture = harness.dumpdata(source, tmp_path / "nf.json", "--natural-foreign", *harness.EXCLUDE_STATE)
    log = tmp_path / "audit.jsonl"
    target = new_db(migrated)
    result = api.import_fixture(target, fixture, mapping_file, audit_log=log, history=True)
    assert result.committed
    sha = hashlib.sha256(fixture.read_bytes()).hexdigest()
    with psycopg.connect(target) as conn:
        rows = read_history(conn)
    assert len(rows) == 1
    assert rows[0]["archive_id"] == f"fixture:{sha}" and rows[0]["manifest_sha256"] == sha
    assert rows[0]["source"] == {"fixture": str(fixture)} and rows[0]["inserted"] == result.inserted
    shifted = new_db(migrated)
    harness.shift_ids(shifted)
    np = harness.dumpdata(source, tmp_path / "np.json", *NATURAL_PRIMARY)
    with pytest.raises(EdmsPgdumpError):
        api.import_fixture(shifted, np, mapping_file, audit_log=log)
    ok, failed = read_audit_log(log)
    assert ok["operation"] == "import-fixture" and ok["result"] == "ok"
    assert ok["archive"] == str(fixture) and ok["archive_id"] == f"fixture:{sha}"
    assert ok["source"] == "django-fixture" and ok["committed"] is True
    assert failed["operation"] == "import-fixture" and failed["result"] == "failed"
    assert failed["error_kind"] == "FixtureError" and "name no row of" in failed["error"]
