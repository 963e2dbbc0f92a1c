-- edms-pgdump import runbook; generated from the mapping with sha256 350fa503aad9a69a406a1151624bb0bf740ac6c1ce21e2419e84e65befbfd974
-- tables in load order: public.users, public.documents, public.document_versions, public.document_workflows
-- run: psql -v ON_ERROR_STOP=1 -v datadir=DIR -d TARGET -f import.sql
-- DIR holds one COPY text file per table (0001.copy, ...), counts.copy and scope.copy.
-- psqlrc settings that would change the transaction semantics are reset here.
\set ON_ERROR_STOP on
\set ON_ERROR_ROLLBACK off
\set AUTOCOMMIT on
\if :{?datadir}
\else
\set datadir .
\endif
\cd :datadir
SET "DateStyle" = 'ISO';
SET "IntervalStyle" = 'postgres';
SET "TimeZone" = 'UTC';
SET "extra_float_digits" = '3';
SET "bytea_output" = 'hex';
SET "search_path" = '';
SET "client_encoding" = 'UTF8';
SET "standard_conforming_strings" = 'on';
SET "row_security" = 'off';
BEGIN;
SET LOCAL "temp_buffers" = '256MB';
SET LOCAL "lock_timeout" = '30s';
SET LOCAL "statement_timeout" = '0';
SET LOCAL "work_mem" = '256MB';
SET LOCAL "maintenance_work_mem" = '256MB';
SET LOCAL "default_statistics_target" = '20';
SET LOCAL "jit" = 'off';
DO $edms_session$ BEGIN PERFORM pg_catalog.set_config('search_path', CASE WHEN s.reset_val OPERATOR(pg_catalog.=) '' THEN 'pg_catalog, pg_temp' ELSE 'pg_catalog, pg_temp, ' OPERATOR(pg_catalog.||) s.reset_val END, true) FROM pg_catalog.pg_settings AS s WHERE s.name OPERATOR(pg_catalog.=) 'search_path'; END $edms_session$;
CREATE TEMP TABLE edms_expected (idx integer, table_name text, rows bigint, fields text) ON COMMIT DROP;
\copy edms_expected FROM 'counts.copy'
CREATE TEMP TABLE edms_tables (idx integer PRIMARY KEY, table_name text NOT NULL, fields text NOT NULL) ON COMMIT DROP;
CREATE TEMP TABLE edms_count (idx integer, name text, value bigint, PRIMARY KEY (idx, name)) ON COMMIT DROP;
INSERT INTO edms_tables (idx, table_name, fields) VALUES (1, 'public.users', '["username", "email", "full_name", "is_active", "created_at"]'), (2, 'public.documents', '["document_number", "title", "owner_id.username", "parent_id.document_number", "current_version_id.document_id.document_number", "current_version_id.version_number", "status", "created_at"]'), (3, 'public.document_versions', '["document_id.document_number", "version_number", "content_hash", "size_bytes", "created_by_id.username", "created_at"]'), (4, 'public.document_workflows', '["document_id.document_number", "workflow_type", "state", "assignee_id.username", "due_date"]');
DO $edms$
DECLARE
  found text;
BEGIN
  SELECT string_agg(coalesce(e.idx, r.idx) || ': ' || coalesce(e.table_name, '(missing)') || ' vs ' || coalesce(r.table_name, '(missing)'), ', ')
    INTO found FROM edms_expected AS e FULL JOIN edms_tables AS r ON r.idx = e.idx
    WHERE e.table_name IS DISTINCT FROM r.table_name;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'counts.copy does not list the tables this script loads (' || found || '); use data written by the export.sql generated from the same mapping';
  END IF;
  SELECT string_agg(r.table_name || ' was exported with ' || e.fields || ' but is loaded as ' || r.fields, '; ')
    INTO found FROM edms_expected AS e JOIN edms_tables AS r ON r.idx = e.idx
    WHERE e.fields IS DISTINCT FROM r.fields;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'the data files do not have the columns this script loads: ' || found || '; migrate the schemas to match, then generate export.sql against the source and import.sql against the target again';
  END IF;
  INSERT INTO edms_count SELECT idx, 'expected', rows FROM edms_expected;
END
$edms$;
LOCK TABLE "public"."document_versions", "public"."document_workflows", "public"."documents", "public"."users" IN SHARE ROW EXCLUSIVE MODE;
CREATE TEMP TABLE "edms_xact_before" ON COMMIT DROP AS SELECT s.relid, s.n_tup_ins AS ins, s.n_tup_upd AS upd, s.n_tup_del AS del FROM pg_catalog.pg_stat_xact_user_tables AS s;

-- public.users
CREATE TEMP TABLE "edms_001_users_raw" ("username" text, "email" text, "full_name" text, "is_active" boolean, "created_at" timestamp with time zone) ON COMMIT DROP;
\copy "edms_001_users_raw" ("username", "email", "full_name", "is_active", "created_at") FROM '0001.copy' (FREEZE)
INSERT INTO edms_count VALUES (1, 'staged', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
DO $edms$
DECLARE
  got bigint;
  want bigint;
BEGIN
  got := coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'staged'), 0);
  want := coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'expected'), 0);
  IF got <> want THEN
    RAISE EXCEPTION USING MESSAGE = 'public.users: staged ' || got || ' rows but the manifest says ' || want || '; the archive is inconsistent, re-export it';
  END IF;
END
$edms$;

-- public.documents
CREATE TEMP TABLE "edms_002_documents_raw" ("document_number" text, "title" text, "owner_id.username" text, "parent_id.document_number" text, "current_version_id.document_id.document_number" text, "current_version_id.version_number" integer, "status" text, "created_at" timestamp with time zone) ON COMMIT DROP;
\copy "edms_002_documents_raw" ("document_number", "title", "owner_id.username", "parent_id.document_number", "current_version_id.document_id.document_number", "current_version_id.version_number", "status", "created_at") FROM '0002.copy' (FREEZE)
INSERT INTO edms_count VALUES (2, 'staged', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
DO $edms$
DECLARE
  got bigint;
  want bigint;
BEGIN
  got := coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'staged'), 0);
  want := coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'expected'), 0);
  IF got <> want THEN
    RAISE EXCEPTION USING MESSAGE = 'public.documents: staged ' || got || ' rows but the manifest says ' || want || '; the archive is inconsistent, re-export it';
  END IF;
END
$edms$;

-- public.document_versions
CREATE TEMP TABLE "edms_003_document_versions_raw" ("document_id.document_number" text, "version_number" integer, "content_hash" text, "size_bytes" bigint, "created_by_id.username" text, "created_at" timestamp with time zone) ON COMMIT DROP;
\copy "edms_003_document_versions_raw" ("document_id.document_number", "version_number", "content_hash", "size_bytes", "created_by_id.username", "created_at") FROM '0003.copy' (FREEZE)
INSERT INTO edms_count VALUES (3, 'staged', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
DO $edms$
DECLARE
  got bigint;
  want bigint;
BEGIN
  got := coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'staged'), 0);
  want := coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'expected'), 0);
  IF got <> want THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_versions: staged ' || got || ' rows but the manifest says ' || want || '; the archive is inconsistent, re-export it';
  END IF;
END
$edms$;

-- public.document_workflows
CREATE TEMP TABLE "edms_004_document_workflows_raw" ("document_id.document_number" text, "workflow_type" text, "state" text, "assignee_id.username" text, "due_date" date) ON COMMIT DROP;
\copy "edms_004_document_workflows_raw" ("document_id.document_number", "workflow_type", "state", "assignee_id.username", "due_date") FROM '0004.copy' (FREEZE)
INSERT INTO edms_count VALUES (4, 'staged', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
DO $edms$
DECLARE
  got bigint;
  want bigint;
BEGIN
  got := coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'staged'), 0);
  want := coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'expected'), 0);
  IF got <> want THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_workflows: staged ' || got || ' rows but the manifest says ' || want || '; the archive is inconsistent, re-export it';
  END IF;
END
$edms$;
SET LOCAL "enable_nestloop" = off;
SET LOCAL "parallel_setup_cost" = '100';
SET LOCAL "parallel_tuple_cost" = '0.01';

-- public.users
INSERT INTO edms_count SELECT 1, v.name, v.value FROM (SELECT GREATEST(c.reltuples, pg_catalog.pg_stat_get_live_tuples(c.oid), 0)::bigint FROM pg_catalog.pg_class AS c WHERE c.oid OPERATOR(pg_catalog.=) '"public"."users"'::pg_catalog.regclass) AS q(c0) CROSS JOIN LATERAL (VALUES ('target rows', q.c0)) AS v(name, value) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
SELECT (2 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'target rows'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'staged'), 0)) >= 0 AS edms_when \gset
-- when the target holds at least half as many rows
\if :edms_when

-- public.users
ANALYZE "edms_001_users_raw" ("username");

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'staged'), 0) + -10 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'target rows'), 0)) >= 1 AS edms_when \gset
-- when the target holds few rows, as estimated
\if :edms_when

-- public.users
INSERT INTO edms_count SELECT 1, v.name, v.value FROM (SELECT pg_catalog.count(*) FROM "public"."users" AS t) AS q(c0) CROSS JOIN LATERAL (VALUES ('target rows held', q.c0)) AS v(name, value) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (10 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'target rows'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'staged'), 0)) >= 0 AS edms_when \gset
-- when the target holds many rows
\if :edms_when

-- public.users
INSERT INTO edms_count VALUES (1, 'target rows held', (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'target rows'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (10 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'target rows held'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'staged'), 0)) >= 0 AS edms_when \gset
-- when the target holds at least 1 row in 10 of the staged
\if :edms_when

-- public.users
CREATE TEMP TABLE "edms_001_users_same" ON COMMIT DROP AS SELECT v."username" AS "username", v."#t:id" AS "id" FROM (SELECT t."username" AS "username", t."email" AS "email", t."full_name" AS "full_name", t."is_active" AS "is_active", t."created_at" AS "created_at", t."id" AS "#t:id" FROM "public"."users" AS t) AS v WHERE EXISTS (SELECT 1 FROM "edms_001_users_raw" AS s WHERE v."username" OPERATOR("pg_catalog".=) s."username" AND NOT (s."username" IS DISTINCT FROM v."username" OR s."email" IS DISTINCT FROM v."email" OR s."full_name" IS DISTINCT FROM v."full_name" OR s."is_active" IS DISTINCT FROM v."is_active" OR s."created_at" IS DISTINCT FROM v."created_at"));
INSERT INTO edms_count VALUES (1, 'same', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'staged'), 0) + -10 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'target rows held'), 0)) >= 1 AS edms_when \gset
-- when the target holds fewer than 1 row in 10 of the staged
\if :edms_when

-- public.users
CREATE TEMP TABLE "edms_001_users_same" ON COMMIT DROP AS SELECT v."username" AS "username", v."#t:id" AS "id" FROM (SELECT t."username" AS "username", t."email" AS "email", t."full_name" AS "full_name", t."is_active" AS "is_active", t."created_at" AS "created_at", t."id" AS "#t:id" FROM "public"."users" AS t) AS v WHERE EXISTS (SELECT 1 FROM "edms_001_users_raw" AS s WHERE v."username" OPERATOR("pg_catalog".=) s."username" AND NOT (s."username" IS DISTINCT FROM v."username" OR s."email" IS DISTINCT FROM v."email" OR s."full_name" IS DISTINCT FROM v."full_name" OR s."is_active" IS DISTINCT FROM v."is_active" OR s."created_at" IS DISTINCT FROM v."created_at")) WITH NO DATA;
INSERT INTO edms_count VALUES (1, 'same', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif

-- public.users
INSERT INTO edms_count VALUES (1, 'to resolve', (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'same'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
ANALYZE "edms_001_users_same" ("username");

-- all tables
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'to resolve'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'staged'), 0) + -10 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'to resolve'), 0)) >= 0 AS edms_when \gset
-- when some rows to resolve, at most 1 in 10 staged
\if :edms_when

-- public.users
CREATE TEMP TABLE "edms_001_users_todo" ON COMMIT DROP AS SELECT s.* FROM "edms_001_users_raw" AS s WHERE NOT EXISTS (SELECT 1 FROM "edms_001_users_same" AS m WHERE "m"."username" OPERATOR("pg_catalog".=) "s"."username");
ANALYZE "edms_001_users_todo" ("username");

-- all tables
\endif
SELECT (-1 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'to resolve'), 0)) >= 0 AS edms_when \gset
-- when no row to resolve
\if :edms_when

-- public.users
CREATE TEMP VIEW "edms_001_users_todo" AS SELECT s.* FROM "edms_001_users_raw" AS s WHERE NOT EXISTS (SELECT 1 FROM "edms_001_users_same" AS m WHERE "m"."username" OPERATOR("pg_catalog".=) "s"."username");

-- all tables
\endif
SELECT (10 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'to resolve'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'staged'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'same'), 0)) >= 1 AS edms_when \gset
-- when many rows to resolve
\if :edms_when

-- public.users
CREATE TEMP VIEW "edms_001_users_todo" AS SELECT s.* FROM "edms_001_users_raw" AS s WHERE NOT EXISTS (SELECT 1 FROM "edms_001_users_same" AS m WHERE "m"."username" OPERATOR("pg_catalog".=) "s"."username");

-- all tables
\endif
SELECT (10 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'to resolve'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'staged'), 0)) >= 1 AND (-1 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'same'), 0)) >= 0 AS edms_when \gset
-- when every staged row to resolve
\if :edms_when

-- public.users
CREATE TEMP VIEW "edms_001_users_todo" AS SELECT s.* FROM "edms_001_users_raw" AS s;

-- all tables
\endif

-- public.documents
INSERT INTO edms_count SELECT 2, v.name, v.value FROM (SELECT GREATEST(c.reltuples, pg_catalog.pg_stat_get_live_tuples(c.oid), 0)::bigint FROM pg_catalog.pg_class AS c WHERE c.oid OPERATOR(pg_catalog.=) '"public"."documents"'::pg_catalog.regclass) AS q(c0) CROSS JOIN LATERAL (VALUES ('target rows', q.c0)) AS v(name, value) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
SELECT (2 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'target rows'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'staged'), 0)) >= 0 AS edms_when \gset
-- when the target holds at least half as many rows
\if :edms_when

