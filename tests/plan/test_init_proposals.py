"""`init` proposes the keys a person would choose, says so when a key carries raw ids,
and every SQL `fix:` that plan and check print is valid when pasted into PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
from typer.testing import CliRunner

from edms_pgdump.analysis.check import analyse
from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import read_catalog
from edms_pgdump.cli import app
from edms_pgdump.mapping import load_mapping, load_mapping_text
from edms_pgdump.plan.build import build_plan
from edms_pgdump.sqlgen import fixes

SCHEMA = """
CREATE TABLE public.account (id serial PRIMARY KEY, email text NOT NULL UNIQUE, nickname text UNIQUE);
CREATE TABLE public.enrolment (id serial PRIMARY KEY, account_id int NOT NULL REFERENCES public.account,
    course text NOT NULL, UNIQUE (account_id, course));
-- a unique raw id (no FK) next to a nullable name: the name is what a person would pick
CREATE TABLE public.store (id serial PRIMARY KEY, manager_staff_id int NOT NULL UNIQUE, name text UNIQUE);
CREATE TABLE public.staff (staff_id serial PRIMARY KEY, store_id int NOT NULL REFERENCES public.store,
    first_name text NOT NULL);
-- nothing but a raw id: proposed, with a comment saying so
CREATE TABLE public.legacy (id serial PRIMARY KEY, partner_id int NOT NULL UNIQUE, note text);
-- keyed only by its own serial id
CREATE TABLE public.workorder (workorderid serial PRIMARY KEY, qty int);
-- keys that would contain each other's references: one of them must take its own column
CREATE TABLE public.a (id serial PRIMARY KEY, label text UNIQUE, b_id int UNIQUE);
CREATE TABLE public.b (id serial PRIMARY KEY, a_id int NOT NULL UNIQUE REFERENCES public.a);
ALTER TABLE public.a ADD FOREIGN KEY (b_id) REFERENCES public.b;
-- names that need quotes in SQL and in YAML
CREATE SCHEMA "Sales";
CREATE TABLE "Sales"."order" (id serial PRIMARY KEY, "user" text NOT NULL, "Number" int NOT NULL,
    UNIQUE ("user", "Number"));
"""

runner = CliRunner()


def _db(new_db: Any, schema: str = SCHEMA) -> str:
    dsn: str = new_db()
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(schema.encode())
    return dsn


def test_init_proposes_keys_a_person_would_choose(new_db: Any, tmp_path: Path) -> None:
    dsn = _db(new_db)
    out = tmp_path / "m.yaml"
    res = runner.invoke(app, ["init", "--dsn", dsn, "-o", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    mapping = load_mapping(out)
    keys = {str(n): tm.natural_key for n, tm in mapping.tables.items()}
    assert keys == {
        '"Sales"."order"': ("user", "Number"),
        "public.a": ("label",),
        "public.account": ("email",),  # NOT NULL unique, not the nullable nickname, not the id
        "public.b": ("a_id",),
        "public.enrolment": ("account_id", "course"),  # composite, its FK travels as the account's email
        "public.legacy": ("partner_id",),
        "public.store": ("name",),  # not the raw manager_staff_id
    }
    assert sorted(str(n) for n in mapping.exclude) == ["public.staff", "public.workorder"]
    assert (
        "  # public.legacy: natural_key ['partner_id'] carries raw ids (partner_id is named like an id and "
        "has no foreign key): ids differ between databases" in text
    )
    assert text.count("carries raw ids") == 1
    assert (
        "  # public.workorder: only its surrogate id (workorderid) identifies a row; to keep source ids "
        "as they are, map it with natural_key: [workorderid]" in text
    )
    assert "references:" not in text and "target_columns" not in text
    with psycopg.connect(dsn) as c:
        catalog = read_catalog(c)
    plan = build_plan(mapping, catalog)
    assert [p.code for p in plan.errors] == []  # no key loops, no FK to a table without a key


def test_check_suggests_no_self_reference_and_no_missing_id_column(new_db: Any) -> None:
    dsn = _db(
        new_db,
        """
CREATE TABLE public.warehouse (code text PRIMARY KEY, city text);
CREATE TABLE public.staff (staff_id serial PRIMARY KEY, login text NOT NULL UNIQUE, staff_id_old int,
    warehouse_id int, boss_staff_id int);
