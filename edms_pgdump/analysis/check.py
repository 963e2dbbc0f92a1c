"""``check``: every way an export could carry database ids or lose rows, before it runs.

Why a separate analysis: the plan refuses what cannot work (raw ids to an unmapped
table, an unbreakable cycle), but the silent losses come from what *looks* fine: an
``object_id`` with no constraint, a table nobody mapped, a natural key that is unique
in the mapping but not in the data. This module adds those findings to the plan's own
problems, each naming the table, the column and the mapping change that fixes it.

Severity: an error means an export or import would fail or lose data (exit 1); a
warning is worth a look but everything is still exported and imported correctly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from edms_pgdump import sqlgen as g
from edms_pgdump.analysis.app_shapes import (
    embedded_dangling_problems,
    embedded_id_problems,
    excluded_with_rows,
    tree_position_problems,
)
from edms_pgdump.analysis.generic_probe import dangling_problems, plan_with_targets
from edms_pgdump.analysis.likely_refs import Candidate, likely_reference_candidates, uncovered_columns
from edms_pgdump.analysis.probes import (
    find_likely_references,
    find_type_switched_ids,
    missing_rows_of,
    partly_null_of,
    prove_unique_keys,
)
from edms_pgdump.archive.package import ArchiveReader
from edms_pgdump.catalog.names import QualifiedName, parse_qualified_name
from edms_pgdump.catalog.read import Catalog, Table, read_catalog
from edms_pgdump.db import Connection, connect, describe_dsn, server_error_message
from edms_pgdump.errors import DatabaseError, MappingError, sample_keys
from edms_pgdump.mapping import Mapping, load_mapping_text, mapping_from_dict
from edms_pgdump.options import Progress, Steps
from edms_pgdump.plan.build import KeyField, Plan, Problem, Severity, TablePlan, build_plan, unmapped_tables
from edms_pgdump.plan.model import TREE_PATH
from edms_pgdump.plan.proposals import suggestion
from edms_pgdump.results import CheckReport, Cycle, CycleEdge
from edms_pgdump.sqlgen import fixes

_INTEGER = re.compile(r"^(smallint|integer|bigint|numeric(\(\d+(,\s*0)?\))?)$")
SAMPLE = 5


# -- findings that need only names and types (database or manifest) ----------------


def unmapped_problem(name: str, fix: str | None = None) -> Problem:
    return Problem(
        "error",
        "table-unmapped",
        name,
        "table is neither mapped nor excluded: its rows would silently not be exported",
        fix or f"add {name} under tables: with a natural_key, or list it under exclude:",
    )


def _guess_target(
    column: str, tables: list[QualifiedName], schema: str, own: QualifiedName | None = None
) -> QualifiedName | None:
    """``customer_id`` -> a table named customer, customers or (for ``*y``) *ies; never the
    column's own table (a self-reference is only proposed from a real FK)."""
    stem = column[: -len("_id")]
    candidates = [stem, stem + "s", stem + "es"]
    if stem.endswith("y"):
        candidates.append(stem[:-1] + "ies")
    for candidate in candidates:
        for t in sorted(tables, key=lambda n: (n.schema != schema, n)):
            if t.name == candidate and t != own:
                return t
    return None


def _target_column(table: Table | None) -> str | None:
    """The column a reference to ``table`` holds: its single-column primary key, else a
    single-column NOT NULL unique key; None when it has neither (then nothing is guessed)."""
    if table is None:
        return None
    if table.primary_key and len(table.primary_key) == 1:
        return table.primary_key[0]
    for key in table.unique_keys:
        col = table.column(key[0]) if len(key) == 1 else None
        if col is not None and col.not_null:
            return col.name
    return None


