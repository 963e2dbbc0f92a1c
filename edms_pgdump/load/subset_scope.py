"""A subset archive's scope, found again on a target.

``import --delete-missing`` of a subset deletes only the rows the subset speaks for, and
``diff`` compares only those: ``archive_scopes`` reads the manifest's rules and re-checks
them against the target (filters parsed again, columns, owners, primary keys);
``target_scope`` writes the steps that find the rows in scope on the target, after the
import's writes: the same filters, run read only, and the same ownership. A ``needed``
table is never in scope. ``planned_scopes`` gives the psql runbook the same rules from
the mapping.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass
from typing import Literal

from psycopg import sql

from edms_pgdump.archive.manifest import Manifest
from edms_pgdump.catalog.names import QualifiedName, parse_qualified_name
from edms_pgdump.catalog.read import Catalog
from edms_pgdump.errors import ArchiveError, EdmsPgdumpError, PlanError
from edms_pgdump.export.subset import Rule, TableScope, column_type, subset_rules
from edms_pgdump.plan.build import Plan, TablePlan
from edms_pgdump.program.steps import CompareCounts, Execute, Message, Record, Step
from edms_pgdump.sqlgen import subset as q
from edms_pgdump.sqlgen.where import RowFilter, check_columns, compared_by_value, parse_where

RULES: tuple[Rule, ...] = ("where", "owned", "needed", "whole")
# the rows the import's transaction has written, before and after an archive's filter ran
WRITES_BEFORE = "writes before filter"
WRITES_AFTER = "writes after filter"


# What a refusal of ``archive_scopes`` says was not done, and the way out, per caller.
_SCOPE_FIX = {
    "import": (
        "nothing was written (import without --delete-missing, or re-export the subset from a "
        "source whose schema matches the target)",
        "the subset's scope cannot be evaluated on the target, so nothing was written (import "
        "without --delete-missing)",
    ),
    "diff": (
        "diff cannot tell which target rows the subset speaks for (re-export the subset from a "
        "source whose schema matches the target)",
        "the subset's scope cannot be evaluated on the target, so diff cannot tell which target "
        "rows the subset speaks for (re-export the subset from a source whose schema matches the target)",
    ),
}


def archive_scopes(
    manifest: Manifest,
    plan: Plan,
    catalog: Catalog,
    tables: Iterable[QualifiedName],
    origin: str,
    purpose: Literal["import", "diff"] = "import",
) -> dict[QualifiedName, TableScope]:
    """The rule a subset archive recorded for each of ``tables`` (its scope), checked
    against the target before anything is written: each filter is parsed again (the
    manifest is data, never trusted SQL) and must name the target's columns, and each
    owner must still be a reference in the table's natural key. {} for an archive of
    whole tables. ``purpose`` picks the advice of a refusal (import or diff)."""
    scoped = {parse_qualified_name(t.table): t.scope for t in manifest.tables}
    if not manifest.filters and not any(s is not None for s in scoped.values()):
        return {}
    names = [t for t in plan.load_order if t in set(tables)]
    listed = ", ".join(sorted(manifest.filters)) or "none"
    fix, unusable = _SCOPE_FIX[purpose]

    def refuse(table: QualifiedName, what: str) -> ArchiveError:
        return ArchiveError(f"{origin}: {table}: {what}; {fix}")

    rules: dict[QualifiedName, TableScope] = {}
    for name in names:
        raw = scoped.get(name)
        if raw is None:
            raise refuse(
                name, f"the archive is a subset (filters on {listed}) but records no scope for this table"
            )
        rule = raw.get("rule")
        if rule not in RULES:
            raise refuse(name, f"the manifest's scope has rule {rule!r}, not one of {', '.join(RULES)}")
        owners = tuple(parse_qualified_name(str(o)) for o in raw.get("owners", ()) or ())
        where: RowFilter | None = None
        if rule == "where":
            text = raw.get("where", manifest.filters.get(str(name)))
            if not isinstance(text, str):
                raise refuse(name, "the manifest's scope has rule where but no filter")
            where_origin = f"{origin}: the archive's filter of {name}"
            try:
                where = parse_where(name, text, where_origin)
                check_columns(where, {c.name: str(c.type) for c in catalog.tables[name].columns})
            except EdmsPgdumpError as exc:
                raise ArchiveError(f"{exc}; {unusable}") from None
            ids = surrogate_filter_columns(plan.tables[name], where)
            if ids:
                raise refuse(name, surrogate_filter_problem(name, text, ids, plan.tables[name]))
        if rule in ("where", "owned") and not catalog.tables[name].primary_key:
            raise refuse(
                name,
                "has no primary key in the target, which --delete-missing of a subset needs to hold "
                "the rows in the subset's scope; add a primary key",
            )
        tp = plan.tables[name]
        refs = {tp.expansion(label).ref_table for kind, label in tp.key_parts if kind == "reference"}
        for owner in owners:
            if owner not in refs:
                raise refuse(name, f"the archive says its rows are owned by {owner}, but its natural key "
                             "in the target holds no reference to that table")  # fmt: skip
            if owner not in names:
                raise refuse(name, f"its owner {owner} is not imported, so which rows it owns is unknown")
        if rule == "owned" and not owners:
            raise refuse(name, "the manifest's scope has rule owned but names no owner")
        needed_by = tuple(parse_qualified_name(str(t)) for t in raw.get("needed_by", ()) or ())
        descendants = bool(raw.get("descendants"))
        rules[name] = TableScope(name, rule, where, owners, needed_by, descendants=descendants)
    for name, scope in rules.items():
        for owner in scope.owners:
            if rules[owner].rule not in ("where", "owned"):
                raise refuse(name, f"the archive says its rows are owned by {owner}, whose rule is "
                             f"{rules[owner].rule}, not where or owned")  # fmt: skip
    return rules


@dataclass(frozen=True)
class TargetScope:
    """Steps that fill one temp table per where/owned table with the primary keys of
    the target's rows in the subset's scope, run after the import's writes (so a row the
    archive changed is judged by its new values: a document that became published brings
    its versions into scope), and the condition each table's deletes are limited to.

    ``read_only`` (diff): the temp tables are created by ``creates``, before the
    transaction turns READ ONLY, and ``fill`` only fills them."""

    fill: tuple[Step, ...]
    conditions: dict[QualifiedName, sql.Composed]  # on alias "o": the row is in scope
    no_deletes: frozenset[QualifiedName]  # rule needed: rows kept only because needed
    creates: tuple[Execute, ...] = ()


def target_scope(
    plan: Plan, catalog: Catalog, scopes: AbcMapping[QualifiedName, TableScope], *, read_only: bool = False
) -> TargetScope:
    """Owners before the tables they own; a tree's descendants after the rows above.

    A filter comes from the archive and must not write. In the import's writing
    transaction the rows written are counted before and after it runs, and a filter
    that wrote stops the import (rolled back); with ``read_only`` the transaction that
    fills the scope is READ ONLY as a whole (diff), as the export ran it."""
    scoped = [t for t in plan.load_order if t in scopes and scopes[t].rule in ("where", "owned")]
    order: list[QualifiedName] = []
    while len(order) < len(scoped):
        ready = [t for t in scoped if t not in order and all(o in order for o in scopes[t].owners)]
        if not ready:  # pragma: no cover - archive_scopes refuses owners outside the scope
            raise PlanError("subset scope: the owned tables form a cycle: " + ", ".join(map(str, scoped)))
        order += ready
    kept: dict[QualifiedName, q.KeptTable] = {}
    creates: list[Execute] = []
    fill: list[Step] = []
    for name in order:
        index = plan.load_order.index(name) + 1
        table = catalog.tables[name]
        pk = tuple(table.primary_key or ())
        k = kept[name] = q.KeptTable(
            name, f"edms_scope_{index}", pk, tuple(column_type(table, c) for c in pk), table.has_children
        )
        (creates if read_only else fill).append(Execute("scope", name, q.create_kept(k)))
        scope = scopes[name]
        if scope.where is not None and read_only:
            fill.append(Execute("scope where", name, q.insert_where(k, scope.where.sql)))
        elif scope.where is not None:
            # the import's transaction writes, so it cannot be READ ONLY here (nor can a
            # function be, on PostgreSQL 18): the rows it has written are counted before
            # and after the filter runs, and any row the filter wrote stops the import
            fill.append(Record("scope where", name, q.row_writes(), (WRITES_BEFORE,)))
            fill.append(Execute("scope where", name, q.insert_where(k, scope.where.sql)))
            fill.append(Record("scope where", name, q.row_writes(), (WRITES_AFTER,)))
            fill.append(
                CompareCounts(
                    name,
                    WRITES_AFTER,
                    WRITES_BEFORE,
                    Message(
                        f"{name}: the subset's filter ({scope.where.sql}) wrote to the database while "
                        "its scope was found on the target (rows written by the transaction: ",
                        " before); a filter must only read, so the import was rolled back and nothing was "
                        "written: re-export the subset with a filter whose functions do not write",
                        " after it ran, ",
                    ),
                )
            )
        tp = plan.tables[name]
        refs = [tp.expansion(label) for kind, label in tp.key_parts if kind == "reference"]
        for exp in refs:
            if exp.ref_table in scope.owners:
                stmt = q.insert_owned(k, exp.fk.columns, kept[exp.ref_table], exp.fk.ref_columns)
                fill.append(Execute("scope owned", name, stmt))
        for exp in refs:
            if exp.ref_table == name:  # a tree keyed by its parent: descendants are in scope
                fill.append(
                    Execute(
                        "scope descendants", name, q.insert_owned(k, exp.fk.columns, k, exp.fk.ref_columns)
                    )
                )
        fill.append(Execute("analyze scope", name, q.analyze_kept(k)))
    return TargetScope(
        fill=tuple(fill),
        conditions={t: q.in_scope(k, "o") for t, k in kept.items()},
        no_deletes=frozenset(t for t, s in scopes.items() if s.rule == "needed"),
        creates=tuple(creates),
    )


def surrogate_filter_columns(tp: TablePlan, where: RowFilter) -> list[str]:
    """The columns a filter judges by value that hold surrogate ids: the table's own
    (dropped on export, allocated anew by the target) and the references' (resolved to
    the target's ids). On the target such an id names another row than on the source, so
    a mirror import would judge the subset's scope on the wrong rows. Ids compared with
    what a subquery finds by natural key are the same rows in every database."""
    ids = {c.name for c in tp.surrogate}
    ids |= {c for e in tp.expansions for c in e.written}
    ids |= {g.id_column for g in tp.generic} | {g.type_column for g in tp.generic}
    return compared_by_value(where, [c for c in where.columns if c in ids])


def surrogate_filter_problem(table: QualifiedName, text: str, ids: list[str], tp: TablePlan) -> str:
    return (
        f"the subset's filter ({text}) names {', '.join(ids)}, which hold{'s' if len(ids) == 1 else ''} "
        f"surrogate ids: the target's ids name other rows than the source's, so the rows a mirror "
        f"import (--delete-missing) would delete cannot be told by it. Fix: filter {table} on its "
        f"natural-key or other plain columns ({', '.join(tp.natural_key)}), or compare ids only with "
        "what a subquery finds by natural key (team_id IN (SELECT id FROM … WHERE name = …)), and "
        "export again"
    )


def planned_scopes(
    plan: Plan, catalog: Catalog, filters: AbcMapping[QualifiedName, RowFilter]
) -> dict[QualifiedName, TableScope]:
    """The scope an import.sql with --delete-missing deletes in, from the mapping's
    ``where:`` entries and the target's plan (the psql runbook has no manifest to read
    it from; import.sql checks it against the one export.sql recorded in scope.copy).
    {} when nothing is filtered: whole tables are mirrored."""
    if not filters:
        return {}
    rules = subset_rules(plan, filters)
    for f in filters.values():
        check_columns(f, {c.name: str(c.type) for c in catalog.tables[f.table].columns})
        ids = surrogate_filter_columns(plan.tables[f.table], f)
        if ids:
            raise PlanError(
                f"{f.origin}: {surrogate_filter_problem(f.table, f.text, ids, plan.tables[f.table])}; "
                "generate import.sql without --delete-missing, or change the filter"
            )
    for name, scope in rules.items():
        if scope.rule in ("where", "owned") and not catalog.tables[name].primary_key:
            raise PlanError(
                f"{name}: has no primary key in the target, which --delete-missing of a subset "
                f"({scope.describe()}) needs to hold the rows in the subset's scope; add a primary "
                "key, or generate import.sql without --delete-missing"
            )
    return rules


def scope_json(scope: TableScope) -> str:
    """One table's rule as export.sql records it in scope.copy (the manifest's ``scope``
    without the row count); compared as jsonb, so key order does not matter."""
    return json.dumps(scope.to_dict(), sort_keys=True)
