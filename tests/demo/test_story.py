"""The reason this tool exists: a restore into a re-initialised database.

The target is created from the same DDL, but its sequences are far ahead and the
application's init already created some rows (unrelated ones, and one of the source's
users with a new id). Every id differs. An id-based restore loses the data; the
natural-key import reproduces it exactly.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest

from edms_pgdump import ImportOptions, export_archive, import_archive, load_mapping
from edms_pgdump.demo.servers import Server
from tests.support.story import counts, natural_view

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "config" / "edms.yaml")


def _recreate_admin(dsn: str) -> None:
    """What an application's init does: the first user exists again, with a new id."""
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(
            "INSERT INTO public.users (username, email, full_name, created_at) "
            "VALUES ('user000001', 'init@example.org', 'Created by init', '2020-01-01')"
        )


def test_natural_key_restore_reproduces_every_relationship(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    src, dst = sample_dbs
    _recreate_admin(dst)
    archive = tmp_path / "prod.edmsdump"
    result = export_archive(src, MAPPING, archive)
    assert {t.table: t.rows for t in result.tables} == {
        "public.users": 10,
        "public.documents": 200,
        "public.document_versions": 400,
        "public.document_workflows": 200,
    }
    before = counts(dst)
    report = import_archive(dst, archive)
    assert report.committed and report.ok
    by_table = {t.table: t for t in report.tables}
    assert by_table["public.users"].inserted == 9
    assert by_table["public.users"].updated == 1  # the init-created user takes the source's values
    assert by_table["public.documents"].inserted == 200
    assert counts(dst) == {
        "users": before["users"] + 9,
        "documents": before["documents"] + 200,
        "document_versions": before["document_versions"] + 400,
        "document_workflows": before["document_workflows"] + 200,
    }
    # Every document, version and workflow with the right owner, parent, current version
    # and assignee, compared through natural keys.
    assert natural_view(dst) == natural_view(src)
    # ...although no id matches: the target allocated its own.
    with psycopg.connect(dst) as c:
        low = c.execute(
            "SELECT min(id) FROM public.documents WHERE document_number LIKE 'DOC-%'"
        ).fetchone()
        assert low is not None and low[0] >= 7_000_000

    again = import_archive(dst, archive)
    assert again.inserted == 0 and again.updated == 0
    assert all(t.unchanged == t.expected for t in again.tables)
    assert natural_view(dst) == natural_view(src)


def test_dry_run_reports_and_writes_nothing(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, dst = sample_dbs
    archive = tmp_path / "prod.edmsdump"
    export_archive(src, MAPPING, archive)
    before = counts(dst)
    report = import_archive(dst, archive, options=ImportOptions(dry_run=True))
    assert not report.committed and report.dry_run
    assert report.inserted == 810
    assert counts(dst) == before


def _pg_bin(server: Server, tool: str) -> str:
    if server.bin_dir is not None and (server.bin_dir / tool).exists():
        return str(server.bin_dir / tool)
    return tool


def test_id_based_restore_loses_the_data(
    sample_dbs: tuple[str, str], pg_server: Server, tmp_path: Path
) -> None:
    """The failure we fix: pg_dump --data-only restored into a re-initialised database."""
    src, dst = sample_dbs
    _recreate_admin(dst)
    before = counts(dst)
    dump = tmp_path / "prod.dump"
    tables = [f"--table=public.{t}" for t in counts(src)]
    subprocess.run(
        [_pg_bin(pg_server, "pg_dump"), "--data-only", "-Fc", "-f", str(dump), *tables, src],
        check=True,
    )
    restore = subprocess.run(
        [_pg_bin(pg_server, "pg_restore"), "--data-only", "-d", dst, str(dump)],
        capture_output=True,
        text=True,
    )
    assert restore.returncode != 0
    assert "violates" in restore.stderr
    after = counts(dst)
    # users collide on the init-created username; every document then points at an
    # owner id that does not exist, so documents, versions and workflows are all lost.
    assert after == before
    assert natural_view(dst) != natural_view(src)


@pytest.mark.parametrize("jobs", [1, 3])
def test_parallel_export_is_one_snapshot(sample_dbs: tuple[str, str], tmp_path: Path, jobs: int) -> None:
    src, dst = sample_dbs
    archive = tmp_path / f"j{jobs}.edmsdump"
    result = export_archive(src, MAPPING, archive, jobs=jobs)
    assert result.rows == 810
    import_archive(dst, archive)
    assert natural_view(dst) == natural_view(src)
