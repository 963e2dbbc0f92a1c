"""Writes: inserting new rows, updating changed ones, constraints, sequences, views."""

from __future__ import annotations

import re

from psycopg import sql

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.plan.build import Expansion, Plan, TablePlan
from edms_pgdump.sqlgen.common import ident, qualified_literal, table_ident
from edms_pgdump.sqlgen.export import key_relation, own_rel
from edms_pgdump.sqlgen.staging import StagingNames, _match, active_expansions, equal_or_both_null


def insert_columns(tp: TablePlan, loaded_fields: set[str]) -> list[str]:
    cols = [c for c in tp.plain_columns if c in loaded_fields]
    cols += [c.name for c in tp.surrogate]
    for e in active_expansions(tp, loaded_fields):
        cols += [c for c in e.fk.columns if c not in cols]
    cols += [g.id_column for g in tp.generic if g.field in loaded_fields and g.id_column not in cols]
    return cols


def insert_new(tp: TablePlan, names: StagingNames, loaded_fields: set[str]) -> sql.Composed:
    cols = insert_columns(tp, loaded_fields)
    nulled = {
        c for e in active_expansions(tp, loaded_fields) if e.edge == "second_pass" for c in e.written
    }
    values = [sql.SQL("NULL") if c in nulled else ident(c) for c in cols]
    overriding = sql.SQL(" OVERRIDING SYSTEM VALUE") if tp.identity_always else sql.SQL("")
    return sql.SQL("INSERT INTO {} ({}){} SELECT {} FROM {} WHERE {}").format(
        table_ident(tp.table),
        sql.SQL(", ").join(ident(c) for c in cols),
        overriding,
        sql.SQL(", ").join(values),
        names.final,
        ident(tp.new_marker),
    )


def _identity_match(tp: TablePlan, t: str, f: str) -> sql.Composable:
    # a primary key is never NULL; a natural key standing in for it may be
    return sql.SQL(" AND ").join(
        equal_or_both_null(
            sql.SQL("{}.{}").format(ident(t), ident(c)),
            sql.SQL("{}.{}").format(ident(f), ident(c)),
            not tp.identity_is_pk,
            tp.eq(c),
        )
        for c in tp.row_identity
    )


def second_pass(tp: TablePlan, names: StagingNames, exp: Expansion) -> sql.Composed:
    sets = sql.SQL(", ").join(sql.SQL("{c} = f.{c}").format(c=ident(c)) for c in exp.written)
    return sql.SQL(
        "UPDATE {t} AS t SET {sets} FROM {final} AS f WHERE f.{new} AND {match} AND f.{first} IS NOT NULL"
    ).format(
        t=own_rel(tp),
        sets=sets,
        final=names.final,
        new=ident(tp.new_marker),
        match=_identity_match(tp, "t", "f"),
        first=ident(exp.written[0]),
    )


# Types whose '=' means "same text output" and has an operator of exactly that type in
# pg_catalog (IS DISTINCT FROM cannot name its operator; pg_catalog comes first on the
# import's search_path, so an exact match there is the one chosen). Everything else is
# compared as text, so that 1.0 vs 1.00, '1 day' vs '24:00:00' or citext case changes
# are not skipped, and a varchar or array '=' elsewhere on the path is never used.
_EXACT_TYPES = re.compile(
    r"^(smallint|integer|bigint|text|character(\(\d+\))?|"
    r"boolean|date|timestamp(\(\d\))? with(out)? time zone|uuid|bytea|\"char\"|name|oid)$"
)


def exact_type(type_name: str) -> bool:
    """Whether ``IS DISTINCT FROM`` on this type means "different text output" (else
    values are compared as text)."""
    return bool(_EXACT_TYPES.match(type_name))


def _differs(tp: TablePlan, cols: list[str], t: str, f: str) -> sql.Composable:
    # every column's type, references' id columns included (a varchar reference must not
    # meet an '=' elsewhere on the path either); a domain by its base type
    types = {**dict(tp.column_types), **{fl.column: fl.type for fl in tp.fields if fl.column}}
    parts = []
    for c in cols:
        if c in tp.byte_compared:
            # a nondeterministic collation calls 'A' and 'a' equal: compare the bytes, so
            # a case-only change is an update
            parts.append(
                sql.SQL(
                    '{}.{}::text COLLATE pg_catalog."C" IS DISTINCT FROM {}.{}::text COLLATE pg_catalog."C"'
                ).format(ident(t), ident(c), ident(f), ident(c))
            )
        elif c in types and not _EXACT_TYPES.match(types[c]):
            parts.append(
                sql.SQL("{}.{}::text IS DISTINCT FROM {}.{}::text").format(
                    ident(t), ident(c), ident(f), ident(c)
                )
            )
        else:
            parts.append(
                sql.SQL("{}.{} IS DISTINCT FROM {}.{}").format(ident(t), ident(c), ident(f), ident(c))
            )
    if not parts:
        return sql.SQL("false")
    return sql.SQL("({})").format(sql.SQL(" OR ").join(parts))


