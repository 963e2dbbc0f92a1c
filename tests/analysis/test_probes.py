"""Data probes on a real PostgreSQL: natural keys proven unique on the rows, likely
references found by name and proven by the data, ids whose table depends on a type
column, and sample keys printed as SQL literals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal

import psycopg
import pytest

from edms_pgdump.analysis.check import check_database
from edms_pgdump.analysis.probes import (
    find_likely_references,
    find_type_switched_ids,
    needs_uniqueness_proof,
    prove_unique_keys,
)
from edms_pgdump.catalog.read import Catalog, read_catalog
from edms_pgdump.db import Connection, connect
from edms_pgdump.errors import (
    DataRuleError,
    KeyNotUniqueError,
    LikelyReferenceError,
    sample_keys,
    sql_literal,
)
from edms_pgdump.export.program import unsafe_data_step
from edms_pgdump.export.run import refuse_unsafe_data as run_refusal
from edms_pgdump.mapping import load_mapping_text
from edms_pgdump.plan.build import Plan, build_plan

NewDb = Callable[..., str]



def refuse_unsafe_data(conn: Connection, plan: Plan, catalog: Catalog) -> None:
    """The export's refusal of unsafe data, as its program builds and runs it."""
    step = unsafe_data_step(plan, catalog)
    if step is not None:
        run_refusal(conn, step)

def make_db(new_db: NewDb, schema: str) -> str:
    dsn: str = new_db()
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(schema.encode())
    return dsn


@contextmanager
def snapshot(dsn: str, mapping: str) -> Iterator[tuple[Connection, Plan, Catalog]]:
    """The export's view: one REPEATABLE READ READ ONLY snapshot, catalog and plan."""
    conn = connect(dsn)
    try:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        catalog = read_catalog(conn)
        yield conn, build_plan(load_mapping_text(mapping), catalog), catalog
        conn.execute("COMMIT")
    finally:
        conn.close()


PEOPLE = """
CREATE TABLE public.people (id serial PRIMARY KEY, first_name text NOT NULL, last_name text NOT NULL);
CREATE TABLE public.tags (id serial PRIMARY KEY, label text);
CREATE TABLE public.codes (id serial PRIMARY KEY, code text NOT NULL UNIQUE);
INSERT INTO public.people (first_name, last_name) VALUES ('Ann', 'Lee'), ('Ann', 'Lee'), ('Bo', 'Lee');
INSERT INTO public.tags (label) VALUES ('x'), ('y');
INSERT INTO public.codes (code) VALUES ('a'), ('b');
"""

PEOPLE_MAPPING = """
version: 1
tables:
  public.people: {natural_key: [first_name, last_name]}
  public.tags: {natural_key: [label]}
  public.codes: {natural_key: [code]}
"""


def test_two_people_with_the_same_name_are_refused_with_table_key_and_sample(new_db: NewDb) -> None:
    dsn = make_db(new_db, PEOPLE)
    with snapshot(dsn, PEOPLE_MAPPING) as (conn, plan, catalog):
        (problem,) = prove_unique_keys(conn, plan)
        assert (problem.severity, problem.code, problem.table, problem.column) == (
            "error",
            "key-not-unique-data",
            "public.people",
            "first_name",
        )
        assert problem.message.startswith(
            "natural key (first_name, last_name) is not unique in the data: "
            "(first_name='Ann', last_name='Lee') 2 times (1 key value(s) shared by 2 rows)"
        )
        assert problem.fix.startswith("deduplicate those rows, or add columns to natural_key")
        with pytest.raises(KeyNotUniqueError) as exc:
            refuse_unsafe_data(conn, plan, catalog)
    msg = str(exc.value)
    assert msg.startswith(
        "natural key not unique in the data of public.people (first_name, last_name); nothing was exported."
    )
    assert "(first_name='Ann', last_name='Lee') 2 times" in msg
    assert exc.value.problems == [
        f"public.people.first_name [key-not-unique-data]: {problem.message}; fix: {problem.fix}"
    ]


