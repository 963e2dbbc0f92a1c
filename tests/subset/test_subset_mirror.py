"""--delete-missing of a subset archive, on a real PostgreSQL: only the target rows in
the subset's scope go (the rows its filter matches on the written target, and the rows
they own), never rows outside it nor rows of tables the archive holds only because kept
rows need them. Plus the closure of a subset through generic references.

The schema: documents filtered by status, their versions (owned) and the versions'
comments (owned, two levels down), folders kept as needed parents through a
self-reference chain to their root, people needed by documents, tags exported whole,
and a bookmarks table outside the mapping that can hold on to a document.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from edms_pgdump.api import diff, export_archive, import_archive
from edms_pgdump.archive.integrity import read_member_text
from edms_pgdump.archive.package import ArchiveReader
from edms_pgdump.catalog.read import read_catalog
from edms_pgdump.cli import app
from edms_pgdump.db import connect
from edms_pgdump.demo.servers import Server
from edms_pgdump.errors import ArchiveError, DatabaseError, ImportRejected
from edms_pgdump.load.prepare import prepare_import
from edms_pgdump.load.subset_scope import archive_scopes
from edms_pgdump.mapping import load_mapping_text
from edms_pgdump.options import ImportOptions
from edms_pgdump.program.build import import_program
from edms_pgdump.program.render_psql import COUNTS_FILE, data_file, field_list, import_script
from edms_pgdump.results import DiffResult

from ..conftest import NewDb
from ..support import generic_schema as gs
from ..support.db import db_digest
from ..support.psql import run_psql
from ..support.subset_schema import MAPPING, SOURCE, TARGET_CHANGES
from ..support.subset_schema import execute as _x
from ..support.subset_schema import make_db as _db
from ..support.subset_schema import natural as _natural
from ..support.subset_schema import setup as _setup

EXPECTED_DELETES = {
    "public.documents": 1,  # D7
    "public.versions": 3,  # D7 v1, D1 v3, D5 v3
    "public.comments": 2,  # the comment on D7 v1, D1 v1's third comment
    "public.tags": 1,  # t9
    "public.folders": 0,
    "public.people": 0,
}


def _expected_after(before: dict[str, set[tuple[Any, ...]]]) -> dict[str, set[tuple[Any, ...]]]:
    """The target's rows after the mirror import, written out from the story above."""
    out = {t: set(rows) for t, rows in before.items()}
    out["documents"] = {r for r in out["documents"] if r[0] != "D7"}
    out["documents"] = {
        (n, {"D5": "published", "D6": "draft"}.get(n, s), f, p, x) for n, s, f, p, x in out["documents"]
    }
    out["versions"] -= {("D7", 1, "D7 v1"), ("D1", 3, "D1 v3"), ("D5", 3, "D5 v3")}
    out["comments"] -= {("D7", 1, 1, "on D7"), ("D1", 1, 3, "c3")}
    out["tags"] -= {("t9",)}
    return out


def test_subset_mirror_deletes_only_inside_the_scope(new_db: NewDb, tmp_path: Path) -> None:
    _, dst, subset = _setup(new_db, tmp_path)
    with ArchiveReader(subset) as reader:
        rules = {t.table: (t.scope or {}).get("rule") for t in reader.manifest.tables}
    assert rules == {
        "public.documents": "where", "public.versions": "owned", "public.comments": "owned",
        "public.folders": "needed", "public.people": "needed", "public.tags": "whole",
    }  # fmt: skip
    before = _natural(dst)
    assert ("D6", 9, "D6 v9") in before["versions"] and ("extra", "a") in before["folders"]
    result = import_archive(
        dst, subset, options=ImportOptions(delete_missing=True, max_deletes=7), audit_log=False
    )
    assert result.committed
    assert {t.table: t.deleted for t in result.tables} == EXPECTED_DELETES
    after = _natural(dst)
    assert after == _expected_after(before)
    # kept: rows outside the scope (drafts D3, D4, D8 and their versions; D6, now a
    # draft, keeps its v9) and every row of the needed tables (dave, folder a/extra)
    assert {("D3", 1, "D3 v1"), ("D4", 1, "D4 v1"), ("D8", 1, "D8 v1"), ("D6", 9, "D6 v9")} <= after[
        "versions"
    ]
    assert ("dave@x",) in after["people"] and ("extra", "a") in after["folders"]

    # diff against the subset: nothing only in the archive, nothing different; what the
    # target holds beyond the archive is exactly what lies outside the scope
    found = diff(subset, dsn=dst)
    assert isinstance(found, DiffResult)
    by_table = {t.table: t for t in found.tables}
    assert all(t.only_in_archive == 0 and t.different == 0 for t in found.tables), [
        t.to_dict() for t in found.tables
    ]
    outside = {
        "public.documents": 2,  # D4, D8
        "public.versions": 6,  # D3 v1 v2, D4 v1, D6 v1 v9, D8 v1
        "public.comments": 0,
        "public.folders": 1,  # a/extra (root/a/b/c and other are in the archive, as needed rows)
        "public.people": 1,  # dave (carol wrote D6, a needed row)
        "public.tags": 0,
    }
    assert {t: by_table[t].outside_scope for t in outside} == outside
    assert found.identical and all(t.only_in_target == 0 for t in found.tables)

    # a second run finds nothing more to delete
    again = import_archive(
        dst, subset, options=ImportOptions(delete_missing=True, max_deletes=0), audit_log=False
    )
    assert again.committed and sum(t.deleted for t in again.tables) == 0
    assert _natural(dst) == after


