"""The psql runbooks of a subset (the mapping's ``where:``), run with the real psql on a
real PostgreSQL: export.sql computes the library's closure in its one snapshot and
writes exactly the rows ``edms-pgdump export`` writes, with each table's scope in
scope.copy; import.sql --delete-missing deletes only inside that scope, like the
library's mirror import, and refuses data exported with another scope.

Schemas: test_subset_mirror's (a where on documents, owned versions and comments two
levels down, a folder chain pulled in to its root through a self-reference, needed
people, whole tags) and test_subset_schema's (a three-level ownership chain, a tree
filtered with its descendants, a whole table whose rows need others).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edms_pgdump.api import diff, export_archive, import_archive
from edms_pgdump.archive.integrity import read_member_text
from edms_pgdump.archive.package import ArchiveReader
from edms_pgdump.cli import app
from edms_pgdump.demo.servers import Server
from edms_pgdump.mapping import Mapping, load_mapping_text
from edms_pgdump.options import ImportOptions
from edms_pgdump.program.render_psql import COUNTS_FILE, SCOPE_FILE, data_file
from edms_pgdump.results import DiffResult
from edms_pgdump.runbook.scripts import write_runbooks

from ..conftest import NewDb
from ..support.db import db_digest
from ..support.psql import run_psql
from ..support.subset_schema import MAPPING_TEXT, SOURCE, TARGET_CHANGES
from ..support.subset_schema import execute as _x
from ..support.subset_schema import make_db as _db
from ..support.subset_schema import natural as _natural
from . import test_subset_schema as tree

PUBLISHED = "status = 'published'"
WHOLE_TEXT = MAPPING_TEXT
WHOLE_MAPPING = load_mapping_text(WHOLE_TEXT)


def _with_where(where: str) -> str:
    return WHOLE_TEXT.replace(
        "public.documents: {natural_key: [number]}",
        f"public.documents: {{natural_key: [number], where: {where}}}",
    )


WHERE_MAPPING = load_mapping_text(_with_where(f'"{PUBLISHED}"'))

MID = "name = 'mid' AND parent_id IN (SELECT id FROM public.folders WHERE name = 'root')"
TREE_MAPPING = load_mapping_text(
    tree.MAPPING.replace(
        "public.folders: {natural_key: [parent_id, name]}",
        f'public.folders: {{natural_key: [parent_id, name], where: "{MID}"}}',
    )
)


def _psql_export(server: Server, src: str, mapping: Mapping, tmp_path: Path, name: str = "data") -> Path:
    scripts = tmp_path / f"{name}-scripts"
    write_runbooks(src, mapping, ["export"], scripts)
    data = tmp_path / name
    data.mkdir()
    res = run_psql(server, src, scripts / "export.sql", data)
    assert res.returncode == 0, res.stderr
    return data


def _psql_import(
    server: Server,
    dst: str,
    mapping: Mapping,
    data: Path,
    tmp_path: Path,
    options: ImportOptions | None = None,
) -> tuple[int, str]:
    scripts = tmp_path / "import-scripts"
    write_runbooks(dst, mapping, ["import"], scripts, options)
    res = run_psql(server, dst, scripts / "import.sql", data)
    return res.returncode, res.stderr


def _same_rows_as_the_library(src: str, mapping: Mapping, data: Path, tmp_path: Path) -> Path:
    """export.sql's files hold exactly the rows of the library's archive, table by table,
    and scope.copy records the manifest's scope of each."""
    archive = tmp_path / "library.edmsdump"
    export_archive(src, mapping, archive, audit_log=False)
    counts = [line.split("\t") for line in (data / COUNTS_FILE).read_text().splitlines()]
    scopes = [line.split("\t") for line in (data / SCOPE_FILE).read_text().splitlines()]
    with ArchiveReader(archive) as reader:
        assert reader.manifest.filters  # the library exported a subset too
        assert len(counts) == len(scopes) == len(reader.manifest.tables)
        for i, entry in enumerate(reader.manifest.tables, start=1):
            library = sorted(read_member_text(reader, entry).splitlines())
            psql = sorted((data / data_file(i)).read_bytes().splitlines())
            assert psql == library, entry.table
            assert counts[i - 1][:3] == [str(i), entry.table, str(entry.rows)]
            assert scopes[i - 1][1] == entry.table
            recorded = json.loads(scopes[i - 1][2])
            in_scope = None if scopes[i - 1][3] == "\\N" else int(scopes[i - 1][3])
            expected = dict(entry.scope or {})
            assert in_scope == expected.pop("rows_in_scope", None), entry.table
            assert recorded == expected, entry.table
    return archive


