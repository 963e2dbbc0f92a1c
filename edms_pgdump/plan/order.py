"""The load order: tables before the tables that reference them, cycles ordered so that
every reference pointing forward can still be satisfied without superuser rights.

Why an edge can point forward: new ids are pre-allocated in staging before any INSERT,
so a reference to a row that is inserted later is already known. What stops it is only
the database checking it at once: a declared reference (no constraint) never blocks, a
DEFERRABLE constraint is checked at the end, a nullable column is inserted as NULL and
filled by a second pass. Only a NOT NULL, immediate constraint cannot point forward; a
cycle made of nothing else is refused, with the mapping change offered first.
NOT VALID constraints count as enforced: PostgreSQL checks every new row against them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import Catalog
from edms_pgdump.plan.model import EdgeKind, Expansion, Problem, TablePlan
from edms_pgdump.sqlgen import fixes

EXHAUSTIVE_LIMIT = 7  # components up to this size try every order


def forward_kind(e: Expansion) -> EdgeKind:
    """How a reference to a table loaded later in the same cycle is satisfied."""
    if e.fk.declared or e.fk.not_enforced:
        return "unenforced"
    if e.fk.deferrable:
        return "deferred"
    if e.nullable:
        return "second_pass"
    return "blocked"


_COST = {"blocked": 1000, "second_pass": 10, "deferred": 1, "unenforced": 0}


def late_generic_targets(
    order: Sequence[QualifiedName], plans: dict[QualifiedName, TablePlan]
) -> list[tuple[QualifiedName, str, QualifiedName]]:
    """(table, generic id column, target) where the target is resolved after the table
    in the cycle and its id column is a reference it only learns when resolved (a
    multi-table-inheritance child keyed by its parent link): the id is not known yet."""
    pos = {n: i for i, n in enumerate(order)}
    out: list[tuple[QualifiedName, str, QualifiedName]] = []
    for n in order:
        for g in plans[n].generic:
            for t in g.targets:
                if t.table not in pos or pos[t.table] < pos[n]:
                    continue
                if t.id_column in plans[t.table].resolved_columns:
                    out.append((n, g.id_column, t.table))
    return out


def _cost(order: Sequence[QualifiedName], plans: dict[QualifiedName, TablePlan]) -> tuple[int, int]:
    pos = {n: i for i, n in enumerate(order)}
    total = blocked = len(late_generic_targets(order, plans))
    for n in order:
        for e in plans[n].expansions:
            if e.ref_table in pos and e.ref_table != n and pos[e.ref_table] > pos[n]:
                kind = forward_kind(e)
                blocked += kind == "blocked"
                total += _COST[kind]
    return blocked, total


def order_component(comp: list[QualifiedName], plans: dict[QualifiedName, TablePlan]) -> list[QualifiedName]:
    """The order of a cycle's tables with the fewest blocked, then cheapest, forward edges."""
    if len(comp) <= 1:
        return comp
    if len(comp) <= EXHAUSTIVE_LIMIT:
        return list(min(itertools.permutations(sorted(comp)), key=lambda o: _cost(list(o), plans)))
    remaining, best = set(comp), []
    while remaining:  # greedy: take the table whose edges into the rest cost least
        pick = min(
            sorted(remaining),
            key=lambda n: sum(
                _COST[forward_kind(e)]
                for e in plans[n].expansions
                if e.ref_table in remaining and e.ref_table != n
            ),
        )
        best.append(pick)
        remaining.remove(pick)
    return best


def assign_edges(
    ordered: list[QualifiedName], plans: dict[QualifiedName, TablePlan], component: int
) -> None:
    """Mark each forward edge of a component with how it is satisfied (in ``plans``)."""
    position = {n: i for i, n in enumerate(ordered)}
    for n in ordered:
        tp = plans[n]
        exps = []
        for e in tp.expansions:
            if e.ref_table in position and e.ref_table != n and position[e.ref_table] > position[n]:
                e = replace(e, edge=forward_kind(e))
            exps.append(e)
        plans[n] = replace(tp, expansions=tuple(exps), component=component)


def blocked_problems(
    ordered: list[QualifiedName], plans: dict[QualifiedName, TablePlan], catalog: Catalog
) -> list[Problem]:
    """One error per edge no order satisfies, the mapping fix first, then the schema's."""
    out: list[Problem] = []
    cycle = " -> ".join(str(x) for x in ordered)
    for n, column, target in late_generic_targets(ordered, plans):
        out.append(
            Problem(
                "error",
                "cycle-generic-late",
                str(n),
                f"generic reference {column} names {target}, whose ids come from its own reference "
                f"({plans[target].table}'s parent link) and are known only after it, but no order of "
                f"the cycle ({cycle}) resolves {target} first",
                f"map {target} with export: false if the target already holds its rows, or list its "
                "type under ignore_types: of this generic reference",
                column,
            )
        )
    for n in ordered:
        for e in plans[n].expansions:
            if e.edge != "blocked":
                continue
            table = catalog.tables[n]
            pk = set(table.primary_key or ())
            schema: list[str] = []
            if not e.fk.on_partitions and not e.fk.inherited:
                schema.append(fixes.make_deferrable(n, e.fk.name))
            if not pk & set(e.columns):
                schema.append(fixes.drop_not_null(n, e.columns))
            fix = (
                f"in the mapping, set export: false on {e.ref_table} if the target already holds its "
                f"rows (they are then looked up by natural key, not loaded)"
            )
            if schema:
                fix += "; otherwise change the schema: " + " or ".join(schema)
            out.append(
                Problem(
                    "error",
                    "cycle-not-breakable",
                    str(n),
                    f"foreign key {e.fk.name} ({', '.join(e.columns)}) -> {e.ref_table} is part of a "
                    f"cycle ({cycle}) and is NOT NULL and not deferrable, so no insert order can "
                    "satisfy it without disabling triggers",
                    fix,
                    e.columns[0],
                )
            )
    return out


def strongly_connected(
    nodes: list[QualifiedName], deps: dict[QualifiedName, list[QualifiedName]]
) -> list[list[QualifiedName]]:
    """Tarjan's algorithm; components come out dependencies first."""
    index: dict[QualifiedName, int] = {}
    low: dict[QualifiedName, int] = {}
    on_stack: set[QualifiedName] = set()
    stack: list[QualifiedName] = []
    result: list[list[QualifiedName]] = []
    counter = 0

    def visit(v: QualifiedName) -> None:
        nonlocal counter
        # iterative DFS to survive deep FK chains
        work = [(v, iter(deps.get(v, [])))]
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(deps.get(w, []))))
                    advanced = True
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp: list[QualifiedName] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                result.append(sorted(comp))

    for n in nodes:
        if n not in index:
            visit(n)
    return result