-- public.documents
ANALYZE "edms_002_documents_raw" ("document_number");

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'staged'), 0) + -10 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'target rows'), 0)) >= 1 AS edms_when \gset
-- when the target holds few rows, as estimated
\if :edms_when

-- public.documents
INSERT INTO edms_count SELECT 2, v.name, v.value FROM (SELECT pg_catalog.count(*) FROM "public"."documents" AS t) AS q(c0) CROSS JOIN LATERAL (VALUES ('target rows held', q.c0)) AS v(name, value) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (10 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'target rows'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'staged'), 0)) >= 0 AS edms_when \gset
-- when the target holds many rows
\if :edms_when

-- public.documents
INSERT INTO edms_count VALUES (2, 'target rows held', (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'target rows'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (10 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'target rows held'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'staged'), 0)) >= 0 AS edms_when \gset
-- when the target holds at least 1 row in 10 of the staged
\if :edms_when

-- public.documents
CREATE TEMP TABLE "edms_002_documents_same" ON COMMIT DROP AS SELECT v."document_number" AS "document_number", v."#t:id" AS "id" FROM (SELECT t."document_number" AS "document_number", t."title" AS "title", "u1"."username" AS "owner_id.username", (t."owner_id" IS NULL) AS "#t:null:owner_id", "u2"."document_number" AS "parent_id.document_number", (t."parent_id" IS NULL) AS "#t:null:parent_id", "u4"."document_number" AS "current_version_id.document_id.document_number", "u3"."version_number" AS "current_version_id.version_number", (t."current_version_id" IS NULL) AS "#t:null:current_version_id", t."status" AS "status", t."created_at" AS "created_at", t."id" AS "#t:id" FROM "public"."documents" AS t LEFT JOIN "public"."users" AS "u1" ON "u1"."id" OPERATOR("pg_catalog".=) "t"."owner_id" LEFT JOIN "public"."documents" AS "u2" ON "u2"."id" OPERATOR("pg_catalog".=) "t"."parent_id" LEFT JOIN "public"."document_versions" AS "u3" ON "u3"."id" OPERATOR("pg_catalog".=) "t"."current_version_id" LEFT JOIN "public"."documents" AS "u4" ON "u4"."id" OPERATOR("pg_catalog".=) "u3"."document_id") AS v WHERE EXISTS (SELECT 1 FROM "edms_002_documents_raw" AS s WHERE v."document_number" OPERATOR("pg_catalog".=) s."document_number" AND NOT (s."document_number" IS DISTINCT FROM v."document_number" OR s."title" IS DISTINCT FROM v."title" OR s."owner_id.username" IS DISTINCT FROM v."owner_id.username" OR s."parent_id.document_number" IS DISTINCT FROM v."parent_id.document_number" OR s."current_version_id.document_id.document_number" IS DISTINCT FROM v."current_version_id.document_id.document_number" OR s."current_version_id.version_number" IS DISTINCT FROM v."current_version_id.version_number" OR s."status" IS DISTINCT FROM v."status" OR s."created_at" IS DISTINCT FROM v."created_at" OR v."#t:null:current_version_id" IS DISTINCT FROM (s."current_version_id.document_id.document_number" IS NULL AND s."current_version_id.version_number" IS NULL) OR v."#t:null:owner_id" IS DISTINCT FROM (s."owner_id.username" IS NULL) OR v."#t:null:parent_id" IS DISTINCT FROM (s."parent_id.document_number" IS NULL)));
INSERT INTO edms_count VALUES (2, 'same', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'staged'), 0) + -10 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'target rows held'), 0)) >= 1 AS edms_when \gset
-- when the target holds fewer than 1 row in 10 of the staged
\if :edms_when

-- public.documents
CREATE TEMP TABLE "edms_002_documents_same" ON COMMIT DROP AS SELECT v."document_number" AS "document_number", v."#t:id" AS "id" FROM (SELECT t."document_number" AS "document_number", t."title" AS "title", "u1"."username" AS "owner_id.username", (t."owner_id" IS NULL) AS "#t:null:owner_id", "u2"."document_number" AS "parent_id.document_number", (t."parent_id" IS NULL) AS "#t:null:parent_id", "u4"."document_number" AS "current_version_id.document_id.document_number", "u3"."version_number" AS "current_version_id.version_number", (t."current_version_id" IS NULL) AS "#t:null:current_version_id", t."status" AS "status", t."created_at" AS "created_at", t."id" AS "#t:id" FROM "public"."documents" AS t LEFT JOIN "public"."users" AS "u1" ON "u1"."id" OPERATOR("pg_catalog".=) "t"."owner_id" LEFT JOIN "public"."documents" AS "u2" ON "u2"."id" OPERATOR("pg_catalog".=) "t"."parent_id" LEFT JOIN "public"."document_versions" AS "u3" ON "u3"."id" OPERATOR("pg_catalog".=) "t"."current_version_id" LEFT JOIN "public"."documents" AS "u4" ON "u4"."id" OPERATOR("pg_catalog".=) "u3"."document_id") AS v WHERE EXISTS (SELECT 1 FROM "edms_002_documents_raw" AS s WHERE v."document_number" OPERATOR("pg_catalog".=) s."document_number" AND NOT (s."document_number" IS DISTINCT FROM v."document_number" OR s."title" IS DISTINCT FROM v."title" OR s."owner_id.username" IS DISTINCT FROM v."owner_id.username" OR s."parent_id.document_number" IS DISTINCT FROM v."parent_id.document_number" OR s."current_version_id.document_id.document_number" IS DISTINCT FROM v."current_version_id.document_id.document_number" OR s."current_version_id.version_number" IS DISTINCT FROM v."current_version_id.version_number" OR s."status" IS DISTINCT FROM v."status" OR s."created_at" IS DISTINCT FROM v."created_at" OR v."#t:null:current_version_id" IS DISTINCT FROM (s."current_version_id.document_id.document_number" IS NULL AND s."current_version_id.version_number" IS NULL) OR v."#t:null:owner_id" IS DISTINCT FROM (s."owner_id.username" IS NULL) OR v."#t:null:parent_id" IS DISTINCT FROM (s."parent_id.document_number" IS NULL))) WITH NO DATA;
INSERT INTO edms_count VALUES (2, 'same', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif

-- public.documents
INSERT INTO edms_count VALUES (2, 'to resolve', (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'same'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
ANALYZE "edms_002_documents_same" ("document_number");

-- all tables
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'to resolve'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'staged'), 0) + -10 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'to resolve'), 0)) >= 0 AS edms_when \gset
-- when some rows to resolve, at most 1 in 10 staged
\if :edms_when

-- public.documents
CREATE TEMP TABLE "edms_002_documents_todo" ON COMMIT DROP AS SELECT s.* FROM "edms_002_documents_raw" AS s WHERE NOT EXISTS (SELECT 1 FROM "edms_002_documents_same" AS m WHERE "m"."document_number" OPERATOR("pg_catalog".=) "s"."document_number");
ANALYZE "edms_002_documents_todo" ("document_number");

-- all tables
\endif
SELECT (-1 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'to resolve'), 0)) >= 0 AS edms_when \gset
-- when no row to resolve
\if :edms_when

-- public.documents
CREATE TEMP VIEW "edms_002_documents_todo" AS SELECT s.* FROM "edms_002_documents_raw" AS s WHERE NOT EXISTS (SELECT 1 FROM "edms_002_documents_same" AS m WHERE "m"."document_number" OPERATOR("pg_catalog".=) "s"."document_number");

-- all tables
\endif
SELECT (10 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'to resolve'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'staged'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'same'), 0)) >= 1 AS edms_when \gset
-- when many rows to resolve
\if :edms_when

-- public.documents
CREATE TEMP VIEW "edms_002_documents_todo" AS SELECT s.* FROM "edms_002_documents_raw" AS s WHERE NOT EXISTS (SELECT 1 FROM "edms_002_documents_same" AS m WHERE "m"."document_number" OPERATOR("pg_catalog".=) "s"."document_number");

-- all tables
\endif
SELECT (10 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'to resolve'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'staged'), 0)) >= 1 AND (-1 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'same'), 0)) >= 0 AS edms_when \gset
-- when every staged row to resolve
\if :edms_when

-- public.documents
CREATE TEMP VIEW "edms_002_documents_todo" AS SELECT s.* FROM "edms_002_documents_raw" AS s;

-- all tables
\endif

-- public.document_versions
INSERT INTO edms_count SELECT 3, v.name, v.value FROM (SELECT GREATEST(c.reltuples, pg_catalog.pg_stat_get_live_tuples(c.oid), 0)::bigint FROM pg_catalog.pg_class AS c WHERE c.oid OPERATOR(pg_catalog.=) '"public"."document_versions"'::pg_catalog.regclass) AS q(c0) CROSS JOIN LATERAL (VALUES ('target rows', q.c0)) AS v(name, value) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
SELECT (2 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'target rows'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'staged'), 0)) >= 0 AS edms_when \gset
-- when the target holds at least half as many rows
\if :edms_when

-- public.document_versions
ANALYZE "edms_003_document_versions_raw" ("document_id.document_number", "version_number");

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'staged'), 0) + -10 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'target rows'), 0)) >= 1 AS edms_when \gset
-- when the target holds few rows, as estimated
\if :edms_when

-- public.document_versions
INSERT INTO edms_count SELECT 3, v.name, v.value FROM (SELECT pg_catalog.count(*) FROM "public"."document_versions" AS t) AS q(c0) CROSS JOIN LATERAL (VALUES ('target rows held', q.c0)) AS v(name, value) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (10 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'target rows'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'staged'), 0)) >= 0 AS edms_when \gset
-- when the target holds many rows
\if :edms_when

-- public.document_versions
INSERT INTO edms_count VALUES (3, 'target rows held', (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'target rows'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (10 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'target rows held'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'staged'), 0)) >= 0 AS edms_when \gset
-- when the target holds at least 1 row in 10 of the staged
\if :edms_when

-- public.document_versions
CREATE TEMP TABLE "edms_003_document_versions_same" ON COMMIT DROP AS SELECT v."document_id.document_number" AS "document_id.document_number", v."version_number" AS "version_number", v."#t:id" AS "id" FROM (SELECT "u1"."document_number" AS "document_id.document_number", (t."document_id" IS NULL) AS "#t:null:document_id", t."version_number" AS "version_number", t."content_hash" AS "content_hash", t."size_bytes" AS "size_bytes", "u2"."username" AS "created_by_id.username", (t."created_by_id" IS NULL) AS "#t:null:created_by_id", t."created_at" AS "created_at", t."id" AS "#t:id" FROM "public"."document_versions" AS t LEFT JOIN "public"."documents" AS "u1" ON "u1"."id" OPERATOR("pg_catalog".=) "t"."document_id" LEFT JOIN "public"."users" AS "u2" ON "u2"."id" OPERATOR("pg_catalog".=) "t"."created_by_id") AS v WHERE EXISTS (SELECT 1 FROM "edms_003_document_versions_raw" AS s WHERE v."document_id.document_number" OPERATOR("pg_catalog".=) s."document_id.document_number" AND v."version_number" OPERATOR("pg_catalog".=) s."version_number" AND NOT (s."document_id.document_number" IS DISTINCT FROM v."document_id.document_number" OR s."version_number" IS DISTINCT FROM v."version_number" OR s."content_hash" IS DISTINCT FROM v."content_hash" OR s."size_bytes" IS DISTINCT FROM v."size_bytes" OR s."created_by_id.username" IS DISTINCT FROM v."created_by_id.username" OR s."created_at" IS DISTINCT FROM v."created_at" OR v."#t:null:created_by_id" IS DISTINCT FROM (s."created_by_id.username" IS NULL) OR v."#t:null:document_id" IS DISTINCT FROM (s."document_id.document_number" IS NULL)));
INSERT INTO edms_count VALUES (3, 'same', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'staged'), 0) + -10 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'target rows held'), 0)) >= 1 AS edms_when \gset
-- when the target holds fewer than 1 row in 10 of the staged
\if :edms_when

-- public.document_versions
CREATE TEMP TABLE "edms_003_document_versions_same" ON COMMIT DROP AS SELECT v."document_id.document_number" AS "document_id.document_number", v."version_number" AS "version_number", v."#t:id" AS "id" FROM (SELECT "u1"."document_number" AS "document_id.document_number", (t."document_id" IS NULL) AS "#t:null:document_id", t."version_number" AS "version_number", t."content_hash" AS "content_hash", t."size_bytes" AS "size_bytes", "u2"."username" AS "created_by_id.username", (t."created_by_id" IS NULL) AS "#t:null:created_by_id", t."created_at" AS "created_at", t."id" AS "#t:id" FROM "public"."document_versions" AS t LEFT JOIN "public"."documents" AS "u1" ON "u1"."id" OPERATOR("pg_catalog".=) "t"."document_id" LEFT JOIN "public"."users" AS "u2" ON "u2"."id" OPERATOR("pg_catalog".=) "t"."created_by_id") AS v WHERE EXISTS (SELECT 1 FROM "edms_003_document_versions_raw" AS s WHERE v."document_id.document_number" OPERATOR("pg_catalog".=) s."document_id.document_number" AND v."version_number" OPERATOR("pg_catalog".=) s."version_number" AND NOT (s."document_id.document_number" IS DISTINCT FROM v."document_id.document_number" OR s."version_number" IS DISTINCT FROM v."version_number" OR s."content_hash" IS DISTINCT FROM v."content_hash" OR s."size_bytes" IS DISTINCT FROM v."size_bytes" OR s."created_by_id.username" IS DISTINCT FROM v."created_by_id.username" OR s."created_at" IS DISTINCT FROM v."created_at" OR v."#t:null:created_by_id" IS DISTINCT FROM (s."created_by_id.username" IS NULL) OR v."#t:null:document_id" IS DISTINCT FROM (s."document_id.document_number" IS NULL))) WITH NO DATA;
INSERT INTO edms_count VALUES (3, 'same', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif

-- public.document_versions
INSERT INTO edms_count VALUES (3, 'to resolve', (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'same'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
ANALYZE "edms_003_document_versions_same" ("document_id.document_number", "version_number");

-- all tables
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'to resolve'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'staged'), 0) + -10 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'to resolve'), 0)) >= 0 AS edms_when \gset
-- when some rows to resolve, at most 1 in 10 staged
\if :edms_when

