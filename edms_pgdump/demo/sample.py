"""The sample EDMS database: schema, generated data, and a "re-initialised" twin.

Data is generated set-based on the server (generate_series), so a million documents
take seconds, not minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

from edms_pgdump.db import Connection
from edms_pgdump.demo.resources import sample_schema_path


@dataclass(frozen=True)
class SampleSize:
    users: int
    documents: int
    versions_per_document: int = 2

    @classmethod
    def from_documents(cls, documents: int) -> SampleSize:
        return cls(users=max(10, documents // 100), documents=documents)


def create_schema(conn: Connection) -> None:
    conn.execute(sample_schema_path().read_text().encode())


def populate(conn: Connection, size: SampleSize, *, prefix: str = "") -> None:
    """Fill an empty sample database. ``prefix`` namespaces keys (for unrelated rows)."""
    p = prefix
    conn.execute(
        """
        INSERT INTO public.users (username, email, full_name, created_at)
        SELECT %(p)s || 'user' || lpad(g::text, 6, '0'), %(p)s || 'user' || g || '@example.org',
               'User ' || g, timestamptz '2024-01-01 00:00+00' + g * interval '1 minute'
        FROM generate_series(1, %(n)s) g
        """,
        {"p": p, "n": size.users},
    )
    conn.execute(
        """
        WITH u AS (SELECT array_agg(id ORDER BY id) ids FROM public.users
                   WHERE username LIKE %(p)s || 'user%%')
        INSERT INTO public.documents (document_number, title, owner_id, status, created_at)
        SELECT %(p)s || 'DOC-' || lpad(g::text, 8, '0'), 'Document ' || g || E' \u00e9t\u00e9',
               u.ids[1 + g %% array_length(u.ids, 1)],
               (ARRAY['draft','review','published','archived'])[1 + g %% 4],
               timestamptz '2024-02-01 00:00+00' + g * interval '1 second'
        FROM generate_series(1, %(n)s) g, u
        """,
        {"p": p, "n": size.documents},
    )
    # 90% of documents get a parent that was numbered before them: a forest of chains.
    conn.execute(
        """
        WITH d AS (SELECT id, row_number() OVER (ORDER BY id) rn FROM public.documents
                   WHERE document_number LIKE %(p)s || 'DOC-%%'),
             a AS (SELECT array_agg(id ORDER BY rn) ids FROM d)
        UPDATE public.documents doc SET parent_id = a.ids[d.rn - 1 - (d.rn %% 7)]
        FROM d, a WHERE doc.id = d.id AND d.rn %% 10 <> 1 AND d.rn - 1 - (d.rn %% 7) >= 1
        """,
        {"p": p},
    )
    conn.execute(
        """
        WITH u AS (SELECT array_agg(id ORDER BY id) ids FROM public.users
                   WHERE username LIKE %(p)s || 'user%%')
        INSERT INTO public.document_versions
            (document_id, version_number, content_hash, size_bytes, created_by_id, created_at)
        SELECT d.id, v, md5(d.document_number || ':' || v), 1000 + (d.id * 37 + v) %% 100000,
               CASE WHEN d.id %% 5 = 0 THEN NULL ELSE u.ids[1 + (d.id + v) %% array_length(u.ids, 1)] END,
               d.created_at + v * interval '1 hour'
        FROM public.documents d CROSS JOIN generate_series(1, %(v)s) v, u
        WHERE d.document_number LIKE %(p)s || 'DOC-%%'
        """,
        {"p": p, "v": size.versions_per_document},
    )
    conn.execute(
        """
        UPDATE public.documents d SET current_version_id = v.id
        FROM public.document_versions v
        WHERE v.document_id = d.id AND v.version_number = %(v)s AND d.id %% 2 = 0
          AND d.document_number LIKE %(p)s || 'DOC-%%'
        """,
        {"p": p, "v": size.versions_per_document},
    )
    conn.execute(
        """
        WITH u AS (SELECT array_agg(id ORDER BY id) ids FROM public.users
                   WHERE username LIKE %(p)s || 'user%%')
        INSERT INTO public.document_workflows (document_id, workflow_type, state, assignee_id, due_date)
        SELECT d.id, (ARRAY['review','approval','archive'])[1 + d.id %% 3],
               (ARRAY['open','in_progress','done'])[1 + (d.id / 3) %% 3],
               CASE WHEN d.id %% 4 = 0 THEN NULL ELSE u.ids[1 + (d.id * 7) %% array_length(u.ids, 1)] END,
               date '2025-01-01' + (d.id %% 365)::int
        FROM public.documents d, u
        WHERE d.document_number LIKE %(p)s || 'DOC-%%'
        """,
        {"p": p},
    )
    conn.execute(
        """
        INSERT INTO public.django_session (session_key, session_data, expire_date)
        SELECT %(p)s || md5(g::text), 'e30=', timestamptz '2030-01-01 00:00+00'
        FROM generate_series(1, 3) g
        """,
        {"p": p},
    )


SAMPLE_TABLES = (
    "public.users",
    "public.documents",
    "public.document_versions",
    "public.document_workflows",
)


def reinitialise(conn: Connection) -> None:
    """Make a freshly created sample database look "re-initialised": every sequence far
    ahead of the source and a few unrelated rows already present, so no id matches."""
    conn.execute("ALTER TABLE public.users ALTER COLUMN id RESTART WITH 500000")
    for seq in ("documents_id_seq", "document_versions_id_seq", "document_workflows_id_seq"):
        conn.execute(f"ALTER SEQUENCE public.{seq} RESTART WITH 7000000")
    populate(conn, SampleSize(users=3, documents=4), prefix="legacy-")


def reinitialise_overlapping(conn: Connection, users: int, versions: int) -> None:
    """A re-initialised database that has been in use: its own accounts and document
    versions were numbered from 1, as production's were, so their ids overlap
    production's (at least ``users`` and ``versions`` of them). A restore by id then
    attaches production's documents to these strangers' accounts and versions: rows
    that arrive "successfully" with the wrong relationships, next to rows refused for
    a duplicate id. Documents and workflows are numbered far ahead, with a few rows."""
    for seq in ("documents_id_seq", "document_workflows_id_seq"):
        conn.execute(f"ALTER SEQUENCE public.{seq} RESTART WITH 7000000")
    documents = 4
    per_document = versions // documents + 1
    populate(
        conn, SampleSize(users=users, documents=documents, versions_per_document=per_document), prefix="new-"
    )
