"""Issue 16, references nobody declared: a `productid` column with no FK whose values are
all ids of production.product. `check` and the export refuse it, naming the table, the
column, the table it matches and the share of matching values, and offer two fixes; each
fix, applied, round trips into a target whose product ids mean other products."""

from __future__ import annotations

from pathlib import Path

import pytest

from edms_pgdump import check_mapping, export_archive, load_mapping_text
from edms_pgdump.errors import DataRuleError
from tests.support.real_schemas import (
    NewDb,
    assert_keyed_union,
    counts,
    export_and_import,
    fetch,
    keyed_rows,
    make_db,
    push_sequences,
)

SCHEMA = """
CREATE SCHEMA production;
CREATE SCHEMA sales;
CREATE TABLE production.product (productid serial PRIMARY KEY, name text NOT NULL UNIQUE, price numeric(8, 2));
CREATE TABLE sales.orderline (orderlineid serial PRIMARY KEY, ref text NOT NULL UNIQUE,
    productid int NOT NULL, qty int NOT NULL);  -- no FK
"""

SOURCE = """
INSERT INTO production.product (productid, name, price) VALUES
    (1, 'bolt', 0.10), (2, 'nut', 0.05), (3, 'gear', 4.00), (4, 'chain', 12.50);
INSERT INTO sales.orderline (ref, productid, qty) VALUES
    ('o1', 1, 100), ('o2', 2, 100), ('o3', 3, 2), ('o4', 3, 1), ('o5', 4, 1), ('o6', 1, 7);
"""

# ids 1..4 are other products in the target: raw ids point at the wrong ones
TARGET = """
INSERT INTO production.product (productid, name, price) VALUES
    (1, 'anvil', 90), (2, 'bolt', 0.10), (3, 'hammer', 15), (4, 'saw', 20);
INSERT INTO sales.orderline (ref, productid, qty) VALUES ('z1', 3, 1);
"""

MAPPING = """
version: 1
tables:
  production.product: {natural_key: [name]}
  sales.orderline: {natural_key: [ref]}
"""

DECLARED = MAPPING.replace(
    "  sales.orderline: {natural_key: [ref]}",
    "  sales.orderline:\n    natural_key: [ref]\n"
    "    references: [{columns: [productid], table: production.product}]",
)

RAW = MAPPING.replace("  sales.orderline: {natural_key: [ref]}", "  sales.orderline: {natural_key: [ref], raw_columns: [productid]}")

LINES = (
    "SELECT o.ref, o.productid, p.name, o.qty FROM sales.orderline o"
    " LEFT JOIN production.product p ON p.productid = o.productid ORDER BY o.ref"
)


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return path


def test_check_refuses_the_undeclared_reference_naming_both_fixes(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, SCHEMA, SOURCE)
    report = check_mapping(dsn=src, mapping=_file(tmp_path, MAPPING))
    (err,) = [p for p in report.errors if p.code == "likely-reference"]
    assert (err.table, err.column) == ("sales.orderline", "productid")
    assert "production.product.productid" in err.message
    assert "6 of 6 non-NULL values are ids of production.product" in err.message
    assert "references: [{columns: [productid], table: production.product}]" in err.fix
    assert "raw_columns: [productid]" in err.fix
    assert not report.ok


def test_export_refuses_the_undeclared_reference_and_writes_nothing(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, SCHEMA, SOURCE)
    archive = tmp_path / "a.edmsdump"
    with pytest.raises(DataRuleError) as exc:
        export_archive(src, load_mapping_text(MAPPING), archive, audit_log=False)
    msg = str(exc.value)
    assert "sales.orderline.productid" in msg
    assert "production.product" in msg
    assert "6 of 6" in msg
    assert "raw_columns: [productid]" in msg and "references: [{columns: [productid]" in msg
    assert "nothing was exported" in msg
    assert not archive.exists()


def test_declared_reference_fix_carries_productid_by_natural_key(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, SCHEMA, SOURCE)
    dst = make_db(new_db, SCHEMA, TARGET)
    push_sequences(dst)
    check = check_mapping(dsn=src, mapping=_file(tmp_path, DECLARED))
    assert check.errors == [], [str(p) for p in check.errors]
    before, source = keyed_rows(dst, DECLARED), keyed_rows(src, DECLARED)

    report, _ = export_and_import(src, dst, DECLARED, tmp_path)

    assert report.committed and report.ok, report.to_dict()
    assert counts(report, "production.product") == (4, 3, 0, 1)  # 'bolt' is there already
    assert counts(report, "sales.orderline") == (6, 6, 0, 0)
    assert_keyed_union(before, source, keyed_rows(dst, DECLARED))
    got = [(r[0], r[2], r[3]) for r in fetch(dst, LINES)]
    assert got == [
        ("o1", "bolt", 100),
        ("o2", "nut", 100),
        ("o3", "gear", 2),
        ("o4", "gear", 1),
        ("o5", "chain", 1),
        ("o6", "bolt", 7),
        ("z1", "hammer", 1),
    ]
    assert fetch(dst, "SELECT productid FROM sales.orderline WHERE ref = 'o1'") == [(2,)]  # the target's bolt


def test_raw_columns_fix_carries_productid_as_it_is(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, SCHEMA, SOURCE)
    dst = make_db(new_db, SCHEMA, TARGET)
    push_sequences(dst)
    check = check_mapping(dsn=src, mapping=_file(tmp_path, RAW))
    assert check.errors == [], [str(p) for p in check.errors]
    assert [p for p in check.problems if p.column == "productid"] == []
    before, source = keyed_rows(dst, RAW), keyed_rows(src, RAW)

    report, _ = export_and_import(src, dst, RAW, tmp_path)

    assert report.committed and report.ok, report.to_dict()
    assert counts(report, "sales.orderline") == (6, 6, 0, 0)
    assert_keyed_union(before, source, keyed_rows(dst, RAW))
    # the ids travel unchanged, knowingly: in this target they name other products
    raw = "SELECT ref, productid, qty FROM sales.orderline WHERE ref LIKE 'o%' ORDER BY ref"
    assert fetch(dst, raw) == fetch(src, raw)
