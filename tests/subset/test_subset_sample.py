"""Subset export (issue 13) on the sample EDMS schema, on a real PostgreSQL: a where on
documents keeps the matching documents, their versions and workflows (owned: keyed by
the document), every parent up the self-reference chain to its root, the current version
of each of those parents, and every user any kept row names (owner, author, assignee).
The archive imports into an EMPTY database with nothing unresolved and exactly those rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
from typer.testing import CliRunner

from edms_pgdump.api import export_archive, import_archive, plan_mapping
from edms_pgdump.archive.package import ArchiveReader
from edms_pgdump.cli import app
from edms_pgdump.demo import sample
from edms_pgdump.demo.resources import sample_mapping_path

from ..conftest import NewDb

MAPPING = str(sample_mapping_path())

# What the closure must hold, written independently of the tool: scope documents, their
# ancestors, owned versions/workflows, the current versions of every kept document, and
# the users all of those name.
EXPECTED = """
WITH RECURSIVE chosen AS (SELECT id FROM public.documents WHERE document_number = ANY(%(numbers)s)),
up AS (SELECT d.id, d.parent_id FROM public.documents d JOIN chosen USING (id)
       UNION SELECT p.id, p.parent_id FROM public.documents p JOIN up ON p.id = up.parent_id),
docs AS (SELECT DISTINCT id FROM up),
versions AS (SELECT v.id FROM public.document_versions v JOIN chosen c ON v.document_id = c.id
             UNION SELECT d.current_version_id FROM public.documents d JOIN docs USING (id)
             WHERE d.current_version_id IS NOT NULL),
flows AS (SELECT w.id FROM public.document_workflows w JOIN chosen c ON w.document_id = c.id),
people AS (SELECT owner_id AS id FROM public.documents JOIN docs USING (id)
           UNION SELECT created_by_id FROM public.document_versions JOIN versions USING (id)
           UNION SELECT assignee_id FROM public.document_workflows JOIN flows USING (id))
SELECT (SELECT count(*) FROM docs), (SELECT count(*) FROM versions), (SELECT count(*) FROM flows),
       (SELECT count(*) FROM people WHERE id IS NOT NULL)
"""


def _source(new_db: NewDb, sample_template: str, documents: int = 300) -> str:
    dsn = new_db(sample_template)
    with psycopg.connect(dsn, autocommit=True) as c:
        sample.populate(c, sample.SampleSize.from_documents(documents))
    return dsn


def _deepest(dsn: str) -> tuple[str, int]:
    """The document with the longest parent chain, and the chain's length."""
    with psycopg.connect(dsn) as c:
        row = c.execute(
            """WITH RECURSIVE up AS (SELECT id AS start, parent_id, 1 AS depth FROM public.documents
                   UNION ALL SELECT up.start, d.parent_id, up.depth + 1 FROM up
                   JOIN public.documents d ON d.id = up.parent_id)
               SELECT d.document_number, max(up.depth) FROM up JOIN public.documents d ON d.id = up.start
               GROUP BY d.document_number ORDER BY 2 DESC, 1 LIMIT 1"""
        ).fetchone()
    assert row is not None
    return str(row[0]), int(row[1])