def test_every_offending_table_is_named_in_one_error(new_db: NewDb) -> None:
    dsn = make_db(new_db, PEOPLE + "INSERT INTO public.tags (label) VALUES ('x'), (NULL), (NULL);")
    with snapshot(dsn, PEOPLE_MAPPING) as (conn, plan, catalog), pytest.raises(KeyNotUniqueError) as exc:
        refuse_unsafe_data(conn, plan, catalog)
    err = exc.value
    assert str(err).startswith(
        "natural key not unique in the data of public.people (first_name, last_name), public.tags (label); "
        "nothing was exported."
    )
    assert str(err).endswith("(and 1 more)")
    assert [p.table for p in err.found] == ["public.people", "public.tags"]  # type: ignore[attr-defined]
    # NULLs group as equal, as the import matches them
    assert "(label='x') 2 times, (label=NULL) 2 times (2 key value(s) shared by 4 rows)" in err.problems[1]


def test_a_unique_constraint_proves_the_key_only_without_nullable_parts(new_db: NewDb) -> None:
    dsn = make_db(
        new_db,
        """
        CREATE TABLE public.mail (id serial PRIMARY KEY, email text UNIQUE, box text NOT NULL UNIQUE);
        INSERT INTO public.mail (email, box) VALUES (NULL, 'a'), (NULL, 'b'), ('c@x', 'c');
        """,
    )
    by_email = "version: 1\ntables:\n  public.mail: {natural_key: [email]}\n"
    with snapshot(dsn, by_email) as (conn, plan, _):
        (tp,) = plan.tables.values()
        assert needs_uniqueness_proof(tp)
        (problem,) = prove_unique_keys(conn, plan)
        assert "(email=NULL) 2 times" in problem.message
    with snapshot(dsn, by_email.replace("[email]", "[box]")) as (conn, plan, catalog):
        (tp,) = plan.tables.values()
        assert not needs_uniqueness_proof(tp)
        assert prove_unique_keys(conn, plan) == []
        refuse_unsafe_data(conn, plan, catalog)  # nothing to refuse


def test_duplicate_samples_are_sql_literals(new_db: NewDb) -> None:
    dsn = make_db(
        new_db,
        """
        CREATE TABLE public.shift (id serial PRIMARY KEY, starts timestamp NOT NULL, who text NOT NULL,
                                   rate numeric(6,2));
        INSERT INTO public.shift (starts, who, rate) VALUES
            ('2010-05-26 00:00', 'O''Brien', 1.5), ('2010-05-26 00:00', 'O''Brien', 2);
        """,
    )
    with snapshot(dsn, "version: 1\ntables:\n  public.shift: {natural_key: [starts, who]}\n") as (
        conn,
        plan,
        _,
    ):
        (problem,) = prove_unique_keys(conn, plan)
    assert "(starts='2010-05-26 00:00:00', who='O''Brien') 2 times" in problem.message
    assert "datetime" not in problem.message


def test_sql_literal_forms() -> None:
    assert sql_literal(None) == "NULL"
    assert sql_literal(42) == "42"
    assert sql_literal(Decimal("1.50")) == "1.50"
    assert sql_literal(True) == "true"
    assert sql_literal("it's") == "'it''s'"
    assert sql_literal(dt.datetime(2010, 5, 26)) == "'2010-05-26 00:00:00'"
    assert sql_literal(dt.date(2010, 5, 26)) == "'2010-05-26'"
    assert sql_literal(b"\x01\xff") == "'\\x01ff'"
    assert sql_literal([["root"], ["leaf"]]) == """'[["root"], ["leaf"]]'"""
    assert sql_literal(float("nan")) == "'nan'"
    assert sample_keys([(1, None)], ["a", "b"]) == "(a=1, b=NULL)"


PRODUCTS = """
CREATE SCHEMA production; CREATE SCHEMA sales;
CREATE TABLE production.product (productid serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE sales.orderline (id serial PRIMARY KEY, ref text NOT NULL UNIQUE, productid integer, qty int);
INSERT INTO production.product (name) SELECT 'p' || g FROM generate_series(1, 10) g;
"""