def test_export_sql_keeps_the_librarys_subset_rows(new_db: NewDb, tmp_path: Path, pg_server: Server) -> None:
    """A where, owned children two levels down, a folder chain to its root through a
    self-reference and a draft superseded by a kept document: the same rows from psql."""
    src = _db(new_db, SOURCE)
    data = _psql_export(pg_server, src, WHERE_MAPPING, tmp_path)
    archive = _same_rows_as_the_library(src, WHERE_MAPPING, data, tmp_path)
    folders = (data / data_file(1)).read_text().splitlines()
    # c's parents up to the root, and the folder of D3 (a needed draft)
    assert sorted(line.split("\t")[1] for line in folders) == ["a", "b", "c", "other", "root"]

    # import.sql into an empty database gives the library import's rows
    by_psql, by_library = _db(new_db), _db(new_db)
    code, err = _psql_import(pg_server, by_psql, WHERE_MAPPING, data, tmp_path)
    assert code == 0, err
    assert import_archive(by_library, archive, audit_log=False, history=False).committed
    assert _natural(by_psql) == _natural(by_library)
    assert {r[0] for r in _natural(by_psql)["documents"]} == {"D1", "D2", "D5", "D3", "D6"}


def test_export_sql_follows_ownership_trees_and_whole_tables(
    new_db: NewDb, tmp_path: Path, pg_server: Server
) -> None:
    """Two filters (a tenant, a folder with its descendants), a three-level ownership
    chain with a composite primary key at the end, and a whole table (audit) whose rows
    need another tenant's task: the same rows as the library's export."""
    src = tree._db(new_db, data=True)
    data = _psql_export(pg_server, src, TREE_MAPPING, tmp_path)
    _same_rows_as_the_library(src, TREE_MAPPING, data, tmp_path)
    target = tree._db(new_db, data=False)
    code, err = _psql_import(pg_server, target, TREE_MAPPING, data, tmp_path)
    assert code == 0, err
    assert {r[0] for r in tree._natural(target)["tasks"]} == {"p1", "p2", "g1"}


def test_import_sql_delete_missing_mirrors_only_the_scope(
    new_db: NewDb, tmp_path: Path, pg_server: Server
) -> None:
    """psql export.sql + import.sql --delete-missing end where the library's subset
    mirror ends; then diff of the library's archive says identical."""
    src = _db(new_db, SOURCE)
    full = tmp_path / "full.edmsdump"
    export_archive(src, WHOLE_MAPPING, full, audit_log=False)
    by_psql, by_library = _db(new_db), _db(new_db)
    for dst in (by_psql, by_library):
        assert import_archive(dst, full, audit_log=False, history=False).committed
        _x(dst, TARGET_CHANGES)
    data = _psql_export(pg_server, src, WHERE_MAPPING, tmp_path)
    mirror = ImportOptions(delete_missing=True, max_deletes=7)
    code, err = _psql_import(pg_server, by_psql, WHERE_MAPPING, data, tmp_path, mirror)
    assert code == 0, err
    archive = tmp_path / "subset.edmsdump"
    export_archive(src, WHERE_MAPPING, archive, audit_log=False)
    assert import_archive(by_library, archive, options=mirror, audit_log=False).committed
    after = _natural(by_psql)
    assert after == _natural(by_library)
    # outside the scope, kept: a draft of the target's own, dave, folder a/extra
    assert ("D8", 1, "D8 v1") in after["versions"] and ("dave@x",) in after["people"]
    assert ("D7", 1, "D7 v1") not in after["versions"] and ("t9",) not in after["tags"]
    found = diff(archive, dsn=by_psql)
    assert isinstance(found, DiffResult) and found.identical


