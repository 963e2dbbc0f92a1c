"""Plan rules for real schemas, on a real PostgreSQL: FKs of partitioned tables (on the
parent, on partitions, missing on one), NOT NULL cycles closed by a declared reference,
raw_columns, and the likely references found by name."""

from __future__ import annotations

from typing import Any

import psycopg
from typer.testing import CliRunner

from edms_pgdump.analysis.check import analyse, cycles_of
from edms_pgdump.analysis.likely_refs import Candidate, likely_reference_candidates
from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import read_catalog
from edms_pgdump.cli import app
from edms_pgdump.mapping import load_mapping_text
from edms_pgdump.plan.build import Plan, build_plan

PARTITIONS = """
CREATE TABLE public.customer (id serial PRIMARY KEY, email text NOT NULL UNIQUE);
-- FK declared on the parent: every partition has it
CREATE TABLE public.visit (day date NOT NULL, customer_id int NOT NULL REFERENCES public.customer,
    note text) PARTITION BY RANGE (day);
CREATE TABLE public.visit_2025 PARTITION OF public.visit FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE public.visit_rest PARTITION OF public.visit DEFAULT;
-- FKs declared only on partitions, one partition without it (the sample database's shape)
CREATE TABLE public.payment (ref text NOT NULL, kind text NOT NULL, customer_id int NOT NULL, amount numeric)
    PARTITION BY LIST (kind);
CREATE TABLE public.payment_card PARTITION OF public.payment FOR VALUES IN ('card');
CREATE TABLE public.payment_cash PARTITION OF public.payment FOR VALUES IN ('cash');
CREATE TABLE public.payment_wire PARTITION OF public.payment FOR VALUES IN ('wire');
ALTER TABLE public.payment_card ADD CONSTRAINT card_customer_fk FOREIGN KEY (customer_id)
    REFERENCES public.customer (id);
ALTER TABLE public.payment_cash ADD CONSTRAINT cash_customer_fk FOREIGN KEY (customer_id)
    REFERENCES public.customer (id);
CREATE UNIQUE INDEX ON public.payment (ref, kind);
-- hash partitions, FK on the parent
CREATE TABLE public.ping (n int NOT NULL, customer_id int REFERENCES public.customer) PARTITION BY HASH (n);
CREATE TABLE public.ping_0 PARTITION OF public.ping FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE public.ping_1 PARTITION OF public.ping FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE UNIQUE INDEX ON public.ping (n);
"""

PARTITION_MAPPING = """
version: 1
tables:
  public.customer: {natural_key: [email]}
  public.visit: {natural_key: [day, customer_id]}
  public.payment: {natural_key: [ref, kind]}
  public.ping: {natural_key: [n]}
"""

runner = CliRunner()


def _db(new_db: Any, schema: str) -> str:
    dsn: str = new_db()
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(schema.encode())
    return dsn


def _plan(dsn: str, mapping_text: str) -> tuple[Plan, Any]:
    with psycopg.connect(dsn) as c:
        catalog = read_catalog(c)
    return build_plan(load_mapping_text(mapping_text), catalog), catalog


def q(schema: str, name: str) -> QualifiedName:
    return QualifiedName(schema, name)


def test_fks_of_partitioned_tables_travel_as_natural_keys(new_db: Any) -> None:
    dsn = _db(new_db, PARTITIONS)
    plan, catalog = _plan(dsn, PARTITION_MAPPING)
    assert sorted(map(str, catalog.tables)) == [
        "public.customer",
        "public.payment",
        "public.ping",
        "public.visit",
    ]  # partitions are never tables to map
    for name in ("visit", "payment", "ping"):
        tp = plan.tables[q("public", name)]
        (exp,) = tp.expansions
        assert (exp.columns, str(exp.ref_table), exp.edge) == (("customer_id",), "public.customer", "ordered")
        assert [f.name for f in tp.fields if f.reference] == ["customer_id.email"]
        assert "customer_id" not in tp.plain_columns
    assert plan.load_order[0] == q("public", "customer")
    (warning,) = [p for p in plan.problems if p.code == "fk-missing-on-partition"]
    assert (warning.severity, warning.table, warning.column) == ("warning", "public.payment", "customer_id")
    assert "not on partition public.payment_wire" in warning.message
    assert warning.fix == (
        'ALTER TABLE public.payment_wire ADD FOREIGN KEY ("customer_id") REFERENCES public.customer ("id");'
    )
    assert not plan.errors
    # the fix is valid when pasted, and then the warning is gone
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(warning.fix.encode())
    plan, _ = _plan(dsn, PARTITION_MAPPING)
    assert [p.code for p in plan.problems if p.code == "fk-missing-on-partition"] == []