-- public.document_versions
CREATE TEMP TABLE "edms_003_document_versions_todo" ON COMMIT DROP AS SELECT s.* FROM "edms_003_document_versions_raw" AS s WHERE NOT EXISTS (SELECT 1 FROM "edms_003_document_versions_same" AS m WHERE "m"."document_id.document_number" OPERATOR("pg_catalog".=) "s"."document_id.document_number" AND "m"."version_number" OPERATOR("pg_catalog".=) "s"."version_number");
ANALYZE "edms_003_document_versions_todo" ("document_id.document_number", "version_number");

-- all tables
\endif
SELECT (-1 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'to resolve'), 0)) >= 0 AS edms_when \gset
-- when no row to resolve
\if :edms_when

-- public.document_versions
CREATE TEMP VIEW "edms_003_document_versions_todo" AS SELECT s.* FROM "edms_003_document_versions_raw" AS s WHERE NOT EXISTS (SELECT 1 FROM "edms_003_document_versions_same" AS m WHERE "m"."document_id.document_number" OPERATOR("pg_catalog".=) "s"."document_id.document_number" AND "m"."version_number" OPERATOR("pg_catalog".=) "s"."version_number");

-- all tables
\endif
SELECT (10 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'to resolve'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'staged'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'same'), 0)) >= 1 AS edms_when \gset
-- when many rows to resolve
\if :edms_when

-- public.document_versions
CREATE TEMP VIEW "edms_003_document_versions_todo" AS SELECT s.* FROM "edms_003_document_versions_raw" AS s WHERE NOT EXISTS (SELECT 1 FROM "edms_003_document_versions_same" AS m WHERE "m"."document_id.document_number" OPERATOR("pg_catalog".=) "s"."document_id.document_number" AND "m"."version_number" OPERATOR("pg_catalog".=) "s"."version_number");

-- all tables
\endif
SELECT (10 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'to resolve'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'staged'), 0)) >= 1 AND (-1 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'same'), 0)) >= 0 AS edms_when \gset
-- when every staged row to resolve
\if :edms_when

-- public.document_versions
CREATE TEMP VIEW "edms_003_document_versions_todo" AS SELECT s.* FROM "edms_003_document_versions_raw" AS s;

-- all tables
\endif

-- public.document_workflows
INSERT INTO edms_count SELECT 4, v.name, v.value FROM (SELECT GREATEST(c.reltuples, pg_catalog.pg_stat_get_live_tuples(c.oid), 0)::bigint FROM pg_catalog.pg_class AS c WHERE c.oid OPERATOR(pg_catalog.=) '"public"."document_workflows"'::pg_catalog.regclass) AS q(c0) CROSS JOIN LATERAL (VALUES ('target rows', q.c0)) AS v(name, value) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
SELECT (2 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'target rows'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'staged'), 0)) >= 0 AS edms_when \gset
-- when the target holds at least half as many rows
\if :edms_when

-- public.document_workflows
ANALYZE "edms_004_document_workflows_raw" ("document_id.document_number", "workflow_type");

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'staged'), 0) + -10 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'target rows'), 0)) >= 1 AS edms_when \gset
-- when the target holds few rows, as estimated
\if :edms_when

-- public.document_workflows
INSERT INTO edms_count SELECT 4, v.name, v.value FROM (SELECT pg_catalog.count(*) FROM "public"."document_workflows" AS t) AS q(c0) CROSS JOIN LATERAL (VALUES ('target rows held', q.c0)) AS v(name, value) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (10 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'target rows'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'staged'), 0)) >= 0 AS edms_when \gset
-- when the target holds many rows
\if :edms_when

-- public.document_workflows
INSERT INTO edms_count VALUES (4, 'target rows held', (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'target rows'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (10 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'target rows held'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'staged'), 0)) >= 0 AS edms_when \gset
-- when the target holds at least 1 row in 10 of the staged
\if :edms_when

-- public.document_workflows
CREATE TEMP TABLE "edms_004_document_workflows_same" ON COMMIT DROP AS SELECT v."document_id.document_number" AS "document_id.document_number", v."workflow_type" AS "workflow_type", v."#t:id" AS "id" FROM (SELECT "u1"."document_number" AS "document_id.document_number", (t."document_id" IS NULL) AS "#t:null:document_id", t."workflow_type" AS "workflow_type", t."state" AS "state", "u2"."username" AS "assignee_id.username", (t."assignee_id" IS NULL) AS "#t:null:assignee_id", t."due_date" AS "due_date", t."id" AS "#t:id" FROM "public"."document_workflows" AS t LEFT JOIN "public"."documents" AS "u1" ON "u1"."id" OPERATOR("pg_catalog".=) "t"."document_id" LEFT JOIN "public"."users" AS "u2" ON "u2"."id" OPERATOR("pg_catalog".=) "t"."assignee_id") AS v WHERE EXISTS (SELECT 1 FROM "edms_004_document_workflows_raw" AS s WHERE v."document_id.document_number" OPERATOR("pg_catalog".=) s."document_id.document_number" AND v."workflow_type" OPERATOR("pg_catalog".=) s."workflow_type" AND NOT (s."document_id.document_number" IS DISTINCT FROM v."document_id.document_number" OR s."workflow_type" IS DISTINCT FROM v."workflow_type" OR s."state" IS DISTINCT FROM v."state" OR s."assignee_id.username" IS DISTINCT FROM v."assignee_id.username" OR s."due_date" IS DISTINCT FROM v."due_date" OR v."#t:null:assignee_id" IS DISTINCT FROM (s."assignee_id.username" IS NULL) OR v."#t:null:document_id" IS DISTINCT FROM (s."document_id.document_number" IS NULL)));
INSERT INTO edms_count VALUES (4, 'same', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'staged'), 0) + -10 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'target rows held'), 0)) >= 1 AS edms_when \gset
-- when the target holds fewer than 1 row in 10 of the staged
\if :edms_when

-- public.document_workflows
CREATE TEMP TABLE "edms_004_document_workflows_same" ON COMMIT DROP AS SELECT v."document_id.document_number" AS "document_id.document_number", v."workflow_type" AS "workflow_type", v."#t:id" AS "id" FROM (SELECT "u1"."document_number" AS "document_id.document_number", (t."document_id" IS NULL) AS "#t:null:document_id", t."workflow_type" AS "workflow_type", t."state" AS "state", "u2"."username" AS "assignee_id.username", (t."assignee_id" IS NULL) AS "#t:null:assignee_id", t."due_date" AS "due_date", t."id" AS "#t:id" FROM "public"."document_workflows" AS t LEFT JOIN "public"."documents" AS "u1" ON "u1"."id" OPERATOR("pg_catalog".=) "t"."document_id" LEFT JOIN "public"."users" AS "u2" ON "u2"."id" OPERATOR("pg_catalog".=) "t"."assignee_id") AS v WHERE EXISTS (SELECT 1 FROM "edms_004_document_workflows_raw" AS s WHERE v."document_id.document_number" OPERATOR("pg_catalog".=) s."document_id.document_number" AND v."workflow_type" OPERATOR("pg_catalog".=) s."workflow_type" AND NOT (s."document_id.document_number" IS DISTINCT FROM v."document_id.document_number" OR s."workflow_type" IS DISTINCT FROM v."workflow_type" OR s."state" IS DISTINCT FROM v."state" OR s."assignee_id.username" IS DISTINCT FROM v."assignee_id.username" OR s."due_date" IS DISTINCT FROM v."due_date" OR v."#t:null:assignee_id" IS DISTINCT FROM (s."assignee_id.username" IS NULL) OR v."#t:null:document_id" IS DISTINCT FROM (s."document_id.document_number" IS NULL))) WITH NO DATA;
INSERT INTO edms_count VALUES (4, 'same', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif

-- public.document_workflows
INSERT INTO edms_count VALUES (4, 'to resolve', (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'same'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
ANALYZE "edms_004_document_workflows_same" ("document_id.document_number", "workflow_type");

-- all tables
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'to resolve'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'staged'), 0) + -10 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'to resolve'), 0)) >= 0 AS edms_when \gset
-- when some rows to resolve, at most 1 in 10 staged
\if :edms_when

-- public.document_workflows
CREATE TEMP TABLE "edms_004_document_workflows_todo" ON COMMIT DROP AS SELECT s.* FROM "edms_004_document_workflows_raw" AS s WHERE NOT EXISTS (SELECT 1 FROM "edms_004_document_workflows_same" AS m WHERE "m"."document_id.document_number" OPERATOR("pg_catalog".=) "s"."document_id.document_number" AND "m"."workflow_type" OPERATOR("pg_catalog".=) "s"."workflow_type");
ANALYZE "edms_004_document_workflows_todo" ("document_id.document_number", "workflow_type");

-- all tables
\endif
SELECT (-1 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'to resolve'), 0)) >= 0 AS edms_when \gset
-- when no row to resolve
\if :edms_when

-- public.document_workflows
CREATE TEMP VIEW "edms_004_document_workflows_todo" AS SELECT s.* FROM "edms_004_document_workflows_raw" AS s WHERE NOT EXISTS (SELECT 1 FROM "edms_004_document_workflows_same" AS m WHERE "m"."document_id.document_number" OPERATOR("pg_catalog".=) "s"."document_id.document_number" AND "m"."workflow_type" OPERATOR("pg_catalog".=) "s"."workflow_type");

-- all tables
\endif
SELECT (10 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'to resolve'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'staged'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'same'), 0)) >= 1 AS edms_when \gset
-- when many rows to resolve
\if :edms_when

-- public.document_workflows
CREATE TEMP VIEW "edms_004_document_workflows_todo" AS SELECT s.* FROM "edms_004_document_workflows_raw" AS s WHERE NOT EXISTS (SELECT 1 FROM "edms_004_document_workflows_same" AS m WHERE "m"."document_id.document_number" OPERATOR("pg_catalog".=) "s"."document_id.document_number" AND "m"."workflow_type" OPERATOR("pg_catalog".=) "s"."workflow_type");

-- all tables
\endif
SELECT (10 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'to resolve'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'staged'), 0)) >= 1 AND (-1 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'same'), 0)) >= 0 AS edms_when \gset
-- when every staged row to resolve
\if :edms_when

-- public.document_workflows
CREATE TEMP VIEW "edms_004_document_workflows_todo" AS SELECT s.* FROM "edms_004_document_workflows_raw" AS s;

-- all tables
\endif
SET LOCAL "enable_nestloop" TO DEFAULT;
SET LOCAL "parallel_setup_cost" TO DEFAULT;
SET LOCAL "parallel_tuple_cost" TO DEFAULT;
SET LOCAL "enable_mergejoin" = off;
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'to resolve'), 0)) >= 1 AS edms_when \gset
-- when rows to resolve
\if :edms_when

-- public.users
CREATE TEMP TABLE "edms_001_users_final" ON COMMIT DROP AS SELECT k.* FROM (SELECT s.*, COALESCE(o."id", pg_catalog.nextval('"public"."users_id_seq"'::regclass)) AS "id", o."#hit" IS NULL AS "#new" FROM "edms_001_users_todo" AS s LEFT JOIN (SELECT "t"."username" AS "username", t."id", true AS "#hit" FROM "public"."users" AS t ) AS o ON "o"."username" OPERATOR("pg_catalog".=) "s"."username") AS k ;
INSERT INTO edms_count VALUES (1, 'keyed', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (-1 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'to resolve'), 0)) >= 0 AS edms_when \gset
-- when no row to resolve
\if :edms_when

-- public.users
CREATE TEMP TABLE "edms_001_users_final" ON COMMIT DROP AS SELECT k.* FROM (SELECT s.*, COALESCE(o."id", pg_catalog.nextval('"public"."users_id_seq"'::regclass)) AS "id", o."#hit" IS NULL AS "#new" FROM "edms_001_users_todo" AS s LEFT JOIN (SELECT "t"."username" AS "username", t."id", true AS "#hit" FROM "public"."users" AS t ) AS o ON "o"."username" OPERATOR("pg_catalog".=) "s"."username") AS k  WITH NO DATA;
INSERT INTO edms_count VALUES (1, 'keyed', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif

-- public.users
SELECT coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'keyed'), 0) <> coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'to resolve'), 0) AS edms_failed \gset
\if :edms_failed
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "username", pg_catalog.count(*) FROM "edms_001_users_raw" AS d GROUP BY "username" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("username", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.users: the archive holds duplicate natural keys (username): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;
DO $edms$
DECLARE
  got bigint;
  want bigint;
BEGIN
  got := coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'keyed'), 0);
  want := coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'to resolve'), 0);
  IF got <> want THEN
    RAISE EXCEPTION USING MESSAGE = 'public.users: natural keys matched ' || got || ' target rows for ' || want || '; the target has duplicate keys';
  END IF;
END
$edms$;
\endif
INSERT INTO edms_count SELECT 1, v.name, v.value FROM (SELECT pg_catalog.count(*) FILTER (WHERE NOT "#new") FROM "edms_001_users_final") AS q(c0) CROSS JOIN LATERAL (VALUES ('existing', q.c0)) AS v(name, value) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
INSERT INTO edms_count VALUES (1, 'existing', (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'existing'), 0) + coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'same'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
ANALYZE "edms_001_users_final" ("username", "id", "#new");

-- all tables
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'existing'), 0)) >= 2 AS edms_when \gset
-- when two or more rows already exist
\if :edms_when