def test_import_sql_refuses_data_exported_with_another_scope(
    new_db: NewDb, tmp_path: Path, pg_server: Server
) -> None:
    """A slice mirrored as whole tables would delete every row outside it: an import.sql
    --delete-missing from a mapping without the where: refuses the subset's data, and
    one with the where: refuses whole data, with nothing written."""
    src = _db(new_db, SOURCE)
    dst = _db(new_db, SOURCE, TARGET_CHANGES)
    before = db_digest(dst)
    subset = _psql_export(pg_server, src, WHERE_MAPPING, tmp_path, "subset")
    whole = _psql_export(pg_server, src, WHOLE_MAPPING, tmp_path, "whole")
    mirror = ImportOptions(delete_missing=True)
    code, err = _psql_import(pg_server, dst, WHOLE_MAPPING, subset, tmp_path, mirror)
    assert code != 0
    assert "ERROR:  scope.copy: public.folders was exported with the scope" in err
    assert (
        """public.documents was exported with the scope {"rule": "where", "where": "status = 'published'"}"""
        ' but this script deletes in {"rule": "whole"}'
    ) in err
    assert "generate export.sql and import.sql from the same mapping" in err
    code, err = _psql_import(pg_server, dst, WHERE_MAPPING, whole, tmp_path, mirror)
    assert code != 0
    assert (
        'public.documents was exported with the scope {"rule": "whole"} but this script deletes in'
        """ {"rule": "where", "where": "status = 'published'"}"""
    ) in err
    assert db_digest(dst) == before
    # without --delete-missing the scope does not matter: the subset's rows are upserted
    code, err = _psql_import(pg_server, dst, WHOLE_MAPPING, subset, tmp_path)
    assert code == 0, err


def test_export_sql_runs_the_filter_read_only_and_names_it(
    new_db: NewDb, tmp_path: Path, pg_server: Server
) -> None:
    src = _db(new_db, SOURCE)
    _x(
        src,
        "CREATE FUNCTION public.noisy(text) RETURNS boolean LANGUAGE plpgsql AS "
        "$$BEGIN INSERT INTO public.tags (name) VALUES ('noise ' || random()); RETURN $1 = 'published'; END$$",
    )
    mapping = load_mapping_text(_with_where('"public.noisy(status)"'))
    write_runbooks(src, mapping, ["export"], tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    before = db_digest(src)
    res = run_psql(pg_server, src, tmp_path / "export.sql", data)
    assert res.returncode != 0
    assert 'tables."public.documents".where: the filter failed on public.documents' in res.stderr
    assert "cannot execute INSERT in a read-only transaction" in res.stderr
    assert db_digest(src) == before
    assert not (data / COUNTS_FILE).exists()


def test_sql_export_refuses_a_filter_on_a_missing_column(new_db: NewDb, tmp_path: Path) -> None:
    src = _db(new_db)
    mapping = tmp_path / "m.yaml"
    mapping.write_text(_with_where(""" "colour = 'red'" """.strip()))
    res = CliRunner().invoke(
        app, ["sql", "export", "--dsn", src, "-m", str(mapping), "-o", str(tmp_path / "rb")]
    )
    assert res.exit_code != 0
    assert "public.documents has no column 'colour'" in res.output
    assert not (tmp_path / "rb" / "export.sql").exists()


@pytest.mark.parametrize("kind", ["export", "import"])
def test_runbooks_without_where_record_whole_tables(kind: str, new_db: NewDb, tmp_path: Path) -> None:
    """No filter: export.sql stays READ ONLY from BEGIN and records every table whole;
    import.sql reads scope.copy only when it deletes."""
    src = _db(new_db)
    write_runbooks(src, WHOLE_MAPPING, [kind], tmp_path)
    text = (tmp_path / f"{kind}.sql").read_text()
    if kind == "export":
        assert "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;" in text
        assert "edms_subset" not in text and f"\\g '{SCOPE_FILE}'" in text
    else:
        assert "edms_scope" not in text
        write_runbooks(src, WHOLE_MAPPING, [kind], tmp_path, ImportOptions(delete_missing=True))
        assert f"\\copy edms_scope FROM '{SCOPE_FILE}'" in (tmp_path / "import.sql").read_text()
