"""The subset schema of the mirror, diff and runbook tests of subsets: documents filtered
by status, their versions (owned) and the versions' comments (owned, two levels down),
folders kept as needed parents through a self-reference chain to their root, people
needed by documents, tags exported whole, and a bookmarks table outside the mapping that
can hold on to a document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from edms_pgdump.api import export_archive, import_archive
from edms_pgdump.mapping import load_mapping_text
from tests.conftest import NewDb
from tests.support import real_schemas

SCHEMA = """
CREATE TABLE public.people (id serial PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE TABLE public.folders (
    id serial PRIMARY KEY, parent_id int REFERENCES public.folders, name text NOT NULL,
    UNIQUE NULLS NOT DISTINCT (parent_id, name));
CREATE TABLE public.documents (
    id serial PRIMARY KEY, number text NOT NULL UNIQUE, status text NOT NULL,
    folder_id int REFERENCES public.folders, author_id int REFERENCES public.people,
    supersedes_id int REFERENCES public.documents);
CREATE TABLE public.versions (
    id serial PRIMARY KEY, document_id int NOT NULL REFERENCES public.documents, n int NOT NULL,
    body text, UNIQUE (document_id, n));
CREATE TABLE public.comments (
    id serial PRIMARY KEY, version_id int NOT NULL REFERENCES public.versions, seq int NOT NULL,
    note text, UNIQUE (version_id, seq));
CREATE TABLE public.tags (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE public.bookmarks (id serial PRIMARY KEY, document_id int REFERENCES public.documents);
"""

MAPPING_TEXT = """
version: 1
tables:
  public.people: {natural_key: [email]}
  public.folders: {natural_key: [parent_id, name]}
  public.documents: {natural_key: [number]}
  public.versions: {natural_key: [document_id, n]}
  public.comments: {natural_key: [version_id, seq]}
  public.tags: {natural_key: [name]}
"""
MAPPING = load_mapping_text(MAPPING_TEXT)
PUBLISHED = [("public.documents", "status = 'published'")]

# D1 and D2 are published; D2 supersedes the draft D3 and D1 the draft D6, so both come
# as needed rows (without their versions); D4 is a draft nothing names; D5 is published.
SOURCE = """
INSERT INTO public.people (email) VALUES ('alice@x'), ('bob@x'), ('carol@x');
INSERT INTO public.folders (parent_id, name) VALUES (NULL, 'root');
INSERT INTO public.folders (parent_id, name) SELECT id, 'a' FROM public.folders WHERE name = 'root';
INSERT INTO public.folders (parent_id, name) SELECT id, 'b' FROM public.folders WHERE name = 'a';
INSERT INTO public.folders (parent_id, name) SELECT id, 'c' FROM public.folders WHERE name = 'b';
INSERT INTO public.folders (parent_id, name) VALUES (NULL, 'other');
INSERT INTO public.documents (number, status, folder_id, author_id) VALUES
    ('D3', 'draft', (SELECT id FROM public.folders WHERE name = 'other'), 2),
    ('D4', 'draft', NULL, 3),
    ('D6', 'draft', NULL, 3);
INSERT INTO public.documents (number, status, folder_id, author_id, supersedes_id) VALUES
    ('D1', 'published', (SELECT id FROM public.folders WHERE name = 'c'), 1,
     (SELECT id FROM public.documents WHERE number = 'D6')),
    ('D2', 'published', (SELECT id FROM public.folders WHERE name = 'root'), 2,
     (SELECT id FROM public.documents WHERE number = 'D3')),
    ('D5', 'published', NULL, NULL, NULL);
INSERT INTO public.versions (document_id, n, body)
    SELECT d.id, g, d.number || ' v' || g FROM public.documents d,
    LATERAL generate_series(1, CASE WHEN d.number IN ('D1', 'D3') THEN 2 ELSE 1 END) g;
INSERT INTO public.comments (version_id, seq, note)
    SELECT v.id, g, 'c' || g FROM public.versions v JOIN public.documents d ON d.id = v.document_id,
    generate_series(1, 2) g WHERE d.number = 'D1' AND v.n = 1;
INSERT INTO public.tags (name) VALUES ('t1'), ('t2');
"""

# The target after a full copy of the source has rows of its own.
TARGET_CHANGES = """
-- in scope, not in the archive: a published document, its version and comment
INSERT INTO public.documents (number, status, folder_id, author_id) VALUES
    ('D7', 'published', (SELECT id FROM public.folders WHERE name = 'a'), 3);
INSERT INTO public.versions (document_id, n, body) SELECT id, 1, 'D7 v1' FROM public.documents WHERE number = 'D7';
INSERT INTO public.comments (version_id, seq, note) SELECT v.id, 1, 'on D7' FROM public.versions v
    JOIN public.documents d ON d.id = v.document_id WHERE d.number = 'D7';
-- in scope: a third version of D1, a third comment on its first version
INSERT INTO public.versions (document_id, n, body) SELECT id, 3, 'D1 v3' FROM public.documents WHERE number = 'D1';
INSERT INTO public.comments (version_id, seq, note) SELECT v.id, 3, 'c3' FROM public.versions v
    JOIN public.documents d ON d.id = v.document_id WHERE d.number = 'D1' AND v.n = 1;
-- D5 is a draft here: the import publishes it, so its extra version is in scope after the writes
UPDATE public.documents SET status = 'draft' WHERE number = 'D5';
INSERT INTO public.versions (document_id, n, body) SELECT id, 3, 'D5 v3' FROM public.documents WHERE number = 'D5';
-- D6 is published here: the archive holds it as a draft (needed), so its versions are out of scope
UPDATE public.documents SET status = 'published' WHERE number = 'D6';
INSERT INTO public.versions (document_id, n, body) SELECT id, 9, 'D6 v9' FROM public.documents WHERE number = 'D6';
-- out of scope: a draft document of the target's own with a version
INSERT INTO public.documents (number, status) VALUES ('D8', 'draft');
INSERT INTO public.versions (document_id, n, body) SELECT id, 1, 'D8 v1' FROM public.documents WHERE number = 'D8';
-- needed tables: rows of their own stay
INSERT INTO public.people (email) VALUES ('dave@x');
INSERT INTO public.folders (parent_id, name) SELECT id, 'extra' FROM public.folders WHERE name = 'a';
-- a whole table: mirrored as a whole
INSERT INTO public.tags (name) VALUES ('t9');
"""


def make_db(new_db: NewDb, *statements: str) -> str:
    """A new database with the subset schema, then ``statements``."""
    return real_schemas.make_db(new_db, SCHEMA, *statements)


def execute(dsn: str, statement: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(statement.encode())


def natural(dsn: str) -> dict[str, set[tuple[Any, ...]]]:
    """Every table's rows by natural values (ids of another database never match)."""
    queries = {
        "documents": "SELECT d.number, d.status, f.name, p.email, s.number FROM public.documents d"
        " LEFT JOIN public.folders f ON f.id = d.folder_id LEFT JOIN public.people p ON p.id = d.author_id"
        " LEFT JOIN public.documents s ON s.id = d.supersedes_id",
        "versions": "SELECT d.number, v.n, v.body FROM public.versions v JOIN public.documents d ON d.id = v.document_id",
        "comments": "SELECT d.number, v.n, c.seq, c.note FROM public.comments c JOIN public.versions v ON v.id = c.version_id"
        " JOIN public.documents d ON d.id = v.document_id",
        "folders": "SELECT f.name, p.name FROM public.folders f LEFT JOIN public.folders p ON p.id = f.parent_id",
        "people": "SELECT email FROM public.people",
        "tags": "SELECT name FROM public.tags",
    }
    with psycopg.connect(dsn) as c:
        return {t: {tuple(r) for r in c.execute(q.encode()).fetchall()} for t, q in queries.items()}


def setup(new_db: NewDb, tmp_path: Path) -> tuple[str, str, Path]:
    """(source, target: a full copy of the source plus rows of its own, subset archive)."""
    src = make_db(new_db, SOURCE)
    dst = make_db(new_db)
    full = tmp_path / "full.edmsdump"
    export_archive(src, MAPPING, full, audit_log=False)
    assert import_archive(dst, full, audit_log=False, history=False).committed
    execute(dst, TARGET_CHANGES)
    subset = tmp_path / "published.edmsdump"
    export_archive(src, MAPPING, subset, where=PUBLISHED, audit_log=False)
    return src, dst, subset
