"""The import history table, ``edms_pgdump.history``, kept in the target database.

It is written inside the import's own transaction (a hook of ``load.import_transaction``),
so a row exists if and only if that import committed: a dry run or a
rolled-back import leaves nothing. It is also how an import knows the same archive
was already applied to this database, and, from the certificate the row holds
(``load.certificate``), whether that import's rows are still all in place: a re-import
of the same archive then stages nothing.

No superuser is needed. Creating the schema needs CREATE on the database; a role
without it (and without an existing history table it may write) gets a warning and
the import proceeds without history rather than failing.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from edms_pgdump import sqlgen
from edms_pgdump.catalog.names import QualifiedName, quote_identifier
from edms_pgdump.catalog.read import HISTORY_TABLE, Catalog, read_history_access
from edms_pgdump.db import Connection, server_error_message
from edms_pgdump.load.audit import os_user
from edms_pgdump.load.certificate import (
    Certificate,
    certifiable,
    changes_since,
    eligible,
    inputs_digest,
    scope,
    take,
)
from edms_pgdump.load.transaction import ImportHooks, ImportInput
from edms_pgdump.program.steps import Execute, Program, Step
from edms_pgdump.results import ImportReport
from edms_pgdump.sqlgen.common import current_setting

SCHEMA = HISTORY_TABLE.schema
TABLE = HISTORY_TABLE.name

DDL = (
    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)),
    sql.SQL(
        """CREATE TABLE IF NOT EXISTS {}.{} (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    archive_id      text NOT NULL,
    manifest_sha256 text NOT NULL,
    archive         text NOT NULL,
    applied_at      timestamptz NOT NULL DEFAULT now(),
    db_role         text NOT NULL DEFAULT current_user,
    os_user         text,
    client_host     text,
    tool_version    text NOT NULL,
    source          jsonb NOT NULL DEFAULT '{{}}',
    inserted        bigint NOT NULL,
    updated         bigint NOT NULL,
    unchanged       bigint NOT NULL,
    tables          jsonb NOT NULL,
    certificate     jsonb
)"""
    ).format(sql.Identifier(SCHEMA), sql.Identifier(TABLE)),
    sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {}.{} (archive_id, manifest_sha256)").format(
        sql.Identifier("history_archive_idx"), sql.Identifier(SCHEMA), sql.Identifier(TABLE)
    ),
)

T = TypeVar("T")
SKIPPED = "import history skipped"
SAVEPOINT = "edms_pgdump_history"  # around what the history may be refused (``_in_savepoint``)
ALTER_WAIT = "2s"  # how long the one-time ALTER of an older history table waits for its lock
ALREADY_APPLIED = "already applied"

_QUALIFIED = sql.SQL("{}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(TABLE))


@dataclass
class HistoryHooks(ImportHooks):
    """Hooks of the import transaction: records who ran it and, if asked, history.

    ``before_program`` takes the role and the history table's state from the catalog
    the import read (same transaction) and looks for earlier imports of the same archive
    (or fixture); ``after_program`` returns the INSERT of this import's row, which the
    program's interpreter runs just before COMMIT (or the dry run's ROLLBACK).
    """

    tool_version: str
    source: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    archive_id: str = ""
    manifest_sha256: str = ""
    db_role: str | None = None
    previous: list[dict[str, Any]] = field(default_factory=list)
    available: bool = False
    warning: str | None = None
    # load.certificate: the history table has the column; this import's digest and the
    # tables it sums up (empty: it cannot be proven in place); the certificate and the
    # history row it was found in; the one this import leaves
    certificates: bool = False
    inputs: str = ""
    tables: list[QualifiedName] = field(default_factory=list)
    found: Certificate | None = None
    found_in: dict[str, Any] = field(default_factory=dict)
    found_xmin: int = 0  # the xmin of the history row holding it
    proven: bool = False

    def before_program(
        self, conn: Connection, given: ImportInput, program: Program, report: ImportReport
    ) -> Sequence[Step]:
        self.archive_id, self.manifest_sha256 = given.archive_id, given.sha256
        tables = scope(given, program)
        if tables is not None and eligible(program.options, given):
            self.inputs, self.tables = inputs_digest(conn, given, program.options, tables), tables
        self.look_up(conn, given.catalog, report)
        return ()

    def proven_in_place(
        self, conn: Connection, given: ImportInput, program: Program, report: ImportReport
    ) -> bool:
        """The latest certificate of this archive, taken by an import with the same
        digest, still holds for every table (``load.certificate``)."""
        found = self.found
        if found is None:
            return False
        t0 = time.perf_counter()
        changes = _in_savepoint(conn, lambda: changes_since(conn, found, self.tables, self.found_xmin))
        if isinstance(changes, psycopg.Error):  # the import goes on in full, as without a certificate
            changes = [f"the check failed: {server_error_message(changes)}"]
        entry: dict[str, Any] = {"step": "unchanged since", "seconds": round(time.perf_counter() - t0, 4)}
        if changes:
            entry["found"] = changes
        report.profile.append(entry)
        self.proven = not changes
        if self.proven:
            report.unchanged_since = dict(self.found_in)
        return self.proven

    def look_up(self, conn: Connection, catalog: Catalog, report: ImportReport) -> None:
        self.db_role = catalog.current_user
        if not self.enabled:
            return
        self.available = self._ensure_table(conn, catalog.history_table, catalog.history_writable)
        # the history's own warning; the certificate's only for an import that would take one
        if self.warning and (not self.available or self.inputs):
            report.warnings.append(self.warning)
        if not self.available:
            return
        rows = conn.execute(
            sql.SQL(
                "SELECT applied_at, db_role, archive FROM {} "
                "WHERE archive_id = %s AND manifest_sha256 = %s ORDER BY id"
            ).format(_QUALIFIED),
            (self.archive_id, self.manifest_sha256),
        ).fetchall()
        self.previous = [{"applied_at": r[0], "db_role": r[1], "archive": r[2]} for r in rows]
        if self.certificates and self.inputs:
            self.find_certificate(conn)
        if self.previous:
            report.already_applied = True
            first = self.previous[0]
            report.warnings.append(
                f"{ALREADY_APPLIED}: archive {self.archive_id} is in {SCHEMA}.{TABLE} "
                f"({len(self.previous)} time(s), first at {first['applied_at']:%Y-%m-%d %H:%M:%S%z} "
                f"by {first['db_role']}); importing again only changes rows that differ"
            )

    def find_certificate(self, conn: Connection) -> None:
        """The latest certificate an import of this archive with this digest left."""
        row = conn.execute(
            sql.SQL(
                "SELECT id, applied_at, certificate, xmin::text FROM {} "
                "WHERE archive_id = %s AND manifest_sha256 = %s AND certificate ->> 'inputs' = %s "
                "ORDER BY id DESC LIMIT 1"
            ).format(_QUALIFIED),
            (self.archive_id, self.manifest_sha256, self.inputs),
        ).fetchone()
        if row is not None:
            self.found = Certificate.from_json(row[2])
            self.found_xmin = int(row[3])
            if self.found is not None:
                self.found_in = {
                    "import": int(row[0]),
                    "applied_at": row[1].isoformat(),
                    "certified_at": self.found.taken_at,
                }

    def certificate(self, conn: Connection, report: ImportReport) -> Certificate | None:
        """What this import's history row certifies: the certificate it was proven by,
        or one taken now, in a savepoint (a table the role may not read leaves none)."""
        if self.proven:
            return self.found
        if not (self.certificates and self.inputs and certifiable(report)):
            return None
        t0 = time.perf_counter()
        cert = _in_savepoint(conn, lambda: take(conn, self.inputs, self.tables))
        if isinstance(cert, psycopg.Error):
            report.warnings.append(
                f"no certificate: {server_error_message(cert)}; a re-import of this archive stages and "
                "compares every row (docs/audit-and-history.md, Certificates)"
            )
            return None
        report.profile.append({"step": "certificate", "seconds": round(time.perf_counter() - t0, 4)})
        return cert

    def after_program(self, conn: Connection, program: Program, report: ImportReport) -> Sequence[Step]:
        if not (self.enabled and self.available):
            return ()
        cert = self.certificate(conn, report)
        tables = [t.to_dict() for t in report.tables]
        values: tuple[Any, ...] = (
            self.archive_id,
            self.manifest_sha256,
            report.archive,
            os_user(),
            socket.gethostname(),
            self.tool_version,
            json.dumps(self.source, default=str),
            report.inserted,
            report.updated,
            sum(t.unchanged for t in report.tables),
            json.dumps(tables, default=str),
        )
        columns = "archive_id, manifest_sha256, archive, os_user, client_host, tool_version, source, " + (
            "inserted, updated, unchanged, tables"
        )
        parts: list[sql.Composable] = [sql.Literal(v) for v in values]
        if cert is not None:
            # it names the transaction writing its row: the row's xmin (``changes_since``)
            columns += ", certificate"
            parts.append(
                sql.SQL(
                    "pg_catalog.jsonb_set({}::jsonb, '{{xid}}', "
                    "pg_catalog.to_jsonb(pg_catalog.pg_current_xact_id()::text::bigint))"
                ).format(sql.Literal(json.dumps(cert.to_json())))
            )
        insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            _QUALIFIED, sql.SQL(columns), sql.SQL(", ").join(parts)
        )
        return (Execute("history", None, insert),)

    def _ensure_table(self, conn: Connection, exists: bool, writable: bool) -> bool:
        """Create schema and table on first use, inside a savepoint so a refusal does not
        abort the import's transaction."""
        if exists:
            if writable:
                self.certificates = self._ensure_certificate_column(conn)
                return True
            self.warning = (
                f"{SKIPPED}: role {self.db_role} may not read and insert into "
                f"{SCHEMA}.{TABLE}; GRANT USAGE ON SCHEMA {SCHEMA} and SELECT, INSERT ON "
                f"{SCHEMA}.{TABLE} to it, or pass --no-history"
            )
            return False
        def create() -> None:
            for stmt in DDL:
                conn.execute(stmt)

        refused = _in_savepoint(conn, create)
        if isinstance(refused, psycopg.Error):
            self.warning = (
                f"{SKIPPED}: cannot create {SCHEMA}.{TABLE} as role {self.db_role} "
                f"({server_error_message(refused)}); run GRANT CREATE ON DATABASE "
                f"{quote_identifier(conn.info.dbname)} TO "
                f"{quote_identifier(self.db_role or conn.info.user)}; once, "
                "or have the owner create the table (docs/audit-and-history.md, History table), "
                "or pass --no-history"
            )
            return False
        self.certificates = True
        return True

    def _ensure_certificate_column(self, conn: Connection) -> bool:
        """A history table made by an earlier version gets the certificate column, once,
        where the role may add it; otherwise imports go on without certificates."""
        found = conn.execute(
            "SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = %s::regclass AND attname = 'certificate' "
            "AND NOT attisdropped",
            (f"{quote_identifier(SCHEMA)}.{quote_identifier(TABLE)}",),
        ).fetchone()
        if found is not None:
            return True
        wait = conn.execute(current_setting("lock_timeout")).fetchone()

        def add_column() -> None:
            # another import reading the table holds it only for moments: wait briefly
            conn.execute(sqlgen.set_local("lock_timeout", ALTER_WAIT))
            alter = sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS certificate jsonb")
            conn.execute(alter.format(_QUALIFIED))

        refused = _in_savepoint(conn, add_column)
        if isinstance(refused, psycopg.Error):
            self.warning = (
                f"no certificate: cannot add the column certificate to {SCHEMA}.{TABLE} as role "
                f"{self.db_role} ({server_error_message(refused)}); a re-import of an archive stages and "
                f"compares every row until its owner runs ALTER TABLE {SCHEMA}.{TABLE} ADD COLUMN "
                "certificate jsonb (docs/audit-and-history.md, Certificates)"
            )
            return False
        if wait is not None:
            conn.execute(sqlgen.set_local("lock_timeout", str(wait[0])))
        return True


def _in_savepoint(conn: Connection, work: Callable[[], T]) -> T | psycopg.Error:
    """``work``'s result, or the server's refusal of it, rolled back to a savepoint so the
    import's transaction goes on (it does without history, or without a certificate)."""
    conn.execute(sqlgen.savepoint(SAVEPOINT))
    try:
        done = work()
    except psycopg.Error as exc:
        conn.execute(sqlgen.rollback_to(SAVEPOINT))  # a SET LOCAL inside is undone too
        return exc
    conn.execute(sqlgen.release(SAVEPOINT))
    return done


def read_history(conn: Connection) -> list[dict[str, Any]]:
    """Every history row, oldest first; empty when the table does not exist."""
    if not read_history_access(conn)[0]:
        return []
    cur = conn.execute(sql.SQL("SELECT * FROM {} ORDER BY id").format(_QUALIFIED))
    names = [d.name for d in cur.description or []]
    return [dict(zip(names, r)) for r in cur.fetchall()]