def id_column_problem(
    table: str,
    column: str,
    target: QualifiedName | None,
    key: str | None = None,
    target_pk: tuple[str, ...] | None = None,
) -> Problem:
    """An id-like column with no FK: both ways to decide it, as mapping lines to paste."""
    raw = fixes.raw_columns([column])
    if target is None:
        fix = (
            f"under {table} in the mapping, add references: [{{columns: [{column}], table: ...}}] "
            f"naming the table it points at, or {raw} to carry it as it is"
        )
        what = "looks like a reference to another table's id"
    else:
        ref = fixes.declared_reference(column, target, key, target_pk)
        fix = (
            f"under {table} in the mapping, add {ref} to carry it as {target}'s natural key, or {raw} "
            "to carry it as it is"
        )
        if key:
            fix += (
                f"; or add the constraint: ALTER TABLE {table} ADD FOREIGN KEY ({fixes.ident(column)}) "
                f"REFERENCES {target} ({fixes.ident(key)});"
            )
        what = f"looks like a reference to {target}" + (f".{key}" if key else "")
    return Problem(
        "warning",
        "id-without-fk",
        table,
        f"column {column!r} {what} but has no foreign key: its raw ids would be exported and point "
        "at the wrong rows after a re-initialisation",
        fix,
        column,
    )


def _looks_like_id(name: str, type_: str) -> bool:
    return name.endswith("_id") and bool(_INTEGER.match(type_))


# -- live database ------------------------------------------------------------------


def cycles_of(plan: Plan) -> list[Cycle]:
    """Multi-table components and self-references, with the edge where each one is broken
    (or, for a refused cycle, the edge that cannot be: ``blocked``)."""
    out: list[Cycle] = []
    for comp in plan.components:
        members = set(comp)
        edges = [
            CycleEdge(
                str(n),
                e.fk.name,
                e.columns,
                str(e.ref_table),
                e.edge,
                e.nullable,
                e.fk.deferrable,
            )
            for n in comp
            for e in plan.tables[n].expansions
            if e.ref_table in members
        ]
        if len(comp) > 1 or edges:
            out.append(Cycle(tuple(str(n) for n in comp), tuple(edges)))
    return out


def _id_columns(plan: Plan, catalog: Catalog) -> list[Problem]:
    """Columns that travel raw but look like references: by the name of a mapped table or
    its primary key (``likely_refs``), or an integer ``*_id`` guessed against any table."""
    found: list[Problem] = []
    names = list(catalog.tables)
    likely: dict[tuple[QualifiedName, str], Candidate] = {}
    for c in likely_reference_candidates(plan, catalog):
        likely.setdefault((c.table, c.column), c)
    for tp in plan.tables.values():
        if not tp.export:
            continue
        table = catalog.tables[tp.table]
        for col in uncovered_columns(tp, table):
            cand = likely.get((tp.table, col.name))
            if cand is not None:
                target: QualifiedName | None = cand.target
                key: str | None = cand.target_column
            elif _looks_like_id(col.name, col.base_type or col.type):
                target = _guess_target(col.name, names, tp.table.schema, tp.table)
                key = _target_column(catalog.tables[target]) if target is not None else None
            else:
                continue
            pk = catalog.tables[target].primary_key if target is not None else None
            found.append(id_column_problem(str(tp.table), col.name, target, key, pk))
    return found


def _key_relation_nulls(plan: Plan, tp: TablePlan) -> sql.Composed:
    """Sample rows with a NULL key part: rows in all, then NULLs per nullable key field
    (so the message names the field that is NULL), then the key fields."""
    nullable = _nullable_key_fields(tp)
    keys = sql.SQL(", ").join(g.ident(kf.name) for kf in tp.key_fields)
    per_field = sql.SQL(", ").join(
        sql.SQL("count(*) FILTER (WHERE {} IS NULL) OVER ()").format(g.ident(kf.name)) for kf in nullable
    )
    cond = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(g.ident(kf.name)) for kf in nullable)
    return sql.SQL(
        "SELECT count(*) OVER (), {per_field}, {keys} FROM ({rel}) AS k WHERE {cond} LIMIT {n}"
    ).format(per_field=per_field, keys=keys, rel=g.key_relation(plan, tp), cond=cond, n=sql.Literal(SAMPLE))


def _key_column(tp: TablePlan, kf: KeyField) -> str:
    """The table column a key field comes from: itself, or the reference it expands."""
    for e in tp.expansions:
        if kf.path[0] == e.label:
            return e.columns[0]
    return kf.path[0]


