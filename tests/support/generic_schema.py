"""A Django-style schema with generic references (content type + object id) of several
kinds: an integer id inside a natural key, a varchar id naming uuid rows, nullable
pairs, and three target tables behind one type column."""

from __future__ import annotations

SCHEMA = """
CREATE TABLE public.django_content_type (id serial PRIMARY KEY, app_label text NOT NULL, model text NOT NULL, UNIQUE (app_label, model));
CREATE TABLE public.app_document (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE public.app_cabinet (id serial PRIMARY KEY, label text NOT NULL UNIQUE);
CREATE TABLE public.app_folder (id serial PRIMARY KEY, path text NOT NULL UNIQUE);
CREATE TABLE public.app_tag (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL UNIQUE);
CREATE TABLE public.app_role (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE public.app_accessentry (
  id serial PRIMARY KEY,
  content_type_id integer NOT NULL REFERENCES public.django_content_type (id),
  object_id integer NOT NULL,
  role_id integer NOT NULL REFERENCES public.app_role (id),
  UNIQUE (content_type_id, object_id, role_id));
CREATE TABLE public.app_comment (
  id serial PRIMARY KEY,
  content_type_id integer REFERENCES public.django_content_type (id),
  object_id varchar(40),
  body text NOT NULL UNIQUE);
"""

MAPPING = """
version: 1
types:
  public.django_content_type: {table_name: "{app_label}_{model}"}
tables:
  public.django_content_type: {natural_key: [app_label, model], export: false}
  public.app_document: {natural_key: [name]}
  public.app_cabinet: {natural_key: [label]}
  public.app_folder: {natural_key: [path]}
  public.app_tag: {natural_key: [name]}
  public.app_role: {natural_key: [name]}
  public.app_accessentry:
    natural_key: [content_type_id, object_id, role_id]
    generic_references: [{type: content_type_id, id: object_id}]
  public.app_comment:
    natural_key: [body]
    generic_references: [{type: content_type_id, id: object_id}]
"""

CONTENT_TYPES = ["('app','document')", "('app','cabinet')", "('app','folder')", "('app','tag')", "('auth','user')"]

SOURCE_DATA = """
INSERT INTO django_content_type (app_label, model) VALUES {types};
INSERT INTO app_document (name) SELECT 'doc' || g FROM generate_series(1, 50) g;
INSERT INTO app_cabinet (label) SELECT 'cab' || g FROM generate_series(1, 20) g;
INSERT INTO app_folder (path) SELECT '/f' || g FROM generate_series(1, 20) g;
INSERT INTO app_tag (name) SELECT 'tag' || g FROM generate_series(1, 10) g;
INSERT INTO app_role (name) VALUES ('reader'), ('writer');
INSERT INTO app_accessentry (content_type_id, object_id, role_id)
  SELECT ct.id, o.id, r.id FROM django_content_type ct JOIN LATERAL (
    SELECT id FROM app_document WHERE ct.model = 'document'
    UNION ALL SELECT id FROM app_cabinet WHERE ct.model = 'cabinet'
    UNION ALL SELECT id FROM app_folder WHERE ct.model = 'folder') o ON true
  CROSS JOIN app_role r;
INSERT INTO app_comment (content_type_id, object_id, body)
  SELECT ct.id, t.id::text, 'on ' || t.name FROM app_tag t, django_content_type ct WHERE ct.model = 'tag'
  UNION ALL SELECT ct.id, d.id::text, 'on ' || d.name FROM app_document d, django_content_type ct
    WHERE ct.model = 'document' AND d.id < 5
  UNION ALL SELECT NULL, NULL, 'loose';
""".format(types=", ".join(CONTENT_TYPES))

# a re-initialised target: content types in another order, every id far ahead, a row of its own
TARGET_DATA = """
INSERT INTO django_content_type (app_label, model) VALUES {types};
SELECT setval(pg_get_serial_sequence('public.' || t, 'id'), 100000)
  FROM unnest(ARRAY['app_document', 'app_cabinet', 'app_folder', 'app_role', 'app_accessentry',
                    'app_comment', 'django_content_type']) AS t;
INSERT INTO app_document (name) VALUES ('other');
""".format(types=", ".join(reversed(CONTENT_TYPES)))

# every generic row, with ids replaced by what they name
ACCESS_BY_NAME = """
SELECT ct.app_label, ct.model, coalesce(d.name, c.label, f.path), r.name FROM app_accessentry a
JOIN django_content_type ct ON ct.id = a.content_type_id
LEFT JOIN app_document d ON ct.model = 'document' AND d.id = a.object_id
LEFT JOIN app_cabinet c ON ct.model = 'cabinet' AND c.id = a.object_id
LEFT JOIN app_folder f ON ct.model = 'folder' AND f.id = a.object_id
JOIN app_role r ON r.id = a.role_id ORDER BY 1, 2, 3, 4
"""

COMMENTS_BY_NAME = """
SELECT ct.model, coalesce(d.name, t.name), m.body FROM app_comment m
LEFT JOIN django_content_type ct ON ct.id = m.content_type_id
LEFT JOIN app_document d ON ct.model = 'document' AND d.id::text = m.object_id
LEFT JOIN app_tag t ON ct.model = 'tag' AND t.id::text = m.object_id ORDER BY 3
"""
