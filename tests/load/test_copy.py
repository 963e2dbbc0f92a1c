"""Issue 27, item 3: `copy --from DSN --to DSN`, database to database with no archive.

The source is read on one snapshot, each table's COPY streamed into the import's staging
on the target, written in one transaction with every count proven. Two databases of the
same server stand for the source and the target; the target's ids are pushed far from the
source's, so an id that travelled raw would point elsewhere."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from edms_pgdump import (
    ExportOptions,
    ImportOptions,
    export_archive,
    import_archive,
    load_mapping_text,
    read_audit_log,
    read_history,
)
from edms_pgdump.api import copy_database
from edms_pgdump.catalog.names import parse_qualified_name
from edms_pgdump.cli import app
from edms_pgdump.errors import DatabaseError, ImportRejected, SchemaDriftError
from edms_pgdump.load.copy_source import CopySource
from tests.support.db import subprocess_env
from tests.support.real_schemas import (
    NewDb,
    fetch,
    make_db,
    natural_rows,
    run,
    sequence_values,
    table_snapshot,
)

SCHEMA = """
CREATE TABLE public.region (id serial PRIMARY KEY, code text NOT NULL UNIQUE);
CREATE TABLE public.store (id bigserial PRIMARY KEY, region_id int NOT NULL REFERENCES public.region,
    name text NOT NULL, opened date, UNIQUE (region_id, name));
CREATE TABLE public.sale (id bigserial PRIMARY KEY, store_id bigint NOT NULL REFERENCES public.store,
    ref text NOT NULL UNIQUE, amount numeric(12, 2) NOT NULL, note text);
"""

MAPPING = """
version: 1
tables:
  public.region: {natural_key: [code]}
  public.store: {natural_key: [region_id, name]}
  public.sale: {natural_key: [ref]}
