"""Helpers that talk to a real PostgreSQL server (nothing is mocked): run statements,
read rows, digest whole databases, read archives, and find the second server of the
cross-version suite.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from edms_pgdump import export_archive, load_mapping_text
from edms_pgdump.archive.integrity import read_member_text
from edms_pgdump.archive.package import ArchiveReader
from edms_pgdump.mapping import Mapping

# The second server of the cross-version suite (PostgreSQL 15 when the test server is 18);
# .ci/run sets it when that server answers. Unset: the suite skips and says why.
PG15_DSN_VAR = "EDMS_PGDUMP_PG15_DSN"


def execute(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for stmt in statements:
            conn.execute(stmt.encode())


def scalar(dsn: str, query: str, params: Any = None) -> Any:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(query.encode() if params is None else query, params).fetchone()
        return row[0] if row else None


def mapping(text: str) -> Mapping:
    return load_mapping_text(text)


def export(dsn: str, mapping_text: str | Mapping, out: Path, **kw: Any) -> Path:
    m = mapping(mapping_text) if isinstance(mapping_text, str) else mapping_text
    export_archive(dsn, m, out, **kw)
    return out


def manifest(archive: Path) -> dict[str, Any]:
    with ArchiveReader(archive) as r:
        return r.manifest.to_dict()


def member_digests(archive: Path) -> dict[str, str]:
    """table -> SHA-256 of its COPY text, as recorded in the manifest."""
    return {t["table"]: t["data_sha256"] for t in manifest(archive)["tables"]}


def member_texts(archive: Path) -> dict[str, bytes]:
    with ArchiveReader(archive) as r:
        return {t.table: read_member_text(r, t) for t in r.manifest.tables}


def user_tables(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    rows = conn.execute(
        """
        SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast%'
        ORDER BY 1, 2
        """
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def db_digest(dsn: str) -> dict[str, tuple[int, str]]:
    """Every user table -> (row count, md5 of its rows' text, sorted). Ids included."""
    out: dict[str, tuple[int, str]] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET DateStyle = ISO; SET TimeZone = 'UTC'; SET extra_float_digits = 3")
        for schema, table in user_tables(conn):
            row = conn.execute(
                sql.SQL(
                    "SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') "
                    "FROM {} AS t"
                ).format(sql.Identifier(schema, table))
            ).fetchone()
            assert row is not None
            out[f"{schema}.{table}"] = (int(row[0]), str(row[1]))
    return out


def rows(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET DateStyle = ISO; SET TimeZone = 'UTC'; SET extra_float_digits = 3")
        cur = conn.execute(query.encode())
        while cur.nextset():
            pass
        return list(cur.fetchall())


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def pg15_dsn() -> str | None:
    """The PostgreSQL 15 server's DSN from $EDMS_PGDUMP_PG15_DSN, or None when unset or empty."""
    return os.environ.get(PG15_DSN_VAR) or None


def answers(dsn: str) -> str | None:
    """None when the server at ``dsn`` accepts a connection, else why it does not (one line)."""
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return " ".join(str(exc).split())
    return None


def server_version_num(dsn: str) -> int:
    return int(scalar(dsn, "SHOW server_version_num"))


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def dump_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, default=str)


@contextlib.contextmanager
def export_without_data_proofs() -> Iterator[None]:
    """Exports written as an older edms-pgdump (or a forger) would: without the data
    proofs (key uniqueness, likely references) that export now runs, so the import's
    own checks can be tested on such archives."""
    from edms_pgdump.export import run as export_module

    saved = export_module.refuse_unsafe_data
    export_module.refuse_unsafe_data = lambda *args, **kwargs: None
    try:
        yield
    finally:
        export_module.refuse_unsafe_data = saved