-- public.users
SELECT EXISTS (SELECT 1 FROM "edms_001_users_final" WHERE NOT "#new" GROUP BY "id" HAVING pg_catalog.count(*) > 1 LIMIT 1) AS edms_failed \gset
\if :edms_failed
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "username", pg_catalog.count(*) FROM "edms_001_users_raw" AS d GROUP BY "username" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("username", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.users: the archive holds duplicate natural keys (username): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;
DO $edms$
DECLARE

BEGIN
  IF EXISTS (SELECT 1 FROM "edms_001_users_final" WHERE NOT "#new" GROUP BY "id" HAVING pg_catalog.count(*) > 1 LIMIT 1) THEN
    RAISE EXCEPTION USING MESSAGE = 'public.users: one target row is matched by two archive rows; the archive repeats a key';
  END IF;
END
$edms$;
\endif

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'to resolve'), 0)) >= 1 AS edms_when \gset
-- when rows to resolve
\if :edms_when

-- public.documents
CREATE TEMP TABLE "edms_002_documents_keyed" ON COMMIT DROP AS SELECT s.*, COALESCE(o."id", (nextval('public.documents_id_seq'::regclass))) AS "id", o."#hit" IS NULL AS "#new" FROM "edms_002_documents_todo" AS s LEFT JOIN (SELECT "t"."document_number" AS "document_number", t."id", true AS "#hit" FROM "public"."documents" AS t ) AS o ON "o"."document_number" OPERATOR("pg_catalog".=) "s"."document_number";
INSERT INTO edms_count VALUES (2, 'keyed', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (-1 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'to resolve'), 0)) >= 0 AS edms_when \gset
-- when no row to resolve
\if :edms_when

-- public.documents
CREATE TEMP TABLE "edms_002_documents_keyed" ON COMMIT DROP AS SELECT s.*, COALESCE(o."id", (nextval('public.documents_id_seq'::regclass))) AS "id", o."#hit" IS NULL AS "#new" FROM "edms_002_documents_todo" AS s LEFT JOIN (SELECT "t"."document_number" AS "document_number", t."id", true AS "#hit" FROM "public"."documents" AS t ) AS o ON "o"."document_number" OPERATOR("pg_catalog".=) "s"."document_number" WITH NO DATA;
INSERT INTO edms_count VALUES (2, 'keyed', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif

-- public.documents
SELECT coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'keyed'), 0) <> coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'to resolve'), 0) AS edms_failed \gset
\if :edms_failed

-- public.users
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "username", pg_catalog.count(*) FROM "edms_001_users_raw" AS d GROUP BY "username" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("username", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.users: the archive holds duplicate natural keys (username): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;

-- public.documents
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "document_number", pg_catalog.count(*) FROM "edms_002_documents_raw" AS d GROUP BY "document_number" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("document_number", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.documents: the archive holds duplicate natural keys (document_number): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;
DO $edms$
DECLARE
  got bigint;
  want bigint;
BEGIN
  got := coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'keyed'), 0);
  want := coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'to resolve'), 0);
  IF got <> want THEN
    RAISE EXCEPTION USING MESSAGE = 'public.documents: natural keys matched ' || got || ' target rows for ' || want || '; the target has duplicate keys';
  END IF;
END
$edms$;
\endif
ANALYZE "edms_002_documents_keyed" ("document_number", "id");

-- all tables
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'to resolve'), 0)) >= 1 AS edms_when \gset
-- when rows to resolve
\if :edms_when

-- public.document_versions
CREATE TEMP TABLE "edms_003_document_versions_final" ON COMMIT DROP AS SELECT k.*, "f1"."id" AS "created_by_id", "f2"."id" AS "document_id" FROM (SELECT s.*, COALESCE(o."id", (nextval('public.document_versions_id_seq'::regclass))) AS "id", o."#hit" IS NULL AS "#new" FROM "edms_003_document_versions_todo" AS s LEFT JOIN (SELECT "k1"."document_number" AS "document_id.document_number", "t"."version_number" AS "version_number", t."id", true AS "#hit" FROM "public"."document_versions" AS t LEFT JOIN "public"."documents" AS "k1" ON "k1"."id" OPERATOR("pg_catalog".=) "t"."document_id") AS o ON "o"."document_id.document_number" OPERATOR("pg_catalog".=) "s"."document_id.document_number" AND "o"."version_number" OPERATOR("pg_catalog".=) "s"."version_number") AS k LEFT JOIN (SELECT "username", "id" FROM "edms_001_users_final" UNION ALL SELECT "username", "id" FROM "edms_001_users_same") AS "f1" ON "f1"."username" OPERATOR("pg_catalog".=) "k"."created_by_id.username" LEFT JOIN (SELECT "document_number", "id" FROM "edms_002_documents_keyed" UNION ALL SELECT "document_number", "id" FROM "edms_002_documents_same") AS "f2" ON "f2"."document_number" OPERATOR("pg_catalog".=) "k"."document_id.document_number";
INSERT INTO edms_count VALUES (3, 'keyed', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (-1 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'to resolve'), 0)) >= 0 AS edms_when \gset
-- when no row to resolve
\if :edms_when

-- public.document_versions
CREATE TEMP TABLE "edms_003_document_versions_final" ON COMMIT DROP AS SELECT k.*, "f1"."id" AS "created_by_id", "f2"."id" AS "document_id" FROM (SELECT s.*, COALESCE(o."id", (nextval('public.document_versions_id_seq'::regclass))) AS "id", o."#hit" IS NULL AS "#new" FROM "edms_003_document_versions_todo" AS s LEFT JOIN (SELECT "k1"."document_number" AS "document_id.document_number", "t"."version_number" AS "version_number", t."id", true AS "#hit" FROM "public"."document_versions" AS t LEFT JOIN "public"."documents" AS "k1" ON "k1"."id" OPERATOR("pg_catalog".=) "t"."document_id") AS o ON "o"."document_id.document_number" OPERATOR("pg_catalog".=) "s"."document_id.document_number" AND "o"."version_number" OPERATOR("pg_catalog".=) "s"."version_number") AS k LEFT JOIN (SELECT "username", "id" FROM "edms_001_users_final" UNION ALL SELECT "username", "id" FROM "edms_001_users_same") AS "f1" ON "f1"."username" OPERATOR("pg_catalog".=) "k"."created_by_id.username" LEFT JOIN (SELECT "document_number", "id" FROM "edms_002_documents_keyed" UNION ALL SELECT "document_number", "id" FROM "edms_002_documents_same") AS "f2" ON "f2"."document_number" OPERATOR("pg_catalog".=) "k"."document_id.document_number" WITH NO DATA;
INSERT INTO edms_count VALUES (3, 'keyed', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif

-- public.document_versions
SELECT coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'keyed'), 0) <> coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'to resolve'), 0) AS edms_failed \gset
\if :edms_failed

-- public.users
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "username", pg_catalog.count(*) FROM "edms_001_users_raw" AS d GROUP BY "username" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("username", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.users: the archive holds duplicate natural keys (username): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;

-- public.documents
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "document_number", pg_catalog.count(*) FROM "edms_002_documents_raw" AS d GROUP BY "document_number" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("document_number", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.documents: the archive holds duplicate natural keys (document_number): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;

-- public.document_versions
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "document_id.document_number", "version_number", pg_catalog.count(*) FROM "edms_003_document_versions_raw" AS d GROUP BY "document_id.document_number", "version_number" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("document_id.document_number", "version_number", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_versions: the archive holds duplicate natural keys (document_id.document_number, version_number): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;
DO $edms$
DECLARE
  got bigint;
  want bigint;
BEGIN
  got := coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'keyed'), 0);
  want := coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'to resolve'), 0);
  IF got <> want THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_versions: natural keys matched ' || got || ' target rows for ' || want || '; the target has duplicate keys';
  END IF;
END
$edms$;
\endif
INSERT INTO edms_count SELECT 3, v.name, v.value FROM (SELECT pg_catalog.count(*) FILTER (WHERE NOT "#new"), pg_catalog.count(*) FILTER (WHERE "created_by_id" IS NULL AND ("created_by_id.username" IS NOT NULL)), pg_catalog.count(*) FILTER (WHERE "document_id" IS NULL AND ("document_id.document_number" IS NOT NULL)) FROM "edms_003_document_versions_final") AS q(c0, c1, c2) CROSS JOIN LATERAL (VALUES ('existing', q.c0), ('unresolved:created_by_id', q.c1), ('unresolved:document_id', q.c2)) AS v(name, value) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
INSERT INTO edms_count VALUES (3, 'existing', (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'existing'), 0) + coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'same'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
ANALYZE "edms_003_document_versions_final" ("document_id.document_number", "version_number", "id", "#new");

-- all tables
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'existing'), 0)) >= 2 AS edms_when \gset
-- when two or more rows already exist
\if :edms_when

-- public.document_versions
SELECT EXISTS (SELECT 1 FROM "edms_003_document_versions_final" WHERE NOT "#new" GROUP BY "id" HAVING pg_catalog.count(*) > 1 LIMIT 1) AS edms_failed \gset
\if :edms_failed
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "document_id.document_number", "version_number", pg_catalog.count(*) FROM "edms_003_document_versions_raw" AS d GROUP BY "document_id.document_number", "version_number" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("document_id.document_number", "version_number", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_versions: the archive holds duplicate natural keys (document_id.document_number, version_number): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;
DO $edms$
DECLARE

BEGIN
  IF EXISTS (SELECT 1 FROM "edms_003_document_versions_final" WHERE NOT "#new" GROUP BY "id" HAVING pg_catalog.count(*) > 1 LIMIT 1) THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_versions: one target row is matched by two archive rows; the archive repeats a key';
  END IF;
END
$edms$;
\endif

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'unresolved:created_by_id'), 0)) >= 1 AS edms_when \gset
-- when references left unresolved
\if :edms_when

-- public.document_versions
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#total"), string_agg((to_jsonb(q) - '#total')::text, ', ') INTO total, found
    FROM (SELECT pg_catalog.count(*) OVER (), "created_by_id.username" FROM "edms_003_document_versions_final" WHERE "created_by_id" IS NULL AND ("created_by_id.username" IS NOT NULL) LIMIT 5) AS q("#total", "created_by_id.username");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_versions: ' || total || ' unresolved reference(s) through document_versions_created_by_id_fkey (created_by_id -> public.users): ' || found || '; those rows of public.users are neither in the archive nor in the target';
  END IF;
END
$edms$;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'unresolved:document_id'), 0)) >= 1 AS edms_when \gset
-- when references left unresolved
\if :edms_when

-- public.document_versions
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#total"), string_agg((to_jsonb(q) - '#total')::text, ', ') INTO total, found
    FROM (SELECT pg_catalog.count(*) OVER (), "document_id.document_number" FROM "edms_003_document_versions_final" WHERE "document_id" IS NULL AND ("document_id.document_number" IS NOT NULL) LIMIT 5) AS q("#total", "document_id.document_number");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_versions: ' || total || ' unresolved reference(s) through document_versions_document_id_fkey (document_id -> public.documents): ' || found || '; those rows of public.documents are neither in the archive nor in the target';
  END IF;
END
$edms$;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'to resolve'), 0)) >= 1 AS edms_when \gset
-- when rows to resolve
\if :edms_when

-- public.documents
CREATE TEMP TABLE "edms_002_documents_final" ON COMMIT DROP AS SELECT k.*, "f1"."id" AS "current_version_id", "f2"."id" AS "owner_id", "f3"."id" AS "parent_id" FROM "edms_002_documents_keyed" AS k LEFT JOIN (SELECT "document_id.document_number", "version_number", "id" FROM "edms_003_document_versions_final" UNION ALL SELECT "document_id.document_number", "version_number", "id" FROM "edms_003_document_versions_same") AS "f1" ON "f1"."document_id.document_number" OPERATOR("pg_catalog".=) "k"."current_version_id.document_id.document_number" AND "f1"."version_number" OPERATOR("pg_catalog".=) "k"."current_version_id.version_number" LEFT JOIN (SELECT "username", "id" FROM "edms_001_users_final" UNION ALL SELECT "username", "id" FROM "edms_001_users_same") AS "f2" ON "f2"."username" OPERATOR("pg_catalog".=) "k"."owner_id.username" LEFT JOIN (SELECT "document_number", "id" FROM "edms_002_documents_keyed" UNION ALL SELECT "document_number", "id" FROM "edms_002_documents_same") AS "f3" ON "f3"."document_number" OPERATOR("pg_catalog".=) "k"."parent_id.document_number";

-- all tables
\endif
SELECT (-1 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'to resolve'), 0)) >= 0 AS edms_when \gset
-- when no row to resolve
\if :edms_when

-- public.documents
CREATE TEMP TABLE "edms_002_documents_final" ON COMMIT DROP AS SELECT k.*, "f1"."id" AS "current_version_id", "f2"."id" AS "owner_id", "f3"."id" AS "parent_id" FROM "edms_002_documents_keyed" AS k LEFT JOIN (SELECT "document_id.document_number", "version_number", "id" FROM "edms_003_document_versions_final" UNION ALL SELECT "document_id.document_number", "version_number", "id" FROM "edms_003_document_versions_same") AS "f1" ON "f1"."document_id.document_number" OPERATOR("pg_catalog".=) "k"."current_version_id.document_id.document_number" AND "f1"."version_number" OPERATOR("pg_catalog".=) "k"."current_version_id.version_number" LEFT JOIN (SELECT "username", "id" FROM "edms_001_users_final" UNION ALL SELECT "username", "id" FROM "edms_001_users_same") AS "f2" ON "f2"."username" OPERATOR("pg_catalog".=) "k"."owner_id.username" LEFT JOIN (SELECT "document_number", "id" FROM "edms_002_documents_keyed" UNION ALL SELECT "document_number", "id" FROM "edms_002_documents_same") AS "f3" ON "f3"."document_number" OPERATOR("pg_catalog".=) "k"."parent_id.document_number" WITH NO DATA;

-- all tables
\endif