def test_plan_command_shows_the_expansion_of_an_fk_found_only_on_partitions(new_db: Any, tmp_path: Any) -> None:
    dsn = _db(new_db, PARTITIONS)
    mapping = tmp_path / "m.yaml"
    mapping.write_text(PARTITION_MAPPING)
    res = runner.invoke(app, ["plan", "--dsn", dsn, "-m", str(mapping)])
    assert res.exit_code == 0, res.output
    assert "customer_id -> public.customer as customer_id.email [ordered]" in res.output
    lines = res.output.splitlines()
    customer = next(i for i, line in enumerate(lines) if "public.customer (email)" in line)
    payment = next(i for i, line in enumerate(lines) if "public.payment (" in line)
    assert customer < payment  # the referenced table is loaded first
    assert "not on partition public.payment_wire" in res.output


def test_fk_on_a_partition_to_an_unmapped_table_is_an_error_naming_it(new_db: Any) -> None:
    dsn = _db(new_db, PARTITIONS)
    plan, _ = _plan(dsn, PARTITION_MAPPING.replace("  public.customer: {natural_key: [email]}\n", ""))
    errs = {(p.code, p.table, p.column): p for p in plan.errors}
    err = errs[("fk-to-unmapped", "public.payment", "customer_id")]
    assert "found on partition public.payment_card, public.payment_cash" in err.message
    assert "add under tables: public.customer: {natural_key: [email]}" in err.fix
    assert ("fk-to-unmapped", "public.visit", "customer_id") in errs


CYCLE = """
CREATE TABLE public.store (id serial PRIMARY KEY, code text NOT NULL UNIQUE,
    manager_staff_id int NOT NULL);
CREATE TABLE public.staff (staff_id serial PRIMARY KEY, login text NOT NULL UNIQUE,
    store_id int NOT NULL REFERENCES public.store (id));
"""

CYCLE_MAPPING = """
version: 1
tables:
  public.store:
    natural_key: [code]
    references: [{columns: [manager_staff_id], table: public.staff}]
  public.staff: {natural_key: [login]}
"""