def _nullable_key_fields(tp: TablePlan) -> list[KeyField]:
    """Key fields whose NULLs deserve a warning: not a tree's parent path, whose NULL is
    every root's (a tree keyed by (parent, name) has roots by design)."""
    return [kf for kf in tp.key_fields if kf.nullable and not kf.tree]


def shown_field(name: str) -> str:
    """A key field as the user wrote it: ``parent_id``, not the internal ``parent_id.#path``."""
    return name.replace("." + TREE_PATH, "")


def _key_nulls_problem(tp: TablePlan, rows: list[tuple[Any, ...]]) -> Problem:
    key_names = [shown_field(kf.name) for kf in tp.key_fields]
    nullable = _nullable_key_fields(tp)
    counts = [(kf, int(n)) for kf, n in zip(nullable, rows[0][1 : 1 + len(nullable)]) if n]
    where = ", ".join(f"{shown_field(kf.name)} in {n} row(s)" for kf, n in counts)
    return Problem(
        "warning",
        "key-null-data",
        str(tp.table),
        f"{rows[0][0]} row(s) have a NULL in the natural key ({', '.join(key_names)}): NULL in {where}, "
        "matched as equal on import: " + sample_keys([r[1 + len(nullable) :] for r in rows], key_names),
        "fill the NULLs, or accept that rows with the same non-NULL parts are one row",
        _key_column(tp, counts[0][0]) if counts else tp.natural_key[0],
    )


def _plannable(plan: Plan, tp: TablePlan, seen: frozenset[QualifiedName] = frozenset()) -> bool:
    """Every table the natural key or references go through has a plan."""
    for e in tp.expansions:
        ref = plan.tables.get(e.ref_table)
        if ref is None:
            return False
        if e.ref_table not in seen and e.ref_table != tp.table:
            if not _plannable(plan, ref, seen | {tp.table}):
                return False
    return True


def _data_problems(conn: Connection, plan: Plan, catalog: Catalog, steps: Steps) -> list[Problem]:
    """Duplicate and NULL natural keys, references pointing at nothing (declared in the
    mapping, or NOT VALID constraints), multi-column references partly NULL, and ids that
    travel raw although the data says they are references (likely references, type-switched ids)."""
    found: list[Problem] = []
    tables = list(plan.tables.values())
    for i, tp in enumerate(tables, 1):
        steps.step(f"keys and references {tp.table}", i, len(tables))
        if not _plannable(plan, tp):
            continue  # a table it depends on failed planning; that problem is reported
        found += prove_unique_keys(conn, plan, SAMPLE, [tp])
        if _nullable_key_fields(tp):
            rows = list(conn.execute(_key_relation_nulls(plan, tp)).fetchall())
            if rows:
                found.append(_key_nulls_problem(tp, rows))
        found += missing_rows_of(conn, tp, SAMPLE)
        found += partly_null_of(conn, tp, catalog, SAMPLE)
    found += find_likely_references(
        conn, plan, catalog, each=lambda what, i, n: steps.step(f"likely reference {what}", i, n)
    )
    found += find_type_switched_ids(
        conn, plan, catalog, each=lambda what, i, n: steps.step(f"ids chosen by a type column {what}", i, n)
    )
    return found


def analyse(plan: Plan, catalog: Catalog, mapping: Mapping, source: str) -> CheckReport:
    """Everything that needs only the catalog (no data): unit-testable."""
    unmapped = unmapped_tables(mapping, catalog)
    problems = list(plan.problems)
    problems += [unmapped_problem(str(n), suggestion(catalog.tables[n], n)) for n in unmapped]
    problems += _id_columns(plan, catalog)
    return CheckReport(
        source=source,
        problems=problems,
        cycles=cycles_of(plan),
        load_order=[str(n) for n in plan.load_order],
        unmapped_tables=[str(n) for n in unmapped],
    )


