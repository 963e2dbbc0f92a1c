"""check: every finding on a real database (and from an archive's manifest), with the
table, column and mapping fix; exit codes and --json through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from edms_pgdump import export_archive
from edms_pgdump.analysis.check import check_archive, check_database
from edms_pgdump.cli import app
from edms_pgdump.mapping import load_mapping_text
from edms_pgdump.results import CheckReport
from tests.support.reg_schema import REG_MAPPING, REG_SCHEMA, REG_SOURCE_DATA

ROOT = Path(__file__).resolve().parents[2]

# What goes wrong in real schemas: an FK to a table nobody mapped, an integer *_id with no
# constraint, a natural key with no unique index, nullable, duplicated and NULL in the data.
PROBLEM_SCHEMA = """
CREATE TABLE reg.note (
    id serial PRIMARY KEY, ref text NOT NULL UNIQUE,
    log_id integer REFERENCES reg.audit_log (id), party_id integer, body text);
CREATE TABLE reg.tag (id serial PRIMARY KEY, label text);
INSERT INTO reg.audit_log (note) VALUES ('first');
INSERT INTO reg.note (ref, log_id, party_id) SELECT 'n1', min(a.id), min(p.id)
    FROM reg.audit_log a, reg.party p;
INSERT INTO reg.tag (label) VALUES ('x'), ('x'), ('y'), (NULL);
"""

PROBLEM_MAPPING = (
    REG_MAPPING
    + """  reg.note: {natural_key: [ref]}
  reg.tag: {natural_key: [label]}
