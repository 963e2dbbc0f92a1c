"""What the import proves before COMMIT: the statements that observe the transaction.

``pg_stat_xact_user_tables`` holds, per table, the tuples this backend inserted, updated
and deleted in the current transaction (also in subtransactions, committed or rolled
back: "attempted actions"). The counters of a backend's earlier transactions can linger
in the same entries until they are flushed, so the program snapshots them at its start
(``edms_xact_before``) and reads differences. A partitioned table has no counters of its
own: its partitions do. Temporary relations (the staging tables, the runbook's counts) and
materialized views are never counted as the transaction's writes; nor is the private
schema of a parallel import's UNLOGGED staging tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from psycopg import sql

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import ForeignKey
from edms_pgdump.plan.build import Expansion, Plan, TablePlan
from edms_pgdump.sqlgen.common import ident, qualified_literal, table_ident
from edms_pgdump.sqlgen.staging import StagingNames
from edms_pgdump.sqlgen.staging_area import STAGING_PREFIX
from edms_pgdump.sqlgen.upsert import _absent_from_archive, _differs, _identity_match, updatable_columns

BEFORE = sql.Identifier("edms_xact_before")
_STATS = sql.SQL("pg_catalog.pg_stat_xact_user_tables")


def xact_baseline() -> sql.Composed:
    """The counters as the program starts (what earlier transactions left in them)."""
    return sql.SQL(
        "CREATE TEMP TABLE {} ON COMMIT DROP AS "
        "SELECT s.relid, s.n_tup_ins AS ins, s.n_tup_upd AS upd, s.n_tup_del AS del FROM {} AS s"
    ).format(BEFORE, _STATS)


def _oids(tables: Iterable[QualifiedName]) -> sql.Composable:
    items = [sql.SQL("{}::pg_catalog.regclass::oid").format(qualified_literal(t)) for t in tables]
    if not items:
        return sql.SQL("ARRAY[]::oid[]")
    return sql.SQL("ARRAY[{}]").format(sql.SQL(", ").join(items))


def _delta(column: str, base: str) -> sql.Composable:
    return sql.SQL("s.{} - coalesce(b.{}, 0)").format(ident(column), ident(base))


def observed_writes(relations: Iterable[QualifiedName]) -> sql.Composed:
    """One row: tuples inserted, updated and deleted in ``relations`` (a table and its
    partitions) by this transaction since the program began."""
    return sql.SQL(
        "SELECT coalesce(sum({ins}), 0), coalesce(sum({upd}), 0), coalesce(sum({dl}), 0) "
        "FROM {stats} AS s LEFT JOIN {before} AS b ON b.relid = s.relid WHERE s.relid = ANY({oids})"
    ).format(
        ins=_delta("n_tup_ins", "ins"),
        upd=_delta("n_tup_upd", "upd"),
        dl=_delta("n_tup_del", "del"),
        stats=_STATS,
        before=BEFORE,
        oids=_oids(relations),
    )


def unplanned_writes(
    written: Iterable[QualifiedName],
    allowed: Iterable[QualifiedName],
    causes: Mapping[QualifiedName, str],
    default_cause: str,
    refused: bool,
    samples: int = 5,
) -> sql.Composed:
    """Tables the program did not write that this transaction changed: with ``refused``
    those that lost or changed rows and are not ``allowed``, otherwise the rest (inserts
    only, or allowed by name): total first, then table, inserted, updated, deleted, cause."""
    cause_rows: list[sql.Composable] = [
        sql.SQL("({}::pg_catalog.regclass::oid, {})").format(qualified_literal(t), sql.Literal(text))
        for t, text in causes.items()
    ] or [sql.SQL("(0::oid, NULL::text)")]
    changed = sql.SQL("(d.updated > 0 OR d.deleted > 0) AND NOT d.allowed")
    wanted = (
        changed
        if refused
        else sql.SQL("NOT ({}) AND (d.inserted > 0 OR d.updated > 0 OR d.deleted > 0)").format(changed)
    )
    return sql.SQL(
        "SELECT count(*) OVER (), d.tbl, d.inserted, d.updated, d.deleted, d.cause FROM ("
        "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(r.relname) AS tbl, "
        "{ins} AS inserted, {upd} AS updated, {dl} AS deleted, "
        "coalesce(c.cause, {default}) AS cause, s.relid = ANY({allowed}) AS allowed "
        "FROM {stats} AS s JOIN pg_catalog.pg_class AS r ON r.oid = s.relid "
        "JOIN pg_catalog.pg_namespace AS n ON n.oid = r.relnamespace "
        "LEFT JOIN {before} AS b ON b.relid = s.relid "
        "LEFT JOIN (VALUES {causes}) AS c(relid, cause) ON c.relid = s.relid "
        "WHERE r.relpersistence <> 't' AND r.relkind <> 'm' AND NOT s.relid = ANY({written}) "
        "AND NOT starts_with(n.nspname, {prefix})"
        ") AS d WHERE {wanted} ORDER BY d.tbl LIMIT {n}"
    ).format(
        ins=_delta("n_tup_ins", "ins"),
        upd=_delta("n_tup_upd", "upd"),
        dl=_delta("n_tup_del", "del"),
        default=sql.Literal(default_cause),
        allowed=_oids(allowed),
        stats=_STATS,
        before=BEFORE,
        causes=sql.SQL(", ").join(cause_rows),
        written=_oids(written),
        prefix=sql.Literal(STAGING_PREFIX),
        wanted=wanted,
        n=sql.Literal(samples),
    )


def second_pass_rows(tp: TablePlan, names: StagingNames, expansions: list[Expansion]) -> sql.Composed:
    """The row updates the second pass plans: one per inserted row and cycle edge set."""
    parts = [
        sql.SQL("count(*) FILTER (WHERE {} IS NOT NULL)").format(ident(e.fk.columns[0])) for e in expansions
    ]
    return sql.SQL("SELECT {} FROM {} WHERE {}").format(
        sql.SQL(" + ").join(parts) if parts else sql.SQL("0"), names.final, ident(tp.new_marker)
    )


def written_differs(
    tp: TablePlan, names: StagingNames, loaded_fields: set[str], new_only: bool, samples: int = 5
) -> sql.Composed:
    """Staged rows that the target does not hold as staged after the writes: missing
    (no row has the id the program wrote) or with other values; total first, then the
    natural key and what is wrong."""
    cols = updatable_columns(tp, loaded_fields)
    only_new = sql.SQL(" AND f.{}").format(ident(tp.new_marker)) if new_only else sql.SQL("")
    return sql.SQL(
        "SELECT count(*) OVER (), {keys}, CASE WHEN t.edms_hit IS NULL THEN 'missing' ELSE 'differs' END "
        "FROM {final} AS f LEFT JOIN (SELECT x.*, true AS edms_hit FROM {t} AS x) AS t ON {match} "
        "WHERE (t.edms_hit IS NULL OR {differs}){only_new} LIMIT {n}"
    ).format(
        keys=sql.SQL(", ").join(sql.SQL("f.{}").format(ident(k.name)) for k in tp.key_fields),
        final=names.final,
        t=table_ident(tp.table),
        match=_identity_match(tp, "t", "f"),
        differs=_differs(tp, cols, "t", "f"),
        only_new=only_new,
        n=sql.Literal(samples),
    )


def written_summary(
    tp: TablePlan, names: StagingNames, loaded_fields: set[str], new_only: bool
) -> sql.Composed:
    """One pass over the staged rows after the writes: how many the target holds under
    the id the program wrote, and how many it does not hold as staged (missing or with
    other values; only the inserted ones with ``new_only``)."""
    cols = updatable_columns(tp, loaded_fields)
    only_new = sql.SQL(" AND f.{}").format(ident(tp.new_marker)) if new_only else sql.SQL("")
    return sql.SQL(
        "SELECT count(t.edms_hit), count(*) FILTER (WHERE (t.edms_hit IS NULL OR {differs}){only_new}) "
        "FROM {final} AS f LEFT JOIN (SELECT x.*, true AS edms_hit FROM {t} AS x) AS t ON {match}"
    ).format(
        differs=_differs(tp, cols, "t", "f"),
        only_new=only_new,
        final=names.final,
        t=table_ident(tp.table),
        match=_identity_match(tp, "t", "f"),
    )


def cascaded_rows(
    plan: Plan,
    tp: TablePlan,
    names: StagingNames,
    referencing: QualifiedName,
    fk: ForeignKey,
    samples: int = 5,
) -> sql.Composed:
    """Rows of ``referencing`` whose ``fk`` points at a target row of ``tp`` that
    --delete-missing would delete (total first, then the FK's columns)."""
    return sql.SQL(
        "SELECT count(*) OVER (), {cols} FROM {u} AS u WHERE ({cols}) IN ("
        "SELECT {refs} FROM {t} AS t JOIN ({gone}) AS gone ON {match}) LIMIT {n}"
    ).format(
        cols=sql.SQL(", ").join(sql.SQL("u.{}").format(ident(c)) for c in fk.columns),
        u=table_ident(referencing),
        refs=sql.SQL(", ").join(sql.SQL("t.{}").format(ident(c)) for c in fk.ref_columns),
        t=table_ident(tp.table),
        gone=_absent_from_archive(plan, tp, names),
        match=_identity_match(tp, "t", "gone"),
        n=sql.Literal(samples),
    )
