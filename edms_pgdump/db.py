"""Connections: open, pin session settings, describe without secrets."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg import conninfo, pq, sql
from psycopg.copy import LibpqWriter

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


class _QueuedWriter(LibpqWriter):
    """Sends COPY data from a thread of its own, so the caller reads and decompresses the
    next block while libpq waits for the server to take this one. At most ``depth``
    blocks wait (the archive's are 1 MiB): memory stays bounded when the server is the
    slower side, as it is for staging. psycopg's own QueuedLibpqWriter would hold up to
    1024 of its 128 KiB buffers (128 MiB)."""

    def __init__(self, cursor: psycopg.Cursor[Any], depth: int = 8) -> None:
        super().__init__(cursor)
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None  # started by the first block

    def _send(self) -> None:
        try:
            while (data := self._queue.get()) is not None:
                super().write(data)
        except BaseException as exc:  # handed to the caller's thread by write() or finish()
            self._error = exc
            while self._queue.get() is not None:  # let the caller's put() go on to finish()
                pass

    def write(self, data: Any) -> None:
        if self._error is not None:
            raise self._error
        if self._thread is None:
            self._thread = threading.Thread(target=self._send, name="edms-pgdump copy", daemon=True)
            self._thread.start()
        self._queue.put(bytes(data))

    def finish(self, exc: BaseException | None = None) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._error is not None and exc is None:
            raise self._error
        super().finish(exc)


def copy_in(
    conn: Connection,
    statement: sql.Composed,
    blocks: Iterable[bytes],
    each: Callable[[bytes], None] | None = None,
) -> int:
    """``COPY … FROM STDIN`` fed with ``blocks``; the rows the server counted. The blocks
    are sent by ``_QueuedWriter``, overlapping the reading of the next one with the
    server's parsing: at 1M documents the 2M versions staged in 2.6-3.0 s instead of
    3.5 s (docs/performance.md). ``each`` hears of every block once it is queued (progress;
    an exception it raises ends the COPY, which the server then discards)."""
    with conn.cursor() as cur:
        with cur.copy(statement, writer=_QueuedWriter(cur)) as copy:
            for block in blocks:
                copy.write(block)
                if each is not None:
                    each(block)
        return int(cur.rowcount)


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
