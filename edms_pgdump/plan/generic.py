"""Generic references in the plan: a type column (an FK to a table listed under
``types:``) and an id column whose table the type row names.

The plan is pure, but which tables a generic reference names is data: export finds
them on its snapshot (``generic_probe``), the manifest carries them, and the import
plans with them. Without them (``check``, ``plan``) the reference still travels by
natural key; only the list of targets is empty.
"""

from __future__ import annotations

from typing import Protocol

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import Catalog, ForeignKey, Table
from edms_pgdump.mapping import Mapping, TableMapping
from edms_pgdump.plan.model import Expansion, GenericPlan, GenericTarget, Severity

# per (table, id column): the tables its data names
GenericTargets = dict[tuple[QualifiedName, str], tuple[QualifiedName, ...]]


class _Reporter(Protocol):
    mapping: Mapping
    catalog: Catalog

    def problem(
        self,
        severity: Severity,
        code: str,
        table: QualifiedName | str,
        message: str,
        fix: str,
        column: str | None = None,
    ) -> None: ...

    def key_fk(self, table: Table, nk: tuple[str, ...], column: str) -> ForeignKey | None: ...


def target_of(catalog: Catalog, mapping: Mapping, name: QualifiedName) -> GenericTarget | None:
    """A table a generic reference can name: mapped, with a one-column primary key."""
    table = catalog.get(name)
    if table is None or name not in mapping.tables or not table.primary_key:
        return None
    if len(table.primary_key) != 1:
        return None
    return GenericTarget(name, table.primary_key[0])


def plan_generic(
    planner: _Reporter,
    table: Table,
    tm: TableMapping,
    expansions: list[Expansion],
    targets: GenericTargets,
) -> list[GenericPlan]:
    out: list[GenericPlan] = []
    by_column = {c: e for e in expansions for c in e.columns}
    for g in tm.generic_references:
        where = f"generic reference ({g.type_column}, {g.id_column})"
        id_col = table.column(g.id_column)
        if table.column(g.type_column) is None or id_col is None:
            missing = g.type_column if table.column(g.type_column) is None else g.id_column
            planner.problem(
                "error",
                "generic-column-missing",
                table.name,
                f"{where} names column {missing!r}, which does not exist",
                "use existing column names: " + ", ".join(c.name for c in table.columns),
                missing,
            )
            continue
        if g.id_column in by_column or g.id_column in tm.raw_columns:
            planner.problem(
                "error",
                "generic-id-covered",
                table.name,
                f"{where}: {g.id_column} is already carried as a foreign key or a raw column",
                "remove it from generic_references:, or from raw_columns:",
                g.id_column,
            )
            continue
        exp = by_column.get(g.type_column)
        types = planner.mapping.types
        if exp is None or exp.ref_table not in types or len(exp.columns) != 1:
            listed = ", ".join(str(t) for t in types) or "none"
            planner.problem(
                "error",
                "generic-type-column",
                table.name,
                f"{where}: {g.type_column} must be a foreign key (or a declared reference) to a "
                f"table listed under types: (listed: {listed})",
                f"add the type table under types: with its table_name template, map it with a "
                f"natural_key, and declare references: [{{columns: [{g.type_column}], table: TYPE_TABLE}}] "
                "if the database has no FK",
                g.type_column,
            )
            continue
        type_table = exp.ref_table
        naming = types[type_table]
        type_key = planner.mapping.tables[type_table].natural_key
        loose = [c for c in naming.template_columns if c not in type_key]
        if loose:
            planner.problem(
                "error",
                "generic-type-template",
                str(type_table),
                f"types: table_name {naming.table_name!r} uses {loose[0]!r}, which is not part of "
                f"{type_table}'s natural key ({', '.join(type_key)}): the archive carries only the key",
                "build table_name from natural-key columns, or add explicit entries under tables:",
                loose[0],
            )
            continue
        if g.on_dangling == "null" and id_col.not_null:
            planner.problem(
                "error",
                "generic-null-not-allowed",
                table.name,
                f"{where}: on_dangling: null, but {g.id_column} is NOT NULL",
                "use on_dangling: skip or error",
                g.id_column,
            )
            continue
        found: list[GenericTarget] = []
        for name in targets.get((table.name, g.id_column), ()):
            target = target_of(planner.catalog, planner.mapping, name)
            if target is None:
                planner.problem(
                    "error",
                    "generic-target",
                    table.name,
                    f"{where}: its data names {name}, which is not mapped, does not exist here, or "
                    "has no one-column primary key",
                    f"map {name} with a natural_key, or list its type under ignore_types:",
                    g.id_column,
                )
                continue
            if g.id_column in tm.natural_key and _key_reaches(planner, targets, name, table.name):
                planner.problem(
                    "error",
                    "generic-key-cycle",
                    table.name,
                    f"{where} is part of the natural key, and its data names {name}, whose own "
                    f"natural key leads back to {table.name}: such a key would contain itself",
                    f"take {g.id_column} out of the natural_key (choose columns that identify the row "
                    f"without it), or list {name}'s type under ignore_types: to carry those ids as they are",
                    g.id_column,
                )
                continue
            found.append(target)
        out.append(
            GenericPlan(
                table=table.name,
                type_column=g.type_column,
                id_column=g.id_column,
                id_type=id_col.type,
                nullable=not id_col.not_null,
                type_table=type_table,
                type_key=type_key,
                naming=naming,
                on_dangling=g.on_dangling,
                ignore_types=g.ignore_types,
                targets=tuple(found),
            )
        )
    return out