def check_database(dsn: str, mapping: Mapping, progress: Progress | None = None) -> CheckReport:
    """Catalog and data analysis of a live database; reads only, in one snapshot.
    ``progress`` hears of each phase and table as it starts (options.PHASE tasks)."""
    steps = Steps(progress)
    conn = connect(dsn)
    try:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        steps.step("read catalog")
        catalog = read_catalog(conn)
        steps.step("plan")
        plan = build_plan(mapping, catalog)
        # generic references: which tables the data names, and ids that name nothing
        steps.step("generic references")
        plan, generic = plan_with_targets(conn, mapping, catalog, plan)
        report = analyse(plan, catalog, mapping, describe_dsn(dsn))
        report.problems += generic + dangling_problems(conn, plan)
        report.problems += _data_problems(conn, plan, catalog, steps)
        steps.step("excluded tables with rows")
        report.problems += excluded_with_rows(conn, mapping, catalog) + tree_position_problems(plan, catalog)
        steps.step("ids inside JSON and text")
        report.problems += embedded_id_problems(conn, plan, catalog) + embedded_dangling_problems(conn, plan)
        conn.execute("COMMIT")
    except psycopg.Error as exc:
        raise DatabaseError(f"check of {describe_dsn(dsn)} failed: {server_error_message(exc)}") from None
    finally:
        steps.end()
        conn.close()
    report.problems.sort(key=lambda p: (p.severity != "error", p.table, p.column or "", p.code))
    return report


# -- archive --------------------------------------------------------------------------


def _problem_from_dict(d: dict[str, Any]) -> Problem:
    sev: Severity = "error" if d.get("severity") == "error" else "warning"
    return Problem(
        sev,
        str(d.get("code", "")),
        str(d.get("table", "")),
        str(d.get("message", "")),
        str(d.get("fix", "")),
        d.get("column"),
    )


def _archived_raw_columns(m: Any) -> dict[str, set[str]]:
    """The columns the exporter's mapping carries as they are (``raw_columns:``): an id
    declared raw on purpose is no ids-kept finding, in the archive as on the database."""
    try:
        mapping = (
            load_mapping_text(m.mapping_text, "archive mapping")
            if m.mapping_text.strip()
            else mapping_from_dict(m.mapping)
        )
    except MappingError:  # an archive's mapping that no longer parses: no column is known raw
        return {}
    return {str(name): set(tm.raw_columns) for name, tm in mapping.tables.items()}


def check_archive(path: str | Path, identities: Sequence[str | Path] = ()) -> CheckReport:
    """The same analysis from an archive's manifest (no database, no data scan);
    ``identities`` (age identity files) decrypt an encrypted archive."""
    with ArchiveReader(path, identities=identities) as reader:
        m = reader.manifest
    report = CheckReport(source=str(path))
    report.problems = [_problem_from_dict(p) for p in m.problems]
    report.unmapped_tables = list(m.unmapped_tables)
    report.problems += [unmapped_problem(n) for n in report.unmapped_tables]
    report.load_order = list(m.load_order)
    tables = {t.table: t for t in m.tables}
    all_names = [parse_qualified_name(n) for n in tables]
    raw = _archived_raw_columns(m)
    for t in tables.values():
        refs = {c for e in t.expansions for c in e.get("columns", [])} | raw.get(t.table, set())
        for f in t.fields:
            if f.role == "column" and f.name not in refs and _looks_like_id(f.name, f.type):
                target = _guess_target(f.name, all_names, t.schema or "public")
                report.problems.append(id_column_problem(t.table, f.name, target))
    for comp in m.components:
        members = set(comp)
        edges = []
        for n in comp:
            entry = tables.get(n)
            for e in entry.expansions if entry is not None else ():
                if e.get("ref_table") not in members:
                    continue
                kind = str(e.get("edge", "ordered"))
                edges.append(
                    CycleEdge(
                        n,
                        str(e.get("constraint", "")),
                        tuple(e.get("columns", [])),
                        str(e["ref_table"]),
                        kind,
                        True if kind == "second_pass" else None,
                        {"deferred": True, "second_pass": False}.get(kind),
                    )
                )
        if len(comp) > 1 or edges:
            report.cycles.append(Cycle(tuple(comp), tuple(edges)))
    report.problems.sort(key=lambda p: (p.severity != "error", p.table, p.column or "", p.code))
    return report
