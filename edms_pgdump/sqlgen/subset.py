"""SQL of a subset export's closure: one temp table of kept primary keys per table that
does not come whole, filled set-based (one statement per edge and round).

Every statement inserts ``ON CONFLICT DO NOTHING``, so its row count is exactly how much
a kept set grew; the driver (``edms_pgdump.subset``) repeats the edges until nothing
grows. A self-reference is followed in one statement with ``WITH RECURSIVE … UNION``
(UNION, not UNION ALL: a loop in the data ends instead of spinning). The ``#scope`` flag
tells rows the subset selected (a where, or owned by a selected row) from rows pulled in
only because a kept row needs them.

The same statements find a subset's scope on an import's target (``--delete-missing``),
where every row they add is in scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.plan.build import GenericPlan, TablePlan
from edms_pgdump.sqlgen.common import equals, ident, relation, table_ident
from edms_pgdump.sqlgen.generic import names_table, type_key_columns

SCOPE = "#scope"


@dataclass(frozen=True)
class KeptTable:
    """The temp table holding the primary keys of ``table``'s kept rows."""

    table: QualifiedName
    name: str  # in pg_temp
    pk: tuple[str, ...]
    pk_types: tuple[str, ...]
    only: bool = False  # tables INHERIT from it: its own rows are read with ONLY

    @property
    def relation(self) -> sql.Composable:
        return sql.Identifier("pg_temp", self.name)

    @property
    def source(self) -> sql.Composable:
        """The table itself, as the closure reads it."""
        return relation(self.table, self.only)


