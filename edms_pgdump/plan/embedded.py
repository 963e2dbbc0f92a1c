"""``embedded_references:`` planned: which columns hold ids inside JSON or text, read how,
and which column of which mapped table the ids are values of. Problems name the column."""

from __future__ import annotations

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import Catalog, Table
from edms_pgdump.mapping import Mapping, TableMapping
from edms_pgdump.plan.keys import KeyResolver
from edms_pgdump.plan.model import EmbeddedPlan
from edms_pgdump.sqlgen.embedded_syntax import EmbeddedReference, Step


def _kind(type_: str) -> str | None:
    if type_ in ("jsonb", "json"):
        return type_
    if type_ == "text" or type_.startswith("character varying"):
        return "text"
    return None


def target_column(ref: EmbeddedReference, catalog: Catalog) -> str | None:
    """The referenced table's column the ids are values of: the one given, else its
    one-column primary key (None when neither is there)."""
    if ref.target_column is not None:
        return ref.target_column
    table = catalog.get(ref.table)
    pk = table.primary_key if table is not None else None
    return pk[0] if pk and len(pk) == 1 else None


def embedded_targets(mapping: Mapping, catalog: Catalog, name: QualifiedName) -> list[str]:
    """The columns of ``name`` that embedded references name (the import needs them in
    staging, like the columns foreign keys reference)."""
    out: list[str] = []
    for tm in mapping.tables.values():
        for ref in tm.embedded_references:
            col = target_column(ref, catalog) if ref.table == name else None
            if col is not None and col not in out:
                out.append(col)
    return out


def plan_embedded(
    planner: KeyResolver, table: Table, tm: TableMapping, plain: list[str]
) -> tuple[EmbeddedPlan, ...]:
    out: list[EmbeddedPlan] = []
    for i, ref in enumerate(tm.embedded_references):
        where = f"embedded_references[{i}]"
        col = table.column(ref.column)
        if col is None:
            planner.problem(
                "error", "embedded-column", table.name,
                f"{where} names column {ref.column!r}, which does not exist",
                "use one of: " + ", ".join(c.name for c in table.columns), ref.column,
            )  # fmt: skip
            continue
        kind = _kind(col.base_type or col.type)
        if kind is None or ref.column not in plain or ref.column in (*tm.raw_columns, *tm.natural_key):
            why = (
                f"is of type {col.type}: ids can be read inside json, jsonb and text only"
                if kind is None
                else "does not travel as a value (a key, a reference, raw_columns or not exported)"
            )
            planner.problem(
                "error", "embedded-column", table.name, f"{where}: column {ref.column!r} {why}",
                f"remove the entry from embedded_references of {table.name}", ref.column,
            )  # fmt: skip
            continue
        if kind != "text" and ref.path is None:
            planner.problem(
                "error", "embedded-column", table.name,
                f"{where}: column {ref.column!r} is {kind}, and the entry has a pattern but no json: path",
                "add json: the path to the strings the pattern applies to (json: '$' for the value itself)",
                ref.column,
            )  # fmt: skip
            continue
        if ref.table not in planner.mapping.tables:
            planner.problem(
                "error", "embedded-table", table.name,
                f"{where}: table {ref.table} (named by ids inside {ref.column}) is not mapped",
                f"map {ref.table} under tables: with a natural_key", ref.column,
            )  # fmt: skip
            continue
        ref_table = planner.catalog.get(ref.table)
        target = target_column(ref, planner.catalog)
        if ref_table is None or target is None or ref_table.column(target) is None:
            planner.problem(
                "error", "embedded-table", table.name,
                f"{where}: {ref.table} has no column {target!r} for the ids inside {ref.column}"
                if target is not None
                else f"{where}: {ref.table} has no one-column primary key for the ids inside {ref.column}",
                "give target_column: the referenced table's column the ids are values of", ref.column,
            )  # fmt: skip
            continue
        steps: tuple[Step, ...] = ref.steps
        if kind == "text" and ref.path is not None:
            steps = (Step("parse"), *steps)  # JSON kept in a text column
        out.append(EmbeddedPlan(ref, kind, col.type, target, steps))  # type: ignore[arg-type]
    return tuple(out)
