"""Natural-key views of the sample EDMS data, for comparing two databases row by row."""

from __future__ import annotations

from typing import Any

import psycopg

QUERIES = {
    "users": """
        SELECT username, email, full_name, is_active, created_at FROM public.users
        WHERE username NOT LIKE 'legacy-%' ORDER BY username""",
    "documents": """
        SELECT d.document_number, d.title, o.username, p.document_number,
               cvd.document_number, cv.version_number, d.status, d.created_at
        FROM public.documents d
        JOIN public.users o ON o.id = d.owner_id
        LEFT JOIN public.documents p ON p.id = d.parent_id
        LEFT JOIN public.document_versions cv ON cv.id = d.current_version_id
        LEFT JOIN public.documents cvd ON cvd.id = cv.document_id
        WHERE d.document_number NOT LIKE 'legacy-%' ORDER BY d.document_number""",
    "document_versions": """
        SELECT d.document_number, v.version_number, v.content_hash, v.size_bytes,
               u.username, v.created_at
        FROM public.document_versions v
        JOIN public.documents d ON d.id = v.document_id
        LEFT JOIN public.users u ON u.id = v.created_by_id
        WHERE d.document_number NOT LIKE 'legacy-%' ORDER BY 1, 2""",
    "document_workflows": """
        SELECT d.document_number, w.workflow_type, w.state, u.username, w.due_date
        FROM public.document_workflows w
        JOIN public.documents d ON d.id = w.document_id
        LEFT JOIN public.users u ON u.id = w.assignee_id
        WHERE d.document_number NOT LIKE 'legacy-%' ORDER BY 1, 2""",
}


def natural_view(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(dsn) as conn:
        return {name: conn.execute(q).fetchall() for name, q in QUERIES.items()}  # type: ignore[arg-type]


def counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return {
            t: int(conn.execute(f"SELECT count(*) FROM public.{t}").fetchone()[0])  # type: ignore[index]
            for t in QUERIES
        }