-- public.documents
INSERT INTO edms_count SELECT 2, v.name, v.value FROM (SELECT pg_catalog.count(*) FILTER (WHERE NOT "#new"), pg_catalog.count(*) FILTER (WHERE "current_version_id" IS NULL AND ("current_version_id.document_id.document_number" IS NOT NULL OR "current_version_id.version_number" IS NOT NULL)), pg_catalog.count(*) FILTER (WHERE "owner_id" IS NULL AND ("owner_id.username" IS NOT NULL)), pg_catalog.count(*) FILTER (WHERE "parent_id" IS NULL AND ("parent_id.document_number" IS NOT NULL)) FROM "edms_002_documents_final") AS q(c0, c1, c2, c3) CROSS JOIN LATERAL (VALUES ('existing', q.c0), ('unresolved:current_version_id', q.c1), ('unresolved:owner_id', q.c2), ('unresolved:parent_id', q.c3)) AS v(name, value) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
INSERT INTO edms_count VALUES (2, 'existing', (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'existing'), 0) + coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'same'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
ANALYZE "edms_002_documents_final" ("document_number", "id", "#new");

-- all tables
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'existing'), 0)) >= 2 AS edms_when \gset
-- when two or more rows already exist
\if :edms_when

-- public.documents
SELECT EXISTS (SELECT 1 FROM "edms_002_documents_final" WHERE NOT "#new" GROUP BY "id" HAVING pg_catalog.count(*) > 1 LIMIT 1) AS edms_failed \gset
\if :edms_failed
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "document_number", pg_catalog.count(*) FROM "edms_002_documents_raw" AS d GROUP BY "document_number" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("document_number", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.documents: the archive holds duplicate natural keys (document_number): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;
DO $edms$
DECLARE

BEGIN
  IF EXISTS (SELECT 1 FROM "edms_002_documents_final" WHERE NOT "#new" GROUP BY "id" HAVING pg_catalog.count(*) > 1 LIMIT 1) THEN
    RAISE EXCEPTION USING MESSAGE = 'public.documents: one target row is matched by two archive rows; the archive repeats a key';
  END IF;
END
$edms$;
\endif

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'unresolved:current_version_id'), 0)) >= 1 AS edms_when \gset
-- when references left unresolved
\if :edms_when

-- public.documents
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#total"), string_agg((to_jsonb(q) - '#total')::text, ', ') INTO total, found
    FROM (SELECT pg_catalog.count(*) OVER (), "current_version_id.document_id.document_number", "current_version_id.version_number" FROM "edms_002_documents_final" WHERE "current_version_id" IS NULL AND ("current_version_id.document_id.document_number" IS NOT NULL OR "current_version_id.version_number" IS NOT NULL) LIMIT 5) AS q("#total", "current_version_id.document_id.document_number", "current_version_id.version_number");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.documents: ' || total || ' unresolved reference(s) through documents_current_version_fk (current_version_id -> public.document_versions): ' || found || '; those rows of public.document_versions are neither in the archive nor in the target';
  END IF;
END
$edms$;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'unresolved:owner_id'), 0)) >= 1 AS edms_when \gset
-- when references left unresolved
\if :edms_when

-- public.documents
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#total"), string_agg((to_jsonb(q) - '#total')::text, ', ') INTO total, found
    FROM (SELECT pg_catalog.count(*) OVER (), "owner_id.username" FROM "edms_002_documents_final" WHERE "owner_id" IS NULL AND ("owner_id.username" IS NOT NULL) LIMIT 5) AS q("#total", "owner_id.username");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.documents: ' || total || ' unresolved reference(s) through documents_owner_id_fkey (owner_id -> public.users): ' || found || '; those rows of public.users are neither in the archive nor in the target';
  END IF;
END
$edms$;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'unresolved:parent_id'), 0)) >= 1 AS edms_when \gset
-- when references left unresolved
\if :edms_when

-- public.documents
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#total"), string_agg((to_jsonb(q) - '#total')::text, ', ') INTO total, found
    FROM (SELECT pg_catalog.count(*) OVER (), "parent_id.document_number" FROM "edms_002_documents_final" WHERE "parent_id" IS NULL AND ("parent_id.document_number" IS NOT NULL) LIMIT 5) AS q("#total", "parent_id.document_number");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.documents: ' || total || ' unresolved reference(s) through documents_parent_id_fkey (parent_id -> public.documents): ' || found || '; those rows of public.documents are neither in the archive nor in the target';
  END IF;
END
$edms$;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'to resolve'), 0)) >= 1 AS edms_when \gset
-- when rows to resolve
\if :edms_when

-- public.document_workflows
CREATE TEMP TABLE "edms_004_document_workflows_final" ON COMMIT DROP AS SELECT k.*, "f1"."id" AS "assignee_id", "f2"."id" AS "document_id" FROM (SELECT s.*, COALESCE(o."id", (nextval('public.document_workflows_id_seq'::regclass))) AS "id", o."#hit" IS NULL AS "#new" FROM "edms_004_document_workflows_todo" AS s LEFT JOIN (SELECT "k1"."document_number" AS "document_id.document_number", "t"."workflow_type" AS "workflow_type", t."id", true AS "#hit" FROM "public"."document_workflows" AS t LEFT JOIN "public"."documents" AS "k1" ON "k1"."id" OPERATOR("pg_catalog".=) "t"."document_id") AS o ON "o"."document_id.document_number" OPERATOR("pg_catalog".=) "s"."document_id.document_number" AND "o"."workflow_type" OPERATOR("pg_catalog".=) "s"."workflow_type") AS k LEFT JOIN (SELECT "username", "id" FROM "edms_001_users_final" UNION ALL SELECT "username", "id" FROM "edms_001_users_same") AS "f1" ON "f1"."username" OPERATOR("pg_catalog".=) "k"."assignee_id.username" LEFT JOIN (SELECT "document_number", "id" FROM "edms_002_documents_final" UNION ALL SELECT "document_number", "id" FROM "edms_002_documents_same") AS "f2" ON "f2"."document_number" OPERATOR("pg_catalog".=) "k"."document_id.document_number";
INSERT INTO edms_count VALUES (4, 'keyed', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (-1 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'to resolve'), 0)) >= 0 AS edms_when \gset
-- when no row to resolve
\if :edms_when

-- public.document_workflows
CREATE TEMP TABLE "edms_004_document_workflows_final" ON COMMIT DROP AS SELECT k.*, "f1"."id" AS "assignee_id", "f2"."id" AS "document_id" FROM (SELECT s.*, COALESCE(o."id", (nextval('public.document_workflows_id_seq'::regclass))) AS "id", o."#hit" IS NULL AS "#new" FROM "edms_004_document_workflows_todo" AS s LEFT JOIN (SELECT "k1"."document_number" AS "document_id.document_number", "t"."workflow_type" AS "workflow_type", t."id", true AS "#hit" FROM "public"."document_workflows" AS t LEFT JOIN "public"."documents" AS "k1" ON "k1"."id" OPERATOR("pg_catalog".=) "t"."document_id") AS o ON "o"."document_id.document_number" OPERATOR("pg_catalog".=) "s"."document_id.document_number" AND "o"."workflow_type" OPERATOR("pg_catalog".=) "s"."workflow_type") AS k LEFT JOIN (SELECT "username", "id" FROM "edms_001_users_final" UNION ALL SELECT "username", "id" FROM "edms_001_users_same") AS "f1" ON "f1"."username" OPERATOR("pg_catalog".=) "k"."assignee_id.username" LEFT JOIN (SELECT "document_number", "id" FROM "edms_002_documents_final" UNION ALL SELECT "document_number", "id" FROM "edms_002_documents_same") AS "f2" ON "f2"."document_number" OPERATOR("pg_catalog".=) "k"."document_id.document_number" WITH NO DATA;
INSERT INTO edms_count VALUES (4, 'keyed', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif

-- public.document_workflows
SELECT coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'keyed'), 0) <> coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'to resolve'), 0) AS edms_failed \gset
\if :edms_failed

-- public.users
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "username", pg_catalog.count(*) FROM "edms_001_users_raw" AS d GROUP BY "username" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("username", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.users: the archive holds duplicate natural keys (username): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;

-- public.documents
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "document_number", pg_catalog.count(*) FROM "edms_002_documents_raw" AS d GROUP BY "document_number" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("document_number", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.documents: the archive holds duplicate natural keys (document_number): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;

-- public.document_versions
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "document_id.document_number", "version_number", pg_catalog.count(*) FROM "edms_003_document_versions_raw" AS d GROUP BY "document_id.document_number", "version_number" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("document_id.document_number", "version_number", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_versions: the archive holds duplicate natural keys (document_id.document_number, version_number): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;

-- public.document_workflows
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "document_id.document_number", "workflow_type", pg_catalog.count(*) FROM "edms_004_document_workflows_raw" AS d GROUP BY "document_id.document_number", "workflow_type" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("document_id.document_number", "workflow_type", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_workflows: the archive holds duplicate natural keys (document_id.document_number, workflow_type): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;
DO $edms$
DECLARE
  got bigint;
  want bigint;
BEGIN
  got := coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'keyed'), 0);
  want := coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'to resolve'), 0);
  IF got <> want THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_workflows: natural keys matched ' || got || ' target rows for ' || want || '; the target has duplicate keys';
  END IF;
END
$edms$;
\endif
INSERT INTO edms_count SELECT 4, v.name, v.value FROM (SELECT pg_catalog.count(*) FILTER (WHERE NOT "#new"), pg_catalog.count(*) FILTER (WHERE "assignee_id" IS NULL AND ("assignee_id.username" IS NOT NULL)), pg_catalog.count(*) FILTER (WHERE "document_id" IS NULL AND ("document_id.document_number" IS NOT NULL)) FROM "edms_004_document_workflows_final") AS q(c0, c1, c2) CROSS JOIN LATERAL (VALUES ('existing', q.c0), ('unresolved:assignee_id', q.c1), ('unresolved:document_id', q.c2)) AS v(name, value) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
INSERT INTO edms_count VALUES (4, 'existing', (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'existing'), 0) + coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'same'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'existing'), 0)) >= 1 AS edms_when \gset
-- when rows already in the target
\if :edms_when

-- public.document_workflows
ANALYZE "edms_004_document_workflows_final" ("document_id.document_number", "workflow_type", "id", "#new");

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'existing'), 0)) >= 2 AS edms_when \gset
-- when two or more rows already exist
\if :edms_when

-- public.document_workflows
SELECT EXISTS (SELECT 1 FROM "edms_004_document_workflows_final" WHERE NOT "#new" GROUP BY "id" HAVING pg_catalog.count(*) > 1 LIMIT 1) AS edms_failed \gset
\if :edms_failed
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "document_id.document_number", "workflow_type", pg_catalog.count(*) FROM "edms_004_document_workflows_raw" AS d GROUP BY "document_id.document_number", "workflow_type" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("document_id.document_number", "workflow_type", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_workflows: the archive holds duplicate natural keys (document_id.document_number, workflow_type): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;
DO $edms$
DECLARE

BEGIN
  IF EXISTS (SELECT 1 FROM "edms_004_document_workflows_final" WHERE NOT "#new" GROUP BY "id" HAVING pg_catalog.count(*) > 1 LIMIT 1) THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_workflows: one target row is matched by two archive rows; the archive repeats a key';
  END IF;
END
$edms$;
\endif

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'unresolved:assignee_id'), 0)) >= 1 AS edms_when \gset
-- when references left unresolved
\if :edms_when

-- public.document_workflows
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#total"), string_agg((to_jsonb(q) - '#total')::text, ', ') INTO total, found
    FROM (SELECT pg_catalog.count(*) OVER (), "assignee_id.username" FROM "edms_004_document_workflows_final" WHERE "assignee_id" IS NULL AND ("assignee_id.username" IS NOT NULL) LIMIT 5) AS q("#total", "assignee_id.username");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_workflows: ' || total || ' unresolved reference(s) through document_workflows_assignee_id_fkey (assignee_id -> public.users): ' || found || '; those rows of public.users are neither in the archive nor in the target';
  END IF;
END
$edms$;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'unresolved:document_id'), 0)) >= 1 AS edms_when \gset
-- when references left unresolved
\if :edms_when

-- public.document_workflows
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#total"), string_agg((to_jsonb(q) - '#total')::text, ', ') INTO total, found
    FROM (SELECT pg_catalog.count(*) OVER (), "document_id.document_number" FROM "edms_004_document_workflows_final" WHERE "document_id" IS NULL AND ("document_id.document_number" IS NOT NULL) LIMIT 5) AS q("#total", "document_id.document_number");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_workflows: ' || total || ' unresolved reference(s) through document_workflows_document_id_fkey (document_id -> public.documents): ' || found || '; those rows of public.documents are neither in the archive nor in the target';
  END IF;
END
$edms$;

-- all tables
\endif
SET LOCAL "enable_mergejoin" TO DEFAULT;
DO $edms_session$ BEGIN PERFORM pg_catalog.set_config('TimeZone', s.reset_val, true) FROM pg_catalog.pg_settings AS s WHERE s.name OPERATOR(pg_catalog.=) 'TimeZone'; END $edms_session$;
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'existing'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'staged'), 0) + -2 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'existing'), 0)) >= 1 AS edms_when \gset
-- when public.users brings many new rows: its foreign keys are re-added with one join each
\if :edms_when
LOCK TABLE "public"."users" IN ACCESS EXCLUSIVE MODE;

-- public.users
INSERT INTO edms_count SELECT 1, v.name, v.value FROM (SELECT 1) AS q(c0) CROSS JOIN LATERAL (VALUES ('recreating', q.c0)) AS v(name, value) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'existing'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'staged'), 0) + -2 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'existing'), 0)) >= 1 AS edms_when \gset
-- when public.documents brings many new rows: its foreign keys are re-added with one join each
\if :edms_when
LOCK TABLE "public"."document_versions", "public"."documents", "public"."users" IN ACCESS EXCLUSIVE MODE;