def updatable_columns(tp: TablePlan, loaded_fields: set[str]) -> list[str]:
    """Columns an UPDATE writes: not the row identity it matches on, except an identity
    column whose equality is not byte equality (a nondeterministic collation, citext):
    its case-only change is compared on the bytes and written."""
    loose = set(tp.byte_compared) | {c for c, _ in tp.equality}
    skip = (set(tp.row_identity) - loose) | {c.name for c in tp.surrogate} | set(tp.not_updatable)
    return [c for c in insert_columns(tp, loaded_fields) if c not in skip]


def _total(total: bool) -> sql.SQL:
    """A sample query's first column: the total of its rows, or NULL for a caller that
    knows it already (diff), so that the LIMIT can stop the scan at the last sample."""
    return sql.SQL("pg_catalog.count(*) OVER ()" if total else "NULL")


def changed_rows(
    tp: TablePlan, names: StagingNames, loaded_fields: set[str], samples: int = 5, total: bool = True
) -> sql.Composed:
    cols = updatable_columns(tp, loaded_fields)
    return sql.SQL(
        "SELECT {total}, {keys} FROM {final} AS f JOIN {t} AS t ON {match} "
        "WHERE NOT f.{new} AND {differs} LIMIT {n}"
    ).format(
        total=_total(total),
        n=sql.Literal(samples),
        keys=sql.SQL(", ").join(sql.SQL("f.{}").format(ident(k.name)) for k in tp.key_fields),
        final=names.final,
        t=own_rel(tp),
        match=_identity_match(tp, "t", "f"),
        new=ident(tp.new_marker),
        differs=_differs(tp, cols, "t", "f"),
    )


def count_changed(tp: TablePlan, names: StagingNames, loaded_fields: set[str]) -> sql.Composed:
    """How many archive rows exist in the target with other values (verify)."""
    cols = updatable_columns(tp, loaded_fields)
    return sql.SQL(
        "SELECT pg_catalog.count(*) FROM {final} AS f JOIN {t} AS t ON {match} "
        "WHERE NOT f.{new} AND {differs}"
    ).format(
        final=names.final,
        t=own_rel(tp),
        match=_identity_match(tp, "t", "f"),
        new=ident(tp.new_marker),
        differs=_differs(tp, cols, "t", "f"),
    )


def update_existing(tp: TablePlan, names: StagingNames, loaded_fields: set[str]) -> sql.Composed | None:
    cols = updatable_columns(tp, loaded_fields)
    if not cols:
        return None
    sets = sql.SQL(", ").join(sql.SQL("{c} = f.{c}").format(c=ident(c)) for c in cols)
    return sql.SQL(
        "UPDATE {t} AS t SET {sets} FROM {final} AS f WHERE NOT f.{new} AND {match} AND {differs}"
    ).format(
        t=own_rel(tp),
        sets=sets,
        final=names.final,
        new=ident(tp.new_marker),
        match=_identity_match(tp, "t", "f"),
        differs=_differs(tp, cols, "t", "f"),
    )


def lock_tables(tables: list[QualifiedName]) -> sql.Composed:
    return sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(
        sql.SQL(", ").join(table_ident(t) for t in sorted(tables))
    )


def column_maxima(relation: sql.Composable, columns: list[str]) -> sql.Composed:
    return sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(sql.SQL("pg_catalog.max({})").format(ident(c)) for c in columns), relation
    )


def advance_sequence(table: QualifiedName, column: str, sequence: QualifiedName, start: int) -> sql.Composed:
    """``setval`` to the column's largest value when that is ahead of the sequence (or
    of its start, if it never handed out a value); never backwards."""
    return sql.SQL(
        "SELECT pg_catalog.setval({seq}, m) FROM (SELECT pg_catalog.max({col}) AS m, "
        "pg_catalog.pg_sequence_last_value({seq}) AS last FROM {table}) AS x "
        "WHERE m > coalesce(last, {before_start})"
    ).format(
        seq=qualified_literal(sequence),
        col=ident(column),
        table=table_ident(table),
        before_start=sql.Literal(start - 1),
    )


def refresh_view(view: QualifiedName) -> sql.Composed:
    return sql.SQL("REFRESH MATERIALIZED VIEW {}").format(table_ident(view))


def set_all_constraints(mode: str) -> sql.Composed:
    """Deferrable constraints of a cycle are deferred while its tables load and checked
    at the end of it. ``ALL`` rather than names: a constraint the import recreated is
    gone by then."""
    assert mode in ("DEFERRED", "IMMEDIATE")
    return sql.SQL("SET CONSTRAINTS ALL {}").format(sql.SQL(mode))


