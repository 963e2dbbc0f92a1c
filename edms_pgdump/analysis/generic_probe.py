"""Generic references on the data: which tables the type rows name, and ids that
name nothing (Django leaves them behind: no FK, so deleting an object keeps them).

Run by export on its snapshot (the archive then carries the targets in its manifest)
and by ``check``. Everything is set-based: one GROUP BY per reference to find the
named tables, one anti-join per reference to find dangling ids.
"""

from __future__ import annotations

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import Catalog
from edms_pgdump.db import Connection
from edms_pgdump.errors import sample_keys
from edms_pgdump.mapping import Mapping
from edms_pgdump.plan.build import GenericPlan, Plan, Problem, build_plan
from edms_pgdump.plan.generic import GenericTargets, target_of
from edms_pgdump.sqlgen.export import generic_dangling
from edms_pgdump.sqlgen.generic import discover_types, named_by_type_table


def discover_targets(
    conn: Connection, plan: Plan, mapping: Mapping, catalog: Catalog
) -> tuple[GenericTargets, list[Problem]]:
    """Per generic reference, the mapped tables its rows name; a type naming a table
    the archive cannot carry is an error with counts (unless listed in ignore_types)."""
    targets: GenericTargets = {}
    problems: list[Problem] = []
    for tp in plan.tables.values():
        if not tp.export:
            continue
        for gp in tp.generic:
            type_table = catalog.tables[gp.type_table]
            type_pk = (type_table.primary_key or ("id",))[0]
            found: list[QualifiedName] = []
            for schema, name, label, count in conn.execute(discover_types(gp, type_pk)).fetchall():
                named = QualifiedName(str(schema), str(name))
                if str(label) in gp.ignore_types:
                    continue
                if target_of(catalog, mapping, named) is not None and named in plan.tables:
                    found.append(named)
                    continue
                why = why_not_a_target(catalog, mapping, named, plan)
                problems.append(unmapped_type_problem(gp, count, str(label), named, why))
            targets[(tp.table, gp.id_column)] = tuple(sorted(set(found)))
    return targets, problems


# why a table a type row names is no target (export.sql: a table its catalog lacks)
NO_SUCH_TABLE = "does not exist"


# why a mapped table is no target yet: its own entry has an error (a key column that does
# not exist, a key that loops), reported on it; the ids naming it wait for that fix
NOT_PLANNED = "has an error in its own mapping entry (see the problems reported on it)"


def why_not_a_target(
    catalog: Catalog, mapping: Mapping, named: QualifiedName, plan: Plan | None = None
) -> str:
    if plan is not None and named in mapping.tables and named not in plan.tables and catalog.get(named):
        return NOT_PLANNED
    if named in mapping.exclude or (named in mapping.tables and catalog.get(named)):
        return "is excluded or has no one-column primary key"
    if catalog.get(named) is None:
        return NO_SUCH_TABLE
    return "is not mapped"


def unmapped_type_problem(gp: GenericPlan, count: object, label: str, named: object, why: str) -> Problem:
    """``count`` rows name ``named`` (a table no target, for ``why``) through the type ``label``."""
    return Problem(
        "error",
        "generic-type-unmapped",
        str(gp.table),
        f"{count} row(s) have a {gp.type_column} of type {label}, which names "
        f"{named}; that table {why}, so their {gp.id_column} would travel raw",
        f"map {named} with a natural_key, or add {label} to ignore_types: of this "
        "generic reference to carry those ids as they are",
        gp.id_column,
    )


def plan_with_targets(
    conn: Connection, mapping: Mapping, catalog: Catalog, plan: Plan
) -> tuple[Plan, list[Problem]]:
    """The plan again, now knowing which tables each generic reference names."""
    if not any(tp.generic for tp in plan.tables.values()):
        return plan, []
    targets, problems = discover_targets(conn, plan, mapping, catalog)
    return build_plan(mapping, catalog, targets), problems


def dangling_problems(conn: Connection, plan: Plan, sample_size: int = 5) -> list[Problem]:
    """Ids whose type row or object is gone. ``on_dangling: error`` makes it an error;
    ``null`` and ``skip`` a warning saying how many rows lose the reference or go."""
    problems: list[Problem] = []
    for tp in plan.exported:
        for gp in tp.generic:
            rows = conn.execute(generic_dangling(plan, tp, gp, sample_size)).fetchall()
            if not rows:
                continue
            samples = sample_keys((r[1:] for r in rows), dangling_sample_names(gp))
            problems.append(dangling_problem(gp, int(rows[0][0]), samples))
    return problems


def dangling_sample_names(gp: GenericPlan) -> list[str]:
    """The columns ``generic_dangling`` shows after its count."""
    return ["type", gp.id_column]


def dangling_problem(gp: GenericPlan, total: object, samples: str) -> Problem:
    """An error under ``on_dangling: error``, else a warning saying what becomes of the rows."""
    what = {
        "error": "error",
        "null": "warning",
        "skip": "warning",
    }[gp.on_dangling]
    outcome = {
        "error": "export refuses them",
        "null": f"they travel with {gp.id_column} NULL (on_dangling: null)",
        "skip": "those rows are left out of the archive (on_dangling: skip)",
    }[gp.on_dangling]
    return Problem(
        what,  # type: ignore[arg-type]
        "generic-dangling",
        str(gp.table),
        f"{total} row(s) name an object that does not exist through ({gp.type_column}, "
        f"{gp.id_column}): {samples}; {outcome}",
        "delete or fix those rows, or set on_dangling: null (nullable id) or skip on this "
        "generic reference",
        gp.id_column,
    )


def type_table_targets(conn: Connection, plan: Plan, mapping: Mapping, catalog: Catalog) -> GenericTargets:
    """Every mapped table the type table's rows name (not only those the data uses):
    what a psql runbook, written before any data is read, must be ready to resolve."""
    targets: GenericTargets = {}
    for tp in plan.tables.values():
        for gp in tp.generic:
            rows = conn.execute(named_by_type_table(gp)).fetchall()
            found = {QualifiedName(str(s), str(n)) for s, n in rows}
            targets[(tp.table, gp.id_column)] = tuple(
                sorted(n for n in found if target_of(catalog, mapping, n) is not None and n in plan.tables)
            )
    return targets


def plan_for_runbook(conn: Connection, mapping: Mapping, catalog: Catalog) -> Plan:
    plan = build_plan(mapping, catalog)
    if not any(tp.generic for tp in plan.tables.values()):
        return plan
    return build_plan(mapping, catalog, type_table_targets(conn, plan, mapping, catalog))
