"""Environment migration: diff by natural key (archive vs database, archive vs
archive), and mirror imports with --delete-missing and its --max-deletes guard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from edms_pgdump import api
from edms_pgdump.cli import app
from edms_pgdump.demo.resources import sample_mapping_path
from edms_pgdump.errors import DatabaseError, ImportRejected
from edms_pgdump.mapping import load_mapping
from edms_pgdump.options import ImportOptions
from edms_pgdump.results import ArchivesDiffResult, DiffResult
from tests.support.db import db_digest

MAPPING = load_mapping(sample_mapping_path())


def _x(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        for s in statements:
            c.execute(s.encode())


def _export(src: str, path: Path) -> Path:
    api.export_archive(src, MAPPING, path, audit_log=False)
    return path


def _mirrored(sample_dbs: tuple[str, str], tmp_path: Path) -> tuple[str, str, Path]:
    """(source, target holding the source's data under other ids, archive of the source)."""
    src, dst = sample_dbs
    archive = _export(src, tmp_path / "src.edms")
    api.import_archive(dst, archive, audit_log=False)
    return src, dst, archive


def _diff(dst: str, archive: Path) -> DiffResult:
    result = api.diff(archive, dsn=dst)
    assert isinstance(result, DiffResult)
    return result


def test_diff_counts_every_kind_of_difference_by_natural_key(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    _, dst, archive = _mirrored(sample_dbs, tmp_path)
    # the reinitialised target had 4 legacy documents (and their users) of its own
    base = {t.table: t for t in _diff(dst, archive).tables}
    assert base["public.documents"].only_in_target == 4 and base["public.documents"].different == 0
    _x(
        dst,
        # only in the archive: one workflow removed from the target
        "DELETE FROM document_workflows WHERE id = (SELECT w.id FROM document_workflows w JOIN documents d "
        "ON d.id = w.document_id WHERE d.document_number = 'DOC-00000001' ORDER BY w.workflow_type LIMIT 1)",
        # different: a title changed, and a document re-parented (only its parent's key changes)
        "UPDATE documents SET title = 'changed' WHERE document_number = 'DOC-00000010'",
        "UPDATE documents SET parent_id = (SELECT id FROM documents WHERE document_number = 'DOC-00000002') "
        "WHERE document_number = 'DOC-00000011'",
        # only in the target: a new user
        "INSERT INTO users (username) VALUES ('only-here')",
    )
    result = _diff(dst, archive)
    tables = {t.table: t for t in result.tables}
    assert not result.identical
    assert tables["public.document_workflows"].only_in_archive == 1
    assert tables["public.documents"].different == 2
    assert tables["public.users"].only_in_target == base["public.users"].only_in_target + 1
    docs = tables["public.documents"]
    assert {s["document_number"] for s in docs.samples["different"]} == {"DOC-00000010", "DOC-00000011"}
    assert {"username": "only-here"} in tables["public.users"].samples["only_in_target"]
    assert docs.identical == docs.to_dict()["identical"] == 200 - 2
    # the CLI: exit 1 on a difference, the JSON shape of the issue
    res = CliRunner().invoke(app, ["diff", str(archive), "--dsn", dst, "--json"])
    assert res.exit_code == 1, res.output
    data = json.loads(res.output)
    entry = next(t for t in data["tables"] if t["table"] == "public.documents")
    assert (entry["only_in_archive"], entry["different"], entry["identical"]) == (0, 2, 198)


def test_diff_is_read_only(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    _, dst, archive = _mirrored(sample_dbs, tmp_path)
    with psycopg.connect(dst) as c:
        sequences = c.execute("SELECT sequencename, last_value FROM pg_sequences ORDER BY 1").fetchall()
    before = db_digest(dst)
    _diff(dst, archive)
    assert db_digest(dst) == before
    with psycopg.connect(dst) as c:
        assert (
            c.execute("SELECT sequencename, last_value FROM pg_sequences ORDER BY 1").fetchall() == sequences
        )


def test_mirror_import_deletes_what_the_archive_lacks_then_diff_says_identical(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    src, dst, _ = _mirrored(sample_dbs, tmp_path)
    _x(
        src,
        "DELETE FROM document_workflows WHERE workflow_type = 'review' AND document_id IN "
        "(SELECT id FROM documents WHERE document_number <= 'DOC-00000005')",
    )
    archive2 = _export(src, tmp_path / "src2.edms")
    # the target's own legacy documents are referenced by nothing in the archive: they go too
    report = api.import_archive(
        dst, archive2, options=ImportOptions(delete_missing=True, max_deletes=1000), audit_log=False
    )
    deleted = {t.table: t.deleted for t in report.tables}
    assert deleted["public.document_workflows"] >= 5
    assert report.committed
    assert _diff(dst, archive2).identical


def test_max_deletes_guard_writes_nothing(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, dst, _ = _mirrored(sample_dbs, tmp_path)
    _x(src, "DELETE FROM document_workflows")
    archive2 = _export(src, tmp_path / "none.edms")
    before = db_digest(dst)
    with pytest.raises(ImportRejected) as info:
        api.import_archive(
            dst, archive2, options=ImportOptions(delete_missing=True, max_deletes=10), audit_log=False
        )
    problems = " | ".join(info.value.report.problems)
    workflows = next(p for p in info.value.report.problems if p.startswith("public.document_workflows: "))
    assert "row(s) the archive does not hold would be deleted" in workflows
    assert int(workflows.split(": ")[1].split(" ")[0]) >= 200  # the source's 200, and the target's own
    assert "over --max-deletes 10" in problems and "document_id.document_number=" in problems
    assert db_digest(dst) == before


def test_a_delete_blocked_by_a_remaining_reference_names_both_sides(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    src, dst, _ = _mirrored(sample_dbs, tmp_path)
    # users is the only table in this archive; the target's documents still point at them
    mapping = "version: 1\ntables:\n  public.users: {natural_key: [username]}\n"
    from edms_pgdump.mapping import load_mapping_text

    users_only = tmp_path / "users.edms"
    api.export_archive(src, load_mapping_text(mapping), users_only, audit_log=False)
    before = db_digest(dst)
    with pytest.raises((ImportRejected, DatabaseError)) as info:
        api.import_archive(dst, users_only, options=ImportOptions(delete_missing=True), audit_log=False)
    message = str(info.value)
    assert "public.users: a row the archive does not hold is still referenced by a row that stays" in message
    assert "is still referenced from table" in message
    assert db_digest(dst) == before


def test_two_archives_from_databases_with_other_ids_compare_equal(
    sample_dbs: tuple[str, str], tmp_path: Path, new_db: Any, sample_template: str
) -> None:
    src, _ = sample_dbs
    archive = _export(src, tmp_path / "src.edms")
    other = new_db(sample_template)
    _x(
        other,
        "ALTER TABLE users ALTER COLUMN id RESTART WITH 70000",
        "SELECT setval(pg_get_serial_sequence('public.' || t, 'id'), 90000) "
        "FROM unnest(ARRAY['documents', 'document_versions', 'document_workflows']) AS t",
    )
    api.import_archive(other, archive, audit_log=False)
    copy = _export(other, tmp_path / "other.edms")
    result = api.diff(archive, copy)
    assert isinstance(result, ArchivesDiffResult)
    assert result.identical, [t.to_dict() for t in result.tables if t.differs]
    _x(other, "UPDATE documents SET title = 'x' WHERE document_number = 'DOC-00000003'")
    again = api.diff(archive, _export(other, tmp_path / "other2.edms"))
    assert isinstance(again, ArchivesDiffResult)
    assert [t.table for t in again.tables if t.differs] == ["public.documents"]
    res = CliRunner().invoke(app, ["diff", str(archive), str(tmp_path / "other2.edms")])
    assert res.exit_code == 1 and "differences found" in res.output
    assert CliRunner().invoke(app, ["diff", str(archive), str(copy)]).exit_code == 0


def test_diff_needs_a_database_or_a_second_archive(tmp_path: Path, sample_dbs: tuple[str, str]) -> None:
    src, _ = sample_dbs
    archive = _export(src, tmp_path / "a.edms")
    res = CliRunner().invoke(app, ["diff", str(archive)])
    assert res.exit_code == 2
    assert "give one of them" in res.output


def test_delete_missing_of_a_subset_archive_stays_inside_its_scope(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    """The subset holds one document: only that document's workflows the source no longer
    has go; every other document, version, workflow and user stays (tests/subset/test_subset_mirror.py
    covers the rules one by one)."""
    src, dst, _ = _mirrored(sample_dbs, tmp_path)
    first = "(SELECT id FROM documents WHERE document_number = 'DOC-00000001')"
    with psycopg.connect(dst) as c:
        row = c.execute(
            f"SELECT count(*) FROM document_workflows WHERE document_id = {first}".encode()
        ).fetchone()
    assert row is not None and row[0] > 0
    _x(src, f"DELETE FROM document_workflows WHERE document_id = {first}")
    subset = tmp_path / "subset.edms"
    api.export_archive(
        src,
        MAPPING,
        subset,
        where=[("public.documents", "document_number = 'DOC-00000001'")],
        audit_log=False,
    )
    report = api.import_archive(dst, subset, options=ImportOptions(delete_missing=True), audit_log=False)
    assert report.committed
    assert {t.table: t.deleted for t in report.tables if t.deleted} == {"public.document_workflows": row[0]}
    with psycopg.connect(dst) as c:
        left = c.execute(
            f"SELECT count(*) FROM document_workflows WHERE document_id = {first}".encode()
        ).fetchone()
    assert left == (0,)


def test_diff_errors_exit_2_not_1(tmp_path: Path, sample_dbs: tuple[str, str]) -> None:
    _, dst = sample_dbs
    res = CliRunner().invoke(app, ["diff", str(tmp_path / "missing.edms"), "--dsn", dst])
    assert res.exit_code == 2, res.output
    assert "archive not found" in res.output