def test_not_null_cycle_closed_by_a_declared_reference_is_planned(new_db: Any) -> None:
    dsn = _db(new_db, CYCLE)
    plan, catalog = _plan(dsn, CYCLE_MAPPING)
    assert plan.problems == ()
    assert [str(n) for n in plan.load_order] == ["public.store", "public.staff"]
    manager = plan.tables[q("public", "store")].expansion("manager_staff_id")
    assert (manager.edge, manager.nullable, manager.fk.declared) == ("unenforced", False, True)
    assert plan.tables[q("public", "staff")].expansion("store_id").edge == "ordered"
    (cycle,) = cycles_of(plan)
    edge = next(e for e in cycle.edges if e.table == "public.store")
    assert edge.broken and edge.how.startswith("declared reference, not checked by the database")
    # the same cycle through a real NOT NULL, immediate FK cannot be ordered
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(
            "ALTER TABLE public.store ADD CONSTRAINT store_manager_fk FOREIGN KEY (manager_staff_id)"
            " REFERENCES public.staff (staff_id) NOT VALID"  # NOT VALID still checks new rows
        )
    plan, catalog = _plan(dsn, CYCLE_MAPPING.replace("    references: [{columns: [manager_staff_id], table: public.staff}]\n", ""))
    (err,) = plan.errors
    # both edges are NOT NULL and immediate: the one pointing forward is reported
    assert (err.code, err.table, err.column) == ("cycle-not-breakable", "public.staff", "store_id")
    assert "is NOT NULL and not deferrable, so no insert order can satisfy it" in err.message
    assert err.fix.startswith("in the mapping, set export: false on public.store")
    (cycle,) = cycles_of(plan)
    blocked = next(e for e in cycle.edges if e.edge == "blocked")
    assert (blocked.nullable, blocked.broken) == (False, False)
    assert "inserted as NULL" not in blocked.how and "NOT NULL and not deferrable" in blocked.how
    # both schema changes offered are valid when pasted, and each makes the cycle orderable
    statements = [s.strip() for s in err.fix.split("schema: ", 1)[1].split(" or ")]
    assert statements == [
        'ALTER TABLE public.staff ALTER CONSTRAINT "staff_store_id_fkey" DEFERRABLE;',
        'ALTER TABLE public.staff ALTER COLUMN "store_id" DROP NOT NULL;',
    ]
    for stmt in statements:
        with psycopg.connect(dsn) as c:
            c.execute(stmt.encode())
            catalog = read_catalog(c)
            plan = build_plan(load_mapping_text(CYCLE_MAPPING), catalog)
            assert plan.errors == [], stmt
            c.rollback()


RAW = """
CREATE TABLE production.product (productid serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE sales.review (id serial PRIMARY KEY, ref text NOT NULL UNIQUE, productid int,
    product_id int, author_id int REFERENCES sales.author_placeholder (id), score smallint);
"""


def test_raw_columns_and_likely_references_by_name(new_db: Any) -> None:
    dsn = _db(
        new_db,
        "CREATE SCHEMA production; CREATE SCHEMA sales;"
        "CREATE TABLE sales.author_placeholder (id serial PRIMARY KEY, nick text NOT NULL UNIQUE);"
        + RAW
        + "CREATE TABLE sales.product (id uuid PRIMARY KEY, label text UNIQUE);",
    )
    text = """
version: 1
tables:
  production.product: {natural_key: [name]}
  sales.author_placeholder: {natural_key: [nick]}
  sales.product: {natural_key: [id]}
  sales.review: {natural_key: [ref]}
"""
    plan, catalog = _plan(dsn, text)
    cands = likely_reference_candidates(plan, catalog)
    assert cands == [
        Candidate(q("sales", "review"), "productid", q("production", "product"), "productid", "primary-key-name"),
        Candidate(q("sales", "review"), "product_id", q("production", "product"), "productid", "table-name"),
    ]  # sales.product is keyed by uuid: not the same kind of id as an integer column
    report = analyse(plan, catalog, load_mapping_text(text), "unit")
    fixes = {p.column: p.fix for p in report.problems if p.code == "id-without-fk"}
    assert fixes["productid"].startswith(
        "under sales.review in the mapping, add references: [{columns: [productid], table: production.product}]"
    )
    assert "raw_columns: [productid] to carry it as it is" in fixes["productid"]
    # each fix, pasted: the reference travels as the natural key; the raw column is left alone
    declared = text.replace(
        "  sales.review: {natural_key: [ref]}",
        "  sales.review:\n    natural_key: [ref]\n"
        "    references: [{columns: [productid], table: production.product}]\n"
        "    raw_columns: [product_id]",
    )
    plan, catalog = _plan(dsn, declared)
    review = plan.tables[q("sales", "review")]
    assert [f.name for f in review.fields if f.reference == "productid"] == ["productid.name"]
    assert review.raw_columns == ("product_id",) and "product_id" in review.plain_columns
    assert likely_reference_candidates(plan, catalog) == []
    report = analyse(plan, catalog, load_mapping_text(declared), "unit")
    assert [p.column for p in report.problems if p.code == "id-without-fk"] == []
    assert load_mapping_text(declared).to_dict()["tables"]["sales.review"]["raw_columns"] == ["product_id"]
    # an FK column, or a declared reference, never travels raw
    refused = declared.replace("raw_columns: [product_id]", "raw_columns: [product_id, author_id, productid, nope]")
    plan, _ = _plan(dsn, refused)
    errs = [(p.code, p.column) for p in plan.errors]
    assert errs == [("raw-column-fk", "author_id"), ("raw-column-fk", "productid"), ("raw-column-missing", "nope")]
    msg = next(p.message for p in plan.errors if p.column == "author_id")
    assert "covered by foreign key review_author_id_fkey to sales.author_placeholder" in msg


