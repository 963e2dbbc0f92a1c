"""A primary-key column outside the natural key travels as a value and can change: an
order that moved partition (PRIMARY KEY (id, region), keyed by [ref]) and a product
whose text primary key was renamed (keyed by [sku]). Rows are addressed by natural key,
the primary key is updated like any other column, verify and diff see the difference
first and none after, and a re-import writes nothing; the psql runbook does the same.
"""

from __future__ import annotations

from pathlib import Path

from edms_pgdump import ImportOptions, export_archive, import_archive, load_mapping_text, verify_archive
from edms_pgdump.api import diff
from edms_pgdump.demo.servers import Server
from edms_pgdump.results import DiffResult
from edms_pgdump.runbook.scripts import write_runbooks
from tests.support.psql import run_psql
from tests.support.real_schemas import NewDb, counts, fetch, make_db, natural_rows, push_sequences, run

SCHEMA = """
CREATE TABLE public.orders (id serial, region text NOT NULL, ref text NOT NULL, total int NOT NULL,
    PRIMARY KEY (id, region), UNIQUE (ref, region)) PARTITION BY LIST (region);
CREATE TABLE public.orders_eu PARTITION OF public.orders FOR VALUES IN ('eu');
CREATE TABLE public.orders_us PARTITION OF public.orders FOR VALUES IN ('us');
CREATE TABLE public.product (code text PRIMARY KEY, sku text NOT NULL UNIQUE, name text NOT NULL);
CREATE TABLE public.order_line (id serial PRIMARY KEY, order_id int NOT NULL, order_region text NOT NULL,
    line int NOT NULL, product_code text NOT NULL REFERENCES public.product ON UPDATE CASCADE,
    FOREIGN KEY (order_id, order_region) REFERENCES public.orders ON UPDATE CASCADE,
    UNIQUE (order_id, order_region, line));
"""

DATA = """
INSERT INTO public.orders (region, ref, total) VALUES ('eu', 'R1', 10), ('eu', 'R2', 20), ('us', 'R3', 30);
INSERT INTO public.product (code, sku, name) VALUES ('OLD-1', 'SKU-1', 'bolt'), ('P-2', 'SKU-2', 'nut');
INSERT INTO public.order_line (order_id, order_region, line, product_code)
    SELECT o.id, o.region, 1, 'OLD-1' FROM public.orders o;
"""

# the source moves R1 to another partition and renames a product's primary key
CHANGE = """
UPDATE public.orders SET region = 'us' WHERE ref = 'R1';
UPDATE public.product SET code = 'NEW-1' WHERE sku = 'SKU-1';
"""

MAPPING = """
version: 1
tables:
  public.orders: {natural_key: [ref]}
  public.product: {natural_key: [sku]}
  public.order_line: {natural_key: [order_id, order_region, line]}
"""


def _databases(new_db: NewDb) -> tuple[str, str]:
    src = make_db(new_db, SCHEMA, DATA)
    dst = make_db(new_db, SCHEMA)
    push_sequences(dst)
    run(dst, DATA)  # the same records under other ids
    run(src, CHANGE)
    return src, dst


def test_moved_partition_and_renamed_key_are_written(new_db: NewDb, tmp_path: Path) -> None:
    src, dst = _databases(new_db)
    archive = tmp_path / "a.edmsdump"
    export_archive(src, load_mapping_text(MAPPING), archive, audit_log=False)

    before = verify_archive(archive, dst).database
    assert before is not None and not before.matches and before.different >= 2, before
    found = diff(archive, dsn=dst)
    assert isinstance(found, DiffResult) and not found.identical
    different = {t.table: t.to_dict() for t in found.tables if t.differs}
    assert {"public.orders", "public.product"} <= set(different), different

    report = import_archive(dst, archive, audit_log=False)
    assert report.committed and report.ok, report.to_dict()
    assert counts(report, "public.orders") == (3, 0, 1, 2)
    assert counts(report, "public.product") == (2, 0, 1, 1)
    assert fetch(dst, "SELECT region FROM public.orders WHERE ref = 'R1'") == [("us",)]
    assert fetch(dst, "SELECT count(*) FROM public.orders_us") == [(2,)]
    assert fetch(dst, "SELECT code FROM public.product WHERE sku = 'SKU-1'") == [("NEW-1",)]
    assert natural_rows(dst, MAPPING) == natural_rows(src, MAPPING)

    again = import_archive(dst, archive, audit_log=False)
    assert again.committed and again.ok
    for t in again.tables:
        assert (t.inserted, t.updated) == (0, 0), t.to_dict()
    after = verify_archive(archive, dst).database
    assert after is not None and after.matches, after
    same = diff(archive, dsn=dst)
    assert isinstance(same, DiffResult) and same.identical, same.to_dict()


def test_runbook_updates_the_primary_key_by_natural_key(
    new_db: NewDb, tmp_path: Path, pg_server: Server
) -> None:
    src, dst = _databases(new_db)
    mapping = load_mapping_text(MAPPING)
    write_runbooks(src, mapping, ["export"], tmp_path)
    write_runbooks(dst, mapping, ["import"], tmp_path, ImportOptions())
    data = tmp_path / "data"
    data.mkdir()
    res = run_psql(pg_server, src, tmp_path / "export.sql", data)
    assert res.returncode == 0, res.stderr
    res = run_psql(pg_server, dst, tmp_path / "import.sql", data)
    assert res.returncode == 0, res.stderr
    assert fetch(dst, "SELECT region FROM public.orders WHERE ref = 'R1'") == [("us",)]
    assert fetch(dst, "SELECT code FROM public.product WHERE sku = 'SKU-1'") == [("NEW-1",)]
    assert natural_rows(dst, MAPPING) == natural_rows(src, MAPPING)
