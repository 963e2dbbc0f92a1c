"""The private schema a parallel import stages in: its name, its lock, and finding the
ones a killed import left behind."""

from __future__ import annotations

import re

from psycopg import sql

STAGING_PREFIX = "edms_pgdump_stage_"
# the first key of the two-key advisory lock an import holds on its staging schema
# while it lives ("edms"); the second is the hash of the schema's name
LOCK_CLASS = 0x65646D73


def staging_schema_name(archive_id: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", archive_id.lower()).strip("_") or "archive"
    return (STAGING_PREFIX + slug)[:63]


def may_create_schema() -> sql.Composed:
    return sql.SQL("SELECT has_database_privilege(current_database(), 'CREATE')").format()


def try_lock_schema(schema: str) -> sql.Composed:
    return sql.SQL("SELECT pg_catalog.pg_try_advisory_lock({}, pg_catalog.hashtext({}))").format(
        sql.Literal(LOCK_CLASS), sql.Literal(schema)
    )


def unlock_schema(schema: str) -> sql.Composed:
    return sql.SQL("SELECT pg_catalog.pg_advisory_unlock({}, pg_catalog.hashtext({}))").format(
        sql.Literal(LOCK_CLASS), sql.Literal(schema)
    )


def staging_schemas() -> sql.Composed:
    """Every staging schema: its name, its owner, and whether this role may drop it."""
    return sql.SQL(
        "SELECT n.nspname, pg_get_userbyid(n.nspowner), pg_has_role(n.nspowner, 'MEMBER') "
        "FROM pg_catalog.pg_namespace n WHERE starts_with(n.nspname, {}) ORDER BY 1"
    ).format(sql.Literal(STAGING_PREFIX))


def create_schema(schema: str) -> sql.Composed:
    return sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema))


def drop_schema(schema: str) -> sql.Composed:
    return sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))


def schema_tables(schema: str) -> sql.Composed:
    """The tables of a staging schema, to drop them one at a time (progress)."""
    return sql.SQL(
        "SELECT c.relname FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = {} AND c.relkind IN ('r', 'p') ORDER BY 1"
    ).format(sql.Literal(schema))


def drop_table(schema: str, table: str) -> sql.Composed:
    return sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(schema, table))