def test_subset_max_deletes_guard_writes_nothing(new_db: NewDb, tmp_path: Path) -> None:
    _, dst, subset = _setup(new_db, tmp_path)
    before = db_digest(dst)
    with pytest.raises(ImportRejected) as info:
        import_archive(
            dst, subset, options=ImportOptions(delete_missing=True, max_deletes=6), audit_log=False
        )
    problems = info.value.report.problems  # type: ignore[attr-defined]
    versions = next(p for p in problems if p.startswith("public.versions: "))
    assert versions.startswith(
        "public.versions: 3 row(s) in the subset's scope the archive does not hold would be deleted: "
    )
    assert "document_id.number='D7'" in versions and "over --max-deletes 6" in versions
    assert any(p.startswith("public.tags: 1 row(s) the archive does not hold") for p in problems)
    assert not any(p.startswith(("public.people", "public.folders")) for p in problems)
    assert db_digest(dst) == before  # D5 was published by the writes: rolled back too


def test_subset_dry_run_and_json_count_the_deletes_and_history_records_them(
    new_db: NewDb, tmp_path: Path
) -> None:
    _, dst, subset = _setup(new_db, tmp_path)
    before = db_digest(dst)
    audit = tmp_path / "audit.jsonl"
    dry = import_archive(
        dst, subset, options=ImportOptions(dry_run=True, delete_missing=True), audit_log=False
    )
    assert not dry.committed
    assert {t.table: t.deleted for t in dry.tables} == EXPECTED_DELETES
    assert db_digest(dst) == before
    res = CliRunner().invoke(
        app,
        [
            "import",
            str(subset),
            "--dsn",
            dst,
            "--delete-missing",
            "--max-deletes",
            "all",  # small tables: 1 of 4 documents is over the default 10% guard
            "--dry-run",
            "--json",
            "--audit-log",
            str(audit),
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert {t["table"]: t["deleted"] for t in report["tables"]} == EXPECTED_DELETES
    assert db_digest(dst) == before
    text = CliRunner().invoke(
        app,
        [
            "import",
            str(subset),
            "--dsn",
            dst,
            "--delete-missing",
            "--max-deletes",
            "all",
            "--audit-log",
            str(audit),
        ],
    )
    assert text.exit_code == 0, text.output
    assert "7 deleted" in text.output
    with psycopg.connect(dst) as c:
        row = c.execute("SELECT tables FROM edms_pgdump.history ORDER BY 1 DESC LIMIT 1").fetchone()
    assert row is not None
    assert {t["table"]: t["deleted"] for t in row[0]} == EXPECTED_DELETES


def test_subset_delete_blocked_by_a_row_that_stays_names_both_sides(new_db: NewDb, tmp_path: Path) -> None:
    _, dst, subset = _setup(new_db, tmp_path)
    # a table outside the mapping holds on to D7, which is in scope and not in the archive
    _x(dst, "INSERT INTO public.bookmarks (document_id) SELECT id FROM public.documents WHERE number = 'D7'")
    before = db_digest(dst)
    with pytest.raises((ImportRejected, DatabaseError)) as info:
        import_archive(dst, subset, options=ImportOptions(delete_missing=True), audit_log=False)
    message = str(info.value)
    assert (
        "public.documents: a row the archive does not hold is still referenced by a row that stays" in message
    )
    assert 'is still referenced from table "bookmarks"' in message
    assert db_digest(dst) == before


def test_subset_mirror_psql_runbook_gives_the_same_state(
    new_db: NewDb, tmp_path: Path, pg_server: Server
) -> None:
    """The program with the scope steps rendered for psql and run with plain psql ends
    in the state the Python import ends in."""
    _, dst, subset = _setup(new_db, tmp_path)
    twin = _db(new_db)
    import_archive(twin, tmp_path / "full.edmsdump", audit_log=False, history=False)
    _x(twin, TARGET_CHANGES)
    opts = ImportOptions(delete_missing=True, max_deletes=7)
    data = tmp_path / "data"
    data.mkdir()
    with ArchiveReader(subset) as reader, connect(twin) as conn:
        catalog = read_catalog(conn)
        prep = prepare_import(reader.manifest, catalog, str(subset))
        loaded = {n: tuple(f) for n, f in prep.loaded.items()}
        scopes = archive_scopes(reader.manifest, prep.plan, catalog, loaded, str(subset))
        program = import_program(prep.plan, catalog, opts, loaded, scopes=scopes)
        counts = []
        for i, name in enumerate(program.tables, start=1):
            entry = prep.entries[name]
            (data / data_file(i)).write_bytes(read_member_text(reader, entry))
            counts.append(f"{i}\t{name}\t{entry.rows}\t{field_list(program.fields[name])}\n")
        (data / COUNTS_FILE).write_text("".join(counts))
    lines = [line.text for line in import_script(program)]
    assert any("pg_stat_xact_all_tables" in t for t in lines)  # the filter's writes are counted
    script = tmp_path / "import.sql"
    script.write_text("\\set ON_ERROR_STOP on\n\\cd :datadir\n" + "\n".join(lines) + "\n")
    res = run_psql(pg_server, twin, script, data)
    assert res.returncode == 0, res.stderr
    import_archive(dst, subset, options=opts, audit_log=False)
    assert _natural(twin) == _natural(dst)


def test_subset_filter_is_checked_again_when_read_from_the_archive(new_db: NewDb, tmp_path: Path) -> None:
    """The manifest is data: a filter that is not one read-only condition, or that names a
    column the target lacks, stops the import before anything is written."""
    _, dst, subset = _setup(new_db, tmp_path)
    before = db_digest(dst)
    with ArchiveReader(subset) as reader:
        manifest = reader.manifest
    scope = dict(manifest.table("public.documents").scope or {})
    with connect(dst) as conn:
        catalog = read_catalog(conn)
        prep = prepare_import(manifest, catalog, str(subset))
        for bad, said in (
            ("true; DROP TABLE public.tags", "contains ';'"),
            ("status IN (SELECT 1 FROM public.tags FOR UPDATE)", "FOR UPDATE"),
            ("colour = 'red'", "has no column 'colour'"),
        ):
            entry = manifest.table("public.documents")
            entry.extra["scope"] = {**scope, "where": bad}
            with pytest.raises(ArchiveError) as info:
                archive_scopes(manifest, prep.plan, catalog, prep.loaded, "x.edmsdump")
            assert said in str(info.value) and "the archive's filter of public.documents" in str(info.value)
            assert "nothing was written" in str(info.value)
        entry.extra["scope"] = scope
        assert archive_scopes(manifest, prep.plan, catalog, prep.loaded, "x.edmsdump")
    assert db_digest(dst) == before


def test_a_filter_calling_a_writing_function_is_refused_on_the_target(new_db: NewDb, tmp_path: Path) -> None:
    """At export the filter runs read only: a function that writes fails. At import it runs
    in the import's writing transaction, which counts the rows it has written before and
    after: a filter that wrote stops the import, and everything is rolled back."""
    src = _db(new_db, SOURCE)
    writer = (
        "CREATE FUNCTION public.noisy(text) RETURNS boolean LANGUAGE plpgsql AS "
        "$$BEGIN INSERT INTO public.tags (name) VALUES ('noise ' || $1 || random()); RETURN $1 = 'published'; END$$"
    )
    archive = tmp_path / "noisy.edmsdump"
    _x(src, writer)
    # the export evaluates the filter read only too: it refuses the function there
    with pytest.raises(DatabaseError, match="read-only transaction"):
        export_archive(
            src, MAPPING, archive, where=[("public.documents", "public.noisy(status)")], audit_log=False
        )
    # an archive whose recorded filter calls it (exported where it did not write)
    _x(
        src,
        "CREATE OR REPLACE FUNCTION public.noisy(text) RETURNS boolean LANGUAGE sql AS $$SELECT $1 = 'published'$$",
    )
    export_archive(
        src, MAPPING, archive, where=[("public.documents", "public.noisy(status)")], audit_log=False
    )
    dst = _db(new_db)
    _x(dst, writer)
    before = db_digest(dst)
    with pytest.raises(ImportRejected) as info:
        import_archive(dst, archive, options=ImportOptions(delete_missing=True), audit_log=False)
    message = str(info.value)
    assert message.startswith(
        "public.documents: the subset's filter (public.noisy(status)) wrote to the database while its "
        "scope was found on the target (rows written by the transaction: "
    ), message
    assert "nothing was written" in message
    assert db_digest(dst) == before
    assert _natural(dst)["tags"] == set()  # the function's rows went with the rollback


# -- generic references in a subset's closure -------------------------------------------


def test_subset_closure_follows_generic_references_into_an_empty_database(
    new_db: NewDb, tmp_path: Path
) -> None:
    """Kept rows name documents, cabinets, folders and uuid-keyed tags through
    (content type, object id): a filtered table's rows (app_accessentry) and a whole
    table's rows (app_comment) pull exactly those in, and the archive imports into a
    database holding nothing but the content types."""
    src = new_db()
    with psycopg.connect(src, autocommit=True) as c:
        c.execute(gs.SCHEMA.encode())
        c.execute(gs.SOURCE_DATA.encode())
    mapping = load_mapping_text(gs.MAPPING)

    def of_type(model: str, table: str, where: str) -> str:
        return (
            f"(content_type_id IN (SELECT t.id FROM public.django_content_type t WHERE t.model = '{model}') "
            f"AND object_id IN (SELECT o.id FROM {table} o WHERE {where}))"
        )

    where = (
        "role_id IN (SELECT r.id FROM public.app_role r WHERE r.name = 'reader') AND ("
        + of_type("document", "public.app_document", "o.name = 'doc7'")
        + " OR "
        + of_type("cabinet", "public.app_cabinet", "o.label = 'cab3'")
        + ")"
    )
    archive = tmp_path / "generic.edmsdump"
    export_archive(src, mapping, archive, where=[("public.app_accessentry", where)], audit_log=False)
    with ArchiveReader(archive) as reader:
        entries = {t.table: t for t in reader.manifest.tables}
    assert (entries["public.app_accessentry"].scope or {}).get("rule") == "where"
    assert (entries["public.app_document"].scope or {}).get("rule") == "needed"
    assert (entries["public.app_comment"].scope or {}).get("rule") == "whole"

    dst = new_db()
    with psycopg.connect(dst, autocommit=True) as c:
        c.execute(gs.SCHEMA.encode())
        c.execute(
            f"INSERT INTO django_content_type (app_label, model) VALUES {', '.join(gs.CONTENT_TYPES)}".encode()
        )
    report = import_archive(dst, archive, audit_log=False, history=False)
    assert report.committed

    def names(dsn: str, query: str) -> set[tuple[Any, ...]]:
        with psycopg.connect(dsn) as c:
            return {tuple(r) for r in c.execute(query.encode()).fetchall()}

    assert names(dst, gs.ACCESS_BY_NAME) == {
        ("app", "document", "doc7", "reader"), ("app", "cabinet", "cab3", "reader"),
    }  # fmt: skip
    # the whole table's comments name every tag (uuid ids held as text) and doc1..doc4
    assert names(dst, gs.COMMENTS_BY_NAME) == names(src, gs.COMMENTS_BY_NAME)
    assert names(dst, "SELECT name FROM public.app_tag") == {(f"tag{g}",) for g in range(1, 11)}
    assert names(dst, "SELECT name FROM public.app_document") == {(f"doc{g}",) for g in (1, 2, 3, 4, 7)}
    assert names(dst, "SELECT label FROM public.app_cabinet") == {("cab3",)}
    assert names(dst, "SELECT path FROM public.app_folder") == set()  # named by nothing kept
    assert names(dst, "SELECT name FROM public.app_role") == {("reader",)}
