"""The SQL ``import-fixture`` runs beside the import program: checking, after the load
and before COMMIT, the generic ids it kept as they are (``fixture.KeptIds``).

Both queries take the kept ids as one text array (in the fixture's order) and compare
them with ``id::text``, as the generic-reference SQL does, so an integer id and a text
``object_id`` column meet on the same values. They are one hash (anti) join per named
table, never a query per id.
"""

from __future__ import annotations

from psycopg import sql

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.plan.model import Plan
from edms_pgdump.sqlgen.common import ident, table_ident
from edms_pgdump.sqlgen.export import ID, KEY, key_relation, target_keys

_IDS = sql.SQL("pg_catalog.unnest(%(ids)s::text[]) WITH ORDINALITY AS u(id, n)")


def kept_ids_missing(target: QualifiedName, id_column: str) -> sql.Composed:
    """(total, id) of the first ``%(samples)s`` kept ids no row of ``target`` has."""
    return sql.SQL(
        "SELECT pg_catalog.count(*) OVER (), u.id FROM {ids} "
        "WHERE NOT EXISTS (SELECT 1 FROM {table} AS t WHERE t.{col}::text = u.id) "
        "ORDER BY u.n LIMIT %(samples)s"
    ).format(ids=_IDS, table=table_ident(target), col=ident(id_column))


def kept_ids_named(plan: Plan, target: QualifiedName, id_column: str) -> sql.Composed:
    """(total, id, the named row's natural-key fields joined by ', ') of the first
    ``%(samples)s`` kept ids that name a row of ``target``; a key through a reference is
    shown as the referenced row's key (a page type's ``page_ptr_id`` as the page's
    ``url_path``), as ``key_relation`` expands it."""
    tp = plan.tables[target]
    key = sql.SQL("pg_catalog.concat_ws(', ', {})").format(
        sql.SQL(", ").join(sql.SQL("k.{}::text").format(ident(kf.name)) for kf in tp.key_fields)
    )
    return sql.SQL(
        "SELECT pg_catalog.count(*) OVER (), u.id, {key} FROM {ids} "
        "JOIN ({keys}) AS k ON k.{col}::text = u.id "
        "ORDER BY u.n LIMIT %(samples)s"
    ).format(key=key, ids=_IDS, keys=key_relation(plan, tp), col=ident(id_column))


def kept_ids_elsewhere(plan: Plan, target: QualifiedName, id_column: str) -> sql.Composed:
    """(total, id, the named row's natural key as jsonb text) of the first ``%(samples)s``
    kept ids that name a row of ``target`` whose natural key is none of ``%(keys)s`` (a
    jsonb array per object of that type in the fixture, built as ``target_keys`` builds
    the row's): a row of the target's own, never the object the id named in the source."""
    tp = plan.tables[target]
    return sql.SQL(
        "SELECT pg_catalog.count(*) OVER (), u.id, k.{key}::text FROM {ids} "
        "JOIN ({keys}) AS k ON k.{id} = u.id "
        "WHERE NOT (k.{key} = ANY(%(keys)s::jsonb[])) ORDER BY u.n LIMIT %(samples)s"
    ).format(
        key=ident(KEY),
        ids=_IDS,
        keys=target_keys(plan, tp, id_column, sql.SQL("({})").format(key_relation(plan, tp))),
        id=ident(ID),
    )


def tree_nodes(
    plan: Plan, table: QualifiedName, pk: str, position: tuple[str, str], names: tuple[str, ...]
) -> sql.Composed:
    """The target's nodes of a materialized-path tree: its ``path`` and ``depth`` columns,
    the ``names`` columns a path of names may follow, then the natural-key fields as text
    (``key_relation``'s, references expanded), for ``import-fixture`` to find a path of
    ancestors' names that the fixture's own objects do not hold."""
    tp = plan.tables[table]
    return sql.SQL(
        "SELECT t.{path}::text, t.{depth}::integer, {names}, {keys} FROM {table} AS t "
        "JOIN ({rel}) AS k ON k.{pk} = t.{pk}"
    ).format(
        path=ident(position[0]),
        depth=ident(position[1]),
        names=sql.SQL(", ").join(sql.SQL("t.{}::text").format(ident(n)) for n in names),
        keys=sql.SQL(", ").join(sql.SQL("k.{}::text").format(ident(kf.name)) for kf in tp.key_fields),
        table=table_ident(table),
        rel=key_relation(plan, tp),
        pk=ident(pk),
    )