PRODUCTS_MAPPING = """
version: 1
tables:
  production.product: {natural_key: [name]}
  sales.orderline: {natural_key: [ref]}
"""


def test_an_undeclared_productid_is_a_likely_reference_with_its_share(new_db: NewDb) -> None:
    dsn = make_db(
        new_db,
        PRODUCTS + "INSERT INTO sales.orderline (ref, productid) VALUES ('a', 1), ('b', 2), ('c', 2), ('d', NULL);",
    )
    with snapshot(dsn, PRODUCTS_MAPPING) as (conn, plan, catalog):
        (problem,) = find_likely_references(conn, plan, catalog)
        with pytest.raises(LikelyReferenceError) as exc:
            refuse_unsafe_data(conn, plan, catalog)
    assert (problem.severity, problem.code, problem.table, problem.column) == (
        "error",
        "likely-reference",
        "sales.orderline",
        "productid",
    )
    assert "its name matches production.product.productid" in problem.message
    assert "3 of 3 non-NULL values are ids of production.product" in problem.message
    assert "references: [{columns: [productid], table: production.product}]" in problem.fix
    assert "raw_columns: [productid]" in problem.fix
    assert str(exc.value).startswith(
        "likely reference not decided in sales.orderline.productid; nothing was exported."
    )
    # check --dsn reports the same error
    report = check_database(dsn, load_mapping_text(PRODUCTS_MAPPING))
    assert [p for p in report.errors if p.code == "likely-reference"] == [problem]
    # declaring the reference decides it
    declared = PRODUCTS_MAPPING.replace(
        "sales.orderline: {natural_key: [ref]}",
        "sales.orderline: {natural_key: [ref], references: [{columns: [productid], table: production.product}]}",
    )
    with snapshot(dsn, declared) as (conn, plan, catalog):
        assert find_likely_references(conn, plan, catalog) == []
    # so does carrying it raw, knowingly
    raw = PRODUCTS_MAPPING.replace("{natural_key: [ref]}", "{natural_key: [ref], raw_columns: [productid]}")
    with snapshot(dsn, raw) as (conn, plan, catalog):
        assert find_likely_references(conn, plan, catalog) == []
        refuse_unsafe_data(conn, plan, catalog)


def test_a_column_where_only_some_values_match_is_not_a_likely_reference(new_db: NewDb) -> None:
    dsn = make_db(
        new_db,
        PRODUCTS
        + "INSERT INTO sales.orderline (ref, productid) VALUES ('a', 1), ('b', 2), ('c', 3), ('d', 900), ('e', 901);",
    )
    with snapshot(dsn, PRODUCTS_MAPPING) as (conn, plan, catalog):
        assert find_likely_references(conn, plan, catalog) == []
        refuse_unsafe_data(conn, plan, catalog)
    report = check_database(dsn, load_mapping_text(PRODUCTS_MAPPING))
    assert "likely-reference" not in [p.code for p in report.problems]


def test_keys_and_references_together_are_one_error(new_db: NewDb) -> None:
    dsn = make_db(
        new_db,
        PRODUCTS + "INSERT INTO sales.orderline (ref, productid) VALUES ('a', 1); "
        "ALTER TABLE sales.orderline DROP CONSTRAINT orderline_ref_key; "
        "INSERT INTO sales.orderline (ref, productid) VALUES ('a', 2);",
    )
    with snapshot(dsn, PRODUCTS_MAPPING) as (conn, plan, catalog), pytest.raises(DataRuleError) as exc:
        refuse_unsafe_data(conn, plan, catalog)
    assert type(exc.value) is DataRuleError
    assert str(exc.value).startswith(
        "natural key not unique in the data of sales.orderline (ref); "
        "likely reference not decided in sales.orderline.productid; nothing was exported."
    )
    assert len(exc.value.problems) == 2


