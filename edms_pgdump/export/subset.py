"""Subset export: which rows of each table an export with ``--where`` filters keeps.

The rules (issue 13), decided per table from the plan alone (``subset_rules``, shown
by ``plan``):

- ``where``  the table has a filter: the rows matching it are in scope (for a tree
  keyed by its own parent, their descendants too);
- ``owned``  its natural key holds a reference to a ``where``/``owned`` table: the rows
  whose owner row is in scope are in scope (a document's versions and workflows);
- ``needed`` a ``where``/``owned``/``needed`` table references it: only the rows some
  kept row references are kept;
- ``whole``  every other table: all rows.

Then, in the export's snapshot, every row a kept row references (FK, declared or
generic reference) is kept too, transitively and in whichever table, parent chains to
their roots, so the archive imports into an empty schema with nothing unresolved.
Rows kept only for that are not in scope: ``--delete-missing`` must not treat them
as the subset's rows. Owned rows hang off rows in scope, never off rows merely needed.

Finding the same scope again on a target (``import --delete-missing``, ``diff``):
``subset_scope``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field
from typing import Any, Literal

from psycopg import sql

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import Catalog
from edms_pgdump.errors import PlanError, UsageError
from edms_pgdump.mapping import Mapping
from edms_pgdump.plan.build import Plan
from edms_pgdump.sqlgen import subset as q
from edms_pgdump.sqlgen.where import RowFilter, check_columns, filter_table_name, parse_where

Rule = Literal["where", "owned", "needed", "whole"]
# Rounds of the closure before giving up: each round follows every edge once, and a
# self-reference is followed to its root within one round, so only a chain that
# alternates between tables row by row needs many.
MAX_ROUNDS = 1000

WhereArgs = AbcMapping[str, str] | Sequence[tuple[str, str]]


@dataclass(frozen=True)
class TableScope:
    """Which rule decides the rows of one table, and through which tables."""

    table: QualifiedName
    rule: Rule
    where: RowFilter | None = None
    owners: tuple[QualifiedName, ...] = ()  # owned: tables whose rows in scope own these
    needed_by: tuple[QualifiedName, ...] = ()  # needed: tables whose kept rows reference these
    descendants: bool = False  # a tree keyed by its parent: children of rows in scope too

    def describe(self) -> str:
        if self.rule == "where":
            text = self.where.text if self.where else ""
            return f"where {text}" + (" (and descendants)" if self.descendants else "")
        if self.rule == "owned":
            return "owned by " + ", ".join(str(t) for t in self.owners)
        if self.rule == "needed":
            return "needed by " + ", ".join(str(t) for t in self.needed_by)
        return "whole"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule}
        if self.where is not None:
            out["where"] = self.where.text
        if self.descendants:
            out["descendants"] = True
        if self.owners:
            out["owners"] = [str(t) for t in self.owners]
        if self.needed_by:
            out["needed_by"] = [str(t) for t in self.needed_by]
        return out


def resolve_filters(mapping: Mapping, where: WhereArgs = ()) -> dict[QualifiedName, RowFilter]:
    """The filters in force: the mapping's ``where:`` entries, each replaced by a
    ``--where`` for the same table. Refused before any connection: a table that is not
    an exported mapping key, one given twice, an expression that is not one condition."""
    exported = [n for n, tm in mapping.tables.items() if tm.export]
    filters: dict[QualifiedName, RowFilter] = {}
    for name, tm in mapping.tables.items():
        if tm.where is not None:
            origin = f'tables."{name}".where'
            filters[name] = parse_where(name, tm.where, origin, from_mapping=True)
    pairs = list(where.items()) if isinstance(where, AbcMapping) else list(where)
    given: set[QualifiedName] = set()
    for pair in pairs:
        if len(pair) != 2 or not all(isinstance(p, str) for p in pair):
            raise UsageError(f"--where {pair!r}: give a table and an expression, --where TABLE EXPR")
        text_table, expr = pair
        name = filter_table_name(text_table, exported)
        if name in given:
            raise UsageError(f"--where {name}: given twice; combine the conditions with AND in one --where")
        given.add(name)
        filters[name] = parse_where(name, expr, f"--where {name}")
    return filters


def subset_rules(
    plan: Plan, filters: AbcMapping[QualifiedName, RowFilter]
) -> dict[QualifiedName, TableScope]:
    """The rule of every exported table (pure: ``plan`` shows it without touching data)."""
    exported = [tp.table for tp in plan.exported]
    kept = set(exported)
    where = {t for t in filters if t in kept}
    owners: dict[QualifiedName, list[QualifiedName]] = {}
    grew = True
    while grew:
        grew = False
        for tp in plan.exported:
            if tp.table in where:
                continue
            for kind, label in tp.key_parts:
                if kind != "reference":
                    continue
                ref = tp.expansion(label).ref_table
                owner = ref in where or ref in owners
                if ref != tp.table and owner and ref not in owners.get(tp.table, []):
                    owners.setdefault(tp.table, []).append(ref)
                    grew = True
    selected = where | set(owners)
    needed: dict[QualifiedName, list[QualifiedName]] = {}
    grew = True
    while grew:
        grew = False
        for tp in plan.exported:
            if tp.table not in selected and tp.table not in needed:
                continue
            for ref in _referenced(tp, kept):
                if ref in selected or ref == tp.table or tp.table in needed.get(ref, []):
                    continue
                grew = grew or ref not in needed
                needed.setdefault(ref, []).append(tp.table)
    rules: dict[QualifiedName, TableScope] = {}
    for tp in plan.exported:
        t = tp.table
        tree = tp.tree_expansion is not None
        if t in where:
            rules[t] = TableScope(t, "where", filters[t], descendants=tree)
        elif t in owners:
            rules[t] = TableScope(t, "owned", owners=tuple(owners[t]))
        elif t in needed:
            also = [s.table for s in plan.exported if s.table not in needed[t] and s.table != t
                    and t in _referenced(s, kept)]  # fmt: skip
            rules[t] = TableScope(t, "needed", needed_by=tuple(needed[t] + also))
        else:
            rules[t] = TableScope(t, "whole")
    return rules


def _referenced(tp: Any, exported: set[QualifiedName]) -> list[QualifiedName]:
    refs = [e.ref_table for e in tp.expansions if e.ref_table in exported]
    refs += [g.table for gp in tp.generic for g in gp.targets if g.table in exported]
    return list(dict.fromkeys(refs))


@dataclass
class Subset:
    """The closure computed on the export's snapshot (``export.run``): temp tables of
    kept keys, and their counts."""

    rules: dict[QualifiedName, TableScope]
    kept: dict[QualifiedName, q.KeptTable] = field(default_factory=dict)
    counts: dict[QualifiedName, tuple[int, int]] = field(default_factory=dict)  # kept, in scope
    rounds: int = 0

    @property
    def filters(self) -> dict[str, str]:
        return {str(t): s.where.text for t, s in self.rules.items() if s.where is not None}

    def keep(self, table: QualifiedName) -> sql.Composable | None:
        """The export query's row condition for ``table`` (None: the table comes whole)."""
        kept = self.kept.get(table)
        return q.keep_condition(kept) if kept is not None else None

    def scope(self, table: QualifiedName) -> dict[str, Any]:
        """The manifest's ``scope`` of one table."""
        out = self.rules[table].to_dict()
        if table in self.counts:
            out["rows_in_scope"] = self.counts[table][1]
        return out


