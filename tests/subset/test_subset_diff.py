"""diff of a subset archive against a database, on a real PostgreSQL: compared within the
archive's scope, found on the target as ``import --delete-missing`` finds it. After a
mirror import the diff says identical (exit 0) although the target keeps rows outside
the slice; a row in the scope that the archive lacks makes it differ (exit 1) with its
key in the samples; rows outside the scope are counted as ``outside_scope``.

The schemas and data are those of test_subset_mirror (documents filtered by status,
owned versions and comments, needed folders and people, whole tags) and of
test_subset_schema (a tree filtered with its descendants).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edms_pgdump.api import diff, export_archive, import_archive
from edms_pgdump.archive.package import ArchiveReader
from edms_pgdump.catalog.read import read_catalog
from edms_pgdump.cli import app
from edms_pgdump.db import connect
from edms_pgdump.errors import ArchiveError, DatabaseError
from edms_pgdump.load.prepare import prepare_import
from edms_pgdump.load.subset_scope import archive_scopes
from edms_pgdump.mapping import load_mapping_text
from edms_pgdump.options import ImportOptions
from edms_pgdump.results import DiffResult

from ..conftest import NewDb
from ..support.db import db_digest
from ..support.subset_schema import MAPPING, SOURCE
from ..support.subset_schema import execute as _x
from ..support.subset_schema import make_db as _db
from ..support.subset_schema import setup as _setup
from . import test_subset_schema as tree

MIRROR = ImportOptions(delete_missing=True)


def _diff_json(archive: Path, dsn: str) -> tuple[int, dict[str, dict[str, object]]]:
    res = CliRunner().invoke(app, ["diff", str(archive), "--dsn", dsn, "--json"])
    assert res.exit_code in (0, 1), res.output
    return res.exit_code, {t["table"]: t for t in json.loads(res.output)["tables"]}


def test_diff_after_a_subset_mirror_is_identical_and_an_in_scope_row_differs(
    new_db: NewDb, tmp_path: Path
) -> None:
    _, dst, subset = _setup(new_db, tmp_path)
    assert import_archive(dst, subset, options=MIRROR, audit_log=False).committed

    code, tables = _diff_json(subset, dst)
    assert code == 0
    assert {t: v["scope"] for t, v in tables.items()} == {
        "public.folders": {"rule": "needed", "needed_by": ["public.documents"]},
        "public.people": {"rule": "needed", "needed_by": ["public.documents"]},
        "public.documents": {"rule": "where", "where": "status = 'published'"},
        "public.versions": {"rule": "owned", "owners": ["public.documents"]},
        "public.comments": {"rule": "owned", "owners": ["public.versions"]},
        "public.tags": {"rule": "whole"},
    }
    assert all(v["only_in_target"] == 0 and v["only_in_archive"] == 0 for v in tables.values())
    # what the target keeps beyond the slice: drafts D4 and D8, their versions, D3's and
    # D6's versions (needed drafts bring none), folder a/extra, dave
    assert {t: v["outside_scope"] for t, v in tables.items()} == {
        "public.folders": 1, "public.people": 1, "public.documents": 2,
        "public.versions": 6, "public.comments": 0, "public.tags": 0,
    }  # fmt: skip
    samples = tables["public.people"]["samples"]
    assert isinstance(samples, dict)
    assert samples["outside_scope"] == [{"email": "dave@x"}] and samples["only_in_target"] == []
    text = CliRunner().invoke(app, ["diff", str(subset), "--dsn", dst], env={"COLUMNS": "200"})
    assert text.exit_code == 0, text.output
    lines = {line.split("│")[1].strip(): line for line in text.output.splitlines() if line.count("│") > 3}
    header = next(line for line in text.output.splitlines() if "┃ table" in line)
    assert [c.strip() for c in header.split("┃")[6:8]] == ["outside scope", "scope"]
    assert [c.strip() for c in lines["public.versions"].split("│")[2:8]] == ["0", "0", "0", "4", "6", "owned"]
    assert "public.people outside scope: email=dave@x" in text.output

    # in scope, absent from the archive: a published document, a version of D1, a comment
    # on D1 v1; outside: a draft and its version, a person; a whole table's extra row
    _x(
        dst,
        """
        INSERT INTO public.documents (number, status) VALUES ('D9', 'published'), ('D10', 'draft');
        INSERT INTO public.versions (document_id, n, body)
            SELECT id, 7, 'x' FROM public.documents WHERE number IN ('D1', 'D10');
        INSERT INTO public.comments (version_id, seq, note) SELECT v.id, 5, 'x' FROM public.versions v
            JOIN public.documents d ON d.id = v.document_id WHERE d.number = 'D1' AND v.n = 1;
        INSERT INTO public.people (email) VALUES ('erin@x');
        INSERT INTO public.tags (name) VALUES ('t7');
        """,
    )
    code, tables = _diff_json(subset, dst)
    assert code == 1
    assert {t: (v["only_in_target"], v["outside_scope"]) for t, v in tables.items()} == {
        "public.folders": (0, 1), "public.people": (0, 2), "public.documents": (1, 3),
        "public.versions": (1, 7), "public.comments": (1, 0), "public.tags": (1, 0),
    }  # fmt: skip

    def sample(table: str, kind: str) -> object:
        found = tables[table]["samples"]
        assert isinstance(found, dict)
        return found[kind]

    assert sample("public.documents", "only_in_target") == [{"number": "D9"}]
    assert {"number": "D10"} in sample("public.documents", "outside_scope")  # type: ignore[operator]
    assert sample("public.versions", "only_in_target") == [{"document_id.number": "D1", "n": 7}]
    assert sample("public.tags", "only_in_target") == [{"name": "t7"}]
    assert {"email": "erin@x"} in sample("public.people", "outside_scope")  # type: ignore[operator]

    # the mirror import deletes exactly what diff showed in scope, then diff is identical
    report = import_archive(dst, subset, options=MIRROR, audit_log=False)
    assert {t.table: t.deleted for t in report.tables if t.deleted} == {
        "public.documents": 1, "public.versions": 1, "public.comments": 1, "public.tags": 1,
    }  # fmt: skip
    found = diff(subset, dsn=dst)
    assert isinstance(found, DiffResult) and found.identical


def test_diff_of_a_whole_archive_is_unchanged(new_db: NewDb, tmp_path: Path) -> None:
    """Without a filter every table is whole: every target row the archive lacks counts."""
    src = _db(new_db, SOURCE)
    dst = _db(new_db)
    full = tmp_path / "full.edmsdump"
    export_archive(src, MAPPING, full, audit_log=False)
    import_archive(dst, full, audit_log=False, history=False)
    _x(dst, "INSERT INTO public.documents (number, status) VALUES ('D8', 'draft')")
    code, tables = _diff_json(full, dst)
    assert code == 1
    assert tables["public.documents"]["only_in_target"] == 1
    assert tables["public.documents"]["outside_scope"] == 0
    assert all(v["scope"] == {"rule": "whole"} for v in tables.values())


def test_diff_of_a_subset_tree_counts_new_descendants_in_scope(new_db: NewDb, tmp_path: Path) -> None:
    """A tree filtered with its descendants: a new folder under the filtered one is in
    the scope; one under another root is not; the ancestors (needed rows) stay."""
    src = tree._db(new_db, data=True)
    dst = tree._db(new_db, data=False)
    mapping = load_mapping_text(tree.MAPPING)
    mid = "name = 'mid' AND parent_id IN (SELECT id FROM public.folders WHERE name = 'root')"
    archive = tmp_path / "tree.edmsdump"
    export_archive(src, mapping, archive, where=[("public.folders", mid)], audit_log=False)
    assert import_archive(dst, archive, audit_log=False, history=False).committed
    _x(dst, "INSERT INTO public.folders (parent_id, name) VALUES (NULL, 'elsewhere')")
    found = diff(archive, dsn=dst)
    assert isinstance(found, DiffResult) and found.identical
    folders = {t.table: t for t in found.tables}["public.folders"]
    assert folders.scope == {"rule": "where", "where": mid, "descendants": True}
    assert (folders.only_in_target, folders.outside_scope) == (0, 1)
    # a grandchild of mid (under sub) is a descendant: in scope
    _x(
        dst,
        "INSERT INTO public.folders (parent_id, name) SELECT f.id, 'new' FROM public.folders f"
        " JOIN public.folders p ON p.id = f.parent_id WHERE f.name = 'sub' AND p.name = 'mid'",
    )
    found = diff(archive, dsn=dst)
    assert isinstance(found, DiffResult) and not found.identical
    folders = {t.table: t for t in found.tables}["public.folders"]
    assert (folders.only_in_target, folders.outside_scope) == (1, 1)
    assert [s["name"] for s in folders.samples["only_in_target"]] == ["new"]


def test_diff_runs_the_archives_filter_read_only(new_db: NewDb, tmp_path: Path) -> None:
    """The filter comes from the archive: in diff's READ ONLY transaction a function that
    writes fails, the error names the table, and the target is untouched."""
    src = _db(new_db, SOURCE)
    _x(
        src,
        "CREATE FUNCTION public.noisy(text) RETURNS boolean LANGUAGE sql AS $$SELECT $1 = 'published'$$",
    )
    archive = tmp_path / "noisy.edmsdump"
    export_archive(
        src, MAPPING, archive, where=[("public.documents", "public.noisy(status)")], audit_log=False
    )
    dst = _db(new_db)
    _x(
        dst,
        "CREATE FUNCTION public.noisy(text) RETURNS boolean LANGUAGE plpgsql AS "
        "$$BEGIN INSERT INTO public.tags (name) VALUES ('noise ' || random()); RETURN $1 = 'published'; END$$",
    )
    import_archive(dst, archive, audit_log=False, history=False)
    before = db_digest(dst)
    with pytest.raises(DatabaseError) as info:
        diff(archive, dsn=dst)
    assert "cannot execute INSERT in a read-only transaction" in str(info.value)
    assert "public.documents: finding the subset's scope on the target failed (scope where)" in str(
        info.value
    )
    assert db_digest(dst) == before
    res = CliRunner().invoke(app, ["diff", str(archive), "--dsn", dst])
    assert res.exit_code == 2, res.output


def test_diff_refuses_a_scope_the_target_cannot_evaluate(new_db: NewDb, tmp_path: Path) -> None:
    """A recorded filter naming a column the target lacks: diff says it cannot tell which
    rows the subset speaks for, instead of comparing whole tables (the manifest is
    edited in memory, as a damaged or foreign archive would carry it)."""
    _, dst, subset = _setup(new_db, tmp_path)
    with ArchiveReader(subset) as reader:
        manifest = reader.manifest
    entry = manifest.table("public.documents")
    entry.extra["scope"] = {**(entry.scope or {}), "where": "colour = 'red'"}
    with connect(dst) as conn:
        catalog = read_catalog(conn)
    prep = prepare_import(manifest, catalog, str(subset))
    with pytest.raises(ArchiveError) as info:
        archive_scopes(manifest, prep.plan, catalog, prep.loaded, str(subset), "diff")
    message = str(info.value)
    assert "public.documents has no column 'colour'" in message
    assert "diff cannot tell which target rows the subset speaks for" in message
    assert "--delete-missing" not in message
