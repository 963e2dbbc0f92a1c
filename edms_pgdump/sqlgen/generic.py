"""Generic references: which table a type row names, as SQL over its natural key.

The type row's natural-key values (``app_label``, ``model``) are either columns of the
type table (export, on the source) or the archive's fields for the type column
(import, in staging); both are given as expressions, so the naming is written once.
A generic id travels as a jsonb array of the named row's natural key; an id of an
ignored type travels as ``{"raw": "<id>"}`` (an object, so it cannot be mistaken for
a key).
"""

from __future__ import annotations

import re

from psycopg import sql

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.plan.build import GenericPlan
from edms_pgdump.sqlgen.common import equals, ident, table_ident

RAW = "raw"


def type_label(gp: GenericPlan, key: dict[str, sql.Composable]) -> sql.Composable:
    """The type row's natural key joined by '.', as ``ignore_types`` and explicit
    ``tables:`` entries name it (``auth.user``)."""
    return sql.SQL("pg_catalog.concat_ws('.', {})").format(sql.SQL(", ").join(key[c] for c in gp.type_key))


def _template(gp: GenericPlan, key: dict[str, sql.Composable]) -> sql.Composable:
    parts: list[sql.Composable] = []
    for i, piece in enumerate(re.split(r"\{([^{}]*)\}", gp.naming.table_name)):
        if i % 2:
            parts.append(sql.SQL("{}::text").format(key[piece]))
        elif piece:
            parts.append(sql.Literal(piece))
    return sql.SQL("pg_catalog.concat({})").format(sql.SQL(", ").join(parts))


def names_table(gp: GenericPlan, key: dict[str, sql.Composable], target: QualifiedName) -> sql.Composable:
    """True when the type row with natural key ``key`` names ``target``."""
    explicit = [k for k, t in gp.naming.tables if t == target]
    others = [k for k, t in gp.naming.tables if t != target]
    label = type_label(gp, key)
    by_template: sql.Composable = sql.SQL("false")
    if target.schema == gp.naming.schema:
        by_template = sql.SQL("{} {} {}").format(_template(gp, key), equals(), sql.Literal(target.name))
        if others:  # an explicit entry wins over the template
            by_template = sql.SQL("({} AND NOT ({} {} ANY({})))").format(
                by_template, label, equals(), sql.Literal(others)
            )
    if not explicit:
        return by_template
    return sql.SQL("({} {} ANY({}) OR {})").format(label, equals(), sql.Literal(explicit), by_template)


def named_table(gp: GenericPlan, key: dict[str, sql.Composable]) -> tuple[sql.Composable, sql.Composable]:
    """(schema, table name) a type row names, for discovery and messages."""
    label = type_label(gp, key)
    schema: sql.Composable = sql.Literal(gp.naming.schema)
    name = _template(gp, key)
    for k, t in reversed(gp.naming.tables):
        schema = sql.SQL("CASE WHEN {} {} {} THEN {} ELSE {} END").format(
            label, equals(), sql.Literal(k), sql.Literal(t.schema), schema
        )
        name = sql.SQL("CASE WHEN {} {} {} THEN {} ELSE {} END").format(
            label, equals(), sql.Literal(k), sql.Literal(t.name), name
        )
    return schema, name


def type_key_columns(gp: GenericPlan, alias: str) -> dict[str, sql.Composable]:
    return {c: sql.SQL("{}.{}").format(ident(alias), ident(c)) for c in gp.type_key}


def type_key_fields(gp: GenericPlan, alias: str) -> dict[str, sql.Composable]:
    """The type row's key as the archive carries it: fields of the type column."""
    return {c: sql.SQL("{}.{}").format(ident(alias), ident(gp.type_field(c))) for c in gp.type_key}


def discover_types(gp: GenericPlan, type_pk: str) -> sql.Composed:
    """Which tables the rows of ``gp.table`` name, with counts (export, check)."""
    key = type_key_columns(gp, "ty")
    schema, name = named_table(gp, key)
    return sql.SQL(
        "SELECT {schema}, {name}, {label}, pg_catalog.count(*) FROM {table} AS t "
        "JOIN {types} AS ty ON ty.{pk} = t.{type_col} WHERE t.{id_col} IS NOT NULL "
        "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ).format(
        schema=schema,
        name=name,
        label=type_label(gp, key),
        table=table_ident(gp.table),
        types=table_ident(gp.type_table),
        pk=ident(type_pk),
        type_col=ident(gp.type_column),
        id_col=ident(gp.id_column),
    )


def raw_id(gp: GenericPlan, id_expr: sql.Composable) -> sql.Composable:
    return sql.SQL("pg_catalog.jsonb_build_object({}, {}::text)").format(sql.Literal(RAW), id_expr)


def is_raw(expr: sql.Composable) -> sql.Composable:
    return sql.SQL("pg_catalog.jsonb_typeof({}) = 'object'").format(expr)


def named_by_type_table(gp: GenericPlan) -> sql.Composed:
    """(schema, table) named by each row of the type table."""
    schema, name = named_table(gp, type_key_columns(gp, "ty"))
    return sql.SQL("SELECT DISTINCT {}, {} FROM {} AS ty").format(schema, name, table_ident(gp.type_table))
