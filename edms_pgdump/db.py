"""Connections: open, pin session settings, describe without secrets."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import conninfo, pq

from edms_pgdump.errors import DatabaseError, UsageError
from edms_pgdump.sqlgen import session_statements

Connection = psycopg.Connection[tuple[Any, ...]]


EMPTY_DSN = "-d/--dbname is empty: give a connection string or a database name"


def conninfo_for(dsn: str) -> str:
    """The connection string for ``dsn``, accepting a bare database name as psql does.

    ``mydb`` (no ``=`` and no ``://``) means ``dbname=mydb``; anything else is passed on as
    a libpq key=value string or URI. An empty DSN is refused: libpq would silently fall
    back to $PGDATABASE or the user's name, and a command would run against a database
    nobody named.
    """
    text = dsn.strip()
    if not text:
        raise UsageError(EMPTY_DSN)
    if "=" not in text and "://" not in text:
        return conninfo.make_conninfo(dbname=text)
    return dsn


def _libpq_defaults() -> dict[str, str]:
    """What libpq would fill in from the environment (PGHOST, PGPORT, PGUSER, PGDATABASE,
    PGSERVICE) and its compiled defaults, so a label names the server really used."""
    found: dict[str, str] = {}
    for opt in pq.Conninfo.get_defaults():
        value = opt.val if opt.val is not None else opt.compiled
        if value is not None:
            found[opt.keyword.decode()] = value.decode(errors="replace")
    return found


def describe_dsn(dsn: str) -> str:
    """host:port/dbname of the server a DSN reaches, never the password.

    Parts the DSN leaves out come from the libpq environment, as at connect time: a
    bare ``mydb`` with PGHOST=db1 PGPORT=6432 is ``db1:6432/mydb``, not localhost.
    A Unix-socket connection is ``[local]`` (psql's word for it); a service whose file
    holds the host is ``service=NAME``.
    """
    try:
        params = conninfo.conninfo_to_dict(conninfo_for(dsn))
    except UsageError:
        return "<empty dsn>"
    except psycopg.ProgrammingError:
        return "<unparsable dsn>"
    defaults = _libpq_defaults()

    def part(key: str) -> str:
        return str(params.get(key) or defaults.get(key) or "")

    host = part("host") or part("hostaddr")
    service = part("service")
    if not host:
        host = f"service={service}" if service and not params.get("host") else "[local]"
    elif host.startswith("/"):
        host = "[local]"
    port = part("port")
    db = part("dbname") or part("user")
    return f"{host}{':' + port if port else ''}/{db}"


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "connection failed"


def connect(
    dsn: str, *, autocommit: bool = True, application: str = "edms-pgdump", option: str = "-d/--dbname"
) -> Connection:
    """Open a connection with the session pinned; every failure is one line naming the fix
    (``option``: the command-line option that gave the DSN)."""
    target = conninfo_for(dsn)
    try:
        conn = psycopg.connect(target, autocommit=autocommit, application_name=application)
    except psycopg.OperationalError as exc:
        raise DatabaseError(
            f"cannot connect to {describe_dsn(target)}: {_one_line(str(exc))}; check {option} "
            f"(and {'-h, -p, -U or ' if option == '-d/--dbname' else ''}PGHOST, PGPORT, PGUSER), that the "
            "server runs and that the role may log in"
        ) from None
    except psycopg.ProgrammingError as exc:
        raise UsageError(
            f"invalid {option} ({_one_line(str(exc))}); use postgresql://user@host:port/dbname, "
            "host=... dbname=..., or a bare database name"
        ) from None
    pin_session(conn)
    return conn


def pin_session(conn: Connection) -> None:
    for stmt in session_statements():
        conn.execute(stmt)


def server_error_message(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(exc).splitlines()[0]
    detail = getattr(diag, "message_detail", None)
    # where PostgreSQL names the object, say it: a cast or a check constraint failing
    # names neither in its primary message
    where = [
        f"{label} {value}"
        for label, value in (
            ("table", getattr(diag, "table_name", None)),
            ("column", getattr(diag, "column_name", None)),
            ("constraint", getattr(diag, "constraint_name", None)),
        )
        if value and str(value) not in primary + (detail or "")
    ]
    context = str(getattr(diag, "context", None) or "").splitlines()
    if context and context[0].startswith("COPY "):  # names the staging line and column
        where.append(context[0].split(", ", 1)[-1])
    return primary + (f" ({detail})" if detail else "") + (f" [{', '.join(where)}]" if where else "")
