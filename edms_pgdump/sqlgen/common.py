"""Statements every stage shares: session settings, identifiers, transaction control."""

from __future__ import annotations

from psycopg import sql

from edms_pgdump.catalog.names import QualifiedName

# Session settings pinned like pg_dump does, so COPY text is byte-stable whatever the
# role's or database's defaults are.
SESSION_SETTINGS: tuple[tuple[str, str], ...] = (
    ("DateStyle", "ISO"),
    ("IntervalStyle", "postgres"),
    ("TimeZone", "UTC"),
    ("extra_float_digits", "3"),
    ("bytea_output", "hex"),
    ("search_path", ""),
    ("client_encoding", "UTF8"),
    ("standard_conforming_strings", "on"),
    ("row_security", "off"),
)


def session_statements() -> list[sql.Composed]:
    return [sql.SQL("SET {} = {}").format(sql.Identifier(k), sql.Literal(v)) for k, v in SESSION_SETTINGS]


def ident(*parts: str) -> sql.Identifier:
    return sql.Identifier(*parts)


def table_ident(name: QualifiedName) -> sql.Identifier:
    return sql.Identifier(name.schema, name.name)


def equals(schema: str = "pg_catalog") -> sql.Composed:
    """``=`` named with its schema: what it means cannot depend on the search_path (an
    operator on it that matches the operands better would otherwise win)."""
    return sql.SQL("OPERATOR({}.=)").format(sql.Identifier(schema))


def relation(name: QualifiedName, only: bool = False) -> sql.Composable:
    """A table as a statement reads, updates or deletes it: ``ONLY`` for a table others
    INHERIT from, whose plain name would reach its children's rows too."""
    if only:
        return sql.SQL("ONLY {}").format(table_ident(name))
    return table_ident(name)


def qualified_literal(name: QualifiedName) -> sql.Literal:
    """A fully quoted ``"schema"."table"`` string for regclass-taking functions."""
    text = '"' + name.schema.replace('"', '""') + '"."' + name.name.replace('"', '""') + '"'
    return sql.Literal(text)


def read_only() -> sql.Composed:
    return sql.SQL("SET TRANSACTION READ ONLY").format()


def one() -> sql.Composed:
    return sql.SQL("SELECT 1").format()


def analyze(relation: sql.Composable, columns: list[str] | None = None) -> sql.Composed:
    """Statistics for the planner; with ``columns``, only those the joins use (a jsonb
    path or a wide text column costs far more to sample than the join needs)."""
    if not columns:
        return sql.SQL("ANALYZE {}").format(relation)
    return sql.SQL("ANALYZE {} ({})").format(relation, sql.SQL(", ").join(sql.Identifier(c) for c in columns))


def begin(isolation: str | None = None, read_only: bool = False) -> sql.Composed:
    parts = ["BEGIN"]
    if isolation:
        assert isolation in ("REPEATABLE READ", "SERIALIZABLE", "READ COMMITTED")
        parts.append(f"ISOLATION LEVEL {isolation}")
    if read_only:
        parts.append("READ ONLY")
    return sql.SQL(" ".join(parts)).format()


def set_local(name: str, value: str) -> sql.Composed:
    return sql.SQL("SET LOCAL {} = {}").format(sql.Identifier(name), sql.Literal(value))


def reset_local(name: str) -> sql.Composed:
    """``name`` back to the session's own value for the rest of the transaction."""
    return sql.SQL("SET LOCAL {} TO DEFAULT").format(sql.Identifier(name))


def current_setting(name: str) -> sql.Composed:
    return sql.SQL("SELECT pg_catalog.current_setting({})").format(sql.Literal(name))


def commit() -> sql.Composed:
    return sql.SQL("COMMIT").format()


def rollback() -> sql.Composed:
    return sql.SQL("ROLLBACK").format()


def import_settings(lock_timeout: str, statement_timeout: str, work_mem: str) -> list[sql.Composed]:
    """The import transaction's own limits; ADD FOREIGN KEY (constraints recreate)
    validates with maintenance_work_mem. The import analyzes only its staging tables,
    whose joins need row counts and distinct counts, not fine histograms: a smaller
    sample makes each ANALYZE several times cheaper."""
    return [
        set_local("lock_timeout", lock_timeout),
        set_local("statement_timeout", statement_timeout),
        set_local("work_mem", work_mem),
        set_local("maintenance_work_mem", work_mem),
        set_local("default_statistics_target", "20"),
        # The staging tables' estimates are rough (their join columns are not analyzed),
        # which puts every resolving join far above jit_above_cost: where the server has
        # JIT, compiling them cost more than it saved (PostgreSQL 15, 250k documents:
        # key resolution 3.0 s with JIT, 2.5 s without; docs/performance.md).
        set_local("jit", "off"),
        application_search_path(),
    ]


def _role_setting(name: str, value: str) -> sql.Composed:
    """Set ``name`` for the rest of the transaction to ``value``, an expression over
    ``s.reset_val``: the setting as this connection started (role, database, server or
    connection options), not the value the tool pinned. A DO block so that psql prints
    nothing; every name in it is qualified, as it runs with the pinned search_path."""
    body = sql.SQL(
        "BEGIN PERFORM pg_catalog.set_config({name}, {value}, true) FROM pg_catalog.pg_settings AS s "
        "WHERE s.name OPERATOR(pg_catalog.=) {name}; END"
    ).format(name=sql.Literal(name), value=sql.SQL(value))
    return sql.SQL("DO $edms_session$ {} $edms_session$").format(body)


def application_search_path() -> sql.Composed:
    """The writes run under the target role's own search_path, so triggers, defaults and
    extension operators resolve as they do for the application. pg_catalog and this
    session's temporary schema come first: every name the tool writes is qualified or
    a temporary staging table, and a function or operator elsewhere on the path can
    never outrank pg_catalog's."""
    return _role_setting(
        "search_path",
        "CASE WHEN s.reset_val OPERATOR(pg_catalog.=) '' THEN 'pg_catalog, pg_temp' "
        "ELSE 'pg_catalog, pg_temp, ' OPERATOR(pg_catalog.||) s.reset_val END",
    )


def application_time_zone() -> sql.Composed:
    """The role's own TimeZone for the writes: a trigger computing ``created_at::date``
    writes the day the application would. Staging, key resolution and the checks after
    the writes run in UTC, the zone the archive's keys were written in."""
    return _role_setting("TimeZone", "s.reset_val")


def savepoint(name: str) -> sql.Composed:
    return sql.SQL("SAVEPOINT {}").format(sql.Identifier(name))


def rollback_to(name: str) -> sql.Composed:
    return sql.SQL("ROLLBACK TO SAVEPOINT {}").format(sql.Identifier(name))


def release(name: str) -> sql.Composed:
    return sql.SQL("RELEASE SAVEPOINT {}").format(sql.Identifier(name))


def render(statement: sql.Composable) -> str:
    return statement.as_string(None)
