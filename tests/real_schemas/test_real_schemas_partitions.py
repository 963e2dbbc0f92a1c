"""Issue 10, partitioned tables, round trip: range, list and hash partitions with default
partitions; an FK declared on the parent; FKs declared only on partitions, one partition
without it; an FK referencing a partitioned table through a composite key that includes
the partition key. Into a target whose ids are elsewhere and which already holds rows:
the same rows by natural values, each in the right partition, every reference pointing
at the right row."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from edms_pgdump import check_mapping
from edms_pgdump.cli.app import app
from tests.support.real_schemas import (
    FAR,
    NewDb,
    Rows,
    assert_union,
    counts,
    export_and_import,
    fetch,
    make_db,
    natural_rows,
    push_sequences,
    run,
)

SCHEMA = """
CREATE TABLE public.customer (id serial PRIMARY KEY, email text NOT NULL UNIQUE, name text NOT NULL);

-- RANGE, FK declared on the parent, a default partition
CREATE TABLE public.visit (id bigserial, day date NOT NULL,
    customer_id int NOT NULL REFERENCES public.customer (id), note text,
    PRIMARY KEY (id, day), UNIQUE (day, customer_id)) PARTITION BY RANGE (day);
CREATE TABLE public.visit_2024 PARTITION OF public.visit FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE public.visit_2025 PARTITION OF public.visit FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE public.visit_other PARTITION OF public.visit DEFAULT;

-- an FK referencing the partitioned table: composite, includes the partition key
CREATE TABLE public.visit_item (id serial PRIMARY KEY, code text NOT NULL UNIQUE,
    visit_id bigint NOT NULL, visit_day date NOT NULL,
    FOREIGN KEY (visit_id, visit_day) REFERENCES public.visit (id, day));

-- LIST, FKs declared only on partitions: payment_wire has none; a default partition
CREATE TABLE public.payment (ref text NOT NULL, kind text NOT NULL, customer_id int NOT NULL,
    amount numeric(10, 2)) PARTITION BY LIST (kind);
CREATE TABLE public.payment_card PARTITION OF public.payment FOR VALUES IN ('card');
CREATE TABLE public.payment_wire PARTITION OF public.payment FOR VALUES IN ('wire');
CREATE TABLE public.payment_other PARTITION OF public.payment DEFAULT;
ALTER TABLE public.payment_card ADD CONSTRAINT card_customer_fk FOREIGN KEY (customer_id)
    REFERENCES public.customer (id);
ALTER TABLE public.payment_other ADD CONSTRAINT other_customer_fk FOREIGN KEY (customer_id)
    REFERENCES public.customer (id);
CREATE UNIQUE INDEX payment_key ON public.payment (ref, kind);

-- HASH, a nullable FK on the parent
CREATE TABLE public.ping (n int PRIMARY KEY, customer_id int REFERENCES public.customer (id))
    PARTITION BY HASH (n);
CREATE TABLE public.ping_0 PARTITION OF public.ping FOR VALUES WITH (MODULUS 3, REMAINDER 0);
CREATE TABLE public.ping_1 PARTITION OF public.ping FOR VALUES WITH (MODULUS 3, REMAINDER 1);
CREATE TABLE public.ping_2 PARTITION OF public.ping FOR VALUES WITH (MODULUS 3, REMAINDER 2);
"""

MAPPING = """
version: 1
tables:
  public.customer: {natural_key: [email]}
  public.visit: {natural_key: [day, customer_id]}
  public.visit_item: {natural_key: [code]}
  public.payment: {natural_key: [ref, kind]}
  public.ping: {natural_key: [n]}
"""

SOURCE_ROWS = """
INSERT INTO public.customer (email, name) VALUES ('ann@x', 'Ann'), ('bob@x', 'Bob'), ('cy@x', 'Cy');
INSERT INTO public.visit (day, customer_id, note) VALUES
    ('2024-03-01', 1, 'first'), ('2025-02-02', 2, NULL), ('2023-05-05', 3, 'old'), ('2025-07-07', 1, 'again');
