"""Suite 7: cross-version. Export from PostgreSQL 15, import into 18, and the reverse.

The test server (``pg_server``) is one side; the other is the PostgreSQL 15 named by
$EDMS_PGDUMP_PG15_DSN when the test server is 18 (skipped, saying why, when it is unset),
or a freshly started embedded 18 when the test server is 15.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from edms_pgdump import export_archive, import_archive, load_mapping_text
from edms_pgdump.demo import sample
from edms_pgdump.demo.servers import Server, start_embedded, stop_embedded
from tests.support.db import PG15_DSN_VAR, answers, manifest, member_texts, pg15_dsn, server_version_num
from tests.support.torture import OWNERS, TORTURE_DDL, TORTURE_ROWS, torture_content

MAPPING = """
version: 1
tables:
  public.users:              {natural_key: [username]}
  public.documents:          {natural_key: [document_number]}
  public.document_versions:  {natural_key: [document_id, version_number]}
  public.document_workflows: {natural_key: [document_id, workflow_type]}
  tort.owners: {natural_key: [name]}
  tort.t: {natural_key: [k]}
exclude: [public.django_session]
"""

SAMPLE_KEYS = """
SELECT 'users', count(*), md5(string_agg(concat_ws('|', username, email, full_name, is_active, created_at),
    ',' ORDER BY username)) FROM public.users
UNION ALL
SELECT 'documents', count(*), md5(string_agg(concat_ws('|', d.document_number, d.title, o.username,
    p.document_number, d.status, d.created_at, cv.version_number), ',' ORDER BY d.document_number))
FROM public.documents d JOIN public.users o ON o.id = d.owner_id
LEFT JOIN public.documents p ON p.id = d.parent_id
LEFT JOIN public.document_versions cv ON cv.id = d.current_version_id
UNION ALL
SELECT 'versions', count(*), md5(string_agg(concat_ws('|', d.document_number, v.version_number, v.content_hash,
    v.size_bytes, u.username, v.created_at), ',' ORDER BY d.document_number, v.version_number))
FROM public.document_versions v JOIN public.documents d ON d.id = v.document_id
LEFT JOIN public.users u ON u.id = v.created_by_id
UNION ALL
SELECT 'workflows', count(*), md5(string_agg(concat_ws('|', d.document_number, w.workflow_type, w.state,
    u.username, w.due_date), ',' ORDER BY d.document_number, w.workflow_type))
FROM public.document_workflows w JOIN public.documents d ON d.id = w.document_id
LEFT JOIN public.users u ON u.id = w.assignee_id
"""


class Side:
    def __init__(self, admin_dsn: str, dsn_for, label: str) -> None:
        self.admin_dsn = admin_dsn
        self.dsn_for = dsn_for
        self.label = label
        self.created: list[str] = []

    def new_db(self) -> str:
        name = f"edms_xv_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin_dsn, autocommit=True) as c:
            c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        return self.dsn_for(name)

    def cleanup(self) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as c:
            for name in self.created:
                c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def sides(pg_server: Server) -> Iterator[dict[int, Side]]:
    here = server_version_num(pg_server.admin_dsn) // 10000
    started: Server | None = None
    if here == 15:
        started = start_embedded(durable=False)  # thrown away with the module
        other = Side(started.admin_dsn, started.dsn, "embedded")
    else:
        dsn = pg15_dsn()
        if dsn is None:
            pytest.skip(f"${PG15_DSN_VAR} is not set: give it a PostgreSQL 15 DSN to cross versions")
        why = answers(dsn)
        if why is not None:
            pytest.skip(f"${PG15_DSN_VAR} does not answer: {why}")
        pg15 = Server(dsn)
        other = Side(pg15.admin_dsn, pg15.dsn, "pg15")
    mine = Side(pg_server.admin_dsn, pg_server.dsn, "test server")
    other_version = server_version_num(other.admin_dsn) // 10000
    if other_version == here:
        pytest.skip(f"both servers are PostgreSQL {here}; nothing to cross")
    try:
        yield {here: mine, other_version: other}
    finally:
        mine.cleanup()
        other.cleanup()
        if started is not None:
            stop_embedded(started)


def _source(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        sample.create_schema(c)
        sample.populate(c, sample.SampleSize.from_documents(300))
        c.execute(TORTURE_DDL.encode())
        for name in OWNERS:
            c.execute("INSERT INTO tort.owners (name) VALUES (%s)", (name,))
        c.execute(TORTURE_ROWS.encode())


def _target(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        sample.create_schema(c)
        sample.reinitialise(c)
        c.execute(TORTURE_DDL.encode())
        c.execute(b"ALTER TABLE tort.owners ALTER COLUMN id RESTART WITH 4000")


def _sample_digest(dsn: str) -> dict[str, tuple[int, str]]:
    """Sample tables through natural keys, without the target's pre-existing legacy rows."""
    query = SAMPLE_KEYS
    for t, alias in (
        ("public.users", "users"),
        ("public.documents", "documents"),
        ("public.document_versions", "document_versions"),
        ("public.document_workflows", "document_workflows"),
    ):
        query = query.replace(t, f"pg_temp.{alias}")
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("SET TimeZone = 'UTC'; SET DateStyle = ISO")
        c.execute(
            "CREATE TEMP TABLE users AS SELECT * FROM public.users WHERE username NOT LIKE 'legacy-%';"
            "CREATE TEMP TABLE documents AS SELECT * FROM public.documents WHERE document_number NOT LIKE 'legacy-%';"
            "CREATE TEMP TABLE document_versions AS SELECT v.* FROM public.document_versions v "
            "WHERE v.document_id IN (SELECT id FROM pg_temp.documents);"
            "CREATE TEMP TABLE document_workflows AS SELECT w.* FROM public.document_workflows w "
            "WHERE w.document_id IN (SELECT id FROM pg_temp.documents)"
        )
        return {r[0]: (int(r[1]), str(r[2])) for r in c.execute(query.encode()).fetchall()}


@pytest.mark.parametrize(("src_v", "dst_v"), [(15, 18), (18, 15)], ids=["15-to-18", "18-to-15"])
def test_cross_version_round_trip(sides: dict[int, Side], tmp_path: Path, src_v: int, dst_v: int) -> None:
    if src_v not in sides or dst_v not in sides:
        pytest.skip(f"servers available: {sorted(sides)}")
    src, dst = sides[src_v].new_db(), sides[dst_v].new_db()
    assert server_version_num(src) // 10000 == src_v
    assert server_version_num(dst) // 10000 == dst_v
    _source(src)
    _target(dst)
    m = load_mapping_text(MAPPING)
    first = tmp_path / "first.edms"
    export_archive(src, m, first, jobs=2)  # workers adopt the snapshot on both versions
    assert manifest(first)["source"]["server_version_num"] // 10000 == src_v
    report = import_archive(dst, first)
    assert report.committed
    expected = {t["table"]: t["rows"] for t in manifest(first)["tables"]}
    assert {t.table: t.inserted for t in report.tables} == expected

    assert _sample_digest(src) == _sample_digest(dst)
    assert torture_content(src) == torture_content(dst)

    # exporting the target again gives the same COPY lines (row order aside), and
    # importing that back into the source changes nothing
    second = tmp_path / "second.edms"
    export_archive(dst, m, second)
    a, b = member_texts(first), member_texts(second)
    for table in a:
        if table.startswith("public."):
            continue  # the target also holds its own legacy rows
        assert sorted(a[table].split(b"\n")) == sorted(b[table].split(b"\n")), table
    back = import_archive(src, first)
    assert (back.inserted, back.updated) == (0, 0)
