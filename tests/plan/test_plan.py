"""plan.build_plan on hand-built catalogs: no database, every decision checked."""

from __future__ import annotations

from edms_pgdump.catalog.names import QualifiedName, parse_qualified_name
from edms_pgdump.catalog.read import Catalog, Column, ForeignKey, Table
from edms_pgdump.mapping import load_mapping_text
from edms_pgdump.plan.build import Plan, build_plan, unmapped_tables


def q(text: str) -> QualifiedName:
    return parse_qualified_name(text)


def col(name: str, type_: str = "bigint", *, null: bool = False, serial: bool = False) -> Column:
    default = f"nextval('{name}_seq'::regclass)" if serial else None
    return Column(name, type_, not null, default, "", "")


def fk(
    name: str, cols: tuple[str, ...], ref: str, ref_cols: tuple[str, ...] = ("id",), deferrable: bool = False
) -> ForeignKey:
    return ForeignKey(name, cols, q(ref), ref_cols, deferrable, False)


def table(
    name: str,
    columns: list[Column],
    *,
    unique: tuple[tuple[str, ...], ...] = (),
    fks: tuple[ForeignKey, ...] = (),
    pk: tuple[str, ...] | None = ("id",),
) -> Table:
    return Table(q(name), tuple(columns), pk, unique, fks)


def catalog(*tables: Table) -> Catalog:
    return Catalog({t.name: t for t in tables})


# The second test schema of test_runbook.py, as a catalog.
PARTY = table(
    "reg.party",
    [
        col("id", "integer", serial=True),
        col("country", "character(2)"),
        col("code", "text"),
        col("name", "text"),
    ],
    unique=(("country", "code"),),
)
CONTRACT = table(
    'reg."Contract"',
    [
        col("id", serial=True),
        col("party_country", "character(2)"),
        col("party_code", "text"),
        col("Number", "text"),
        col("amount", "numeric(12,2)", null=True),
        col("parent_id", null=True),
    ],
    unique=(("party_country", "party_code", "Number"),),
    fks=(
        fk("contract_party_fk", ("party_country", "party_code"), "reg.party", ("country", "code")),
        fk("contract_parent_fk", ("parent_id",), 'reg."Contract"'),
    ),
)


def team(lead_nullable: bool = True, deferrable: bool = False) -> Table:
    return table(
        "reg.team",
        [
            col("id", "integer", serial=True),
            col("name", "text"),
            col("lead_id", "integer", null=lead_nullable),
        ],
        unique=(("name",),),
        fks=(fk("team_lead_fk", ("lead_id",), "reg.member", deferrable=deferrable),),
    )


MEMBER = table(
    "reg.member",
    [col("id", "integer", serial=True), col("team_id", "integer"), col("login", "text")],
    unique=(("team_id", "login"),),
    fks=(fk("member_team_fk", ("team_id",), "reg.team"),),
)
AUDIT = table("reg.audit_log", [col("id", "integer", serial=True), col("note", "text", null=True)])

MAPPING = """
version: 1
tables:
  reg.party: {natural_key: [country, code]}
  reg."Contract": {natural_key: [party_country, party_code, Number]}
  reg.team: {natural_key: [name]}
  reg.member: {natural_key: [team_id, login]}
"""


def reg_plan(team_table: Table | None = None, mapping: str = MAPPING) -> Plan:
    return build_plan(
        load_mapping_text(mapping), catalog(PARTY, CONTRACT, team_table or team(), MEMBER, AUDIT)
    )


def codes(plan: Plan) -> list[tuple[str, str, str | None]]:
    return [(p.code, p.table, p.column) for p in plan.problems]


def test_composite_key_through_a_multi_column_fk_and_a_self_reference() -> None:
    plan = reg_plan()
    assert codes(plan) == []
    tp = plan.tables[q('reg."Contract"')]
    assert [kf.name for kf in tp.key_fields] == [
        "(party_country,party_code).country",
        "(party_country,party_code).code",
        "Number",
    ]
    assert tp.field_names == (
        "(party_country,party_code).country",
        "(party_country,party_code).code",
        "Number",
        "amount",
        "parent_id.(party_country,party_code).country",
        "parent_id.(party_country,party_code).code",
        "parent_id.Number",
    )
    edges = {e.fk.name: e.edge for e in tp.expansions}
    assert edges == {"contract_party_fk": "ordered", "contract_parent_fk": "self"}
    assert [c.name for c in tp.surrogate] == ["id"]
    assert tp.key_is_unique


def test_load_order_puts_referenced_tables_first_and_cycles_together() -> None:
    plan = reg_plan()
    order = [str(n) for n in plan.load_order]
    assert order.index("reg.party") < order.index('reg."Contract"')
    assert [sorted(str(n) for n in c) for c in plan.components if len(c) > 1] == [["reg.member", "reg.team"]]
    assert "reg.audit_log" not in order