-- public.documents
ALTER TABLE "public"."documents" DROP CONSTRAINT "documents_current_version_fk";
ALTER TABLE "public"."documents" DROP CONSTRAINT "documents_owner_id_fkey";
ALTER TABLE "public"."documents" DROP CONSTRAINT "documents_parent_id_fkey";
DROP INDEX "public"."documents_owner_idx";
DROP INDEX "public"."documents_parent_idx";
INSERT INTO edms_count SELECT 2, v.name, v.value FROM (SELECT 1) AS q(c0) CROSS JOIN LATERAL (VALUES ('recreating', q.c0)) AS v(name, value) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'existing'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'staged'), 0) + -2 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'existing'), 0)) >= 1 AS edms_when \gset
-- when public.document_versions brings many new rows: its foreign keys are re-added with one join each
\if :edms_when
LOCK TABLE "public"."document_versions", "public"."documents", "public"."users" IN ACCESS EXCLUSIVE MODE;

-- public.document_versions
ALTER TABLE "public"."document_versions" DROP CONSTRAINT "document_versions_created_by_id_fkey";
ALTER TABLE "public"."document_versions" DROP CONSTRAINT "document_versions_document_id_fkey";
DROP INDEX "public"."document_versions_created_by_idx";
INSERT INTO edms_count SELECT 3, v.name, v.value FROM (SELECT 1) AS q(c0) CROSS JOIN LATERAL (VALUES ('recreating', q.c0)) AS v(name, value) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'existing'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'staged'), 0) + -2 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'existing'), 0)) >= 1 AS edms_when \gset
-- when public.document_workflows brings many new rows: its foreign keys are re-added with one join each
\if :edms_when
LOCK TABLE "public"."document_workflows", "public"."documents", "public"."users" IN ACCESS EXCLUSIVE MODE;

-- public.document_workflows
ALTER TABLE "public"."document_workflows" DROP CONSTRAINT "document_workflows_assignee_id_fkey";
ALTER TABLE "public"."document_workflows" DROP CONSTRAINT "document_workflows_document_id_fkey";
DROP INDEX "public"."document_workflows_assignee_idx";
INSERT INTO edms_count SELECT 4, v.name, v.value FROM (SELECT 1) AS q(c0) CROSS JOIN LATERAL (VALUES ('recreating', q.c0)) AS v(name, value) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'existing'), 0)) >= 10000 AS edms_when \gset
-- when public.users brings many new rows, and so do the tables whose keys reference users_pkey
\if :edms_when

-- public.users
ALTER TABLE "public"."users" DROP CONSTRAINT "users_pkey";

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'existing'), 0)) >= 10000 AS edms_when \gset
-- when public.users brings many new rows, and so do the tables whose keys reference users_username_key
\if :edms_when

-- public.users
ALTER TABLE "public"."users" DROP CONSTRAINT "users_username_key";

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'existing'), 0)) >= 10000 AS edms_when \gset
-- when public.documents brings many new rows, and so do the tables whose keys reference documents_document_number_key
\if :edms_when

-- public.documents
ALTER TABLE "public"."documents" DROP CONSTRAINT "documents_document_number_key";

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'existing'), 0)) >= 10000 AS edms_when \gset
-- when public.documents brings many new rows, and so do the tables whose keys reference documents_pkey
\if :edms_when

-- public.documents
ALTER TABLE "public"."documents" DROP CONSTRAINT "documents_pkey";

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'existing'), 0)) >= 10000 AS edms_when \gset
-- when public.document_versions brings many new rows, and so do the tables whose keys reference document_versions_document_id_version_number_key
\if :edms_when

-- public.document_versions
ALTER TABLE "public"."document_versions" DROP CONSTRAINT "document_versions_document_id_version_number_key";

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'existing'), 0)) >= 10000 AS edms_when \gset
-- when public.document_versions brings many new rows, and so do the tables whose keys reference document_versions_pkey
\if :edms_when

-- public.document_versions
ALTER TABLE "public"."document_versions" DROP CONSTRAINT "document_versions_pkey";

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'existing'), 0)) >= 10000 AS edms_when \gset
-- when public.document_workflows brings many new rows, and so do the tables whose keys reference document_workflows_document_id_workflow_type_key
\if :edms_when

-- public.document_workflows
ALTER TABLE "public"."document_workflows" DROP CONSTRAINT "document_workflows_document_id_workflow_type_key";

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'existing'), 0)) >= 10000 AS edms_when \gset
-- when public.document_workflows brings many new rows, and so do the tables whose keys reference document_workflows_pkey
\if :edms_when

-- public.document_workflows
ALTER TABLE "public"."document_workflows" DROP CONSTRAINT "document_workflows_pkey";

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'existing'), 0)) >= 1 AS edms_when \gset
-- when new rows to insert
\if :edms_when

-- public.users
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "username", pg_catalog.count(*) FROM "edms_001_users_raw" AS d GROUP BY "username" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("username", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.users: the archive holds duplicate natural keys (username): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;
INSERT INTO "public"."users" ("username", "email", "full_name", "is_active", "created_at", "id") SELECT "username", "email", "full_name", "is_active", "created_at", "id" FROM "edms_001_users_final" WHERE "#new";
INSERT INTO edms_count VALUES (1, 'inserted', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'existing'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'to resolve'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'staged'), 0) + -10 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'to resolve'), 0)) >= 0 AS edms_when \gset
-- when rows exist, few rows left to resolve
\if :edms_when
SET LOCAL "enable_seqscan" = off;
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'existing'), 0)) >= 1 AS edms_when \gset
-- when rows exist
\if :edms_when

-- public.users
UPDATE "public"."users" AS t SET "username" = f."username", "email" = f."email", "full_name" = f."full_name", "is_active" = f."is_active", "created_at" = f."created_at" FROM "edms_001_users_final" AS f WHERE NOT f."#new" AND "t"."id" OPERATOR("pg_catalog".=) "f"."id" AND ("t"."username" IS DISTINCT FROM "f"."username" OR "t"."email" IS DISTINCT FROM "f"."email" OR "t"."full_name" IS DISTINCT FROM "f"."full_name" OR "t"."is_active" IS DISTINCT FROM "f"."is_active" OR "t"."created_at" IS DISTINCT FROM "f"."created_at");
INSERT INTO edms_count VALUES (1, 'updated', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'existing'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'to resolve'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'staged'), 0) + -10 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'to resolve'), 0)) >= 0 AS edms_when \gset
-- when rows exist, few rows left to resolve
\if :edms_when
SET LOCAL "enable_seqscan" TO DEFAULT;
\endif

-- public.users
INSERT INTO edms_count VALUES (1, 'unchanged', (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'existing'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'updated'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'skipped'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
SET CONSTRAINTS ALL DEFERRED;
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'existing'), 0)) >= 1 AS edms_when \gset
-- when new rows to insert
\if :edms_when

-- public.documents
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "document_number", pg_catalog.count(*) FROM "edms_002_documents_raw" AS d GROUP BY "document_number" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("document_number", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.documents: the archive holds duplicate natural keys (document_number): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;

-- public.document_versions
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "document_id.document_number", "version_number", pg_catalog.count(*) FROM "edms_003_document_versions_raw" AS d GROUP BY "document_id.document_number", "version_number" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("document_id.document_number", "version_number", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_versions: the archive holds duplicate natural keys (document_id.document_number, version_number): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;

-- public.documents
INSERT INTO "public"."documents" ("document_number", "title", "status", "created_at", "id", "current_version_id", "owner_id", "parent_id") SELECT "document_number", "title", "status", "created_at", "id", "current_version_id", "owner_id", "parent_id" FROM "edms_002_documents_final" WHERE "#new";
INSERT INTO edms_count VALUES (2, 'inserted', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'existing'), 0)) >= 1 AS edms_when \gset
-- when new rows to insert
\if :edms_when

-- public.documents
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "document_number", pg_catalog.count(*) FROM "edms_002_documents_raw" AS d GROUP BY "document_number" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("document_number", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.documents: the archive holds duplicate natural keys (document_number): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;

-- public.document_versions
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "document_id.document_number", "version_number", pg_catalog.count(*) FROM "edms_003_document_versions_raw" AS d GROUP BY "document_id.document_number", "version_number" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("document_id.document_number", "version_number", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_versions: the archive holds duplicate natural keys (document_id.document_number, version_number): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;
INSERT INTO "public"."document_versions" ("version_number", "content_hash", "size_bytes", "created_at", "id", "created_by_id", "document_id") SELECT "version_number", "content_hash", "size_bytes", "created_at", "id", "created_by_id", "document_id" FROM "edms_003_document_versions_final" WHERE "#new";
INSERT INTO edms_count VALUES (3, 'inserted', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'existing'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'to resolve'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'staged'), 0) + -10 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'to resolve'), 0)) >= 0 AS edms_when \gset
-- when rows exist, few rows left to resolve
\if :edms_when
SET LOCAL "enable_seqscan" = off;
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'existing'), 0)) >= 1 AS edms_when \gset
-- when rows exist
\if :edms_when

-- public.documents
UPDATE "public"."documents" AS t SET "document_number" = f."document_number", "title" = f."title", "status" = f."status", "created_at" = f."created_at", "current_version_id" = f."current_version_id", "owner_id" = f."owner_id", "parent_id" = f."parent_id" FROM "edms_002_documents_final" AS f WHERE NOT f."#new" AND "t"."id" OPERATOR("pg_catalog".=) "f"."id" AND ("t"."document_number" IS DISTINCT FROM "f"."document_number" OR "t"."title" IS DISTINCT FROM "f"."title" OR "t"."status" IS DISTINCT FROM "f"."status" OR "t"."created_at" IS DISTINCT FROM "f"."created_at" OR "t"."current_version_id" IS DISTINCT FROM "f"."current_version_id" OR "t"."owner_id" IS DISTINCT FROM "f"."owner_id" OR "t"."parent_id" IS DISTINCT FROM "f"."parent_id");
INSERT INTO edms_count VALUES (2, 'updated', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'existing'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'to resolve'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'staged'), 0) + -10 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'to resolve'), 0)) >= 0 AS edms_when \gset
-- when rows exist, few rows left to resolve
\if :edms_when
SET LOCAL "enable_seqscan" TO DEFAULT;
\endif

-- public.documents
INSERT INTO edms_count VALUES (2, 'unchanged', (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'existing'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'updated'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'skipped'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'existing'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'to resolve'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'staged'), 0) + -10 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'to resolve'), 0)) >= 0 AS edms_when \gset
-- when rows exist, few rows left to resolve
\if :edms_when
SET LOCAL "enable_seqscan" = off;
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'existing'), 0)) >= 1 AS edms_when \gset
-- when rows exist
\if :edms_when

-- public.document_versions
UPDATE "public"."document_versions" AS t SET "version_number" = f."version_number", "content_hash" = f."content_hash", "size_bytes" = f."size_bytes", "created_at" = f."created_at", "created_by_id" = f."created_by_id", "document_id" = f."document_id" FROM "edms_003_document_versions_final" AS f WHERE NOT f."#new" AND "t"."id" OPERATOR("pg_catalog".=) "f"."id" AND ("t"."version_number" IS DISTINCT FROM "f"."version_number" OR "t"."content_hash" IS DISTINCT FROM "f"."content_hash" OR "t"."size_bytes" IS DISTINCT FROM "f"."size_bytes" OR "t"."created_at" IS DISTINCT FROM "f"."created_at" OR "t"."created_by_id" IS DISTINCT FROM "f"."created_by_id" OR "t"."document_id" IS DISTINCT FROM "f"."document_id");
INSERT INTO edms_count VALUES (3, 'updated', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'existing'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'to resolve'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'staged'), 0) + -10 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'to resolve'), 0)) >= 0 AS edms_when \gset
-- when rows exist, few rows left to resolve
\if :edms_when
SET LOCAL "enable_seqscan" TO DEFAULT;
\endif

-- public.document_versions
INSERT INTO edms_count VALUES (3, 'unchanged', (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'existing'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'updated'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'skipped'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
SET CONSTRAINTS ALL IMMEDIATE;
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'existing'), 0)) >= 1 AS edms_when \gset
-- when new rows to insert
\if :edms_when

-- public.document_workflows
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "document_id.document_number", "workflow_type", pg_catalog.count(*) FROM "edms_004_document_workflows_raw" AS d GROUP BY "document_id.document_number", "workflow_type" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("document_id.document_number", "workflow_type", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_workflows: the archive holds duplicate natural keys (document_id.document_number, workflow_type): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;
INSERT INTO "public"."document_workflows" ("workflow_type", "state", "due_date", "id", "assignee_id", "document_id") SELECT "workflow_type", "state", "due_date", "id", "assignee_id", "document_id" FROM "edms_004_document_workflows_final" WHERE "#new";
INSERT INTO edms_count VALUES (4, 'inserted', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'existing'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'to resolve'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'staged'), 0) + -10 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'to resolve'), 0)) >= 0 AS edms_when \gset
-- when rows exist, few rows left to resolve
\if :edms_when
SET LOCAL "enable_seqscan" = off;
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'existing'), 0)) >= 1 AS edms_when \gset
-- when rows exist
\if :edms_when

-- public.document_workflows
UPDATE "public"."document_workflows" AS t SET "workflow_type" = f."workflow_type", "state" = f."state", "due_date" = f."due_date", "assignee_id" = f."assignee_id", "document_id" = f."document_id" FROM "edms_004_document_workflows_final" AS f WHERE NOT f."#new" AND "t"."id" OPERATOR("pg_catalog".=) "f"."id" AND ("t"."workflow_type" IS DISTINCT FROM "f"."workflow_type" OR "t"."state" IS DISTINCT FROM "f"."state" OR "t"."due_date" IS DISTINCT FROM "f"."due_date" OR "t"."assignee_id" IS DISTINCT FROM "f"."assignee_id" OR "t"."document_id" IS DISTINCT FROM "f"."document_id");
INSERT INTO edms_count VALUES (4, 'updated', :ROW_COUNT) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'existing'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'to resolve'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'staged'), 0) + -10 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'to resolve'), 0)) >= 0 AS edms_when \gset
-- when rows exist, few rows left to resolve
\if :edms_when
SET LOCAL "enable_seqscan" TO DEFAULT;
\endif

