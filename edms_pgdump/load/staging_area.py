"""The private schema an import stages in, and the ones killed imports left.

An import stages the archive's rows in UNLOGGED tables of a schema named after the
archive (``edms_pgdump_stage_<archive id>``) whenever the role may create one: a
parallel import (``-j N``) loads them there over N connections, and any import's
comparison of those rows with the target (``sqlgen.unchanged``) can then run as a
parallel plan, which the server never uses on temporary tables. The tables derived
from them stay temporary (``sqlgen.staging.StagingNames``), except the rows found
unchanged, which the anti-join listing the rows left reads in parallel. Without that
privilege, or while another import of the same archive stages there, one connection
stages in temporary tables.

The import's own connection holds a session advisory lock on that schema for as long
as it lives, and drops it at the end, committed or not. A killed import cannot drop
it, but its lock dies with its connection: any schema of that name whose lock is free
is a leftover, and the next import (or ``edms-pgdump cleanup``) drops it.
"""

from __future__ import annotations

import psycopg

from edms_pgdump.catalog.names import quote_identifier
from edms_pgdump.db import Connection, server_error_message
from edms_pgdump.errors import DatabaseError
from edms_pgdump.options import Progress, Steps
from edms_pgdump.results import ImportReport, Leftovers
from edms_pgdump.sqlgen import staging_area as area_sql


def drop_leftovers(conn: Connection, progress: Progress | None = None) -> Leftovers:
    """Drop every staging schema no running import holds (autocommit connection).
    Table by table, so that ``progress`` can say how far it is: a leftover holds a
    whole archive, and dropping it is not instant."""
    found = Leftovers()
    with Steps(progress) as steps:
        steps.step("find staging schemas")
        schemas = conn.execute(area_sql.staging_schemas()).fetchall()
        for n, (schema, owner, may_drop) in enumerate(schemas, 1):
            if not may_drop:
                found.not_owned.append((schema, owner))
                continue
            steps.step(f"lock {schema}", n, len(schemas))
            if not conn.execute(area_sql.try_lock_schema(schema)).fetchone()[0]:  # type: ignore[index]
                found.in_use.append(schema)
                continue
            try:
                tables = [r[0] for r in conn.execute(area_sql.schema_tables(schema)).fetchall()]
                for i, table in enumerate(tables, 1):
                    steps.step(f"drop {schema}.{table}", i, len(tables))
                    conn.execute(area_sql.drop_table(schema, table))
                steps.step(f"drop schema {schema}", n, len(schemas))
                conn.execute(area_sql.drop_schema(schema))
            finally:
                conn.execute(area_sql.unlock_schema(schema))
            found.dropped.append(schema)
    return found


class StagingArea:
    """One import's private staging schema, created and locked on its own connection."""

    def __init__(self, conn: Connection, schema: str) -> None:
        self.conn = conn
        self.schema = schema

    @classmethod
    def open(cls, conn: Connection, archive_id: str, jobs: int, report: ImportReport) -> StagingArea | None:
        """Sweep leftovers; create and lock this import's schema when the role may (None:
        stage in temporary tables). ``conn`` must be in autocommit, outside a transaction.

        Every import stages there when it can, not only a parallel one: the server
        never reads a temporary table with a parallel plan, and the comparison of the
        staged rows with the target is a hash join over whole tables that two or more
        workers can share (docs/performance.md, "Staging in UNLOGGED tables")."""
        report.warnings.extend(drop_leftovers(conn).notes())
        if not conn.execute(area_sql.may_create_schema()).fetchone()[0]:  # type: ignore[index]
            if jobs > 1:
                report.warnings.append(
                    f"-j {jobs}: this role may not create a schema in this database, so the archive is "
                    "staged in temporary tables on one connection; to stage in parallel, run GRANT "
                    f"CREATE ON DATABASE {quote_identifier(conn.info.dbname)} TO "
                    f"{quote_identifier(conn.info.user)}; once"
                )
            return None
        schema = area_sql.staging_schema_name(archive_id)
        if not conn.execute(area_sql.try_lock_schema(schema)).fetchone()[0]:  # type: ignore[index]
            if jobs <= 1:
                return None  # the same archive is imported next door: stage apart from it
            raise DatabaseError(
                f"another import of archive {archive_id} into this database is staging now (schema "
                f"{schema}); wait for it to finish, then import again"
            )
        try:
            conn.execute(area_sql.drop_schema(schema))
            conn.execute(area_sql.create_schema(schema))
        except psycopg.Error as exc:
            conn.execute(area_sql.unlock_schema(schema))
            if jobs <= 1:
                return None  # temporary tables do the same, more slowly
            raise DatabaseError(
                f"cannot create the staging schema {schema}: {server_error_message(exc)}; import with -j 1"
            ) from None
        report.staging = {**report.staging, "tables": "unlogged", "schema": schema, "connections": jobs}
        return cls(conn, schema)

    def close(self, report: ImportReport) -> None:
        """Drop the schema and its lock; the connection must be outside a transaction.
        A schema that cannot be dropped now is the next import's (or cleanup's) to drop."""
        try:
            self.conn.execute(area_sql.drop_schema(self.schema))
            self.conn.execute(area_sql.unlock_schema(self.schema))
        except psycopg.Error as exc:
            report.warnings.append(
                f"staging schema {self.schema} could not be dropped ({server_error_message(exc)}); the next "
                "import drops it, or run edms-pgdump cleanup"
            )
