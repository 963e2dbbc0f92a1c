"""Drive the test project's Django in subprocesses (settings are process-global) against
a real PostgreSQL: migrate, seed, dumpdata, loaddata; and a natural-key view of its
data, read with SQL, to compare two databases whose ids differ."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

PROJECT = Path(__file__).resolve().parent
ROOT = PROJECT.parents[1]
DSN_VAR = "EDMS_PGDUMP_DJANGO_DSN"


def env(dsn: str) -> dict[str, str]:
    out = dict(os.environ)
    out[DSN_VAR] = dsn
    out["DJANGO_SETTINGS_MODULE"] = "settings"
    out["PYTHONPATH"] = os.pathsep.join([str(PROJECT), str(ROOT), out.get("PYTHONPATH", "")])
    return out


def run(dsn: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in the project folder with the test database's DSN."""
    proc = subprocess.run(
        [sys.executable, *args], cwd=PROJECT, env=env(dsn), capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def django(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run(dsn, "-m", "django", *args)


def migrate(dsn: str) -> None:
    django(dsn, "migrate", "-v0")


def seed(dsn: str, documents: int) -> None:
    run(dsn, "seed.py", str(documents))


def dumpdata(dsn: str, out: Path, *flags: str) -> Path:
    django(dsn, "dumpdata", *flags, "-o", str(out))
    return out


# Tables a fixture from these tests carries; what dumpdata leaves out (content types,
# permissions: migrate makes them) is compared too, by natural key.
EXCLUDE_STATE = ("-e", "contenttypes", "-e", "auth.permission", "-e", "sessions", "-e", "admin")

QUERIES = {
    "users": "SELECT username, email, is_active, is_staff, password, date_joined FROM auth_user ORDER BY 1",
    "tags": "SELECT name FROM edms_app_tag ORDER BY 1",
    "documents": """
        SELECT d.document_number, d.title, o.username, p.document_number, d.created_at,
               d.size_bytes, d.metadata::text
        FROM edms_app_document d JOIN auth_user o ON o.id = d.owner_id
        LEFT JOIN edms_app_document p ON p.id = d.parent_id ORDER BY 1""",
    "document_tags": """
        SELECT d.document_number, t.name FROM edms_app_document_tags x
        JOIN edms_app_document d ON d.id = x.document_id JOIN edms_app_tag t ON t.id = x.tag_id
        ORDER BY 1, 2""",
    "workflows": """
        SELECT d.document_number, w.workflow_type, w.state, u.username, w.due_date
        FROM edms_app_documentworkflow w JOIN edms_app_document d ON d.id = w.document_id
        LEFT JOIN auth_user u ON u.id = w.assignee_id ORDER BY 1, 2""",
    "comments": """
        SELECT ct.app_label, ct.model, coalesce(d.document_number, t.name), c.number, c.body
        FROM edms_app_comment c JOIN django_content_type ct ON ct.id = c.content_type_id
        LEFT JOIN edms_app_document d ON ct.model = 'document' AND d.id = c.object_id
        LEFT JOIN edms_app_tag t ON ct.model = 'tag' AND t.id = c.object_id ORDER BY 1, 2, 3, 4""",
    "links": """
        SELECT ct.app_label, ct.model, coalesce(d.document_number, t.name), l.label
        FROM edms_app_link l JOIN django_content_type ct ON ct.id = l.content_type_id
        LEFT JOIN edms_app_document d ON ct.model = 'document' AND d.id::text = l.object_pk
        LEFT JOIN edms_app_tag t ON ct.model = 'tag' AND t.id::text = l.object_pk ORDER BY 1, 2, 3, 4""",
    "permissions": """
        SELECT ct.app_label, ct.model, p.codename, p.name FROM auth_permission p
        JOIN django_content_type ct ON ct.id = p.content_type_id ORDER BY 1, 2, 3""",
}


def natural_view(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(dsn) as conn:
        return {name: conn.execute(q).fetchall() for name, q in QUERIES.items()}  # type: ignore[arg-type]


def counts(dsn: str) -> dict[str, int]:
    return {name: len(rows) for name, rows in natural_view(dsn).items()}


def shift_ids(dsn: str, by: int = 1000) -> None:
    """Make a re-initialised target's new ids differ from the source's."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in ("auth_user", "edms_app_tag", "edms_app_document", "edms_app_documentworkflow",
                      "edms_app_comment", "edms_app_document_tags", "edms_app_link"):
            conn.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", (table, by)  # type: ignore[arg-type]
            )