-- public.document_workflows
INSERT INTO edms_count VALUES (4, 'unchanged', (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'existing'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'updated'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'skipped'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
SET LOCAL "default_tablespace" = '';

-- all tables
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'existing'), 0)) >= 10000 AS edms_when \gset
-- when public.users brings many new rows, and so do the tables whose keys reference users_pkey
\if :edms_when

-- public.users
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "username", pg_catalog.count(*) FROM "edms_001_users_raw" AS d GROUP BY "username" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("username", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.users: the archive holds duplicate natural keys (username): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;
CREATE UNIQUE INDEX users_pkey ON public.users USING btree (id);
ALTER TABLE "public"."users" ADD CONSTRAINT "users_pkey" PRIMARY KEY USING INDEX "users_pkey";

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'existing'), 0)) >= 10000 AS edms_when \gset
-- when public.users brings many new rows, and so do the tables whose keys reference users_username_key
\if :edms_when

-- public.users
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "username", pg_catalog.count(*) FROM "edms_001_users_raw" AS d GROUP BY "username" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("username", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.users: the archive holds duplicate natural keys (username): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;
CREATE UNIQUE INDEX users_username_key ON public.users USING btree (username);
ALTER TABLE "public"."users" ADD CONSTRAINT "users_username_key" UNIQUE USING INDEX "users_username_key";

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'existing'), 0)) >= 10000 AS edms_when \gset
-- when public.documents brings many new rows, and so do the tables whose keys reference documents_document_number_key
\if :edms_when

-- public.documents
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "document_number", pg_catalog.count(*) FROM "edms_002_documents_raw" AS d GROUP BY "document_number" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("document_number", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.documents: the archive holds duplicate natural keys (document_number): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;
CREATE UNIQUE INDEX documents_document_number_key ON public.documents USING btree (document_number);
ALTER TABLE "public"."documents" ADD CONSTRAINT "documents_document_number_key" UNIQUE USING INDEX "documents_document_number_key";

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'existing'), 0)) >= 10000 AS edms_when \gset
-- when public.documents brings many new rows, and so do the tables whose keys reference documents_pkey
\if :edms_when

-- public.documents
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "document_number", pg_catalog.count(*) FROM "edms_002_documents_raw" AS d GROUP BY "document_number" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("document_number", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.documents: the archive holds duplicate natural keys (document_number): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;
CREATE UNIQUE INDEX documents_pkey ON public.documents USING btree (id);
ALTER TABLE "public"."documents" ADD CONSTRAINT "documents_pkey" PRIMARY KEY USING INDEX "documents_pkey";

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'existing'), 0)) >= 10000 AS edms_when \gset
-- when public.document_versions brings many new rows, and so do the tables whose keys reference document_versions_document_id_version_number_key
\if :edms_when

-- public.document_versions
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "document_id.document_number", "version_number", pg_catalog.count(*) FROM "edms_003_document_versions_raw" AS d GROUP BY "document_id.document_number", "version_number" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("document_id.document_number", "version_number", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_versions: the archive holds duplicate natural keys (document_id.document_number, version_number): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;
CREATE UNIQUE INDEX document_versions_document_id_version_number_key ON public.document_versions USING btree (document_id, version_number);
ALTER TABLE "public"."document_versions" ADD CONSTRAINT "document_versions_document_id_version_number_key" UNIQUE USING INDEX "document_versions_document_id_version_number_key";

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'existing'), 0)) >= 10000 AS edms_when \gset
-- when public.document_versions brings many new rows, and so do the tables whose keys reference document_versions_pkey
\if :edms_when

-- public.document_versions
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "document_id.document_number", "version_number", pg_catalog.count(*) FROM "edms_003_document_versions_raw" AS d GROUP BY "document_id.document_number", "version_number" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("document_id.document_number", "version_number", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_versions: the archive holds duplicate natural keys (document_id.document_number, version_number): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;
CREATE UNIQUE INDEX document_versions_pkey ON public.document_versions USING btree (id);
ALTER TABLE "public"."document_versions" ADD CONSTRAINT "document_versions_pkey" PRIMARY KEY USING INDEX "document_versions_pkey";

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'existing'), 0)) >= 10000 AS edms_when \gset
-- when public.document_workflows brings many new rows, and so do the tables whose keys reference document_workflows_document_id_workflow_type_key
\if :edms_when

-- public.document_workflows
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "document_id.document_number", "workflow_type", pg_catalog.count(*) FROM "edms_004_document_workflows_raw" AS d GROUP BY "document_id.document_number", "workflow_type" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("document_id.document_number", "workflow_type", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_workflows: the archive holds duplicate natural keys (document_id.document_number, workflow_type): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;
CREATE UNIQUE INDEX document_workflows_document_id_workflow_type_key ON public.document_workflows USING btree (document_id, workflow_type);
ALTER TABLE "public"."document_workflows" ADD CONSTRAINT "document_workflows_document_id_workflow_type_key" UNIQUE USING INDEX "document_workflows_document_id_workflow_type_key";

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'recreating'), 0)) >= 1 AND (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'existing'), 0)) >= 10000 AS edms_when \gset
-- when public.document_workflows brings many new rows, and so do the tables whose keys reference document_workflows_pkey
\if :edms_when

-- public.document_workflows
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#count"), string_agg((to_jsonb(q) - '#count')::text || ' ' || q."#count" || ' times', ', ') INTO total, found
    FROM (SELECT "document_id.document_number", "workflow_type", pg_catalog.count(*) FROM "edms_004_document_workflows_raw" AS d GROUP BY "document_id.document_number", "workflow_type" HAVING pg_catalog.count(*) > 1 ORDER BY pg_catalog.count(*) DESC LIMIT 5) AS q("document_id.document_number", "workflow_type", "#count");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_workflows: the archive holds duplicate natural keys (document_id.document_number, workflow_type): ' || found || '; fix the source data or choose a natural key that is unique';
  END IF;
END
$edms$;
CREATE UNIQUE INDEX document_workflows_pkey ON public.document_workflows USING btree (id);
ALTER TABLE "public"."document_workflows" ADD CONSTRAINT "document_workflows_pkey" PRIMARY KEY USING INDEX "document_workflows_pkey";

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'recreating'), 0)) >= 1 AS edms_when \gset
-- when public.documents brings many new rows: its foreign keys are re-added with one join each
\if :edms_when

-- public.documents
CREATE INDEX documents_owner_idx ON public.documents USING btree (owner_id);
CREATE INDEX documents_parent_idx ON public.documents USING btree (parent_id);
ANALYZE "public"."documents" ("current_version_id", "owner_id", "parent_id");
ALTER TABLE "public"."documents" ADD CONSTRAINT "documents_current_version_fk" FOREIGN KEY (current_version_id) REFERENCES public.document_versions(id) DEFERRABLE;
ALTER TABLE "public"."documents" ADD CONSTRAINT "documents_owner_id_fkey" FOREIGN KEY (owner_id) REFERENCES public.users(id);
ALTER TABLE "public"."documents" ADD CONSTRAINT "documents_parent_id_fkey" FOREIGN KEY (parent_id) REFERENCES public.documents(id);

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'recreating'), 0)) >= 1 AS edms_when \gset
-- when public.document_versions brings many new rows: its foreign keys are re-added with one join each
\if :edms_when

-- public.document_versions
CREATE INDEX document_versions_created_by_idx ON public.document_versions USING btree (created_by_id);
ANALYZE "public"."document_versions" ("created_by_id", "document_id");
ALTER TABLE "public"."document_versions" ADD CONSTRAINT "document_versions_created_by_id_fkey" FOREIGN KEY (created_by_id) REFERENCES public.users(id);
ALTER TABLE "public"."document_versions" ADD CONSTRAINT "document_versions_document_id_fkey" FOREIGN KEY (document_id) REFERENCES public.documents(id);

-- all tables
\endif
SELECT (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'recreating'), 0)) >= 1 AS edms_when \gset
-- when public.document_workflows brings many new rows: its foreign keys are re-added with one join each
\if :edms_when

-- public.document_workflows
CREATE INDEX document_workflows_assignee_idx ON public.document_workflows USING btree (assignee_id);
ANALYZE "public"."document_workflows" ("assignee_id", "document_id");
ALTER TABLE "public"."document_workflows" ADD CONSTRAINT "document_workflows_assignee_id_fkey" FOREIGN KEY (assignee_id) REFERENCES public.users(id);
ALTER TABLE "public"."document_workflows" ADD CONSTRAINT "document_workflows_document_id_fkey" FOREIGN KEY (document_id) REFERENCES public.documents(id);

-- all tables
\endif
SET LOCAL "default_tablespace" TO DEFAULT;
SET LOCAL "TimeZone" = 'UTC';
SET CONSTRAINTS ALL IMMEDIATE;

-- public.users
INSERT INTO edms_count SELECT 1, v.name, v.value FROM (SELECT coalesce(sum(s."n_tup_ins" - coalesce(b."ins", 0)), 0), coalesce(sum(s."n_tup_upd" - coalesce(b."upd", 0)), 0), coalesce(sum(s."n_tup_del" - coalesce(b."del", 0)), 0) FROM pg_catalog.pg_stat_xact_user_tables AS s LEFT JOIN "edms_xact_before" AS b ON b.relid = s.relid WHERE s.relid = ANY(ARRAY['"public"."users"'::pg_catalog.regclass::oid])) AS q(c0, c1, c2) CROSS JOIN LATERAL (VALUES ('observed inserted', q.c0), ('observed updated', q.c1), ('observed deleted', q.c2)) AS v(name, value) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
INSERT INTO edms_count VALUES (1, 'planned inserted', (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'existing'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
INSERT INTO edms_count VALUES (1, 'planned updated', (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'second pass'), 0) + coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'updated'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
INSERT INTO edms_count VALUES (1, 'planned deleted', (0)) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
DO $edms$
DECLARE
  got bigint;
  want bigint;
BEGIN
  got := coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'observed inserted'), 0);
  want := coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'planned inserted'), 0);
  IF got <> want THEN
    RAISE EXCEPTION USING MESSAGE = 'public.users: the transaction inserted ' || got || ' row(s) but the import planned ' || want || ' (observed in pg_stat_xact_user_tables); no trigger, rule or foreign-key action in the catalog explains it; nothing was committed';
  END IF;
END
$edms$;
DO $edms$
DECLARE
  got bigint;
  want bigint;
BEGIN
  got := coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'observed updated'), 0);
  want := coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'planned updated'), 0);
  IF got <> want THEN
    RAISE EXCEPTION USING MESSAGE = 'public.users: the transaction updated ' || got || ' row(s) but the import planned ' || want || ' (observed in pg_stat_xact_user_tables); no trigger, rule or foreign-key action in the catalog explains it; nothing was committed';
  END IF;
END
$edms$;
DO $edms$
DECLARE
  got bigint;
  want bigint;
BEGIN
  got := coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'observed deleted'), 0);
  want := coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'planned deleted'), 0);
  IF got <> want THEN
    RAISE EXCEPTION USING MESSAGE = 'public.users: the transaction deleted ' || got || ' row(s) but the import planned ' || want || ' (observed in pg_stat_xact_user_tables); no trigger, rule or foreign-key action in the catalog explains it; nothing was committed';
  END IF;
END
$edms$;

-- public.documents
INSERT INTO edms_count SELECT 2, v.name, v.value FROM (SELECT coalesce(sum(s."n_tup_ins" - coalesce(b."ins", 0)), 0), coalesce(sum(s."n_tup_upd" - coalesce(b."upd", 0)), 0), coalesce(sum(s."n_tup_del" - coalesce(b."del", 0)), 0) FROM pg_catalog.pg_stat_xact_user_tables AS s LEFT JOIN "edms_xact_before" AS b ON b.relid = s.relid WHERE s.relid = ANY(ARRAY['"public"."documents"'::pg_catalog.regclass::oid])) AS q(c0, c1, c2) CROSS JOIN LATERAL (VALUES ('observed inserted', q.c0), ('observed updated', q.c1), ('observed deleted', q.c2)) AS v(name, value) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
INSERT INTO edms_count VALUES (2, 'planned inserted', (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'existing'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
INSERT INTO edms_count VALUES (2, 'planned updated', (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'second pass'), 0) + coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'updated'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
INSERT INTO edms_count VALUES (2, 'planned deleted', (0)) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
DO $edms$
DECLARE
  got bigint;
  want bigint;
BEGIN
  got := coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'observed inserted'), 0);
  want := coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'planned inserted'), 0);
  IF got <> want THEN
    RAISE EXCEPTION USING MESSAGE = 'public.documents: the transaction inserted ' || got || ' row(s) but the import planned ' || want || ' (observed in pg_stat_xact_user_tables); no trigger, rule or foreign-key action in the catalog explains it; nothing was committed';
  END IF;
END
$edms$;
DO $edms$
DECLARE
  got bigint;
  want bigint;
BEGIN
  got := coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'observed updated'), 0);
  want := coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'planned updated'), 0);
  IF got <> want THEN
    RAISE EXCEPTION USING MESSAGE = 'public.documents: the transaction updated ' || got || ' row(s) but the import planned ' || want || ' (observed in pg_stat_xact_user_tables); no trigger, rule or foreign-key action in the catalog explains it; nothing was committed';
  END IF;
END
$edms$;
DO $edms$
DECLARE
  got bigint;
  want bigint;
BEGIN
  got := coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'observed deleted'), 0);
  want := coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'planned deleted'), 0);
  IF got <> want THEN
    RAISE EXCEPTION USING MESSAGE = 'public.documents: the transaction deleted ' || got || ' row(s) but the import planned ' || want || ' (observed in pg_stat_xact_user_tables); no trigger, rule or foreign-key action in the catalog explains it; nothing was committed';
  END IF;
END
$edms$;