def test_overlapping_fks_never_leave_a_column_raw(new_db: Any) -> None:
    dsn = _db(
        new_db,
        """
CREATE TABLE public.tenant (id serial PRIMARY KEY, slug text NOT NULL UNIQUE);
CREATE TABLE public.team (tenant_id int NOT NULL REFERENCES public.tenant, id serial, name text NOT NULL,
    PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, name));
CREATE TABLE public.member (tenant_id int NOT NULL REFERENCES public.tenant, login text NOT NULL,
    team_id int NOT NULL, UNIQUE (tenant_id, login),
    FOREIGN KEY (tenant_id, team_id) REFERENCES public.team (tenant_id, id));
""",
    )
    text = """
version: 1
tables:
  public.tenant: {natural_key: [slug]}
  public.team: {natural_key: [tenant_id, name]}
  public.member: {natural_key: [tenant_id, login]}
"""
    plan, _ = _plan(dsn, text)
    assert plan.errors == []
    # issue 23: both travel; tenant_id is written by its own reference (the key's), the
    # composite joins on it and writes team_id only
    member = plan.tables[q("public", "member")]
    got = {e.label: (e.shared, e.written) for e in member.expansions}
    assert got == {"tenant_id": ((), ("tenant_id",)), "(tenant_id,team_id)": (("tenant_id",), ("team_id",))}
    assert [f.name for f in member.fields if f.role == "reference"] == [
        "tenant_id.slug",
        "(tenant_id,team_id).tenant_id.slug",
        "(tenant_id,team_id).name",
    ]


def test_not_null_cycle_closed_by_a_declared_reference_round_trips(new_db: Any, tmp_path: Any) -> None:
    from edms_pgdump import export_archive, import_archive

    rows = """
INSERT INTO public.store (id, code, manager_staff_id) VALUES (1, 'north', 11), (2, 'south', 12);
INSERT INTO public.staff (staff_id, login, store_id) VALUES (11, 'ann', 1), (12, 'bob', 2), (13, 'cy', 1);
"""
    src, dst = _db(new_db, CYCLE + rows), _db(new_db, CYCLE)
    with psycopg.connect(dst, autocommit=True) as c:  # other ids, an unrelated row already there
        c.execute("SELECT setval('public.store_id_seq', 500), setval('public.staff_staff_id_seq', 700)")
        c.execute("INSERT INTO public.store (code, manager_staff_id) VALUES ('west', 9999)")
    mapping = load_mapping_text(CYCLE_MAPPING)
    export_archive(src, mapping, tmp_path / "a.edmsdump")
    report = import_archive(dst, tmp_path / "a.edmsdump")
    assert report.inserted == 5
    view = (
        "SELECT s.code, m.login, (SELECT string_agg(t.login, ',' ORDER BY t.login) FROM public.staff t"
        " WHERE t.store_id = s.id) FROM public.store s JOIN public.staff m ON m.staff_id = s.manager_staff_id"
        " ORDER BY s.code"
    )
    with psycopg.connect(src) as a, psycopg.connect(dst) as b:
        assert a.execute(view).fetchall() == b.execute(view).fetchall() == [
            ("north", "ann", "ann,cy"),
            ("south", "bob", "bob"),
        ]
        (low,) = b.execute("SELECT min(id) FROM public.store WHERE code <> 'west'").fetchone() or (0,)
        assert low > 501  # new ids from the target, not the source's 1 and 2