def lock_tables_exclusive(tables: list[QualifiedName]) -> sql.Composed:
    """constraints=recreate drops foreign keys, which needs ACCESS EXCLUSIVE: take it
    up front, in a stable order, instead of upgrading a weaker lock later."""
    return sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
        sql.SQL(", ").join(table_ident(t) for t in sorted(tables))
    )


def drop_constraint(table: QualifiedName, name: str) -> sql.Composed:
    return sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(table_ident(table), ident(name))


def add_constraint(table: QualifiedName, name: str, definition: str) -> sql.Composed:
    # ``definition`` is pg_get_constraintdef() output read from the same server.
    return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
        table_ident(table), ident(name), sql.SQL(definition)
    )


def add_constraint_using_index(table: QualifiedName, name: str, primary: bool) -> sql.Composed:
    """A primary key or unique constraint over the unique index of the same name, as it
    was built (with its storage options, which pg_get_constraintdef() leaves out)."""
    kind = sql.SQL("PRIMARY KEY" if primary else "UNIQUE")
    return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {} USING INDEX {}").format(
        table_ident(table), ident(name), kind, ident(name)
    )


def comment_constraint(table: QualifiedName, name: str, comment: str) -> sql.Composed:
    return sql.SQL("COMMENT ON CONSTRAINT {} ON {} IS {}").format(
        ident(name), table_ident(table), sql.Literal(comment)
    )


def drop_index(schema: str, name: str) -> sql.Composed:
    return sql.SQL("DROP INDEX {}").format(ident(schema, name))


def create_from_definition(definition: str) -> sql.Composed:
    # pg_get_indexdef() output read from the same server
    return sql.SQL("{}").format(sql.SQL(definition))


def comment_index(schema: str, name: str, comment: str) -> sql.Composed:
    return sql.SQL("COMMENT ON INDEX {} IS {}").format(ident(schema, name), sql.Literal(comment))


def _absent_from_archive(
    plan: Plan, tp: TablePlan, names: StagingNames, scope: sql.Composable | None = None
) -> sql.Composed:
    """Target rows of ``tp`` whose natural key is not among the archive's rows; with
    ``scope`` (a condition on ``o``, the rows a subset archive speaks for), only those."""
    within = sql.SQL(" AND {}").format(scope) if scope is not None else sql.SQL("")
    return sql.SQL(
        "SELECT o.* FROM ({rel}) AS o WHERE NOT EXISTS (SELECT 1 FROM {final} AS f WHERE {m}){within}"
    ).format(
        rel=key_relation(plan, tp), final=names.final, m=_match("o", "f", list(tp.key_fields)), within=within
    )


def count_absent(
    plan: Plan, tp: TablePlan, names: StagingNames, scope: sql.Composable | None = None
) -> sql.Composed:
    return sql.SQL("SELECT pg_catalog.count(*) FROM ({}) AS gone").format(
        _absent_from_archive(plan, tp, names, scope)
    )


def absent_rows(
    plan: Plan,
    tp: TablePlan,
    names: StagingNames,
    samples: int = 5,
    scope: sql.Composable | None = None,
    total: bool = True,
) -> sql.Composed:
    """Samples (with the total first) of target rows the archive does not hold."""
    return sql.SQL("SELECT {}, {} FROM ({}) AS gone LIMIT {}").format(
        _total(total),
        sql.SQL(", ").join(ident(kf.name) for kf in tp.key_fields),
        _absent_from_archive(plan, tp, names, scope),
        sql.Literal(samples),
    )


def delete_absent(
    plan: Plan, tp: TablePlan, names: StagingNames, scope: sql.Composable | None = None
) -> sql.Composed:
    """--delete-missing: remove the target rows the archive does not hold (within
    ``scope`` for a subset archive)."""
    # the rows come from the target itself: its primary key addresses them, even
    # where updates go by natural key (a primary key outside it may have changed)
    by_pk = bool(tp.primary_key)
    match = sql.SQL(" AND ").join(
        equal_or_both_null(
            sql.SQL("t.{}").format(ident(c)), sql.SQL("gone.{}").format(ident(c)), not by_pk, tp.eq(c)
        )
        for c in (tp.primary_key or tp.row_identity)
    )
    return sql.SQL("DELETE FROM {} AS t USING ({}) AS gone WHERE {}").format(
        own_rel(tp), _absent_from_archive(plan, tp, names, scope), match
    )


def new_rows(tp: TablePlan, names: StagingNames, samples: int = 5, total: bool = True) -> sql.Composed:
    """Samples (total first) of archive rows the target does not hold."""
    return sql.SQL("SELECT {}, {} FROM {} WHERE {} LIMIT {}").format(
        _total(total),
        sql.SQL(", ").join(ident(kf.name) for kf in tp.key_fields),
        names.final,
        ident(tp.new_marker),
        sql.Literal(samples),
    )