Step = tuple[sql.Composed, str]


@dataclass(frozen=True)
class SubsetSteps:
    """The closure as statements, which the export program (``export.program``) runs in
    one order for both its interpreters (the library's export and export.sql), so both
    keep the same rows. Each step is (statement, what it does, for errors)."""

    rules: dict[QualifiedName, TableScope]
    kept: dict[QualifiedName, q.KeptTable]
    filters: tuple[tuple[RowFilter, sql.Composed], ...]  # once each, in scope
    owned: tuple[Step, ...]  # repeated until no kept set grows
    needed_from_whole: tuple[Step, ...]  # rows whole tables need: once
    needed: tuple[Step, ...]  # rows kept rows need: repeated until nothing grows

    def keep(self, table: QualifiedName) -> sql.Composable | None:
        kept = self.kept.get(table)
        return q.keep_condition(kept) if kept is not None else None


def subset_steps(plan: Plan, catalog: Catalog, filters: AbcMapping[QualifiedName, RowFilter]) -> SubsetSteps:
    """Pure: the rules, the kept-key temp tables and the closure's statements; refused
    here (before any data is read) when a filter names a column the table lacks or a
    table that does not come whole has no primary key to keep its rows by."""
    rules = subset_rules(plan, filters)
    for f in filters.values():
        table = catalog.tables[f.table]
        check_columns(f, {c.name: c.type for c in table.columns})
    kept: dict[QualifiedName, q.KeptTable] = {}
    for i, tp in enumerate(plan.exported):
        if rules[tp.table].rule == "whole":
            continue
        table = catalog.tables[tp.table]
        if not table.primary_key:
            raise PlanError(
                f"{tp.table}: has no primary key, and a subset export ({rules[tp.table].describe()}) "
                "keeps its rows by primary key; add a primary key to the table, or export without "
                "--where/where: on the tables that reach it"
            )
        types = tuple(column_type(table, c) for c in table.primary_key)
        kept[tp.table] = q.KeptTable(tp.table, f"edms_subset_{i}", table.primary_key, types, tp.only)
    return SubsetSteps(
        rules,
        kept,
        tuple((f, q.insert_where(kept[t], f.sql)) for t, f in filters.items()),
        tuple(_owned_steps(plan, rules, kept)),
        tuple(_needed_steps(plan, kept, whole_sources=True)),
        tuple(_needed_steps(plan, kept, whole_sources=False)),
    )


