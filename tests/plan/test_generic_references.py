"""Generic references (content type + object id) travel by natural key, per type,
set-based; dangling, unknown-type and unresolved cases stop with nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from edms_pgdump import api
from edms_pgdump.cli import app
from edms_pgdump.errors import EdmsPgdumpError, ImportRejected, PlanError
from edms_pgdump.mapping import load_mapping_text
from tests.support.db import db_digest
from tests.support.generic_schema import (
    ACCESS_BY_NAME,
    COMMENTS_BY_NAME,
    MAPPING,
    SCHEMA,
    SOURCE_DATA,
    TARGET_DATA,
)


def _db(new_db: Any, *sql_texts: str) -> str:
    dsn: str = new_db()
    with psycopg.connect(dsn, autocommit=True) as c:
        for text in (SCHEMA, *sql_texts):
            c.execute(text.encode())
    return dsn


def _rows(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as c:
        return c.execute(query.encode()).fetchall()


def _export(src: str, tmp_path: Path, mapping: str = MAPPING, name: str = "g.edms") -> Path:
    out = tmp_path / name
    api.export_archive(src, load_mapping_text(mapping), out, audit_log=False)
    return out


def test_round_trip_through_every_kind_of_pair(new_db: Any, tmp_path: Path) -> None:
    src = _db(new_db, SOURCE_DATA)
    dst = _db(new_db, TARGET_DATA)
    archive = _export(src, tmp_path)
    report = api.import_archive(dst, archive, audit_log=False)
    assert report.committed
    counts = {t.table: (t.inserted, t.updated, t.unchanged) for t in report.tables}
    assert counts["public.app_accessentry"] == (180, 0, 0)  # (50 + 20 + 20) objects x 2 roles
    assert counts["public.app_comment"] == (15, 0, 0)
    access = _rows(dst, ACCESS_BY_NAME)
    assert access == _rows(src, ACCESS_BY_NAME) and len(access) == 180
    assert all(row[2] is not None for row in access)  # every id names a row
    # varchar ids naming uuid rows (new uuids in the target), and the NULL pair
    assert _rows(dst, COMMENTS_BY_NAME) == _rows(src, COMMENTS_BY_NAME)
    assert _rows(dst, "SELECT content_type_id, object_id FROM app_comment WHERE body = 'loose'") == [
        (None, None)
    ]
    # the ids really are the target's: the first access entry's object is a target id
    assert _rows(dst, "SELECT min(object_id) FROM app_accessentry")[0][0] > 100000
    # the manifest says which tables the data names
    info = api.inspect_archive(archive)
    entry = next(t for t in info.manifest.tables if t.table == "public.app_accessentry")
    generic = next(e for e in entry.expansions if e.get("kind") == "generic")
    assert generic["targets"] == ["public.app_cabinet", "public.app_document", "public.app_folder"]
    # a second import changes nothing, and verify agrees
    again = api.import_archive(dst, archive, audit_log=False)
    assert (again.inserted, again.updated) == (0, 0)
    assert api.verify_archive(archive, dst).database.matches  # type: ignore[union-attr]


def test_a_changed_pair_is_an_update_through_natural_keys(new_db: Any, tmp_path: Path) -> None:
    src = _db(new_db, SOURCE_DATA)
    dst = _db(new_db, TARGET_DATA)
    api.import_archive(dst, _export(src, tmp_path), audit_log=False)
    with psycopg.connect(src, autocommit=True) as c:
        c.execute(
            "UPDATE app_comment SET content_type_id = (SELECT id FROM django_content_type WHERE model = "
            "'cabinet'), object_id = (SELECT id::text FROM app_cabinet WHERE label = 'cab7') "
            "WHERE body = 'on doc1'"
        )
    report = api.import_archive(dst, _export(src, tmp_path, name="g2.edms"), audit_log=False)
    comments = next(t for t in report.tables if t.table == "public.app_comment")
    assert (comments.inserted, comments.updated) == (0, 1)
    row = _rows(
        dst,
        "SELECT c.label FROM app_comment m JOIN app_cabinet c ON c.id::text = m.object_id "
        "WHERE m.body = 'on doc1'",
    )
    assert row == [("cab7",)]


def test_dangling_ids_refuse_the_export_naming_them(new_db: Any, tmp_path: Path) -> None:
    src = _db(new_db, SOURCE_DATA, "DELETE FROM app_cabinet WHERE label IN ('cab3', 'cab4')")
    with pytest.raises(PlanError) as info:
        _export(src, tmp_path)
    message = str(info.value)
    assert "public.app_accessentry" in message and "object_id" in message
    assert "4 row(s) name an object that does not exist" in message  # 2 cabinets x 2 roles
    assert "'app.cabinet'" in message
    assert not (tmp_path / "g.edms").exists()


def test_on_dangling_skip_and_null(new_db: Any, tmp_path: Path) -> None:
    src = _db(
        new_db,
        SOURCE_DATA,
        "DELETE FROM app_tag WHERE name = 'tag2'",
        "DELETE FROM app_cabinet WHERE label = 'cab1'",
    )
    mapping = MAPPING.replace(
        "natural_key: [content_type_id, object_id, role_id]\n    generic_references: [{type: content_type_id, id: object_id}]",
        "natural_key: [content_type_id, object_id, role_id]\n    generic_references: [{type: content_type_id, id: object_id, on_dangling: skip}]",
    ).replace(
        "natural_key: [body]\n    generic_references: [{type: content_type_id, id: object_id}]",
        "natural_key: [body]\n    generic_references: [{type: content_type_id, id: object_id, on_dangling: null}]",
    )
    assert "on_dangling: skip" in mapping and "on_dangling: null" in mapping
    out = tmp_path / "d.edms"
    result = api.export_archive(src, load_mapping_text(mapping), out, audit_log=False)
    assert any("2 row(s) name an object" in w and "left out" in w for w in result.warnings)
    assert any("1 row(s) name an object" in w and "NULL" in w for w in result.warnings)
    dst = _db(new_db, TARGET_DATA)
    report = api.import_archive(dst, out, audit_log=False)
    access = next(t for t in report.tables if t.table == "public.app_accessentry")
    assert access.inserted == 178
    assert _rows(
        dst, "SELECT content_type_id IS NOT NULL, object_id FROM app_comment WHERE body = 'on tag2'"
    ) == [(True, None)]


def test_not_null_id_with_on_dangling_null_is_a_plan_error(new_db: Any, tmp_path: Path) -> None:
    src = _db(new_db, SOURCE_DATA)
    mapping = MAPPING.replace(
        "generic_references: [{type: content_type_id, id: object_id}]",
        "generic_references: [{type: content_type_id, id: object_id, on_dangling: null}]",
        1,
    )
    with pytest.raises(PlanError, match=r"on_dangling: null, but object_id is NOT NULL"):
        _export(src, tmp_path, mapping)


def test_a_type_naming_an_unmapped_table_is_refused_unless_ignored(new_db: Any, tmp_path: Path) -> None:
    src = _db(
        new_db,
        SOURCE_DATA,
        "CREATE TABLE public.auth_user (id serial PRIMARY KEY, username text UNIQUE NOT NULL)",
        "INSERT INTO auth_user (username) VALUES ('ann')",
        "INSERT INTO app_comment (content_type_id, object_id, body) SELECT ct.id, u.id::text, 'by ann' "
        "FROM django_content_type ct, auth_user u WHERE ct.model = 'user'",
    )
    with pytest.raises(PlanError) as info:
        _export(src, tmp_path)
    message = str(info.value)
    assert "1 row(s) have a content_type_id of type auth.user, which names public.auth_user" in message
    assert "ignore_types" in message
    assert not (tmp_path / "g.edms").exists()
    ignored = MAPPING.replace(
        "natural_key: [body]\n    generic_references: [{type: content_type_id, id: object_id}]",
        "natural_key: [body]\n    generic_references: [{type: content_type_id, id: object_id, "
        "ignore_types: [auth.user]}]",
    )
    archive = _export(src, tmp_path, ignored, "i.edms")
    dst = _db(new_db, TARGET_DATA)
    api.import_archive(dst, archive, audit_log=False)
    source_id = _rows(src, "SELECT object_id FROM app_comment WHERE body = 'by ann'")
    assert _rows(dst, "SELECT object_id FROM app_comment WHERE body = 'by ann'") == source_id  # as it was


def test_unresolved_generic_reference_rolls_back_naming_type_and_key(new_db: Any, tmp_path: Path) -> None:
    """The archive's comments name documents that the target does not have (documents
    are managed elsewhere: export: false)."""
    src = _db(new_db, SOURCE_DATA)
    mapping = MAPPING.replace(
        "public.app_document: {natural_key: [name]}",
        "public.app_document: {natural_key: [name], export: false}",
    )
    archive = _export(src, tmp_path, mapping)
    dst = _db(new_db, TARGET_DATA)
    before = db_digest(dst)
    with pytest.raises(ImportRejected) as info:
        api.import_archive(dst, archive, audit_log=False)
    message = str(info.value)
    assert (
        "public.app_accessentry: 100 unresolved generic reference(s) through (content_type_id, object_id)"
        in message
    )
    assert "'document'" in message and '["doc' in message
    assert db_digest(dst) == before


def test_psql_runbooks_resolve_generic_references_like_the_library(
    new_db: Any, tmp_path: Path, pg_server: Any
) -> None:
    from tests.support.psql import runbook_roundtrip

    src = _db(new_db, SOURCE_DATA)
    dst = _db(new_db, TARGET_DATA)
    mapping = load_mapping_text(MAPPING)
    res = runbook_roundtrip(pg_server, src, dst, mapping, tmp_path)
    assert res.returncode == 0, res.stderr
    assert _rows(dst, ACCESS_BY_NAME) == _rows(src, ACCESS_BY_NAME)
    assert _rows(dst, COMMENTS_BY_NAME) == _rows(src, COMMENTS_BY_NAME)


def test_plan_shows_the_generic_reference(new_db: Any, tmp_path: Path) -> None:
    src = _db(new_db, SOURCE_DATA)
    path = tmp_path / "m.yaml"
    path.write_text(MAPPING)
    res = CliRunner().invoke(app, ["plan", "--dsn", src, "-m", str(path), "--json"])
    assert res.exit_code == 0, res.output
    assert '"kind": "generic"' in res.output and '"id_column": "object_id"' in res.output


def test_type_column_must_point_at_a_listed_type_table(new_db: Any, tmp_path: Path) -> None:
    src = _db(new_db, SOURCE_DATA)
    broken = MAPPING.replace(
        'types:\n  public.django_content_type: {table_name: "{app_label}_{model}"}\n', ""
    )
    with pytest.raises(
        EdmsPgdumpError, match=r"content_type_id must be a foreign key .* to a table listed under types:"
    ):
        _export(src, tmp_path, broken)


def test_an_undeclared_pair_is_found_and_refused_with_the_mapping_fix(new_db: Any, tmp_path: Path) -> None:
    src = _db(new_db, SOURCE_DATA)
    undeclared = MAPPING.replace(
        "natural_key: [body]\n    generic_references: [{type: content_type_id, id: object_id}]",
        "natural_key: [body]",
    )
    report = api.check_mapping(dsn=src, mapping=load_mapping_text(undeclared))
    found = [p for p in report.problems if p.code == "generic-candidate"]
    assert [(p.severity, p.table, p.column) for p in found] == [("error", "public.app_comment", "object_id")]
    assert "generic_references: [{type: content_type_id, id: object_id}]" in found[0].fix
    assert "raw_columns: [object_id]" in found[0].fix
    with pytest.raises(PlanError, match="looks like a generic reference"):
        _export(src, tmp_path, undeclared)


def test_check_reports_dangling_ids_and_unmapped_types_with_counts(new_db: Any) -> None:
    src = _db(
        new_db,
        SOURCE_DATA,
        "DELETE FROM app_folder WHERE path = '/f9'",
        "INSERT INTO app_comment (content_type_id, object_id, body) SELECT id, '1', 'by someone' "
        "FROM django_content_type WHERE model = 'user'",
    )
    report = api.check_mapping(dsn=src, mapping=load_mapping_text(MAPPING))
    dangling = sorted(
        (p.table, p.message.split(" through")[0]) for p in report.problems if p.code == "generic-dangling"
    )
    assert dangling == [
        ("public.app_accessentry", "2 row(s) name an object that does not exist"),  # folder /f9, 2 roles
        ("public.app_comment", "1 row(s) name an object that does not exist"),  # the unmapped type's id
    ]
    unmapped = [p.message for p in report.problems if p.code == "generic-type-unmapped"]
    assert len(unmapped) == 1 and "1 row(s) have a content_type_id of type auth.user" in unmapped[0]
    assert not report.ok


def test_init_writes_the_generic_references_and_the_mapping_round_trips(new_db: Any, tmp_path: Path) -> None:
    src = _db(new_db, SOURCE_DATA)
    path = tmp_path / "init.yaml"
    res = CliRunner().invoke(app, ["init", "--dsn", src, "-o", str(path)])
    assert res.exit_code == 0, res.output
    text = path.read_text()
    assert "types:\n  public.django_content_type: {table_name: '{app_label}_{model}'}" in text
    assert "- {type: content_type_id, id: object_id}" in text
    assert "export: false" in text
    report = api.check_mapping(dsn=src, mapping=load_mapping_text(text))
    assert not [p for p in report.problems if p.severity == "error"], report.problems
    dst = _db(new_db, TARGET_DATA)
    api.import_archive(dst, _export(src, tmp_path, text), audit_log=False)
    assert _rows(dst, ACCESS_BY_NAME) == _rows(src, ACCESS_BY_NAME)


def test_plan_text_shows_the_generic_reference_per_type(new_db: Any, tmp_path: Path) -> None:
    src = _db(new_db, SOURCE_DATA)
    path = tmp_path / "m.yaml"
    path.write_text(MAPPING)
    res = CliRunner().invoke(app, ["plan", "--dsn", src, "-m", str(path), "--no-sql"])
    assert res.exit_code == 0, res.output
    assert "(content_type_id, object_id) -> per type:" in res.output