INSERT INTO public.visit_item (code, visit_id, visit_day) VALUES
    ('i1', 1, '2024-03-01'), ('i2', 2, '2025-02-02'), ('i3', 3, '2023-05-05'), ('i4', 4, '2025-07-07');
INSERT INTO public.payment (ref, kind, customer_id, amount) VALUES
    ('p1', 'card', 1, 10.50), ('p2', 'wire', 2, 20), ('p3', 'wire', 3, 30), ('p4', 'cheque', 1, 40),
    ('p5', 'card', 3, 50);
INSERT INTO public.ping (n, customer_id)
    SELECT n, CASE WHEN n % 4 = 0 THEN NULL ELSE n % 4 END FROM generate_series(1, 9) AS n;
"""

# The target: ids 1..3 belong to OTHER people, so an id carried raw points at the wrong
# row (a silent error the natural-value comparison catches); its sequences are far ahead;
# each partitioned table already holds an unrelated row.
TARGET_ROWS = """
INSERT INTO public.customer (id, email, name) VALUES (1, 'mallory@x', 'Mallory'), (2, 'trent@x', 'Trent'),
    (3, 'zed@x', 'Zed');
INSERT INTO public.visit (id, day, customer_id, note) VALUES (7, '2025-01-15', 3, 'unrelated');
INSERT INTO public.visit_item (code, visit_id, visit_day) VALUES ('z1', 7, '2025-01-15');
INSERT INTO public.payment (ref, kind, customer_id, amount) VALUES ('z1', 'wire', 3, 1), ('z2', 'card', 1, 2);
INSERT INTO public.ping (n, customer_id) VALUES (100, 2);
"""

# Where every row lives and what its references point at, by natural values only.
PLACEMENT = {
    "visit": "SELECT v.tableoid::regclass::text, v.day::text, c.email, v.note FROM public.visit v"
    " JOIN public.customer c ON c.id = v.customer_id",
    "visit_item": "SELECT i.tableoid::regclass::text, i.code, v.tableoid::regclass::text, v.day::text, c.email"
    " FROM public.visit_item i JOIN public.visit v ON (v.id, v.day) = (i.visit_id, i.visit_day)"
    " JOIN public.customer c ON c.id = v.customer_id",
    "payment": "SELECT p.tableoid::regclass::text, p.ref, p.kind, c.email, p.amount::text FROM public.payment p"
    " LEFT JOIN public.customer c ON c.id = p.customer_id",
    "ping": "SELECT p.tableoid::regclass::text, p.n, c.email FROM public.ping p"
    " LEFT JOIN public.customer c ON c.id = p.customer_id",
}

runner = CliRunner()


def placement(dsn: str) -> dict[str, Rows]:
    return {name: sorted(fetch(dsn, query), key=repr) for name, query in PLACEMENT.items()}


def target(new_db: NewDb) -> str:
    dst = make_db(new_db, SCHEMA, TARGET_ROWS)
    push_sequences(dst)
    return dst


def test_check_warns_naming_the_partition_without_the_fk(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, SCHEMA, SOURCE_ROWS)
    report = check_mapping(dsn=src, mapping=_mapping_file(tmp_path))
    assert report.errors == [], [str(p) for p in report.errors]
    missing = [p for p in report.warnings if p.code == "fk-missing-on-partition"]
    assert [(p.table, p.column) for p in missing] == [("public.payment", "customer_id")]
    assert "public.payment_wire" in missing[0].message
    assert "payment_card" not in missing[0].fix and "public.payment_wire" in missing[0].fix
    res = runner.invoke(app, ["check", "--dsn", src, "-m", str(tmp_path / "m.yaml")])
    assert "public.payment_wire" in res.output, res.output
    assert "error:" not in res.output, res.output


def _mapping_file(tmp_path: Path) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(MAPPING)
    return path


def test_partitioned_tables_round_trip_by_natural_values_into_the_right_partitions(
    new_db: NewDb, tmp_path: Path
) -> None:
    src = make_db(new_db, SCHEMA, SOURCE_ROWS)
    dst = target(new_db)
    before, before_placed = natural_rows(dst, MAPPING), placement(dst)
    source, source_placed = natural_rows(src, MAPPING), placement(src)
    # the source's rows really are spread over every kind of partition
    assert {r[0] for r in source_placed["visit"]} == {"visit_2024", "visit_2025", "visit_other"}
    assert {r[0] for r in source_placed["payment"]} == {"payment_card", "payment_wire", "payment_other"}
    assert {r[0] for r in source_placed["ping"]} == {"ping_0", "ping_1", "ping_2"}

    report, _ = export_and_import(src, dst, MAPPING, tmp_path)

    assert report.committed and report.ok, report.to_dict()
    assert counts(report, "public.customer") == (3, 3, 0, 0)
    assert counts(report, "public.visit") == (4, 4, 0, 0)
    assert counts(report, "public.visit_item") == (4, 4, 0, 0)
    assert counts(report, "public.payment") == (5, 5, 0, 0)
    assert counts(report, "public.ping") == (9, 9, 0, 0)
    assert_union(before, source, natural_rows(dst, MAPPING))
    # rows landed in their partitions, references point at the rows they pointed at
    assert_union(before_placed, source_placed, placement(dst))
    # new ids come from the target's sequences, never the source's
    assert fetch(dst, f"SELECT count(*) FROM public.customer WHERE id > {FAR}") == [(3,)]
    assert fetch(dst, f"SELECT count(*) FROM public.visit WHERE id > {FAR}") == [(4,)]


def test_rows_in_the_partition_without_the_fk_still_travel_by_natural_key(new_db: NewDb, tmp_path: Path) -> None:
    """The sample database's failure: data only in the partition that lacks the FK."""
    src = make_db(
        new_db,
        SCHEMA,
        "INSERT INTO public.customer (email, name) VALUES ('ann@x', 'Ann'), ('bob@x', 'Bob');"
        "INSERT INTO public.payment (ref, kind, customer_id) VALUES ('w1', 'wire', 1), ('w2', 'wire', 2),"
        " ('w3', 'wire', 2);",
    )
    dst = target(new_db)
    report, _ = export_and_import(src, dst, MAPPING, tmp_path)
    assert report.committed, report.to_dict()
    assert counts(report, "public.payment") == (3, 3, 0, 0)
    got = fetch(
        dst,
        "SELECT p.ref, c.email, p.customer_id > " + str(FAR) + " FROM public.payment_wire p"
        " LEFT JOIN public.customer c ON c.id = p.customer_id ORDER BY p.ref",
    )
    # raw ids 1 and 2 would have pointed at mallory@x and trent@x
    assert got == [("w1", "ann@x", True), ("w2", "bob@x", True), ("w3", "bob@x", True), ("z1", "zed@x", False)]