def test_nullable_non_deferrable_cycle_edge_is_filled_in_a_second_pass() -> None:
    plan = reg_plan()
    lead = plan.tables[q("reg.team")].expansion("lead_id")
    assert lead.edge == "second_pass" and lead.nullable
    assert [kf.name for kf in lead.fields] == ["lead_id.team_id.name", "lead_id.login"]
    assert plan.tables[q("reg.member")].expansion("team_id").edge == "ordered"
    assert [str(n) for n in plan.load_order][-2:] == ["reg.team", "reg.member"]


def test_deferrable_cycle_edge_is_deferred() -> None:
    plan = reg_plan(team(lead_nullable=False, deferrable=True))
    assert plan.tables[q("reg.team")].expansion("lead_id").edge == "deferred"
    assert plan.errors == []


def test_not_null_non_deferrable_cycle_is_an_error_naming_the_fix() -> None:
    plan = reg_plan(team(lead_nullable=False))
    (err,) = plan.errors
    # both edges are NOT NULL and immediate: whichever points forward is reported
    assert (err.code, err.table, err.column) == ("cycle-not-breakable", "reg.member", "team_id")
    assert "(reg.member -> reg.team)" in err.message
    assert err.fix.startswith("in the mapping, set export: false on reg.team if the target already holds")
    assert 'ALTER TABLE reg.member ALTER CONSTRAINT "member_team_fk" DEFERRABLE;' in err.fix


def test_fk_to_an_unmapped_table_is_an_error() -> None:
    note = table(
        "reg.note",
        [col("id", serial=True), col("ref", "text"), col("log_id", "integer")],
        unique=(("ref",),),
        fks=(fk("note_log_fk", ("log_id",), "reg.audit_log"),),
    )
    plan = build_plan(
        load_mapping_text(MAPPING + "  reg.note: {natural_key: [ref]}\n"),
        catalog(PARTY, CONTRACT, team(), MEMBER, AUDIT, note),
    )
    (err,) = plan.errors
    assert (err.code, err.table, err.column) == ("fk-to-unmapped", "reg.note", "log_id")
    assert "map reg.audit_log with a natural_key" in err.fix


def test_key_without_unique_constraint_and_nullable_key_column_are_warnings() -> None:
    loose = table("reg.tag", [col("id", serial=True), col("label", "text", null=True)])
    plan = build_plan(
        load_mapping_text("version: 1\ntables:\n  reg.tag: {natural_key: [label]}\n"), catalog(loose)
    )
    assert sorted(codes(plan)) == [
        ("key-column-nullable", "reg.tag", "label"),
        ("key-not-unique", "reg.tag", None),
    ]
    assert plan.warnings[0].severity == "warning" and not plan.errors
    assert not plan.tables[q("reg.tag")].key_is_unique


def test_declared_reference_is_expanded_like_a_foreign_key() -> None:
    comment = table(
        "reg.comment",
        [col("id", serial=True), col("ref", "text"), col("object_id", "integer", null=True)],
        unique=(("ref",),),
    )
    text = MAPPING + (
        "  reg.comment:\n    natural_key: [ref]\n"
        "    references: [{columns: [object_id], table: reg.party, target_columns: [id]}]\n"
    )
    plan = build_plan(load_mapping_text(text), catalog(PARTY, CONTRACT, team(), MEMBER, AUDIT, comment))
    exp = plan.tables[q("reg.comment")].expansion("object_id")
    assert exp.fk.declared and exp.ref_table == q("reg.party")
    assert [f.name for f in plan.tables[q("reg.comment")].fields] == [
        "ref",
        "object_id.country",
        "object_id.code",
    ]


def test_unmapped_tables_lists_what_is_neither_mapped_nor_excluded() -> None:
    cat = catalog(PARTY, CONTRACT, team(), MEMBER, AUDIT)
    assert unmapped_tables(load_mapping_text(MAPPING), cat) == [q("reg.audit_log")]
    excluded = load_mapping_text(MAPPING + "exclude: [reg.audit_log]\n")
    assert unmapped_tables(excluded, cat) == []


def test_missing_key_column_is_an_error_listing_the_real_columns() -> None:
    plan = reg_plan(mapping=MAPPING.replace("Number]", "Numbr]"))
    (err,) = plan.errors
    assert (err.code, err.table, err.column) == ("key-column-missing", 'reg."Contract"', "Numbr")
    assert err.fix == "use existing column names: id, party_country, party_code, Number, amount, parent_id"
    assert q('reg."Contract"') not in plan.tables and q("reg.party") in plan.tables


def test_missing_key_column_of_a_referenced_table_is_recorded_not_raised() -> None:
    plan = reg_plan(mapping=MAPPING.replace("[name]", "[title]"))
    assert ("key-column-missing", "reg.team", "title") in codes(plan)