"""
TABLES = ("public.region", "public.store", "public.sale")
SALES = 3000


def _source(new_db: NewDb, sales: int = SALES, note: int = 40) -> str:
    return make_db(
        new_db,
        SCHEMA,
        "INSERT INTO public.region (code) SELECT 'r' || i FROM generate_series(1, 20) i",
        "INSERT INTO public.store (region_id, name, opened) SELECT 1 + i % 20, 'store ' || i, "
        "date '2020-01-01' + i FROM generate_series(1, 200) i",
        "INSERT INTO public.sale (store_id, ref, amount, note) SELECT 1 + i % 200, 'S' || i, i / 100.0, "
        f"repeat('x', {note}) || i FROM generate_series(1, {sales}) i",
    )


def _target(new_db: NewDb) -> str:
    return make_db(
        new_db,
        SCHEMA,
        "SELECT setval('public.region_id_seq', 5000)",
        "SELECT setval('public.store_id_seq', 90000)",
        "SELECT setval('public.sale_id_seq', 700000)",
    )


@pytest.fixture
def dbs(new_db: NewDb) -> tuple[str, str]:
    return _source(new_db), _target(new_db)


def _copy(src: str, dst: str, log: Path | bool = False, **options: Any) -> Any:
    audit = False if log is False else log
    where = options.pop("where", ())
    return copy_database(
        src, dst, load_mapping_text(MAPPING), options=ImportOptions(**options), where=where, audit_log=audit
    )


def _history(dsn: str) -> list[dict[str, Any]]:
    with psycopg.connect(dsn) as conn:
        return read_history(conn)


def test_round_trip_into_other_ids_then_a_second_copy_writes_nothing(dbs: tuple[str, str]) -> None:
    src, dst = dbs
    result = _copy(src, dst)
    assert result.committed and result.inserted == 20 + 200 + SALES and result.updated == 0
    # each table's count three ways: as the source sent it, as the target staged it, as written
    sent = {t["table"]: t["rows"] for t in result.streamed}
    assert sent == {"public.region": 20, "public.store": 200, "public.sale": SALES}
    for t in result.tables:
        assert t.expected == sent[t.table] == t.staged == t.inserted == t.observed["inserted"]
    assert natural_rows(dst, MAPPING) == natural_rows(src, MAPPING)
    # the target's own ids, not the source's
    assert fetch(dst, "SELECT min(id) FROM public.store")[0][0] > 90000
    assert fetch(dst, "SELECT min(id) FROM public.sale")[0][0] > 700000

    before = table_snapshot(dst, *TABLES)
    again = _copy(src, dst)
    assert again.committed and again.inserted == 0 and again.updated == 0
    assert all(t.unchanged == t.expected and t.observed["updated"] == 0 for t in again.tables)
    assert table_snapshot(dst, *TABLES) == before
    assert again.archive_id != result.archive_id  # each copy is its own, on its own snapshot
    assert again.snapshot and again.snapshot != result.snapshot


def test_dry_run_writes_nothing_not_even_a_sequence(dbs: tuple[str, str]) -> None:
    src, dst = dbs
    before, seqs = table_snapshot(dst, *TABLES), sequence_values(dst)
    result = _copy(src, dst, dry_run=True)
    assert not result.committed and result.dry_run and result.inserted == 20 + 200 + SALES
    assert result.history == "not recorded (rolled back)"
    assert table_snapshot(dst, *TABLES) == before and sequence_values(dst) == seqs
    assert _history(dst) == []


def test_delete_missing_mirrors_the_source_within_its_guard(dbs: tuple[str, str]) -> None:
    src, dst = dbs
    _copy(src, dst)
    # the source loses 5 sales (under 10% of the table) and a store with its 15 sales
    run(src, "DELETE FROM public.sale WHERE ref IN ('S1', 'S2', 'S3', 'S4', 'S5')")
    run(src, "DELETE FROM public.sale WHERE store_id = 7", "DELETE FROM public.store WHERE id = 7")
    kept = table_snapshot(dst, *TABLES)
    # the CLI's default guard: no table may lose more than 10% of its rows; one store of
    # 200 is fine, but a guard of 3 rows in all refuses, writing nothing
    with pytest.raises(ImportRejected, match="over --max-deletes 3") as refused:
        _copy(src, dst, delete_missing=True, max_deletes=3)
    assert "public.sale: 20 row(s) the archive does not hold would be deleted" in str(
        refused.value.report.problems
    )
    assert table_snapshot(dst, *TABLES) == kept
    result = _copy(src, dst, delete_missing=True, max_deletes_percent=10)
    assert result.committed
    deleted = {t.table: t.deleted for t in result.tables}
    assert deleted == {"public.region": 0, "public.store": 1, "public.sale": 20}
    assert natural_rows(dst, MAPPING) == natural_rows(src, MAPPING)
    # over the percent guard: the source loses half its sales
    run(src, "DELETE FROM public.sale WHERE id % 2 = 0")
    before = table_snapshot(dst, *TABLES)
    with pytest.raises(ImportRejected, match=r"public\.sale: \d+ row"):
        _copy(src, dst, delete_missing=True, max_deletes_percent=10)
    assert table_snapshot(dst, *TABLES) == before


def test_a_target_trigger_failing_on_one_row_leaves_the_target_unchanged(dbs: tuple[str, str]) -> None:
    src, dst = dbs
    run(
        dst,
        "CREATE FUNCTION public.no_s77() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.ref = 'S77' THEN RAISE EXCEPTION 'sale S77 refused by the target'; END IF; RETURN NEW; END $$",
        "CREATE TRIGGER no_s77 BEFORE INSERT ON public.sale FOR EACH ROW EXECUTE FUNCTION public.no_s77()",
    )
    before = table_snapshot(dst, *TABLES)
    with pytest.raises(DatabaseError, match="sale S77 refused by the target") as failed:
        _copy(src, dst)
    assert "failed and was rolled back" in str(failed.value)
    assert table_snapshot(dst, *TABLES) == before and _history(dst) == []


class _CutSource:
    """Progress that ends the source's connections once the target has staged the first
    block of ``table``: the stream breaks in the middle of that table."""

    def __init__(self, admin_dsn: str, source_db: str, table: str) -> None:
        self.admin_dsn, self.source_db, self.table = admin_dsn, source_db, table
        self.cut = threading.Event()

    def start(self, task: str, total: int | None) -> None:
        pass

    def advance(self, task: str, rows: int, nbytes: int) -> None:
        if task == self.table and not self.cut.is_set():
            self.cut.set()
            with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                    "AND application_name = 'edms-pgdump' AND pid <> pg_backend_pid()",
                    (self.source_db,),
                )

    def finish(self, task: str) -> None:
        pass


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_source_lost_mid_stream_leaves_the_target_unchanged(
    new_db: NewDb, admin: psycopg.Connection, jobs: int
) -> None:
    # a sale table of about 20 COPY blocks (1 MB each), more than socket buffers hold
    # (TCP on localhost tunes them to a few MB): the cut falls inside the stream, not
    # after the source has already sent it all (which made this test flaky on PG15)
    src, dst = _source(new_db, sales=40000, note=500), _target(new_db)
    source_db = psycopg.conninfo.conninfo_to_dict(src)["dbname"]
    before, seqs = table_snapshot(dst, *TABLES), sequence_values(dst)
    cut = _CutSource(admin.info.dsn, str(source_db), "public.sale")
    with pytest.raises(DatabaseError) as failed:
        copy_database(
            src,
            dst,
            load_mapping_text(MAPPING),
            options=ImportOptions(jobs=jobs),
            progress=cut,
            audit_log=False,
        )
    message = str(failed.value)
    assert cut.cut.is_set()
    # with -j 2 the cut can also reach a parallel source connection before it has adopted
    # the snapshot: the copy then stops there, naming that connection and the way out
    if message.startswith("copy: a parallel source connection"):
        assert jobs > 1 and "could not adopt snapshot" in message and "copy with -j 1" in message
    else:
        assert message.startswith("public.sale: reading it from the source") and "failed after" in message
        assert "rolled back" in message
    assert "Traceback" not in message
    assert table_snapshot(dst, *TABLES) == before and _history(dst) == []
    assert sequence_values(dst)["public.region_id_seq"] == seqs["public.region_id_seq"]  # nothing new drawn
    assert not fetch(dst, "SELECT 1 FROM pg_namespace WHERE nspname LIKE 'edms\\_pgdump\\_stage\\_%'")


def test_unreachable_databases_and_a_mismatched_target_are_clear(
    dbs: tuple[str, str], tmp_path: Path
) -> None:
    src, dst = dbs
    nowhere = "postgresql://postgres@127.0.0.1:1/nowhere"
    with pytest.raises(DatabaseError, match=r"cannot connect to 127.0.0.1:1/nowhere: .*check --from"):
        _copy(nowhere, dst)
    with pytest.raises(DatabaseError, match=r"cannot connect to 127.0.0.1:1/nowhere: .*check --to"):
        _copy(src, nowhere)
    # the target lacks a column the source sends: refused before any write, naming it
    run(dst, "ALTER TABLE public.sale DROP COLUMN note")
    before = table_snapshot(dst, *TABLES)
    with pytest.raises(SchemaDriftError, match=r"copy from .*: public.sale: archive field note") as drift:
        _copy(src, dst)
    assert "--ignore-column public.sale.note" in str(drift.value)
    assert table_snapshot(dst, *TABLES) == before
    # the CLI: one line on stderr, exit 1, no traceback
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "edms_pgdump",
            "copy",
            "--from",
            src,
            "--to",
            dst,
            "-m",
            str(_mapping(tmp_path)),
        ],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "error: copy from" in done.stderr and "public.sale: archive field note" in done.stderr
    assert "Traceback" not in done.stderr


def _mapping(tmp_path: Path) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING)
    return path


def test_history_on_the_target_and_audit_lines_for_both_sides(dbs: tuple[str, str], tmp_path: Path) -> None:
    src, dst = dbs
    log = tmp_path / "audit.jsonl"
    result = _copy(src, dst, log)
    export_line, import_line = read_audit_log(log)
    src_db, dst_db = (str(psycopg.conninfo.conninfo_to_dict(d)["dbname"]) for d in (src, dst))
    assert export_line["operation"] == "export" and export_line["result"] == "ok"
    assert export_line["database"].endswith("/" + src_db) and export_line["archive"].startswith("copy to ")
    assert export_line["snapshot"] == result.snapshot and export_line["rows"] == 20 + 200 + SALES
    assert import_line["operation"] == "import" and import_line["result"] == "ok"
    assert import_line["database"].endswith("/" + dst_db) and import_line["archive"] == result.archive
    assert import_line["committed"] is True and import_line["history"] is True
    assert export_line["archive_id"] == import_line["archive_id"] == result.archive_id
    (row,) = _history(dst)
    assert row["archive_id"] == result.archive_id and row["archive"] == f"copy from {result.source}"
    assert row["source"]["copy"] is True and row["source"]["snapshot"] == result.snapshot
    assert row["inserted"] == 20 + 200 + SALES
    # a failed copy leaves a failed line on each side
    run(dst, "ALTER TABLE public.sale DROP COLUMN note")
    with pytest.raises(SchemaDriftError):
        _copy(src, dst, log)
    failed = read_audit_log(log)[2:]
    assert [(f["operation"], f["result"], f["error_kind"]) for f in failed] == [
        ("export", "failed", "SchemaDriftError"),
        ("import", "failed", "SchemaDriftError"),
    ]
    assert len(_history(dst)) == 1


def test_jobs_2_streams_over_two_pairs_of_connections(dbs: tuple[str, str]) -> None:
    src, dst = dbs
    result = _copy(src, dst, jobs=2)
    assert result.committed and result.staging["connections"] == 2
    assert result.staging["schema"].startswith("edms_pgdump_stage_")
    assert natural_rows(dst, MAPPING) == natural_rows(src, MAPPING)
    assert all(t.expected == t.staged == t.inserted for t in result.tables)
    assert not fetch(dst, "SELECT 1 FROM pg_namespace WHERE nspname LIKE 'edms\\_pgdump\\_stage\\_%'")


def test_jobs_2_reads_every_table_on_one_snapshot(new_db: NewDb) -> None:
    """A parallel loader's source connection adopts the first one's snapshot: a row
    committed on the source after the copy opened travels in no table."""
    src = _source(new_db)
    source = CopySource(src, load_mapping_text(MAPPING), ExportOptions(jobs=2))
    source.open()
    try:
        run(src, "INSERT INTO public.region (code) VALUES ('late')")
        with source._reopened()() as other:
            text = b"".join(bytes(b) for b in other.blocks(parse_qualified_name("public.region")))
        assert b"late" not in text and text.count(b"\n") == 20
        assert other.rows(parse_qualified_name("public.region")) == 20
    finally:
        source.close()


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_subset_copy_moves_what_a_subset_export_would(new_db: NewDb, tmp_path: Path, jobs: int) -> None:
    """With -j 2 too: the tables that read the subset's temp tables stream from the first
    source connection, the only one that sees them."""
    src, dst, other = _source(new_db), _target(new_db), _target(new_db)
    where = (("public.sale", "amount < 1"),)
    result = _copy(src, dst, where=where, jobs=jobs)
    assert result.committed
    archive = tmp_path / "subset.edmsdump"
    exported = export_archive(src, load_mapping_text(MAPPING), archive, where=where, audit_log=False)
    import_archive(other, archive, audit_log=False)
    assert {t["table"]: t["rows"] for t in result.streamed} == {t.table: t.rows for t in exported.tables}
    assert natural_rows(dst, MAPPING) == natural_rows(other, MAPPING)
    assert {t.table: t.inserted for t in result.tables} == {
        "public.region": 20,
        "public.store": 99,  # the stores the 99 sales need; the regions are exported whole
        "public.sale": 99,
    }


def test_a_subset_copy_deletes_only_within_its_scope(dbs: tuple[str, str]) -> None:
    src, dst = dbs
    _copy(src, dst)
    run(src, "DELETE FROM public.sale WHERE ref IN ('S5', 'S500')")
    where = (("public.sale", "amount < 1"),)  # S1 … S99
    result = _copy(src, dst, where=where, delete_missing=True)
    assert {t.table: t.deleted for t in result.tables} == {
        "public.region": 0,
        "public.store": 0,
        "public.sale": 1,
    }
    refs = {r[0] for r in fetch(dst, "SELECT ref FROM public.sale")}
    assert "S5" not in refs and "S500" in refs and len(refs) == SALES - 1


def test_cli_json(dbs: tuple[str, str], tmp_path: Path) -> None:
    src, dst = dbs
    args = ["copy", "--from", src, "--to", dst, "-m", str(_mapping(tmp_path)), "--dry-run", "--json"]
    done = CliRunner().invoke(app, [*args, "--audit-log", str(tmp_path / "a.jsonl")])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["ok"] is True and doc["committed"] is False and doc["dry_run"] is True
    assert doc["inserted"] == 20 + 200 + SALES and doc["history"] == "not recorded (rolled back)"
    assert {t["table"]: t["rows"] for t in doc["streamed"]}["public.sale"] == SALES
    assert doc["snapshot"] and doc["source"].endswith(str(psycopg.conninfo.conninfo_to_dict(src)["dbname"]))