"""
)

runner = CliRunner()


@pytest.fixture
def reg_db(new_db: Any) -> str:
    dsn: str = new_db()
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(REG_SCHEMA.encode())
        c.execute(REG_SOURCE_DATA.encode())
        c.execute(PROBLEM_SCHEMA.encode())
    return dsn


def found(report: CheckReport) -> list[tuple[str, str, str, str | None]]:
    return [(p.severity, p.code, p.table, p.column) for p in report.problems]


def test_check_finds_every_kind_of_problem_with_its_fix(reg_db: str) -> None:
    report = check_database(reg_db, load_mapping_text(PROBLEM_MAPPING))
    assert found(report) == [
        ("error", "table-unmapped", "reg.audit_log", None),
        ("error", "fk-to-unmapped", "reg.note", "log_id"),
        ("error", "likely-reference", "reg.note", "party_id"),
        ("error", "key-not-unique-data", "reg.tag", "label"),
        ("warning", "id-without-fk", "reg.note", "party_id"),
        ("warning", "key-not-unique", "reg.tag", None),
        ("warning", "key-column-nullable", "reg.tag", "label"),
        ("warning", "key-null-data", "reg.tag", "label"),
    ]
    by_code = {p.code: p for p in report.problems}
    assert by_code["id-without-fk"].fix == (
        "under reg.note in the mapping, add references: [{columns: [party_id], table: reg.party}] to carry "
        "it as reg.party's natural key, or raw_columns: [party_id] to carry it as it is; or add the "
        'constraint: ALTER TABLE reg.note ADD FOREIGN KEY ("party_id") REFERENCES reg.party ("id");'
    )
    assert "is not unique in the data: (label='x') 2 times" in by_code["key-not-unique-data"].message
    assert "1 row(s) have a NULL in the natural key (label)" in by_code["key-null-data"].message
    assert by_code["fk-to-unmapped"].fix.startswith("map reg.audit_log with a natural_key")
    assert by_code["table-unmapped"].fix == (
        "list reg.audit_log under exclude:, or add it under tables: with the columns that identify a row"
    )
    assert by_code["key-not-unique"].fix == 'CREATE UNIQUE INDEX ON reg.tag ("label") NULLS NOT DISTINCT;'
    assert not report.ok
    cycles = {frozenset(c.tables): c for c in report.cycles}
    lead = next(e for e in cycles[frozenset({"reg.member", "reg.team"})].edges if e.table == "reg.team")
    assert (lead.constraint, lead.edge, lead.nullable, lead.deferrable, lead.broken) == (
        "team_lead_fk",
        "second_pass",
        True,
        False,
        True,
    )
    (self_ref,) = cycles[frozenset({'reg."Contract"'})].edges
    assert (self_ref.columns, self_ref.edge) == (("parent_id",), "self")


def test_declaring_the_suggested_reference_fixes_the_warning_and_catches_dangling_ids(reg_db: str) -> None:
    fixed = (
        PROBLEM_MAPPING.replace("  reg.note: {natural_key: [ref]}\n", "")
        + "  reg.note:\n    natural_key: [ref]\n"
        + "    references: [{columns: [party_id], table: reg.party, target_columns: [id]}]\n"
    )
    report = check_database(reg_db, load_mapping_text(fixed))
    assert "id-without-fk" not in [p.code for p in report.problems]
    with psycopg.connect(reg_db, autocommit=True) as c:
        c.execute("UPDATE reg.note SET party_id = 424242")
    report = check_database(reg_db, load_mapping_text(fixed))
    dangling = next(p for p in report.problems if p.code == "reference-dangling")
    assert (dangling.severity, dangling.table, dangling.column) == ("error", "reg.note", "party_id")
    assert "1 row(s) reference reg.party rows that do not exist" in dangling.message
    assert "(party_id=424242)" in dangling.message
    # the same through a real constraint added NOT VALID: the catalog trusts it, check does not
    with psycopg.connect(reg_db, autocommit=True) as c:
        c.execute(
            "ALTER TABLE reg.note ADD CONSTRAINT note_party_fk FOREIGN KEY (party_id)"
            " REFERENCES reg.party (id) NOT VALID"
        )
    report = check_database(reg_db, load_mapping_text(PROBLEM_MAPPING))
    dangling = next(p for p in report.problems if p.code == "reference-dangling")
    assert dangling.message == (
        "1 row(s) reference reg.party rows that do not exist through the foreign key note_party_fk "
        "(party_id), which is NOT VALID: (party_id=424242); they would be exported as NULL"
    )
    assert dangling.fix.endswith("ALTER TABLE reg.note VALIDATE CONSTRAINT note_party_fk")
    assert "id-without-fk" not in [p.code for p in report.problems]


def test_clean_sample_exits_0_and_reports_the_deferred_cycle_edge(sample_dbs: tuple[str, str]) -> None:
    src, _ = sample_dbs
    res = runner.invoke(app, ["check", "--dsn", src, "-m", str(ROOT / "config" / "edms.yaml")])
    assert res.exit_code == 0, res.output
    assert "cycle: public.documents <-> public.document_versions" in res.output
    assert (
        "public.documents (current_version_id) -> public.document_versions [documents_current_version_fk] "
        "breaks here: constraint is DEFERRABLE" in res.output
    )
    # the one warning: the excluded sessions hold rows, named with their count
    assert "warning: public.django_session [excluded-has-rows]: 3 row(s) are left out" in res.output
    assert res.output.rstrip().endswith("0 error(s), 1 warning(s) - OK")


def test_cli_exit_1_and_json(reg_db: str, tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(PROBLEM_MAPPING)
    res = runner.invoke(app, ["check", "--dsn", reg_db, "-m", str(mapping)])
    assert res.exit_code == 1
    assert "error: reg.note.log_id [fk-to-unmapped]: foreign key note_log_id_fkey (log_id)" in res.output
    assert "4 error(s), 4 warning(s) - PROBLEMS FOUND" in res.output
    res = runner.invoke(app, ["check", "--dsn", reg_db, "-m", str(mapping), "--json"])
    assert res.exit_code == 1
    data = json.loads(res.output)
    assert (data["ok"], data["errors"], data["warnings"]) == (False, 4, 4)
    assert data["unmapped_tables"] == ["reg.audit_log"]
    res = runner.invoke(app, ["check", "--dsn", reg_db])
    assert res.exit_code == 2
    assert "check needs --dsn and --mapping" in res.output


def test_check_archive_from_its_manifest(reg_db: str, new_db: Any, tmp_path: Path) -> None:
    src: str = new_db()
    with psycopg.connect(src, autocommit=True) as c:
        c.execute(REG_SCHEMA.encode())
        c.execute(REG_SOURCE_DATA.encode())
    archive = tmp_path / "reg.edmsdump"
    export_archive(src, load_mapping_text(REG_MAPPING), archive)
    report = check_archive(archive)
    assert found(report) == [("error", "table-unmapped", "reg.audit_log", None)]
    cycles = {frozenset(c.tables): c for c in report.cycles}
    lead = next(e for e in cycles[frozenset({"reg.member", "reg.team"})].edges if e.table == "reg.team")
    assert (lead.edge, lead.nullable, lead.deferrable) == ("second_pass", True, False)
    res = runner.invoke(app, ["check", str(archive), "--json"])
    assert res.exit_code == 1
    assert json.loads(res.output)["problems"][0]["code"] == "table-unmapped"


def test_check_archive_of_the_clean_sample_exits_0(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    from edms_pgdump.mapping import load_mapping

    archive = tmp_path / "s.edmsdump"
    export_archive(sample_dbs[0], load_mapping(ROOT / "config" / "edms.yaml"), archive)
    res = runner.invoke(app, ["check", str(archive)])
    assert res.exit_code == 0, res.output
    assert "breaks here: constraint is DEFERRABLE" in res.output
    assert "nullable=unknown" in res.output  # a manifest does not record nullability of 'self' edges


@pytest.mark.parametrize("command", ["check", "plan", "sql"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    res = runner.invoke(app, [command, "--help"])
    assert res.exit_code == 0
    assert "Example: edms-pgdump " + command in res.output


def test_not_null_non_deferrable_cycle_is_an_error_with_the_fix(new_db: Any) -> None:
    dsn: str = new_db()
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(REG_SCHEMA.encode())
        c.execute("ALTER TABLE reg.team ALTER COLUMN lead_id SET NOT NULL")
    report = check_database(dsn, load_mapping_text(REG_MAPPING + "exclude: [reg.audit_log]\n"))
    assert found(report) == [("error", "cycle-not-breakable", "reg.member", "team_id")]
    (err,) = report.errors
    assert "is NOT NULL and not deferrable, so no insert order can satisfy it" in err.message
    assert err.fix.startswith("in the mapping, set export: false on reg.team if the target already holds")
    assert 'ALTER TABLE reg.member ALTER CONSTRAINT "member_team_id_fkey" DEFERRABLE;' in err.fix
    (cycle,) = [c for c in report.cycles if len(c.tables) == 2]
    assert {(e.table, e.nullable, e.deferrable) for e in cycle.edges} == {
        ("reg.team", False, False),
        ("reg.member", False, False),
    }


def test_id_column_heuristic_guesses_the_table_and_its_key_without_a_database() -> None:
    from edms_pgdump.analysis.check import analyse
    from edms_pgdump.catalog.names import QualifiedName
    from edms_pgdump.catalog.read import Catalog, Column, Table
    from edms_pgdump.plan.build import build_plan

    def col(name: str, type_: str = "integer") -> Column:
        return Column(name, type_, True, None, "", "")

    orders = Table(
        QualifiedName("shop", "orders"),
        (
            col("ref", "text"),
            col("customer_id"),
            col("category_id", "bigint"),
            col("widget_id"),
            col("batch_id", "uuid"),
        ),
        ("ref",),
        (),
        (),
    )
    customers = Table(QualifiedName("shop", "customers"), (col("cust_no"),), ("cust_no",), (), ())
    categories = Table(QualifiedName("shop", "categories"), (col("id"),), ("id",), (), ())
    cat = Catalog({t.name: t for t in (orders, customers, categories)})
    mapping = load_mapping_text(
        "version: 1\ntables:\n  shop.orders: {natural_key: [ref]}\n"
        "exclude: [shop.customers, shop.categories]\n"
    )
    report = analyse(build_plan(mapping, cat), cat, mapping, "unit")
    fixes = {p.column: p.fix for p in report.problems if p.code == "id-without-fk"}
    raw = "raw_columns: [{}] to carry it as it is"
    assert fixes == {
        "customer_id": "under shop.orders in the mapping, add references: [{columns: [customer_id], "
        "table: shop.customers}] to carry it as shop.customers's natural key, or "
        + raw.format("customer_id")
        + '; or add the constraint: ALTER TABLE shop.orders ADD FOREIGN KEY ("customer_id") '
        'REFERENCES shop.customers ("cust_no");',
        "category_id": "under shop.orders in the mapping, add references: [{columns: [category_id], "
        "table: shop.categories}] to carry it as shop.categories's natural key, or "
        + raw.format("category_id")
        + '; or add the constraint: ALTER TABLE shop.orders ADD FOREIGN KEY ("category_id") '
        'REFERENCES shop.categories ("id");',
        "widget_id": "under shop.orders in the mapping, add references: [{columns: [widget_id], table: ...}] "
        "naming the table it points at, or " + raw.format("widget_id"),
    }
    assert report.ok  # warnings only