def _counts(dsn: str) -> tuple[int, int, int, int]:
    with psycopg.connect(dsn) as c:
        row = c.execute(
            "SELECT (SELECT count(*) FROM public.documents), (SELECT count(*) FROM public.document_versions),"
            " (SELECT count(*) FROM public.document_workflows), (SELECT count(*) FROM public.users)"
        ).fetchone()
    assert row is not None
    return (int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def _expected(dsn: str, numbers: list[str]) -> tuple[int, int, int, int]:
    with psycopg.connect(dsn) as c:
        row = c.execute(EXPECTED, {"numbers": numbers}).fetchone()
    assert row is not None
    return (int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def _chains(dsn: str) -> set[tuple[str, str | None, int | None]]:
    """Each document with its parent's number and its current version's number."""
    with psycopg.connect(dsn) as c:
        rows = c.execute(
            """SELECT d.document_number, p.document_number, v.version_number FROM public.documents d
               LEFT JOIN public.documents p ON p.id = d.parent_id
               LEFT JOIN public.document_versions v ON v.id = d.current_version_id"""
        ).fetchall()
    return {(r[0], r[1], r[2]) for r in rows}


def test_closure_follows_parents_to_the_root_and_imports_into_an_empty_database(
    new_db: NewDb, sample_template: str, tmp_path: Path
) -> None:
    src = _source(new_db, sample_template)
    deep, depth = _deepest(src)
    assert depth >= 3, "the sample must have a parent chain of at least three documents"
    numbers = [deep, "DOC-00000007"]
    expected = _expected(src, numbers)
    assert expected[0] >= depth + 1  # the whole chain of `deep`, plus the other document
    out = tmp_path / "subset.edmsdump"
    quoted = ", ".join(f"'{n}'" for n in numbers)
    result = export_archive(
        src, MAPPING, out, where=[("public.documents", f"document_number IN ({quoted})")], audit_log=False
    )
    rows = {t.table: t.rows for t in result.tables}
    assert (
        rows["public.documents"],
        rows["public.document_versions"],
        rows["public.document_workflows"],
        rows["public.users"],
    ) == expected

    target = new_db(sample_template)  # the same schema, no rows
    assert _counts(target) == (0, 0, 0, 0)
    report = import_archive(target, out, audit_log=False, history=False)
    assert report.committed
    assert _counts(target) == expected
    # every kept document has the same parent and current version as in the source
    source_chains = {c for c in _chains(src) if c[0] in {r[0] for r in _chains(target)}}
    assert _chains(target) == source_chains
    assert len(source_chains) == expected[0]


def test_manifest_records_filters_and_scope(new_db: NewDb, sample_template: str, tmp_path: Path) -> None:
    src = _source(new_db, sample_template, documents=120)
    out = tmp_path / "subset.edmsdump"
    expr = "status = 'published' AND document_number < 'DOC-00000040'"
    export_archive(src, MAPPING, out, where={"public.documents": expr}, audit_log=False)
    with ArchiveReader(out) as reader:
        manifest = reader.manifest
    assert manifest.filters == {"public.documents": expr}
    scopes = {t.table: t.scope for t in manifest.tables}
    with psycopg.connect(src) as c:
        matching = c.execute(f"SELECT count(*) FROM public.documents WHERE {expr}").fetchone()
    assert matching is not None and matching[0] > 0
    assert scopes["public.documents"] == {"rule": "where", "where": expr, "rows_in_scope": matching[0]}
    assert scopes["public.document_versions"] == {
        "rule": "owned",
        "owners": ["public.documents"],
        "rows_in_scope": 2 * matching[0],
    }
    assert scopes["public.document_workflows"] == {
        "rule": "owned",
        "owners": ["public.documents"],
        "rows_in_scope": matching[0],
    }
    users = scopes["public.users"]
    assert users is not None and users["rule"] == "needed" and users["rows_in_scope"] == 0
    assert set(users["needed_by"]) == {
        "public.documents",
        "public.document_versions",
        "public.document_workflows",
    }
    # the manifest survives a read back through its typed form, scope included
    assert json.loads(manifest.to_json())["filters"] == {"public.documents": expr}


def test_full_export_has_no_filters_or_scope(new_db: NewDb, sample_template: str, tmp_path: Path) -> None:
    src = _source(new_db, sample_template, documents=20)
    out = tmp_path / "full.edmsdump"
    export_archive(src, MAPPING, out, audit_log=False)
    with ArchiveReader(out) as reader:
        manifest = reader.manifest
    assert manifest.filters == {}
    assert all(t.scope is None for t in manifest.tables)
    assert "filters" not in manifest.to_dict()


def test_mapping_where_and_cli_override(new_db: NewDb, sample_template: str, tmp_path: Path) -> None:
    """The mapping's where: applies; a --where for the same table replaces it."""
    src = _source(new_db, sample_template, documents=60)
    mapping = tmp_path / "edms.yaml"
    text = Path(MAPPING).read_text().replace(
        "public.documents:          {natural_key: [document_number]}",
        "public.documents:          {natural_key: [document_number], where: \"document_number = 'DOC-00000001'\"}",
    )
    assert "where:" in text
    mapping.write_text(text)
    out = tmp_path / "a.edmsdump"
    res = CliRunner().invoke(app, ["export", "--dsn", src, "-m", str(mapping), "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    data: dict[str, Any] = json.loads(res.output)
    assert data["filters"] == {"public.documents": "document_number = 'DOC-00000001'"}
    docs = next(t for t in data["tables"] if t["table"] == "public.documents")
    assert docs["rows"] == 1  # DOC-00000001 is a root: no parent to pull in

    out2 = tmp_path / "b.edmsdump"
    res = CliRunner().invoke(
        app,
        ["export", "--dsn", src, "-m", str(mapping), "-o", str(out2), "--json",
         "--where", "public.documents", "document_number IN ('DOC-00000002', 'DOC-00000003')"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["filters"] == {"public.documents": "document_number IN ('DOC-00000002', 'DOC-00000003')"}
    docs = next(t for t in data["tables"] if t["table"] == "public.documents")
    assert docs["scope"]["rows_in_scope"] == 2


def test_plan_shows_the_rule_of_each_table(new_db: NewDb, sample_template: str) -> None:
    src = _source(new_db, sample_template, documents=10)
    result = plan_mapping(src, MAPPING, where=[("public.documents", "status = 'draft'")])
    assert result.subset is not None
    rules = {s["table"]: s["describe"] for s in result.subset}
    assert rules == {
        "public.users": "needed by public.documents, public.document_versions, public.document_workflows",
        "public.documents": "where status = 'draft'",
        "public.document_versions": "owned by public.documents",
        "public.document_workflows": "owned by public.documents",
    }
    assert plan_mapping(src, MAPPING).subset is None
    assert "subset" not in plan_mapping(src, MAPPING).to_dict()


def test_subset_with_parallel_jobs_matches_serial(new_db: NewDb, sample_template: str, tmp_path: Path) -> None:
    """Kept keys live in temp tables of the first connection: with -j the subset tables
    are exported there and the others by the workers, on the same snapshot."""
    src = _source(new_db, sample_template, documents=80)
    where = [("public.documents", "document_number LIKE 'DOC-0000004%'")]
    one = export_archive(src, MAPPING, tmp_path / "one", where=where, audit_log=False, sort_rows=True)
    many = export_archive(src, MAPPING, tmp_path / "many", where=where, jobs=3, audit_log=False, sort_rows=True)
    assert {t.table: t.data_sha256 for t in one.tables} == {t.table: t.data_sha256 for t in many.tables}
    assert sum(t.rows for t in many.tables) < _counts(src)[0] + _counts(src)[1]