ORDERS = """
CREATE SCHEMA production; CREATE SCHEMA purchasing;
CREATE TABLE production.workorder (workorderid serial PRIMARY KEY, code text NOT NULL UNIQUE);
CREATE TABLE purchasing.purchaseorder (purchaseorderid serial PRIMARY KEY, code text NOT NULL UNIQUE);
CREATE TABLE production.transactionhistory (
    id serial PRIMARY KEY, ref text NOT NULL UNIQUE, referenceorderid integer NOT NULL,
    transactiontype character(1) NOT NULL);
INSERT INTO production.workorder (code) SELECT 'w' || g FROM generate_series(1, 6) g;
SELECT setval('purchasing.purchaseorder_purchaseorderid_seq', 100);
INSERT INTO purchasing.purchaseorder (code) SELECT 'p' || g FROM generate_series(1, 3) g;
INSERT INTO production.transactionhistory (ref, referenceorderid, transactiontype) VALUES
    ('t1', 1, 'W'), ('t2', 2, 'W'), ('t3', 4, 'W'), ('t4', 101, 'P'), ('t5', 103, 'P');
"""

ORDERS_MAPPING = """
version: 1
tables:
  production.workorder: {natural_key: [code]}
  purchasing.purchaseorder: {natural_key: [code]}
  production.transactionhistory: {natural_key: [ref]}
"""


def test_an_id_whose_table_depends_on_a_type_column_is_a_warning_with_counts(new_db: NewDb) -> None:
    dsn = make_db(new_db, ORDERS)
    report = check_database(dsn, load_mapping_text(ORDERS_MAPPING))
    (warning,) = [p for p in report.problems if p.code == "generic-without-type-table"]
    assert (warning.severity, warning.table, warning.column) == (
        "warning",
        "production.transactionhistory",
        "referenceorderid",
    )
    assert warning.message == (
        "column 'referenceorderid' holds ids of different tables depending on 'transactiontype' "
        "(transactiontype='P': 2 of 2 non-NULL values are ids of purchasing.purchaseorder; "
        "transactiontype='W': 3 of 3 non-NULL values are ids of production.workorder): a generic "
        "reference without a type table, so its raw ids travel as they are and point at other rows "
        "after a re-initialisation"
    )
    assert "raw_columns: [referenceorderid]" in warning.fix
    assert report.ok  # a warning, not an error
    raw = ORDERS_MAPPING.replace("{natural_key: [ref]}", "{natural_key: [ref], raw_columns: [referenceorderid]}")
    with snapshot(dsn, raw) as (conn, plan, catalog):
        assert find_type_switched_ids(conn, plan, catalog) == []


def test_ids_all_of_one_table_are_not_type_switched(new_db: NewDb) -> None:
    dsn = make_db(new_db, ORDERS + "UPDATE production.transactionhistory SET referenceorderid = 2;")
    with snapshot(dsn, ORDERS_MAPPING) as (conn, plan, catalog):
        assert find_type_switched_ids(conn, plan, catalog) == []


def test_key_null_data_names_the_column_that_is_null(new_db: NewDb) -> None:
    dsn = make_db(
        new_db,
        """
        CREATE TABLE public.address (id serial PRIMARY KEY, addressline1 text NOT NULL,
                                     addressline2 text, city text NOT NULL);
        INSERT INTO public.address (addressline1, addressline2, city) VALUES
            ('1 Main St', NULL, 'Oslo'), ('2 Main St', 'Flat 3', 'Oslo');
        """,
    )
    mapping = "version: 1\ntables:\n  public.address: {natural_key: [addressline1, addressline2, city]}\n"
    report = check_database(dsn, load_mapping_text(mapping))
    (null,) = [p for p in report.problems if p.code == "key-null-data"]
    assert null.column == "addressline2"
    assert null.message == (
        "1 row(s) have a NULL in the natural key (addressline1, addressline2, city): NULL in "
        "addressline2 in 1 row(s), matched as equal on import: "
        "(addressline1='1 Main St', addressline2=NULL, city='Oslo')"
    )
