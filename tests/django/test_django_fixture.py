"""import-fixture against Django's own dumpdata/loaddata on a real PostgreSQL: the same
database as loaddata into a re-initialised target, references by natural key even where
ids differ, generic object ids resolved, and bad input refused with nothing written. Natural-primary
backups with generic relations, text object ids and the audit: test_django_fixture_generic."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import psycopg
import pytest

pytest.importorskip("django", reason="the Django tests need the django extra (pip install '.[test]')")

from edms_pgdump import api
from edms_pgdump.errors import EdmsPgdumpError
from tests.conftest import NewDb
from tests.django_project import harness
from tests.support.django_dbs import mapping_file, migrated, source  # fixtures


def _empty(dsn: str) -> bool:
    return all(n == 0 for name, n in harness.counts(dsn).items() if name != "permissions")


def _natural_primary_dump(source: str, path: Path) -> Path:
    """``dumpdata --natural-foreign --natural-primary`` without the generic relations
    (comments, links), whose ids test_django_fixture_generic covers."""
    return harness.dumpdata(
        source,
        path,
        "--natural-foreign",
        "--natural-primary",
        *harness.EXCLUDE_STATE,
        "-e",
        "edms_app.comment",
        "-e",
        "edms_app.link",
    )


def test_natural_primary_fixture_gives_the_same_database_as_loaddata(
    source: str, migrated: str, new_db: NewDb, mapping_file: Path, tmp_path: Path
) -> None:
    fixture = _natural_primary_dump(source, tmp_path / "backup.json")
    by_loaddata, by_us = new_db(migrated), new_db(migrated)
    harness.django(by_loaddata, "loaddata", str(fixture))
    harness.shift_ids(by_us)
    result = api.import_fixture(by_us, fixture, mapping_file, history=True)
    assert result.committed and result.history == "recorded"
    expected = harness.natural_view(by_loaddata)
    assert harness.natural_view(by_us) == expected
    assert len(expected["workflows"]) == 120 and len(expected["document_tags"]) == 20
    rows = {t.table: t for t in result.tables}
    assert rows["public.edms_app_documentworkflow"].inserted == 120
    assert rows["public.edms_app_document_tags"].inserted == 20
    # ids really differ: the same rows, other ids, references still right
    with psycopg.connect(by_us) as conn:
        assert conn.execute("SELECT min(id) FROM edms_app_document").fetchone()[0] > 1000  # type: ignore[index]
    again = api.import_fixture(by_us, fixture, mapping_file)
    assert again.inserted == 0 and again.updated == 0 and again.already_applied


def test_fixture_with_pks_resolves_generic_object_ids_in_a_target_with_other_ids(
    source: str, migrated: str, new_db: NewDb, mapping_file: Path, tmp_path: Path
) -> None:
    plain = harness.dumpdata(source, tmp_path / "backup.json", "--natural-foreign", *harness.EXCLUDE_STATE)
    packed = tmp_path / "backup.json.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    target = new_db(migrated)
    harness.shift_ids(target)
    result = api.import_fixture(target, packed, mapping_file)
    assert result.committed
    view = harness.natural_view(target)
    assert view == harness.natural_view(source)
    assert len(view["comments"]) == 40 and {r[1] for r in view["comments"]} == {"document", "tag"}
    assert len(view["links"]) == 8 and {r[1] for r in view["links"]} == {"document", "tag"}


def test_plain_pk_fixture_is_resolved_through_the_fixture(
    source: str, migrated: str, new_db: NewDb, mapping_file: Path, tmp_path: Path
) -> None:
    """No natural keys at all in the file: every FK, M2M item and the content type are pks
    of objects in the same fixture (content types included)."""
    fixture = harness.dumpdata(
        source, tmp_path / "pks.json", "-e", "sessions", "-e", "admin", "-e", "auth.permission"
    )
    target = new_db(migrated)
    harness.shift_ids(target)
    result = api.import_fixture(target, fixture, mapping_file)
    assert result.committed
    assert harness.natural_view(target) == harness.natural_view(source)
    # content types are export: false: the fixture's serve pk lookups, the target's stay
    rows = {r.table: r for r in result.tables}
    assert "public.django_content_type" not in rows


def _objects(source: str, tmp_path: Path) -> list[dict[str, object]]:
    fixture = _natural_primary_dump(source, tmp_path / "base.json")
    data: list[dict[str, object]] = json.loads(fixture.read_text())
    return data


def test_unknown_model_is_refused_and_nothing_is_written(
    source: str, migrated: str, new_db: NewDb, mapping_file: Path, tmp_path: Path
) -> None:
    objects = _objects(source, tmp_path)
    objects.append({"model": "edms_app.invoice", "fields": {"number": "I-1"}})
    bad = tmp_path / "unknown.json"
    bad.write_text(json.dumps(objects))
    target = new_db(migrated)
    with pytest.raises(EdmsPgdumpError) as exc:
        api.import_fixture(target, bad, mapping_file)
    assert "model 'edms_app.invoice' has no table in the mapping" in str(exc.value)
    assert "public.edms_app_invoice" in str(exc.value)
    assert _empty(target)


def test_unknown_field_is_refused_naming_it(
    source: str, migrated: str, new_db: NewDb, mapping_file: Path, tmp_path: Path
) -> None:
    objects = _objects(source, tmp_path)
    doc = next(o for o in objects if o["model"] == "edms_app.document")
    doc["fields"]["colour"] = "red"  # type: ignore[index]
    bad = tmp_path / "field.json"
    bad.write_text(json.dumps(objects))
    target = new_db(migrated)
    with pytest.raises(EdmsPgdumpError) as exc:
        api.import_fixture(target, bad, mapping_file)
    assert "edms_app.document.colour: no column colour or colour_id in public.edms_app_document" in str(
        exc.value
    )
    assert _empty(target)


def test_missing_natural_key_is_refused_and_nothing_is_written(
    source: str, migrated: str, new_db: NewDb, mapping_file: Path, tmp_path: Path
) -> None:
    objects = _objects(source, tmp_path)
    docs = [o for o in objects if o["model"] == "edms_app.document"]
    for d in docs:  # every document lacks its key: a fixture dumped from other models
        del d["fields"]["document_number"]  # type: ignore[attr-defined]
    bad = tmp_path / "nokey.json"
    bad.write_text(json.dumps(objects))
    target = new_db(migrated)
    with pytest.raises(EdmsPgdumpError) as exc:
        api.import_fixture(target, bad, mapping_file)
    assert "natural-key field 'document_number' of public.edms_app_document is missing" in str(exc.value)
    assert _empty(target)


def test_null_natural_key_names_the_object(
    source: str, migrated: str, new_db: NewDb, mapping_file: Path, tmp_path: Path
) -> None:
    objects = _objects(source, tmp_path)
    wf = [o for o in objects if o["model"] == "edms_app.documentworkflow"][3]
    wf["fields"]["workflow_type"] = None  # type: ignore[index]
    bad = tmp_path / "nullkey.json"
    bad.write_text(json.dumps(objects))
    target = new_db(migrated)
    with pytest.raises(EdmsPgdumpError) as exc:
        api.import_fixture(target, bad, mapping_file)
    assert "edms_app.documentworkflow (object" in str(exc.value)
    assert "natural-key field 'workflow_type'" in str(exc.value)
    assert _empty(target)


def test_truncated_json_is_refused_and_nothing_is_written(
    source: str, migrated: str, new_db: NewDb, mapping_file: Path, tmp_path: Path
) -> None:
    text = json.dumps(_objects(source, tmp_path))
    bad = tmp_path / "cut.json"
    bad.write_text(text[: len(text) * 2 // 3])
    target = new_db(migrated)
    with pytest.raises(EdmsPgdumpError) as exc:
        api.import_fixture(target, bad, mapping_file)
    assert "cut.json: not valid JSON after object" in str(exc.value)
    assert "truncated or damaged" in str(exc.value)
    assert _empty(target)
    packed = tmp_path / "cut.json.gz"
    packed.write_bytes(gzip.compress(text.encode())[:-40])
    with pytest.raises(EdmsPgdumpError) as exc:
        api.import_fixture(target, packed, mapping_file)
    assert "truncated or damaged" in str(exc.value)
    assert _empty(target)


def test_unresolved_natural_foreign_key_rolls_back_naming_the_key(
    source: str, migrated: str, new_db: NewDb, mapping_file: Path, tmp_path: Path
) -> None:
    """A natural key the fixture and the target lack is the import program's unresolved
    reference: named with table, reference and key, and everything rolled back."""
    objects = [o for o in _objects(source, tmp_path) if o["model"] != "auth.user"]
    bad = tmp_path / "nouser.json"
    bad.write_text(json.dumps(objects))
    target = new_db(migrated)
    with pytest.raises(EdmsPgdumpError) as exc:
        api.import_fixture(target, bad, mapping_file)
    assert "public.edms_app_document" in str(exc.value) and "user0000" in str(exc.value)
    assert _empty(target)


def test_cli_import_fixture_json(
    source: str, migrated: str, new_db: NewDb, mapping_file: Path, tmp_path: Path
) -> None:
    fixture = harness.dumpdata(source, tmp_path / "b.json", "--natural-foreign", *harness.EXCLUDE_STATE)
    target = new_db(migrated)
    proc = harness.run(
        target,
        "-m",
        "edms_pgdump",
        "import-fixture",
        str(fixture),
        "--dsn",
        target,
        "-m",
        str(mapping_file),
        "--dry-run",
        "--json",
    )
    data = json.loads(proc.stdout)
    assert data["dry_run"] is True and data["committed"] is False
    assert {t["table"]: t["inserted"] for t in data["tables"]}["public.edms_app_comment"] == 40
    assert _empty(target)