-- public.document_versions
INSERT INTO edms_count SELECT 3, v.name, v.value FROM (SELECT coalesce(sum(s."n_tup_ins" - coalesce(b."ins", 0)), 0), coalesce(sum(s."n_tup_upd" - coalesce(b."upd", 0)), 0), coalesce(sum(s."n_tup_del" - coalesce(b."del", 0)), 0) FROM pg_catalog.pg_stat_xact_user_tables AS s LEFT JOIN "edms_xact_before" AS b ON b.relid = s.relid WHERE s.relid = ANY(ARRAY['"public"."document_versions"'::pg_catalog.regclass::oid])) AS q(c0, c1, c2) CROSS JOIN LATERAL (VALUES ('observed inserted', q.c0), ('observed updated', q.c1), ('observed deleted', q.c2)) AS v(name, value) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
INSERT INTO edms_count VALUES (3, 'planned inserted', (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'existing'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
INSERT INTO edms_count VALUES (3, 'planned updated', (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'second pass'), 0) + coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'updated'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
INSERT INTO edms_count VALUES (3, 'planned deleted', (0)) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
DO $edms$
DECLARE
  got bigint;
  want bigint;
BEGIN
  got := coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'observed inserted'), 0);
  want := coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'planned inserted'), 0);
  IF got <> want THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_versions: the transaction inserted ' || got || ' row(s) but the import planned ' || want || ' (observed in pg_stat_xact_user_tables); no trigger, rule or foreign-key action in the catalog explains it; nothing was committed';
  END IF;
END
$edms$;
DO $edms$
DECLARE
  got bigint;
  want bigint;
BEGIN
  got := coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'observed updated'), 0);
  want := coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'planned updated'), 0);
  IF got <> want THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_versions: the transaction updated ' || got || ' row(s) but the import planned ' || want || ' (observed in pg_stat_xact_user_tables); no trigger, rule or foreign-key action in the catalog explains it; nothing was committed';
  END IF;
END
$edms$;
DO $edms$
DECLARE
  got bigint;
  want bigint;
BEGIN
  got := coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'observed deleted'), 0);
  want := coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'planned deleted'), 0);
  IF got <> want THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_versions: the transaction deleted ' || got || ' row(s) but the import planned ' || want || ' (observed in pg_stat_xact_user_tables); no trigger, rule or foreign-key action in the catalog explains it; nothing was committed';
  END IF;
END
$edms$;

-- public.document_workflows
INSERT INTO edms_count SELECT 4, v.name, v.value FROM (SELECT coalesce(sum(s."n_tup_ins" - coalesce(b."ins", 0)), 0), coalesce(sum(s."n_tup_upd" - coalesce(b."upd", 0)), 0), coalesce(sum(s."n_tup_del" - coalesce(b."del", 0)), 0) FROM pg_catalog.pg_stat_xact_user_tables AS s LEFT JOIN "edms_xact_before" AS b ON b.relid = s.relid WHERE s.relid = ANY(ARRAY['"public"."document_workflows"'::pg_catalog.regclass::oid])) AS q(c0, c1, c2) CROSS JOIN LATERAL (VALUES ('observed inserted', q.c0), ('observed updated', q.c1), ('observed deleted', q.c2)) AS v(name, value) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
INSERT INTO edms_count VALUES (4, 'planned inserted', (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'staged'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'existing'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
INSERT INTO edms_count VALUES (4, 'planned updated', (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'second pass'), 0) + coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'updated'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
INSERT INTO edms_count VALUES (4, 'planned deleted', (0)) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
DO $edms$
DECLARE
  got bigint;
  want bigint;
BEGIN
  got := coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'observed inserted'), 0);
  want := coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'planned inserted'), 0);
  IF got <> want THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_workflows: the transaction inserted ' || got || ' row(s) but the import planned ' || want || ' (observed in pg_stat_xact_user_tables); no trigger, rule or foreign-key action in the catalog explains it; nothing was committed';
  END IF;
END
$edms$;
DO $edms$
DECLARE
  got bigint;
  want bigint;
BEGIN
  got := coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'observed updated'), 0);
  want := coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'planned updated'), 0);
  IF got <> want THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_workflows: the transaction updated ' || got || ' row(s) but the import planned ' || want || ' (observed in pg_stat_xact_user_tables); no trigger, rule or foreign-key action in the catalog explains it; nothing was committed';
  END IF;
END
$edms$;
DO $edms$
DECLARE
  got bigint;
  want bigint;
BEGIN
  got := coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'observed deleted'), 0);
  want := coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'planned deleted'), 0);
  IF got <> want THEN
    RAISE EXCEPTION USING MESSAGE = 'public.document_workflows: the transaction deleted ' || got || ' row(s) but the import planned ' || want || ' (observed in pg_stat_xact_user_tables); no trigger, rule or foreign-key action in the catalog explains it; nothing was committed';
  END IF;
END
$edms$;

-- all tables
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#total"), string_agg((to_jsonb(q) - '#total')::text, ', ') INTO total, found
    FROM (SELECT count(*) OVER (), d.tbl, d.inserted, d.updated, d.deleted, d.cause FROM (SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(r.relname) AS tbl, s."n_tup_ins" - coalesce(b."ins", 0) AS inserted, s."n_tup_upd" - coalesce(b."upd", 0) AS updated, s."n_tup_del" - coalesce(b."del", 0) AS deleted, coalesce(c.cause, 'no trigger, rule or foreign-key action in the catalog explains it') AS cause, s.relid = ANY(ARRAY[]::oid[]) AS allowed FROM pg_catalog.pg_stat_xact_user_tables AS s JOIN pg_catalog.pg_class AS r ON r.oid = s.relid JOIN pg_catalog.pg_namespace AS n ON n.oid = r.relnamespace LEFT JOIN "edms_xact_before" AS b ON b.relid = s.relid LEFT JOIN (VALUES (0::oid, NULL::text)) AS c(relid, cause) ON c.relid = s.relid WHERE r.relpersistence <> 't' AND r.relkind <> 'm' AND NOT s.relid = ANY(ARRAY['"public"."users"'::pg_catalog.regclass::oid, '"public"."documents"'::pg_catalog.regclass::oid, '"public"."document_versions"'::pg_catalog.regclass::oid, '"public"."document_workflows"'::pg_catalog.regclass::oid]) AND NOT starts_with(n.nspname, 'edms_pgdump_stage_')) AS d WHERE (d.updated > 0 OR d.deleted > 0) AND NOT d.allowed ORDER BY d.tbl LIMIT 5) AS q("#total", "table", "inserted", "updated", "deleted", "cause");
  IF found IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'the import changed or deleted rows of ' || total || ' table(s) it does not write: ' || found || '; those tables are not in the archive, so nothing was committed (map them, or accept the changes with --allow-side-effects TABLE)';
  END IF;
END
$edms$;
DO $edms$
DECLARE
  total bigint;
  found text;
BEGIN
  SELECT max(q."#total"), string_agg((to_jsonb(q) - '#total')::text, ', ') INTO total, found
    FROM (SELECT count(*) OVER (), d.tbl, d.inserted, d.updated, d.deleted, d.cause FROM (SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(r.relname) AS tbl, s."n_tup_ins" - coalesce(b."ins", 0) AS inserted, s."n_tup_upd" - coalesce(b."upd", 0) AS updated, s."n_tup_del" - coalesce(b."del", 0) AS deleted, coalesce(c.cause, 'no trigger, rule or foreign-key action in the catalog explains it') AS cause, s.relid = ANY(ARRAY[]::oid[]) AS allowed FROM pg_catalog.pg_stat_xact_user_tables AS s JOIN pg_catalog.pg_class AS r ON r.oid = s.relid JOIN pg_catalog.pg_namespace AS n ON n.oid = r.relnamespace LEFT JOIN "edms_xact_before" AS b ON b.relid = s.relid LEFT JOIN (VALUES (0::oid, NULL::text)) AS c(relid, cause) ON c.relid = s.relid WHERE r.relpersistence <> 't' AND r.relkind <> 'm' AND NOT s.relid = ANY(ARRAY['"public"."users"'::pg_catalog.regclass::oid, '"public"."documents"'::pg_catalog.regclass::oid, '"public"."document_versions"'::pg_catalog.regclass::oid, '"public"."document_workflows"'::pg_catalog.regclass::oid]) AND NOT starts_with(n.nspname, 'edms_pgdump_stage_')) AS d WHERE NOT ((d.updated > 0 OR d.deleted > 0) AND NOT d.allowed) AND (d.inserted > 0 OR d.updated > 0 OR d.deleted > 0) ORDER BY d.tbl LIMIT 5) AS q("#total", "table", "inserted", "updated", "deleted", "cause");
  IF found IS NOT NULL THEN
    RAISE WARNING USING MESSAGE = 'the import also wrote to ' || total || ' table(s) not in the archive: ' || found || ' (side effects, allowed)';
  END IF;
END
$edms$;

-- public.users
INSERT INTO edms_count VALUES (1, 'present', (coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'existing'), 0) + coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'observed inserted'), 0) + coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'planned deleted'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'observed deleted'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
DO $edms$
DECLARE
  expected bigint;
  staged bigint;
  inserted bigint;
  updated bigint;
  unchanged bigint;
  skipped bigint;
  present bigint;
BEGIN
  expected := coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'expected'), 0);
  staged := coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'staged'), 0);
  inserted := coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'inserted'), 0);
  updated := coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'updated'), 0);
  unchanged := coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'unchanged'), 0);
  skipped := coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'skipped'), 0);
  present := coalesce((SELECT value FROM edms_count WHERE idx = 1 AND name = 'present'), 0);
  IF NOT (expected = staged AND staged = inserted + updated + unchanged + skipped AND present = staged) THEN
    RAISE EXCEPTION USING MESSAGE = format('%s: counts do not balance (expected %s, staged %s, inserted %s + updated %s + unchanged %s, present after %s)', 'public.users', expected, staged, inserted, updated, unchanged, present);
  END IF;
END
$edms$;

-- public.documents
INSERT INTO edms_count VALUES (2, 'present', (coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'existing'), 0) + coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'observed inserted'), 0) + coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'planned deleted'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'observed deleted'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
DO $edms$
DECLARE
  expected bigint;
  staged bigint;
  inserted bigint;
  updated bigint;
  unchanged bigint;
  skipped bigint;
  present bigint;
BEGIN
  expected := coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'expected'), 0);
  staged := coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'staged'), 0);
  inserted := coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'inserted'), 0);
  updated := coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'updated'), 0);
  unchanged := coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'unchanged'), 0);
  skipped := coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'skipped'), 0);
  present := coalesce((SELECT value FROM edms_count WHERE idx = 2 AND name = 'present'), 0);
  IF NOT (expected = staged AND staged = inserted + updated + unchanged + skipped AND present = staged) THEN
    RAISE EXCEPTION USING MESSAGE = format('%s: counts do not balance (expected %s, staged %s, inserted %s + updated %s + unchanged %s, present after %s)', 'public.documents', expected, staged, inserted, updated, unchanged, present);
  END IF;
END
$edms$;

-- public.document_versions
INSERT INTO edms_count VALUES (3, 'present', (coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'existing'), 0) + coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'observed inserted'), 0) + coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'planned deleted'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'observed deleted'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
DO $edms$
DECLARE
  expected bigint;
  staged bigint;
  inserted bigint;
  updated bigint;
  unchanged bigint;
  skipped bigint;
  present bigint;
BEGIN
  expected := coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'expected'), 0);
  staged := coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'staged'), 0);
  inserted := coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'inserted'), 0);
  updated := coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'updated'), 0);
  unchanged := coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'unchanged'), 0);
  skipped := coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'skipped'), 0);
  present := coalesce((SELECT value FROM edms_count WHERE idx = 3 AND name = 'present'), 0);
  IF NOT (expected = staged AND staged = inserted + updated + unchanged + skipped AND present = staged) THEN
    RAISE EXCEPTION USING MESSAGE = format('%s: counts do not balance (expected %s, staged %s, inserted %s + updated %s + unchanged %s, present after %s)', 'public.document_versions', expected, staged, inserted, updated, unchanged, present);
  END IF;
END
$edms$;

-- public.document_workflows
INSERT INTO edms_count VALUES (4, 'present', (coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'existing'), 0) + coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'observed inserted'), 0) + coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'planned deleted'), 0) + -1 * coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'observed deleted'), 0))) ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;
DO $edms$
DECLARE
  expected bigint;
  staged bigint;
  inserted bigint;
  updated bigint;
  unchanged bigint;
  skipped bigint;
  present bigint;
BEGIN
  expected := coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'expected'), 0);
  staged := coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'staged'), 0);
  inserted := coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'inserted'), 0);
  updated := coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'updated'), 0);
  unchanged := coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'unchanged'), 0);
  skipped := coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'skipped'), 0);
  present := coalesce((SELECT value FROM edms_count WHERE idx = 4 AND name = 'present'), 0);
  IF NOT (expected = staged AND staged = inserted + updated + unchanged + skipped AND present = staged) THEN
    RAISE EXCEPTION USING MESSAGE = format('%s: counts do not balance (expected %s, staged %s, inserted %s + updated %s + unchanged %s, present after %s)', 'public.document_workflows', expected, staged, inserted, updated, unchanged, present);
  END IF;
END
$edms$;

-- all tables
SELECT t.idx, t.table_name, coalesce((SELECT value FROM edms_count c WHERE c.idx = t.idx AND c.name = 'expected'), 0) AS expected, coalesce((SELECT value FROM edms_count c WHERE c.idx = t.idx AND c.name = 'staged'), 0) AS staged, coalesce((SELECT value FROM edms_count c WHERE c.idx = t.idx AND c.name = 'inserted'), 0) AS inserted, coalesce((SELECT value FROM edms_count c WHERE c.idx = t.idx AND c.name = 'updated'), 0) AS updated, coalesce((SELECT value FROM edms_count c WHERE c.idx = t.idx AND c.name = 'unchanged'), 0) AS unchanged, coalesce((SELECT value FROM edms_count c WHERE c.idx = t.idx AND c.name = 'skipped'), 0) AS skipped FROM edms_tables AS t ORDER BY t.idx;
COMMIT;
