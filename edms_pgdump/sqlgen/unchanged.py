"""The archive rows a re-import would not change, found before any key is resolved.

An archive row is *unchanged* when the target holds a row with its natural key that an
export of the target would write exactly as the archive does: every field equal (plain
columns by value, or as text where ``=`` is looser than the text; references as the
referenced rows' natural keys, read through the target's own tables), and each
reference NULL in the target exactly when the archive carries none. One hash join of
the raw staging rows with that natural view of the target, inside the import's
transaction after its locks, so a row changed in the target since the last import is
seen as changed. Such rows are set aside with the target's ids: they are neither
keyed, resolved, compared nor written, and references to them resolve to those ids.
docs/performance.md has the proof that the import's outcome is the same.
"""

from __future__ import annotations

from psycopg import sql

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.plan.build import Plan, TablePlan
from edms_pgdump.sqlgen.common import ident, qualified_literal, reset_local, set_local
from edms_pgdump.sqlgen.export import natural_view, own_rel
from edms_pgdump.sqlgen.staging import StagingNames, equal_or_both_null
from edms_pgdump.sqlgen.upsert import exact_type

PREFIX = "#t:"  # the target's columns in the natural view, apart from the fields


def carried_ids(tp: TablePlan) -> list[str]:
    """The target columns a row set aside keeps for others: how it is addressed, and
    the columns references to it resolve to (not those that are key fields already)."""
    keys = {kf.name for kf in tp.key_fields}
    return [c for c in dict.fromkeys([*tp.row_identity, *tp.ref_columns]) if c not in keys]


def same_rows(plan: Plan, tp: TablePlan, names: StagingNames) -> sql.Composed:
    """The target rows some raw row of ``names`` equals: their natural key and ids
    (``carried_ids``), each target row once (a semi-join), however often the archive
    repeats it."""
    ids = carried_ids(tp)
    match = sql.SQL(" AND ").join(
        equal_or_both_null(
            sql.SQL("v.{}").format(ident(kf.name)),
            sql.SQL("s.{}").format(ident(kf.name)),
            kf.nullable,
            kf.equality,
        )
        for kf in tp.key_fields
    )
    differs: list[sql.Composable] = []
    for f in tp.fields:
        if exact_type(f.type):
            differs.append(sql.SQL("s.{f} IS DISTINCT FROM v.{f}").format(f=ident(f.name)))
        else:
            differs.append(sql.SQL("s.{f}::text IS DISTINCT FROM v.{f}::text").format(f=ident(f.name)))
    for exp in tp.expansions:
        absent = sql.SQL(" AND ").join(sql.SQL("s.{} IS NULL").format(ident(kf.name)) for kf in exp.fields)
        differs.append(
            sql.SQL("v.{} IS DISTINCT FROM ({})").format(ident(f"{PREFIX}null:{exp.label}"), absent)
        )
    select = [sql.SQL("v.{c} AS {c}").format(c=ident(kf.name)) for kf in tp.key_fields]
    select += [sql.SQL("v.{} AS {}").format(ident(PREFIX + c), ident(c)) for c in ids]
    return sql.SQL(
        "SELECT {sel} FROM ({view}) AS v "
        "WHERE EXISTS (SELECT 1 FROM {raw} AS s WHERE {match} AND NOT ({differs}))"
    ).format(
        sel=sql.SQL(", ").join(select),
        raw=names.raw,
        view=natural_view(plan, tp, ids, PREFIX),
        match=match,
        differs=sql.SQL(" OR ").join(differs),
    )


# The comparison's planner costs for parallel plans, lower than the server's defaults
# (1000 and 0.1): its statements read the staged rows (UNLOGGED when the role may create
# a schema, so parallel-safe) and the target's tables, and return a narrow row per match.
# With the defaults PostgreSQL 18 planned a parallel hash join for the documents only;
# with these, for the versions and workflows too (250k documents: 0.78-0.85 s -> 0.59-0.72 s
# and 0.52-0.74 s -> 0.34-0.35 s; docs/performance.md).
PARALLEL_COSTS = (("parallel_setup_cost", "100"), ("parallel_tuple_cost", "0.01"))


def parallel_costs(on: bool) -> list[sql.Composed]:
    """``PARALLEL_COSTS`` for the statements that follow, or back to the session's own."""
    if on:
        return [set_local(n, v) for n, v in PARALLEL_COSTS]
    return [reset_local(n) for n, _ in PARALLEL_COSTS]


def target_rows(table: QualifiedName) -> sql.Composed:
    """The target table's row count as the server estimates it: the planner's
    (``pg_class.reltuples``, from the last VACUUM, ANALYZE or CREATE INDEX) or the
    statistics' live rows (``n_live_tup``, counted as transactions commit), whichever is
    larger; 0 when neither has counted. Enough to tell a re-import from a first load, at
    no cost; a wrong guess costs time, never correctness."""
    return sql.SQL(
        "SELECT GREATEST(c.reltuples, pg_catalog.pg_stat_get_live_tuples(c.oid), 0)::bigint "
        "FROM pg_catalog.pg_class AS c WHERE c.oid OPERATOR(pg_catalog.=) {}::pg_catalog.regclass"
    ).format(qualified_literal(table))


def counted_rows(tp: TablePlan) -> sql.Composed:
    """The target table's rows, counted (the rows its natural view reads)."""
    return sql.SQL("SELECT pg_catalog.count(*) FROM {} AS t").format(own_rel(tp))


def scans(method: str, on: bool) -> sql.Composed:
    """``enable_<method>`` off for the statements that follow, or back to the default."""
    if on:
        return reset_local(f"enable_{method}")
    return sql.SQL("SET LOCAL {} = off").format(sql.Identifier(f"enable_{method}"))


def join_method(method: str, on: bool) -> sql.Composed:
    """``enable_nestloop`` or ``enable_mergejoin`` off for the statements that follow,
    or back to the session's default. Set aside, nearly every archive row matches a
    target row, and the planner, misled by the row comparison's selectivity (it
    estimates one row), probes the referenced tables' indexes once per row (measured at
    100k documents: 7.0 s as nested loops, 3.8 s hashed); resolving the few other rows
    against those set aside, it sorted 200k rows for a merge join (1.5 s)."""
    assert method in ("nestloop", "mergejoin")
    return scans(method, on)
