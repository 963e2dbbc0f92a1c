-- edms-pgdump export runbook; generated from the mapping with sha256 350fa503aad9a69a406a1151624bb0bf740ac6c1ce21e2419e84e65befbfd974
-- tables in load order: public.users, public.documents, public.document_versions, public.document_workflows
-- run: psql -v ON_ERROR_STOP=1 -v datadir=DIR -d SOURCE -f export.sql
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
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SET LOCAL "work_mem" = '256MB';
SET LOCAL "statement_timeout" = '0';
SET LOCAL "idle_in_transaction_session_timeout" = '0';

-- public.users
\copy (SELECT t."username", t."email", t."full_name", t."is_active", t."created_at" FROM "public"."users" AS t) TO '0001.copy'
\set rows_0001 :ROW_COUNT

-- public.documents
\copy (SELECT t."document_number", t."title", "r1"."username", "r2"."document_number", "r4"."document_number", "r3"."version_number", t."status", t."created_at" FROM "public"."documents" AS t LEFT JOIN "public"."users" AS "r1" ON "r1"."id" OPERATOR("pg_catalog".=) "t"."owner_id" LEFT JOIN "public"."documents" AS "r2" ON "r2"."id" OPERATOR("pg_catalog".=) "t"."parent_id" LEFT JOIN "public"."document_versions" AS "r3" ON "r3"."id" OPERATOR("pg_catalog".=) "t"."current_version_id" LEFT JOIN "public"."documents" AS "r4" ON "r4"."id" OPERATOR("pg_catalog".=) "r3"."document_id") TO '0002.copy'
\set rows_0002 :ROW_COUNT

-- public.document_versions
\copy (SELECT "r1"."document_number", t."version_number", t."content_hash", t."size_bytes", "r2"."username", t."created_at" FROM "public"."document_versions" AS t LEFT JOIN "public"."documents" AS "r1" ON "r1"."id" OPERATOR("pg_catalog".=) "t"."document_id" LEFT JOIN "public"."users" AS "r2" ON "r2"."id" OPERATOR("pg_catalog".=) "t"."created_by_id") TO '0003.copy'
\set rows_0003 :ROW_COUNT

-- public.document_workflows
\copy (SELECT "r1"."document_number", t."workflow_type", t."state", "r2"."username", t."due_date" FROM "public"."document_workflows" AS t LEFT JOIN "public"."documents" AS "r1" ON "r1"."id" OPERATOR("pg_catalog".=) "t"."document_id" LEFT JOIN "public"."users" AS "r2" ON "r2"."id" OPERATOR("pg_catalog".=) "t"."assignee_id") TO '0004.copy'
\set rows_0004 :ROW_COUNT

-- all tables
COPY (VALUES (1, 'public.users', :rows_0001, '["username", "email", "full_name", "is_active", "created_at"]'), (2, 'public.documents', :rows_0002, '["document_number", "title", "owner_id.username", "parent_id.document_number", "current_version_id.document_id.document_number", "current_version_id.version_number", "status", "created_at"]'), (3, 'public.document_versions', :rows_0003, '["document_id.document_number", "version_number", "content_hash", "size_bytes", "created_by_id.username", "created_at"]'), (4, 'public.document_workflows', :rows_0004, '["document_id.document_number", "workflow_type", "state", "assignee_id.username", "due_date"]')) TO STDOUT \g 'counts.copy'
COPY (VALUES (1, 'public.users', '{"rule": "whole"}', NULL::bigint), (2, 'public.documents', '{"rule": "whole"}', NULL::bigint), (3, 'public.document_versions', '{"rule": "whole"}', NULL::bigint), (4, 'public.document_workflows', '{"rule": "whole"}', NULL::bigint)) TO STDOUT \g 'scope.copy'
COMMIT;