""",
    )
    text = "version: 1\ntables:\n  public.staff: {natural_key: [login]}\n  public.warehouse: {natural_key: [code]}\n"
    mapping = load_mapping_text(text)
    with psycopg.connect(dsn) as c:
        catalog = read_catalog(c)
    report = analyse(build_plan(mapping, catalog), catalog, mapping, "unit")
    fixes_by_col = {p.column: p.fix for p in report.problems if p.code == "id-without-fk"}
    # warehouse_id: the warehouse table is keyed by code, so no target_columns: [id]
    assert fixes_by_col["warehouse_id"].startswith(
        "under public.staff in the mapping, add references: [{columns: [warehouse_id], table: "
        "public.warehouse}] to carry it as public.warehouse's natural key"
    )
    assert 'REFERENCES public.warehouse ("code");' in fixes_by_col["warehouse_id"]
    # staff_id_old / boss_staff_id: only staff itself fits, and a self-reference is never guessed
    for col in ("staff_id_old", "boss_staff_id"):
        assert "public.staff}" not in fixes_by_col.get(col, "")
    assert all("[id]" not in f for f in fixes_by_col.values())


def _statements(fix: str) -> list[str]:
    return re.findall(r"((?:ALTER TABLE|CREATE UNIQUE INDEX)[^;]*;)", fix)


PASTE = """
CREATE SCHEMA "Sales";
CREATE TABLE "Sales"."Customer" (id serial PRIMARY KEY, "E-mail" text UNIQUE);
CREATE TABLE "Sales"."order" (id serial PRIMARY KEY, "user" text, "Number" int NOT NULL,
    "Customer_id" int);
CREATE TABLE "Sales"."line" (id serial PRIMARY KEY, "order" int NOT NULL REFERENCES "Sales"."order",
    "select" text NOT NULL, UNIQUE ("order", "select"));
ALTER TABLE "Sales"."order" ADD CONSTRAINT "Order first line" FOREIGN KEY ("Number")
    REFERENCES "Sales"."line" (id);
INSERT INTO "Sales"."Customer" ("E-mail") VALUES ('a@x'), ('b@x');
"""

PASTE_MAPPING = """
version: 1
tables:
  '"Sales"."Customer"': {natural_key: [E-mail]}
  '"Sales"."order"': {natural_key: [user]}
  '"Sales".line': {natural_key: [order, select]}
"""


def test_every_sql_fix_is_valid_when_pasted(new_db: Any) -> None:
    dsn = _db(new_db, PASTE)
    mapping = load_mapping_text(PASTE_MAPPING)
    with psycopg.connect(dsn) as c:
        catalog = read_catalog(c)
    plan = build_plan(mapping, catalog)
    report = analyse(plan, catalog, mapping, "unit")
    by_code: dict[str, list[str]] = {}
    for p in report.problems:
        by_code.setdefault(p.code, []).extend(_statements(p.fix))
    kinds = {"key-not-unique", "key-column-nullable", "cycle-not-breakable", "id-without-fk"}
    assert kinds <= set(by_code), report.problems
    assert by_code["key-not-unique"] == [
        'CREATE UNIQUE INDEX ON "Sales"."order" ("user") NULLS NOT DISTINCT;'
    ]
    assert by_code["cycle-not-breakable"] == [
        'ALTER TABLE "Sales".line ALTER CONSTRAINT "line_order_fkey" DEFERRABLE;',
        'ALTER TABLE "Sales".line ALTER COLUMN "order" DROP NOT NULL;',
    ]
    assert by_code["id-without-fk"] == [
        'ALTER TABLE "Sales"."order" ADD FOREIGN KEY ("Customer_id") REFERENCES "Sales"."Customer" ("id");'
    ]
    for statements in by_code.values():
        for stmt in statements:
            with psycopg.connect(dsn) as c:  # each on its own, rolled back
                c.execute(stmt.encode())
                c.rollback()
    with psycopg.connect(dsn) as c:  # and together, they leave nothing to fix
        for code in sorted(by_code):
            if code != "cycle-not-breakable":
                for stmt in by_code[code]:
                    c.execute(stmt.encode())
        c.execute(by_code["cycle-not-breakable"][0].encode())
        catalog = read_catalog(c)
        c.rollback()
    after = analyse(build_plan(mapping, catalog), catalog, mapping, "unit")
    assert {p.code for p in after.problems} & kinds == set()
    # a nullable key on a server older than 15 cannot use NULLS NOT DISTINCT: it says what instead
    old = fixes.unique_index(QualifiedName("Sales", "order"), ("user", "Number"), ["user"], 140000)
    assert old.startswith(
        'ALTER TABLE "Sales"."order" ALTER COLUMN "user" SET NOT NULL; '
        'CREATE UNIQUE INDEX ON "Sales"."order" ("user", "Number");'
    )
    assert "older than PostgreSQL 15" in old
