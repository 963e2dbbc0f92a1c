"""Connections: open, pin session settings, describe without secrets."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import conninfo

from .errors import DatabaseError
from .sqlgen import session_statements

Connection = psycopg.Connection[tuple[Any, ...]]


def describe_dsn(dsn: str) -> str:
    """host:port/dbname of a DSN, never the password."""
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable dsn>"
    host = str(params.get("host") or "localhost")
    port = params.get("port")
    db = params.get("dbname") or params.get("user") or ""
    return f"{host}{':' + str(port) if port else ''}/{db}"


def connect(dsn: str, *, autocommit: bool = True, application: str = "edms-pgdump") -> Connection:
    try:
        conn = psycopg.connect(dsn, autocommit=autocommit, application_name=application)
    except psycopg.OperationalError as exc:
        lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
        first = " ".join(lines) if lines else "connection failed"
        raise DatabaseError(
            f"cannot connect to {describe_dsn(dsn)}: {first}; check --dsn, that the server "
            "runs and that the role may log in"
        ) from None
    except psycopg.ProgrammingError as exc:
        raise DatabaseError(f"invalid --dsn ({exc}); use postgresql://user@host:port/dbname") from None
    pin_session(conn)
    return conn


def pin_session(conn: Connection) -> None:
    for stmt in session_statements():
        conn.execute(stmt)


def server_error_message(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(exc).splitlines()[0]
    detail = getattr(diag, "message_detail", None)
    return primary + (f" ({detail})" if detail else "")