def _cols(alias: str, cols: Sequence[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL("{}.{}").format(ident(alias), ident(c)) for c in cols)


def _match(a: str, a_cols: Sequence[str], b: str, b_cols: Sequence[str]) -> sql.Composable:
    return sql.SQL(" AND ").join(
        sql.SQL("{}.{} {} {}.{}").format(ident(a), ident(x), equals(), ident(b), ident(y))
        for x, y in zip(a_cols, b_cols)
    )


def create_kept(kept: KeptTable) -> sql.Composed:
    return sql.SQL("CREATE TEMP TABLE {} ({}, {} boolean NOT NULL, PRIMARY KEY ({})) ON COMMIT DROP").format(
        kept.relation,
        sql.SQL(", ").join(
            sql.SQL("{} {}").format(ident(c), sql.SQL(t))  # format_type() text
            for c, t in zip(kept.pk, kept.pk_types)
        ),
        ident(SCOPE),
        sql.SQL(", ").join(ident(c) for c in kept.pk),
    )


def _insert(
    kept: KeptTable, select: sql.Composable, scope: bool, with_: sql.Composable | None = None
) -> sql.Composed:
    text = "{}INSERT INTO {} ({}, {}) SELECT {}, {} FROM ({}) AS found ON CONFLICT DO NOTHING"
    return sql.SQL(text).format(
        with_ if with_ is not None else sql.SQL(""),
        kept.relation,
        sql.SQL(", ").join(ident(c) for c in kept.pk),
        ident(SCOPE),
        _cols("found", kept.pk),
        sql.Literal(scope),
        select,
    )


def insert_where(kept: KeptTable, condition: str) -> sql.Composed:
    """The rows matching a filter: in scope. No alias on the table, so the filter may
    name its columns bare or as ``documents.status``."""
    rel = table_ident(kept.table)
    select = sql.SQL("SELECT {} FROM {} WHERE ({})").format(
        sql.SQL(", ").join(sql.SQL("{}.{}").format(rel, ident(c)) for c in kept.pk),
        kept.source,
        sql.SQL(condition),  # checked and rendered by where.parse_where
    )
    return _insert(kept, select, True)


def insert_owned(
    child: KeptTable, fk_columns: Sequence[str], owner: KeptTable, ref_columns: Sequence[str]
) -> sql.Composed:
    """Rows of ``child`` whose natural key names an owner row in scope: in scope."""
    if child.table == owner.table:
        return _descendants(child, fk_columns, ref_columns)
    select = sql.SQL("SELECT {} FROM {} AS c JOIN {} AS o ON {} JOIN {} AS k ON {} AND k.{}").format(
        _cols("c", child.pk),
        child.source,
        owner.source,
        _match("o", ref_columns, "c", fk_columns),
        owner.relation,
        _match("k", owner.pk, "o", owner.pk),
        ident(SCOPE),
    )
    return _insert(child, select, True)


def _descendants(kept: KeptTable, fk_columns: Sequence[str], ref_columns: Sequence[str]) -> sql.Composed:
    """A tree keyed by its parent: every descendant of a row in scope is in scope."""
    rel = kept.source
    down = ident("#down")
    body = sql.SQL(
        "WITH RECURSIVE {down} ({pk}) AS ("
        "SELECT {cpk} FROM {k} AS k JOIN {rel} AS o ON {ko} AND k.{scope} JOIN {rel} AS c ON {oc} "
        "UNION SELECT {cpk} FROM {down} AS d JOIN {rel} AS o ON {do} JOIN {rel} AS c ON {oc}) "
    ).format(
        down=down,
        pk=sql.SQL(", ").join(ident(c) for c in kept.pk),
        cpk=_cols("c", kept.pk),
        k=kept.relation,
        rel=rel,
        ko=_match("k", kept.pk, "o", kept.pk),
        scope=ident(SCOPE),
        oc=_match("o", ref_columns, "c", fk_columns),
        do=_match("d", kept.pk, "o", kept.pk),
    )
    return _insert(kept, sql.SQL("SELECT * FROM {}").format(down), True, body)


def insert_needed(
    source: TablePlan,
    source_kept: KeptTable | None,
    fk_columns: Sequence[str],
    target: KeptTable,
    ref_columns: Sequence[str],
) -> sql.Composed:
    """Rows of ``target`` a kept row of ``source`` references (every row of a source
    that comes whole, ``source_kept`` None). A self-reference is followed to its root."""
    if source_kept is not None and source_kept.table == target.table:
        return _ancestors(target, fk_columns, ref_columns)
    select = sql.SQL("SELECT {} FROM {} AS s{} JOIN {} AS r ON {}").format(
        _cols("r", target.pk),
        relation(source.table, source.only),
        _kept_join(source_kept),
        target.source,
        _match("r", ref_columns, "s", fk_columns),
    )
    return _insert(target, select, False)


def _kept_join(kept: KeptTable | None) -> sql.Composable:
    if kept is None:
        return sql.SQL("")
    return sql.SQL(" JOIN {} AS ks ON {}").format(kept.relation, _match("ks", kept.pk, "s", kept.pk))


def _ancestors(kept: KeptTable, fk_columns: Sequence[str], ref_columns: Sequence[str]) -> sql.Composed:
    rel = kept.source
    up = ident("#up")
    body = sql.SQL(
        "WITH RECURSIVE {up} ({pk}) AS ("
        "SELECT {rpk} FROM {k} AS k JOIN {rel} AS s ON {ks} JOIN {rel} AS r ON {sr} "
        "UNION SELECT {rpk} FROM {up} AS u JOIN {rel} AS s ON {us} JOIN {rel} AS r ON {sr}) "
    ).format(
        up=up,
        pk=sql.SQL(", ").join(ident(c) for c in kept.pk),
        rpk=_cols("r", kept.pk),
        k=kept.relation,
        rel=rel,
        ks=_match("k", kept.pk, "s", kept.pk),
        sr=_match("r", ref_columns, "s", fk_columns),
        us=_match("u", kept.pk, "s", kept.pk),
    )
    return _insert(kept, sql.SQL("SELECT * FROM {}").format(up), False, body)


def insert_generic_needed(
    source: TablePlan,
    source_kept: KeptTable | None,
    gp: GenericPlan,
    type_ref_column: str,
    target: KeptTable,
    id_column: str,
) -> sql.Composed:
    """Rows of ``target`` that kept rows of ``source`` name through a generic reference:
    the type row names ``target`` and the id matches as text (as the export matches it,
    so ids of other types are never cast)."""
    select = sql.SQL(
        "SELECT {} FROM {} AS s{} JOIN {} AS ty ON ty.{} {} s.{} JOIN {} AS r ON r.{}::text {} s.{}::text "
        "WHERE {}"
    ).format(
        _cols("r", target.pk),
        relation(source.table, source.only),
        _kept_join(source_kept),
        table_ident(gp.type_table),
        ident(type_ref_column),
        equals(),
        ident(gp.type_column),
        target.source,
        ident(id_column),
        equals(),
        ident(gp.id_column),
        names_table(gp, type_key_columns(gp, "ty"), target.table),
    )
    return _insert(target, select, False)


def row_writes() -> sql.Composed:
    """Rows this transaction has inserted, updated or deleted so far outside temporary
    tables (the server's per-transaction counters): taken before and after an archive's
    filter runs in the import's writing transaction, so a filter that writes is caught."""
    return sql.SQL(
        "SELECT coalesce(pg_catalog.sum(n_tup_ins + n_tup_upd + n_tup_del), 0) "
        "FROM pg_catalog.pg_stat_xact_all_tables "
        "WHERE NOT (pg_catalog.starts_with(schemaname, 'pg_temp') "
        "OR pg_catalog.starts_with(schemaname, 'pg_toast_temp'))"
    ).format()


def in_scope(kept: KeptTable, alias: str) -> sql.Composed:
    """A target row (``alias`` carries its primary key) is in the subset's scope."""
    return keep_condition(kept, alias)


def kept_counts(kept: KeptTable) -> sql.Composed:
    """(kept rows, rows in scope)."""
    return sql.SQL("SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE {}) FROM {}").format(
        ident(SCOPE), kept.relation
    )


def analyze_kept(kept: KeptTable) -> sql.Composed:
    """Temp tables are never auto-analyzed; the export's semi-joins need real counts."""
    return sql.SQL("ANALYZE {}").format(kept.relation)


def keep_condition(kept: KeptTable, alias: str = "t") -> sql.Composed:
    """The export query's condition: the row's primary key is kept."""
    row: sql.Composable = _cols(alias, kept.pk)
    if len(kept.pk) > 1:
        row = sql.SQL("({})").format(row)
    return sql.SQL("{} IN (SELECT {} FROM {})").format(
        row, sql.SQL(", ").join(ident(c) for c in kept.pk), kept.relation
    )


def read_only_from_now() -> sql.Composed:
    """After the temp tables exist: user filters then run where nothing can be written
    (a temp table still can: PostgreSQL allows it in a READ ONLY transaction)."""
    return sql.SQL("SET TRANSACTION READ ONLY").format()


__all__ = [
    "KeptTable",
    "analyze_kept",
    "create_kept",
    "in_scope",
    "insert_generic_needed",
    "insert_needed",
    "insert_owned",
    "insert_where",
    "keep_condition",
    "kept_counts",
    "read_only_from_now",
    "row_writes",
]
