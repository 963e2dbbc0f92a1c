"""What a table holds, summed up so that any write since can be seen: the queries of
``load.certificate``.

A row version's ``xmin`` is the transaction that wrote it. Against a horizon (the
oldest transaction still running when the summary was taken, ``pg_snapshot_xmin``),
each table is summed up as its row count and, for the rows written at or after the
horizon, a count per writing transaction ("recent"). Rows written before the horizon
are only counted. A row written later, by any transaction, has an ``xmin`` at or after
the horizon that no row of the summary had, so the same query run again with the same
horizon no longer matches; a row deleted since lowers the count.

``xmin`` is 32 bits and wraps around: "at or after the horizon" is computed modulo
2**32, which is exact while fewer than 2**31 transactions separate the horizon from
now (``load.certificate`` checks that with 64-bit ids first).
"""

from __future__ import annotations

from psycopg import sql

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.sqlgen.common import qualified_literal, table_ident

WRAP = 1 << 32
HALF = 1 << 31


def _recent(xid: sql.Composable, horizon: sql.Composable) -> sql.Composed:
    """``xid`` is a normal transaction id at or after ``horizon`` (both 32-bit values)."""
    return sql.SQL("({x} >= 3 AND ({x} - {h} + {wrap}) % {wrap} < {half})").format(
        x=xid, h=horizon, wrap=sql.Literal(WRAP), half=sql.Literal(HALF)
    )


def _summary(table: QualifiedName, horizon: sql.Composable, cap: int) -> sql.Composed:
    """One table's summary as jsonb: {"rows": N, "recent": {xid: rows, …}}; "recent" is
    null when more than ``cap`` transactions wrote rows at or after the horizon."""
    xid = sql.SQL("g.x::text::bigint")
    return sql.SQL(
        "(WITH g AS MATERIALIZED (SELECT xmin AS x, pg_catalog.count(*) AS n FROM {table} GROUP BY 1) "
        "SELECT pg_catalog.jsonb_build_object("
        "'rows', (SELECT COALESCE(pg_catalog.sum(g.n), 0)::bigint FROM g), "
        "'recent', (SELECT CASE WHEN pg_catalog.count(*) <= {cap} "
        "THEN COALESCE(pg_catalog.jsonb_object_agg(r.x, r.n), '{{}}'::jsonb) END "
        "FROM (SELECT g.x::text AS x, g.n FROM g WHERE {recent} LIMIT {more}) AS r)))"
    ).format(
        table=table_ident(table),
        recent=_recent(xid, horizon),
        cap=sql.Literal(cap),
        more=sql.Literal(cap + 1),
    )


def summaries(tables: list[QualifiedName], horizon: int | None, cap: int) -> sql.Composed:
    """One row: the horizon (64-bit) and every table's summary (``_summary``), read on one
    snapshot. ``horizon`` None: this statement's own (``pg_snapshot_xmin``), as a
    certificate is taken; a number: a certificate's, as it is checked."""
    h8: sql.Composable
    if horizon is None:
        h8 = sql.SQL("pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text::bigint")
    else:
        h8 = sql.Literal(horizon)
    h32 = sql.SQL("(h.h8 % {})").format(sql.Literal(WRAP))
    fields = sql.SQL(", ").join(
        sql.SQL("{}, {}").format(sql.Literal(str(t)), _summary(t, h32, cap)) for t in tables
    )
    return sql.SQL(
        "SELECT h.h8, pg_catalog.jsonb_build_object({fields}), "
        "pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text::bigint, pg_catalog.now() "
        "FROM (SELECT {h8} AS h8) AS h"
    ).format(fields=fields, h8=h8)


def type_signature(tables: list[QualifiedName]) -> sql.Composed:
    """What the catalog object does not say about the tables: their oids (a table swapped
    in by renames is another table), and every type their columns use, followed through
    arrays, domains, ranges and composite attributes: its kind, base, modifier, enum
    labels in order, attributes and domain constraints. One row per table, then per type."""
    regclasses = sql.SQL(", ").join(
        sql.SQL("{}::regclass").format(qualified_literal(t)) for t in tables
    )
    return sql.SQL(
        "WITH RECURSIVE rel(oid) AS (SELECT r FROM pg_catalog.unnest(ARRAY[{rels}]::oid[]) AS r), "
        "ty(oid) AS ("
        "SELECT a.atttypid FROM pg_catalog.pg_attribute AS a JOIN rel ON a.attrelid = rel.oid "
        "WHERE a.attnum > 0 AND NOT a.attisdropped "
        "UNION "
        "SELECT x.oid FROM ty JOIN pg_catalog.pg_type AS t ON t.oid = ty.oid CROSS JOIN LATERAL ("
        "SELECT t.typelem WHERE t.typelem <> 0 "
        "UNION ALL SELECT t.typbasetype WHERE t.typbasetype <> 0 "
        "UNION ALL SELECT a.atttypid FROM pg_catalog.pg_attribute AS a "
        "WHERE t.typrelid <> 0 AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped "
        "UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range AS r WHERE r.rngtypid = t.oid"
        ") AS x(oid)) "
        "SELECT 'table', rel.oid::regclass::text, rel.oid::text, NULL, NULL FROM rel "
        "UNION ALL "
        "SELECT 'type', pg_catalog.format_type(t.oid, NULL), t.oid::text, "
        "pg_catalog.concat_ws(' ', t.typtype, t.typbasetype, t.typtypmod, t.typnotnull, t.typcollation, "
        "t.typdefault), pg_catalog.concat_ws(' | ', "
        "(SELECT pg_catalog.string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) "
        "FROM pg_catalog.pg_enum AS e WHERE e.enumtypid = t.oid), "
        "(SELECT pg_catalog.string_agg(pg_catalog.concat_ws(' ', a.attname, a.atttypid, a.atttypmod), ',' "
        "ORDER BY a.attnum) "
        "FROM pg_catalog.pg_attribute AS a WHERE t.typrelid <> 0 AND a.attrelid = t.typrelid "
        "AND a.attnum > 0 AND NOT a.attisdropped), "
        "(SELECT pg_catalog.string_agg(pg_catalog.pg_get_constraintdef(c.oid), ',' ORDER BY c.conname) "
        "FROM pg_catalog.pg_constraint AS c WHERE c.contypid = t.oid)) "
        "FROM ty JOIN pg_catalog.pg_type AS t ON t.oid = ty.oid "
        "ORDER BY 1, 3"
    ).format(rels=regclasses)


__all__ = ["summaries", "type_signature"]