def _key_reaches(
    planner: _Reporter, targets: GenericTargets, start: QualifiedName, goal: QualifiedName
) -> bool:
    """Whether ``start``'s natural key, expanded through its references and the tables its
    generic key columns name, reaches ``goal``: expanding it would never end."""
    seen: set[QualifiedName] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name == goal:
            return True
        if name in seen:
            continue
        seen.add(name)
        tm = planner.mapping.tables.get(name)
        table = planner.catalog.get(name)
        if tm is None or table is None:
            continue
        for col in tm.natural_key:
            fk = planner.key_fk(table, tm.natural_key, col)
            if fk is not None and fk.ref_table != name:
                todo.append(fk.ref_table)
        generic_ids = {g.id_column for g in tm.generic_references}
        for col in generic_ids & set(tm.natural_key):
            todo.extend(targets.get((name, col), ()))
    return False


def generic_candidates(
    planner: _Reporter, table: Table, tm: TableMapping, expansions: list[Expansion]
) -> None:
    """``object_id`` / ``*_object_id`` beside a reference to a type table (Django's
    content types) is a generic reference the mapping does not declare: its ids would
    travel raw, so it is an error whose fix is the mapping entry (or raw_columns)."""
    if not tm.export:
        return
    declared = {g.id_column for g in tm.generic_references} | set(tm.raw_columns)
    covered = {c for e in expansions for c in e.columns}
    types = planner.mapping.types
    type_refs = {
        e.columns[0]: e.ref_table
        for e in expansions
        if len(e.columns) == 1 and (e.ref_table in types or e.ref_table.name.endswith("content_type"))
    }
    if not type_refs:
        return
    for col in table.columns:
        name = col.name
        if not (name == "object_id" or name.endswith("_object_id")) or name in declared or name in covered:
            continue
        prefix = name[: -len("object_id")]
        type_column = next((c for c in type_refs if c == f"{prefix}content_type_id"), None)
        if type_column is None:
            type_column = next(iter(sorted(type_refs)))
        type_table = type_refs[type_column]
        entry = f"generic_references: [{{type: {type_column}, id: {name}}}]"
        if type_table not in types:
            entry += f' and under types: {type_table}: {{table_name: "{{app_label}}_{{model}}"}}'
        planner.problem(
            "error",
            "generic-candidate",
            table.name,
            f"{name} beside {type_column} (a reference to {type_table}) looks like a generic reference: "
            "its ids would travel raw and name the wrong rows after a re-initialisation",
            f"declare it: {entry}; or carry it as it is with raw_columns: [{name}]",
            name,
        )