def filter_failed(f: RowFilter) -> str:
    return f"{f.origin}: the filter failed on {f.table}"


def closure_overflow(phase: str, steps: Sequence[Step]) -> str:
    """The refusal when a closure still grows after MAX_ROUNDS rounds."""
    tables = ", ".join(sorted({w.split(" ")[-1] for _, w in steps}))
    return (
        f"subset export: the {phase} still grow after {MAX_ROUNDS} rounds (a reference chain "
        f"alternating between {tables}); export those tables whole (no where: on them) or narrow the filter"
    )


def _owned_steps(
    plan: Plan, rules: AbcMapping[QualifiedName, TableScope], kept: AbcMapping[QualifiedName, q.KeptTable]
) -> list[Step]:
    steps: list[Step] = []
    for tp in plan.exported:
        scope = rules[tp.table]
        if scope.rule not in ("where", "owned"):
            continue
        for kind, label in tp.key_parts:
            if kind != "reference":
                continue
            exp = tp.expansion(label)
            own = exp.ref_table == tp.table or exp.ref_table in scope.owners
            if own and exp.ref_table in kept:
                steps.append(
                    (
                        q.insert_owned(
                            kept[tp.table],
                            exp.fk.columns,
                            kept[exp.ref_table],
                            exp.fk.ref_columns,
                        ),
                        f"owned rows of {tp.table} through {exp.label} -> {exp.ref_table}",
                    )
                )
    return steps


def _needed_steps(
    plan: Plan, kept: AbcMapping[QualifiedName, q.KeptTable], *, whole_sources: bool
) -> list[Step]:
    steps: list[Step] = []
    for tp in plan.exported:
        source_kept = kept.get(tp.table)
        if (source_kept is None) != whole_sources:
            continue
        for exp in tp.expansions:
            target = kept.get(exp.ref_table)
            if target is None:
                continue
            if exp.array:
                raise PlanError(
                    f"{tp.table}.{exp.fk.columns[0]}: an array of ids (references: to {exp.ref_table}) "
                    f"cannot be followed by a subset export yet, and {exp.ref_table} is filtered; "
                    f"export {exp.ref_table} whole (no --where or where: on it or the tables it follows), "
                    "nothing was exported"
                )
            steps.append(
                (
                    q.insert_needed(tp, source_kept, exp.fk.columns, target, exp.fk.ref_columns),
                    f"rows {tp.table} needs through {exp.label} -> {exp.ref_table}",
                )
            )
        for gp in tp.generic:
            type_exp = next(e for e in tp.expansions if gp.type_column in e.columns)
            for g in gp.targets:
                target = kept.get(g.table)
                if target is None:
                    continue
                steps.append(
                    (
                        q.insert_generic_needed(
                            tp, source_kept, gp, type_exp.fk.ref_columns[0], target, g.id_column
                        ),
                        f"rows {tp.table} names through {gp.id_column} -> {g.table}",
                    )
                )
    return steps


def column_type(table: Any, name: str) -> str:
    col = table.column(name)
    assert col is not None
    return str(col.type)


def describe_subset(
    rules: AbcMapping[QualifiedName, TableScope], order: Iterable[QualifiedName]
) -> list[dict[str, Any]]:
    """``plan``'s subset section: one entry per exported table, in load order."""
    return [
        {"table": str(t), **rules[t].to_dict(), "describe": rules[t].describe()} for t in order if t in rules
    ]


__all__ = [
    "MAX_ROUNDS",
    "Subset",
    "SubsetSteps",
    "TableScope",
    "closure_overflow",
    "describe_subset",
    "filter_failed",
    "resolve_filters",
    "subset_rules",
    "subset_steps",
]