def test_fk_referencing_a_partitioned_table_resolves_both_key_columns(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, SCHEMA, SOURCE_ROWS)
    dst = target(new_db)
    # a visit with the same natural key as one in the source exists in the target already:
    # the item must point at that row (id and partition key), not at a new copy
    run(dst, "INSERT INTO public.customer (email, name) VALUES ('ann@x', 'Ann')")
    run(
        dst,
        "INSERT INTO public.visit (day, customer_id, note) SELECT '2024-03-01', id, 'first'"
        " FROM public.customer WHERE email = 'ann@x'",
    )
    report, _ = export_and_import(src, dst, MAPPING, tmp_path)
    assert report.committed, report.to_dict()
    assert counts(report, "public.customer") == (3, 2, 0, 1)
    assert counts(report, "public.visit") == (4, 3, 0, 1)
    items = fetch(
        dst,
        "SELECT i.code, v.tableoid::regclass::text, v.day::text, c.email FROM public.visit_item i"
        " JOIN public.visit v ON v.id = i.visit_id AND v.day = i.visit_day"
        " JOIN public.customer c ON c.id = v.customer_id ORDER BY i.code",
    )
    assert items == [
        ("i1", "visit_2024", "2024-03-01", "ann@x"),
        ("i2", "visit_2025", "2025-02-02", "bob@x"),
        ("i3", "visit_other", "2023-05-05", "cy@x"),
        ("i4", "visit_2025", "2025-07-07", "ann@x"),
        ("z1", "visit_2025", "2025-01-15", "zed@x"),
    ]
