-- edms-pgdump export runbook; generated from the mapping with sha256 16c7b7f506073562958370e313ac3b9ab66f14c8db483768fa22c85b24917dc9
-- tables in load order: archive.product, public.app_cabinet, public.app_document, public.app_folder, public.app_role, public.app_tag, public.app_accessentry, public.app_comment, public.category, public.party, public.doc, public.item, public.node, public.note, public.person, public.product, public.sale
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

-- refused like edms-pgdump export: generic ids whose type names a table that is not mapped
DO $edms$
DECLARE
  r record;
  found text[] := '{}';
BEGIN
  -- public.app_accessentry (content_type_id, object_id)
  FOR r IN EXECUTE 'SELECT q.n, q.label, coalesce(w.named, quote_ident(q.s) || ''.'' || quote_ident(q.t)) AS named, coalesce(w.status, ''refused'') AS status, coalesce(w.why, ''does not exist'') AS why FROM (SELECT ''public'', pg_catalog.concat("ty"."app_label"::text, ''_'', "ty"."model"::text), pg_catalog.concat_ws(''.'', "ty"."app_label", "ty"."model"), pg_catalog.count(*) FROM "public"."app_accessentry" AS t JOIN "public"."django_content_type" AS ty ON ty."id" = t."content_type_id" WHERE t."object_id" IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3) AS q(s, t, label, n) LEFT JOIN (VALUES (''archive'', ''product'', ''archive.product'', ''stale'', ''''), (''public'', ''app_accessentry'', ''public.app_accessentry'', ''stale'', ''''), (''public'', ''app_cabinet'', ''public.app_cabinet'', ''target'', ''''), (''public'', ''app_comment'', ''public.app_comment'', ''stale'', ''''), (''public'', ''app_document'', ''public.app_document'', ''target'', ''''), (''public'', ''app_folder'', ''public.app_folder'', ''target'', ''''), (''public'', ''app_role'', ''public.app_role'', ''stale'', ''''), (''public'', ''app_tag'', ''public.app_tag'', ''target'', ''''), (''public'', ''category'', ''public.category'', ''stale'', ''''), (''public'', ''django_content_type'', ''public.django_content_type'', ''stale'', ''''), (''public'', ''doc'', ''public.doc'', ''stale'', ''''), (''public'', ''item'', ''public.item'', ''stale'', ''''), (''public'', ''node'', ''public.node'', ''stale'', ''''), (''public'', ''note'', ''public.note'', ''stale'', ''''), (''public'', ''party'', ''public.party'', ''stale'', ''''), (''public'', ''person'', ''public.person'', ''stale'', ''''), (''public'', ''product'', ''public.product'', ''stale'', ''''), (''public'', ''sale'', ''public.sale'', ''stale'', '''')) AS w(s, t, named, status, why) ON w.s = q.s AND w.t = q.t WHERE NOT (q.label = ANY(''{}''::text[])) AND coalesce(w.status, ''refused'') <> ''target'' ORDER BY q.s, q.t, q.label' LOOP
    found := array_append(found, CASE WHEN r.status = 'stale' THEN 'error: public.app_accessentry: ' || r.n::text || ' row(s) have a content_type_id of type ' || r.label || ', which names ' || r.named || '; no public.django_content_type row named that table when this export.sql was generated, so it cannot write their object_id; fix: generate export.sql again (edms-pgdump sql export)' ELSE 'error: public.app_accessentry: ' || r.n::text || ' row(s) have a content_type_id of type ' || r.label || ', which names ' || r.named || '; that table ' || r.why || ', so their object_id would travel raw; fix: map ' || r.named || ' with a natural_key, or add ' || r.label || ' to ignore_types: of this generic reference to carry those ids as they are' END);
  END LOOP;
  -- public.app_comment (content_type_id, object_id)
  FOR r IN EXECUTE 'SELECT q.n, q.label, coalesce(w.named, quote_ident(q.s) || ''.'' || quote_ident(q.t)) AS named, coalesce(w.status, ''refused'') AS status, coalesce(w.why, ''does not exist'') AS why FROM (SELECT ''public'', pg_catalog.concat("ty"."app_label"::text, ''_'', "ty"."model"::text), pg_catalog.concat_ws(''.'', "ty"."app_label", "ty"."model"), pg_catalog.count(*) FROM "public"."app_comment" AS t JOIN "public"."django_content_type" AS ty ON ty."id" = t."content_type_id" WHERE t."object_id" IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3) AS q(s, t, label, n) LEFT JOIN (VALUES (''archive'', ''product'', ''archive.product'', ''stale'', ''''), (''public'', ''app_accessentry'', ''public.app_accessentry'', ''stale'', ''''), (''public'', ''app_cabinet'', ''public.app_cabinet'', ''target'', ''''), (''public'', ''app_comment'', ''public.app_comment'', ''stale'', ''''), (''public'', ''app_document'', ''public.app_document'', ''target'', ''''), (''public'', ''app_folder'', ''public.app_folder'', ''target'', ''''), (''public'', ''app_role'', ''public.app_role'', ''stale'', ''''), (''public'', ''app_tag'', ''public.app_tag'', ''target'', ''''), (''public'', ''category'', ''public.category'', ''stale'', ''''), (''public'', ''django_content_type'', ''public.django_content_type'', ''stale'', ''''), (''public'', ''doc'', ''public.doc'', ''stale'', ''''), (''public'', ''item'', ''public.item'', ''stale'', ''''), (''public'', ''node'', ''public.node'', ''stale'', ''''), (''public'', ''note'', ''public.note'', ''stale'', ''''), (''public'', ''party'', ''public.party'', ''stale'', ''''), (''public'', ''person'', ''public.person'', ''stale'', ''''), (''public'', ''product'', ''public.product'', ''stale'', ''''), (''public'', ''sale'', ''public.sale'', ''stale'', '''')) AS w(s, t, named, status, why) ON w.s = q.s AND w.t = q.t WHERE NOT (q.label = ANY(''{}''::text[])) AND coalesce(w.status, ''refused'') <> ''target'' ORDER BY q.s, q.t, q.label' LOOP
    found := array_append(found, CASE WHEN r.status = 'stale' THEN 'error: public.app_comment: ' || r.n::text || ' row(s) have a content_type_id of type ' || r.label || ', which names ' || r.named || '; no public.django_content_type row named that table when this export.sql was generated, so it cannot write their object_id; fix: generate export.sql again (edms-pgdump sql export)' ELSE 'error: public.app_comment: ' || r.n::text || ' row(s) have a content_type_id of type ' || r.label || ', which names ' || r.named || '; that table ' || r.why || ', so their object_id would travel raw; fix: map ' || r.named || ' with a natural_key, or add ' || r.label || ' to ignore_types: of this generic reference to carry those ids as they are' END);
  END LOOP;
  IF cardinality(found) > 0 THEN
    RAISE EXCEPTION USING MESSAGE = found[1] || CASE WHEN cardinality(found) > 1 THEN ' (and ' || (cardinality(found) - 1) || ' more)' ELSE '' END || '; nothing was exported';
  END IF;
END
$edms$;

-- refused like edms-pgdump export: generic ids that name no row
DO $edms$
DECLARE
  n1 numeric;
  n2 numeric;
  samples text;
  found text[] := '{}';
BEGIN
  -- public.app_accessentry (content_type_id, object_id), on_dangling: error
  EXECUTE 'SELECT max(q."#0"), string_agg(''(type='' || CASE WHEN q."#1" IS NULL THEN ''NULL'' WHEN jsonb_typeof(to_jsonb(q."#1")) IN (''number'', ''boolean'') THEN q."#1"::text ELSE chr(39) || replace(q."#1"::text, chr(39), chr(39) || chr(39)) || chr(39) END || '', object_id='' || CASE WHEN q."#2" IS NULL THEN ''NULL'' WHEN jsonb_typeof(to_jsonb(q."#2")) IN (''number'', ''boolean'') THEN q."#2"::text ELSE chr(39) || replace(q."#2"::text, chr(39), chr(39) || chr(39)) || chr(39) END || '')'', '', '') FROM (SELECT pg_catalog.count(*) OVER (), pg_catalog.concat_ws(''.'', "d1"."app_label", "d1"."model"), t."object_id"::text FROM "public"."app_accessentry" AS t LEFT JOIN "public"."django_content_type" AS "d1" ON "d1"."id" OPERATOR("pg_catalog".=) "t"."content_type_id" LEFT JOIN (SELECT x."id"::text AS "#id", pg_catalog.jsonb_build_array(x."label") AS "#key" FROM (SELECT "t"."label" AS "label", t."id", true AS "#hit" FROM "public"."app_cabinet" AS t ) AS x) AS "d2" ON pg_catalog.concat("d1"."app_label"::text, ''_'', "d1"."model"::text) OPERATOR("pg_catalog".=) ''app_cabinet'' AND "d2"."#id" OPERATOR("pg_catalog".=) "t"."object_id"::text LEFT JOIN (SELECT x."id"::text AS "#id", pg_catalog.jsonb_build_array(x."name") AS "#key" FROM (SELECT "t"."name" AS "name", t."id", true AS "#hit" FROM "public"."app_document" AS t ) AS x) AS "d3" ON pg_catalog.concat("d1"."app_label"::text, ''_'', "d1"."model"::text) OPERATOR("pg_catalog".=) ''app_document'' AND "d3"."#id" OPERATOR("pg_catalog".=) "t"."object_id"::text LEFT JOIN (SELECT x."id"::text AS "#id", pg_catalog.jsonb_build_array(x."path") AS "#key" FROM (SELECT "t"."path" AS "path", t."id", true AS "#hit" FROM "public"."app_folder" AS t ) AS x) AS "d4" ON pg_catalog.concat("d1"."app_label"::text, ''_'', "d1"."model"::text) OPERATOR("pg_catalog".=) ''app_folder'' AND "d4"."#id" OPERATOR("pg_catalog".=) "t"."object_id"::text LEFT JOIN (SELECT x."id"::text AS "#id", pg_catalog.jsonb_build_array(x."name") AS "#key" FROM (SELECT "t"."name" AS "name", t."id", true AS "#hit" FROM "public"."app_tag" AS t ) AS x) AS "d5" ON pg_catalog.concat("d1"."app_label"::text, ''_'', "d1"."model"::text) OPERATOR("pg_catalog".=) ''app_tag'' AND "d5"."#id" OPERATOR("pg_catalog".=) "t"."object_id"::text WHERE ("t"."object_id" IS NOT NULL AND COALESCE("d2"."#key", "d3"."#key", "d4"."#key", "d5"."#key") IS NULL) LIMIT 5) AS q("#0", "#1", "#2")' INTO n1, samples;
  IF samples IS NOT NULL THEN
    found := array_append(found, 'error: public.app_accessentry.object_id: ' || n1::text || ' row(s) name an object that does not exist through (content_type_id, object_id): ' || samples || '; export refuses them; fix: delete or fix those rows, or set on_dangling: null (nullable id) or skip on this generic reference');
  END IF;
  -- public.app_comment (content_type_id, object_id), on_dangling: error
  EXECUTE 'SELECT max(q."#0"), string_agg(''(type='' || CASE WHEN q."#1" IS NULL THEN ''NULL'' WHEN jsonb_typeof(to_jsonb(q."#1")) IN (''number'', ''boolean'') THEN q."#1"::text ELSE chr(39) || replace(q."#1"::text, chr(39), chr(39) || chr(39)) || chr(39) END || '', object_id='' || CASE WHEN q."#2" IS NULL THEN ''NULL'' WHEN jsonb_typeof(to_jsonb(q."#2")) IN (''number'', ''boolean'') THEN q."#2"::text ELSE chr(39) || replace(q."#2"::text, chr(39), chr(39) || chr(39)) || chr(39) END || '')'', '', '') FROM (SELECT pg_catalog.count(*) OVER (), pg_catalog.concat_ws(''.'', "d1"."app_label", "d1"."model"), t."object_id"::text FROM "public"."app_comment" AS t LEFT JOIN "public"."django_content_type" AS "d1" ON "d1"."id" OPERATOR("pg_catalog".=) "t"."content_type_id" LEFT JOIN (SELECT x."id"::text AS "#id", pg_catalog.jsonb_build_array(x."label") AS "#key" FROM (SELECT "t"."label" AS "label", t."id", true AS "#hit" FROM "public"."app_cabinet" AS t ) AS x) AS "d2" ON pg_catalog.concat("d1"."app_label"::text, ''_'', "d1"."model"::text) OPERATOR("pg_catalog".=) ''app_cabinet'' AND "d2"."#id" OPERATOR("pg_catalog".=) "t"."object_id"::text LEFT JOIN (SELECT x."id"::text AS "#id", pg_catalog.jsonb_build_array(x."name") AS "#key" FROM (SELECT "t"."name" AS "name", t."id", true AS "#hit" FROM "public"."app_document" AS t ) AS x) AS "d3" ON pg_catalog.concat("d1"."app_label"::text, ''_'', "d1"."model"::text) OPERATOR("pg_catalog".=) ''app_document'' AND "d3"."#id" OPERATOR("pg_catalog".=) "t"."object_id"::text LEFT JOIN (SELECT x."id"::text AS "#id", pg_catalog.jsonb_build_array(x."path") AS "#key" FROM (SELECT "t"."path" AS "path", t."id", true AS "#hit" FROM "public"."app_folder" AS t ) AS x) AS "d4" ON pg_catalog.concat("d1"."app_label"::text, ''_'', "d1"."model"::text) OPERATOR("pg_catalog".=) ''app_folder'' AND "d4"."#id" OPERATOR("pg_catalog".=) "t"."object_id"::text LEFT JOIN (SELECT x."id"::text AS "#id", pg_catalog.jsonb_build_array(x."name") AS "#key" FROM (SELECT "t"."name" AS "name", t."id", true AS "#hit" FROM "public"."app_tag" AS t ) AS x) AS "d5" ON pg_catalog.concat("d1"."app_label"::text, ''_'', "d1"."model"::text) OPERATOR("pg_catalog".=) ''app_tag'' AND "d5"."#id" OPERATOR("pg_catalog".=) "t"."object_id"::text WHERE ("t"."object_id" IS NOT NULL AND COALESCE("d2"."#key", "d3"."#key", "d4"."#key", "d5"."#key") IS NULL) LIMIT 5) AS q("#0", "#1", "#2")' INTO n1, samples;
  IF samples IS NOT NULL THEN
    found := array_append(found, 'error: public.app_comment.object_id: ' || n1::text || ' row(s) name an object that does not exist through (content_type_id, object_id): ' || samples || '; export refuses them; fix: delete or fix those rows, or set on_dangling: null (nullable id) or skip on this generic reference');
  END IF;
  IF cardinality(found) > 0 THEN
    RAISE EXCEPTION USING MESSAGE = found[1] || CASE WHEN cardinality(found) > 1 THEN ' (and ' || (cardinality(found) - 1) || ' more)' ELSE '' END || '; nothing was exported';
  END IF;
END
$edms$;

-- refused like edms-pgdump export: tree keys whose parent chain loops
DO $edms$
DECLARE
  n1 numeric;
  n2 numeric;
  samples text;
BEGIN
  -- public.node
  EXECUTE 'SELECT max(q."#0"), string_agg(''(parent_id='' || CASE WHEN q."#1" IS NULL THEN ''NULL'' WHEN jsonb_typeof(to_jsonb(q."#1")) IN (''number'', ''boolean'') THEN q."#1"::text ELSE chr(39) || replace(q."#1"::text, chr(39), chr(39) || chr(39)) || chr(39) END || '', label='' || CASE WHEN q."#2" IS NULL THEN ''NULL'' WHEN jsonb_typeof(to_jsonb(q."#2")) IN (''number'', ''boolean'') THEN q."#2"::text ELSE chr(39) || replace(q."#2"::text, chr(39), chr(39) || chr(39)) || chr(39) END || '')'', '', '') FROM (WITH RECURSIVE "opath1" ("id", "#path") AS (SELECT t."id", pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array("t"."label")) FROM "public"."node" AS t WHERE t."parent_id" IS NULL UNION ALL SELECT c."id", p."#path" || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array("c"."label")) FROM "public"."node" AS c JOIN "opath1" AS p ON c."parent_id" OPERATOR("pg_catalog".=) p."id") SELECT pg_catalog.count(*) OVER (), t."parent_id", t."label" FROM "public"."node" AS t LEFT JOIN "opath1" AS "o1" ON "o1"."id" OPERATOR("pg_catalog".=) "t"."parent_id" WHERE t."parent_id" IS NOT NULL AND "o1"."#path" IS NULL LIMIT 5) AS q("#0", "#1", "#2")' INTO n1, samples;
  IF samples IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'public.node: ' || n1::text || ' row(s) have a parent but no path from a root (the parent chain loops), so their natural key cannot be written: ' || samples || '; break the loop in the data, nothing was exported';
  END IF;
END
$edms$;

-- refused like edms-pgdump export: natural keys not unique in the data, likely references, references to a NULL natural key or to rows that do not exist
DO $edms$
DECLARE
  n1 numeric;
  n2 numeric;
  samples text;
  matched numeric;
  hit integer;
  also text;
  line text;
  places_1 text[] := '{}';
  lines_1 text[] := '{}';
  places_2 text[] := '{}';
  lines_2 text[] := '{}';
  places_3 text[] := '{}';
  lines_3 text[] := '{}';
  places_4 text[] := '{}';
  lines_4 text[] := '{}';
  heads text[];
  lines text[];
BEGIN
  -- public.category: natural key unique in the data?
  EXECUTE 'SELECT max(q."#0"), max(q."#1"), string_agg(''(code='' || CASE WHEN q."#2" IS NULL THEN ''NULL'' WHEN jsonb_typeof(to_jsonb(q."#2")) IN (''number'', ''boolean'') THEN q."#2"::text ELSE chr(39) || replace(q."#2"::text, chr(39), chr(39) || chr(39)) || chr(39) END || '')'' || '' '' || q."#3" || '' times'', '', '') FROM (SELECT count(*) OVER (), sum(count(*)) OVER (), "code", count(*) FROM (SELECT "t"."code" AS "code", t."id", true AS "#hit" FROM "public"."category" AS t ) AS k GROUP BY "code" HAVING count(*) > 1 ORDER BY count(*) DESC, "code" LIMIT 5) AS q("#0", "#1", "#2", "#3")' INTO n1, n2, samples;
  IF samples IS NOT NULL THEN
    places_1 := array_append(places_1, 'public.category (code)');
    lines_1 := array_append(lines_1, 'public.category.code [key-not-unique-data]: natural key (code) is not unique in the data: ' || samples || ' (' || to_char(n1, 'FM999,999,999,999,999,999,990') || ' key value(s) shared by ' || to_char(n2, 'FM999,999,999,999,999,999,990') || ' rows); the import would merge those rows into one; fix: deduplicate those rows, or add columns to natural_key until each key names one row');
  END IF;
  -- public.item: natural key unique in the data?
  EXECUTE 'SELECT max(q."#0"), max(q."#1"), string_agg(''(category_id.code='' || CASE WHEN q."#2" IS NULL THEN ''NULL'' WHEN jsonb_typeof(to_jsonb(q."#2")) IN (''number'', ''boolean'') THEN q."#2"::text ELSE chr(39) || replace(q."#2"::text, chr(39), chr(39) || chr(39)) || chr(39) END || '', name='' || CASE WHEN q."#3" IS NULL THEN ''NULL'' WHEN jsonb_typeof(to_jsonb(q."#3")) IN (''number'', ''boolean'') THEN q."#3"::text ELSE chr(39) || replace(q."#3"::text, chr(39), chr(39) || chr(39)) || chr(39) END || '')'' || '' '' || q."#4" || '' times'', '', '') FROM (SELECT count(*) OVER (), sum(count(*)) OVER (), "category_id.code", "name", count(*) FROM (SELECT "k1"."code" AS "category_id.code", "t"."name" AS "name", t."id", true AS "#hit" FROM "public"."item" AS t LEFT JOIN "public"."category" AS "k1" ON "k1"."id" OPERATOR("pg_catalog".=) "t"."category_id") AS k GROUP BY "category_id.code", "name" HAVING count(*) > 1 ORDER BY count(*) DESC, "category_id.code", "name" LIMIT 5) AS q("#0", "#1", "#2", "#3", "#4")' INTO n1, n2, samples;
  IF samples IS NOT NULL THEN
    places_1 := array_append(places_1, 'public.item (category_id, name)');
    lines_1 := array_append(lines_1, 'public.item.category_id [key-not-unique-data]: natural key (category_id.code, name) is not unique in the data: ' || samples || ' (' || to_char(n1, 'FM999,999,999,999,999,999,990') || ' key value(s) shared by ' || to_char(n2, 'FM999,999,999,999,999,999,990') || ' rows); the import would merge those rows into one; fix: deduplicate those rows, or add columns to natural_key until each key names one row');
  END IF;
  -- public.node: natural key unique in the data?
  EXECUTE 'SELECT max(q."#0"), max(q."#1"), string_agg(''(parent_id.#path='' || CASE WHEN q."#2" IS NULL THEN ''NULL'' WHEN jsonb_typeof(to_jsonb(q."#2")) IN (''number'', ''boolean'') THEN q."#2"::text ELSE chr(39) || replace(q."#2"::text, chr(39), chr(39) || chr(39)) || chr(39) END || '', label='' || CASE WHEN q."#3" IS NULL THEN ''NULL'' WHEN jsonb_typeof(to_jsonb(q."#3")) IN (''number'', ''boolean'') THEN q."#3"::text ELSE chr(39) || replace(q."#3"::text, chr(39), chr(39) || chr(39)) || chr(39) END || '')'' || '' '' || q."#4" || '' times'', '', '') FROM (SELECT count(*) OVER (), sum(count(*)) OVER (), "parent_id.#path", "label", count(*) FROM (WITH RECURSIVE "kpath1" ("id", "#path") AS (SELECT t."id", pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array("t"."label")) FROM "public"."node" AS t WHERE t."parent_id" IS NULL UNION ALL SELECT c."id", p."#path" || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array("c"."label")) FROM "public"."node" AS c JOIN "kpath1" AS p ON c."parent_id" OPERATOR("pg_catalog".=) p."id") SELECT "k1"."#path" AS "parent_id.#path", "t"."label" AS "label", t."id", true AS "#hit" FROM "public"."node" AS t LEFT JOIN "kpath1" AS "k1" ON "k1"."id" OPERATOR("pg_catalog".=) "t"."parent_id") AS k GROUP BY "parent_id.#path", "label" HAVING count(*) > 1 ORDER BY count(*) DESC, "parent_id.#path", "label" LIMIT 5) AS q("#0", "#1", "#2", "#3", "#4")' INTO n1, n2, samples;
  IF samples IS NOT NULL THEN
    places_1 := array_append(places_1, 'public.node (parent_id, label)');
    lines_1 := array_append(lines_1, 'public.node.parent_id [key-not-unique-data]: natural key (parent_id.#path, label) is not unique in the data: ' || samples || ' (' || to_char(n1, 'FM999,999,999,999,999,999,990') || ' key value(s) shared by ' || to_char(n2, 'FM999,999,999,999,999,999,990') || ' rows); the import would merge those rows into one; fix: deduplicate those rows, or add columns to natural_key until each key names one row');
  END IF;
  -- public.person: natural key unique in the data?
  EXECUTE 'SELECT max(q."#0"), max(q."#1"), string_agg(''(email='' || CASE WHEN q."#2" IS NULL THEN ''NULL'' WHEN jsonb_typeof(to_jsonb(q."#2")) IN (''number'', ''boolean'') THEN q."#2"::text ELSE chr(39) || replace(q."#2"::text, chr(39), chr(39) || chr(39)) || chr(39) END || '')'' || '' '' || q."#3" || '' times'', '', '') FROM (SELECT count(*) OVER (), sum(count(*)) OVER (), "email", count(*) FROM (SELECT "t"."email" AS "email", t."id", true AS "#hit" FROM "public"."person" AS t ) AS k GROUP BY "email" HAVING count(*) > 1 ORDER BY count(*) DESC, "email" LIMIT 5) AS q("#0", "#1", "#2", "#3")' INTO n1, n2, samples;
  IF samples IS NOT NULL THEN
    places_1 := array_append(places_1, 'public.person (email)');
    lines_1 := array_append(lines_1, 'public.person.email [key-not-unique-data]: natural key (email) is not unique in the data: ' || samples || ' (' || to_char(n1, 'FM999,999,999,999,999,999,990') || ' key value(s) shared by ' || to_char(n2, 'FM999,999,999,999,999,999,990') || ' rows); the import would merge those rows into one; fix: deduplicate those rows, or add columns to natural_key until each key names one row');
  END IF;
  -- public.sale.product_id: a likely reference?
  hit := NULL;
  also := NULL;
  EXECUTE 'SELECT count(t."product_id"), count(r."id") FROM "public"."sale" AS t LEFT JOIN "public"."product" AS r ON r."id" = t."product_id"' INTO n1, matched;
  IF n1 > 0 AND matched = n1 THEN
    IF hit IS NULL THEN
      hit := 1;
      n2 := n1;
    ELSE
      also := concat_ws(', ', also, 'public.product');
    END IF;
  END IF;
  EXECUTE 'SELECT count(t."product_id"), count(r."id") FROM "public"."sale" AS t LEFT JOIN "archive"."product" AS r ON r."id" = t."product_id"' INTO n1, matched;
  IF n1 > 0 AND matched = n1 THEN
    IF hit IS NULL THEN
      hit := 2;
      n2 := n1;
    ELSE
      also := concat_ws(', ', also, 'archive.product');
    END IF;
  END IF;
  IF hit IS NOT NULL THEN
    IF hit = 1 THEN
      line := CASE WHEN also IS NULL THEN 'public.sale.product_id [likely-reference]: column ''product_id'' has no foreign key and no mapping decision, but its name matches public.product.id and ' || to_char(n2, 'FM999,999,999,999,999,999,990') || ' of ' || to_char(n2, 'FM999,999,999,999,999,999,990') || ' non-NULL values are ids of public.product: it is likely a reference, and its raw ids would point at other rows (or none) after a re-initialisation; fix: decide under public.sale in the mapping: references: [{columns: [product_id], table: public.product}] to carry it by natural key, or raw_columns: [product_id] to carry the ids as they are, knowingly' ELSE 'public.sale.product_id [likely-reference]: column ''product_id'' has no foreign key and no mapping decision, but its name matches public.product.id and ' || to_char(n2, 'FM999,999,999,999,999,999,990') || ' of ' || to_char(n2, 'FM999,999,999,999,999,999,990') || ' non-NULL values are ids of public.product (they are also ids of ' || also || '): it is likely a reference, and its raw ids would point at other rows (or none) after a re-initialisation; fix: decide under public.sale in the mapping: references: [{columns: [product_id], table: public.product}] to carry it by natural key, or raw_columns: [product_id] to carry the ids as they are, knowingly' END;
    ELSIF hit = 2 THEN
      line := CASE WHEN also IS NULL THEN 'public.sale.product_id [likely-reference]: column ''product_id'' has no foreign key and no mapping decision, but its name matches archive.product.id and ' || to_char(n2, 'FM999,999,999,999,999,999,990') || ' of ' || to_char(n2, 'FM999,999,999,999,999,999,990') || ' non-NULL values are ids of archive.product: it is likely a reference, and its raw ids would point at other rows (or none) after a re-initialisation; fix: decide under public.sale in the mapping: references: [{columns: [product_id], table: archive.product}] to carry it by natural key, or raw_columns: [product_id] to carry the ids as they are, knowingly' ELSE 'public.sale.product_id [likely-reference]: column ''product_id'' has no foreign key and no mapping decision, but its name matches archive.product.id and ' || to_char(n2, 'FM999,999,999,999,999,999,990') || ' of ' || to_char(n2, 'FM999,999,999,999,999,999,990') || ' non-NULL values are ids of archive.product (they are also ids of ' || also || '): it is likely a reference, and its raw ids would point at other rows (or none) after a re-initialisation; fix: decide under public.sale in the mapping: references: [{columns: [product_id], table: archive.product}] to carry it by natural key, or raw_columns: [product_id] to carry the ids as they are, knowingly' END;
    END IF;
    places_2 := array_append(places_2, 'public.sale.product_id');
    lines_2 := array_append(lines_2, line);
  END IF;
  -- public.item (category_id): references to a NULL natural key?
  EXECUTE 'SELECT max(q."#0"), string_agg(''(category_id='' || CASE WHEN q."#1" IS NULL THEN ''NULL'' WHEN jsonb_typeof(to_jsonb(q."#1")) IN (''number'', ''boolean'') THEN q."#1"::text ELSE chr(39) || replace(q."#1"::text, chr(39), chr(39) || chr(39)) || chr(39) END || '', name='' || CASE WHEN q."#2" IS NULL THEN ''NULL'' WHEN jsonb_typeof(to_jsonb(q."#2")) IN (''number'', ''boolean'') THEN q."#2"::text ELSE chr(39) || replace(q."#2"::text, chr(39), chr(39) || chr(39)) || chr(39) END || '')'', '', '') FROM (SELECT pg_catalog.count(*) OVER (), t."category_id", t."name" FROM "public"."item" AS t LEFT JOIN "public"."category" AS "n1" ON "n1"."id" OPERATOR("pg_catalog".=) "t"."category_id" WHERE t."category_id" IS NOT NULL AND ("n1"."code") IS NULL LIMIT 5) AS q("#0", "#1", "#2")' INTO n1, samples;
  IF samples IS NOT NULL THEN
    places_3 := array_append(places_3, 'public.item.category_id');
    lines_3 := array_append(lines_3, 'public.item.category_id [reference-to-null-key]: ' || n1::text || ' row(s) reference the public.category row whose natural key (code) is NULL from public.item''s natural key (category_id, name): that key cannot tell such a reference from none: ' || samples || '; fix: give that public.category row a natural key value, choose a natural key for public.category that is never NULL in every column, or declare category_id NOT NULL');
  END IF;
  -- public.doc (party_id): references to rows that do not exist?
  EXECUTE 'SELECT max(q."#0"), string_agg(''(party_id='' || CASE WHEN q."#1" IS NULL THEN ''NULL'' WHEN jsonb_typeof(to_jsonb(q."#1")) IN (''number'', ''boolean'') THEN q."#1"::text ELSE chr(39) || replace(q."#1"::text, chr(39), chr(39) || chr(39)) || chr(39) END || '')'', '', '') FROM (SELECT pg_catalog.count(*) OVER (), t."party_id" FROM "public"."doc" AS t WHERE t."party_id" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "public"."party" AS r WHERE r."id" = t."party_id") LIMIT 5) AS q("#0", "#1")' INTO n1, samples;
  IF samples IS NOT NULL THEN
    places_4 := array_append(places_4, 'public.doc.party_id');
    lines_4 := array_append(lines_4, 'public.doc.party_id [reference-dangling]: ' || n1::text || ' row(s) reference public.party rows that do not exist through the foreign key doc_party_fk (party_id), which is NOT VALID: ' || samples || '; they would be exported as NULL; fix: delete or fix those rows, then ALTER TABLE public.doc VALIDATE CONSTRAINT doc_party_fk');
  END IF;
  -- public.note (party_id): references to rows that do not exist?
  EXECUTE 'SELECT max(q."#0"), string_agg(''(party_id='' || CASE WHEN q."#1" IS NULL THEN ''NULL'' WHEN jsonb_typeof(to_jsonb(q."#1")) IN (''number'', ''boolean'') THEN q."#1"::text ELSE chr(39) || replace(q."#1"::text, chr(39), chr(39) || chr(39)) || chr(39) END || '')'', '', '') FROM (SELECT pg_catalog.count(*) OVER (), t."party_id" FROM "public"."note" AS t WHERE t."party_id" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "public"."party" AS r WHERE r."id" = t."party_id") LIMIT 5) AS q("#0", "#1")' INTO n1, samples;
  IF samples IS NOT NULL THEN
    places_4 := array_append(places_4, 'public.note.party_id');
    lines_4 := array_append(lines_4, 'public.note.party_id [reference-dangling]: ' || n1::text || ' row(s) reference public.party rows that do not exist through the declared reference (party_id): ' || samples || '; they would be exported as NULL; fix: delete or fix those rows, or remove the reference from the mapping');
  END IF;
  heads := array_remove(ARRAY[CASE WHEN cardinality(places_1) > 0 THEN 'natural key not unique in the data of ' || array_to_string(places_1, ', ') END, CASE WHEN cardinality(places_2) > 0 THEN 'likely reference not decided in ' || array_to_string(places_2, ', ') END, CASE WHEN cardinality(places_3) > 0 THEN 'reference to a row whose natural key is NULL in ' || array_to_string(places_3, ', ') END, CASE WHEN cardinality(places_4) > 0 THEN 'reference to rows that do not exist in ' || array_to_string(places_4, ', ') END], NULL);
  lines := lines_1 || lines_2 || lines_3 || lines_4;
  IF cardinality(lines) > 0 THEN
    RAISE EXCEPTION USING MESSAGE = array_to_string(heads, '; ') || '; nothing was exported. ' || lines[1] || CASE WHEN cardinality(lines) > 1 THEN ' (and ' || (cardinality(lines) - 1) || ' more)' ELSE '' END;
  END IF;
END
$edms$;

-- archive.product
\copy (SELECT t."sku" FROM "archive"."product" AS t) TO '0001.copy'
\set rows_0001 :ROW_COUNT

-- public.app_cabinet
\copy (SELECT t."label" FROM "public"."app_cabinet" AS t) TO '0002.copy'
\set rows_0002 :ROW_COUNT

-- public.app_document
\copy (SELECT t."name" FROM "public"."app_document" AS t) TO '0003.copy'
\set rows_0003 :ROW_COUNT

-- public.app_folder
\copy (SELECT t."path" FROM "public"."app_folder" AS t) TO '0004.copy'
\set rows_0004 :ROW_COUNT

-- public.app_role
\copy (SELECT t."name" FROM "public"."app_role" AS t) TO '0005.copy'
\set rows_0005 :ROW_COUNT

-- public.app_tag
\copy (SELECT t."name" FROM "public"."app_tag" AS t) TO '0006.copy'
\set rows_0006 :ROW_COUNT

-- public.app_accessentry
\copy (SELECT "r1"."app_label", "r1"."model", CASE WHEN "t"."object_id" IS NULL THEN NULL ELSE COALESCE("r3"."#key", "r4"."#key", "r5"."#key", "r6"."#key") END, "r7"."name" FROM "public"."app_accessentry" AS t LEFT JOIN "public"."django_content_type" AS "r1" ON "r1"."id" OPERATOR("pg_catalog".=) "t"."content_type_id" LEFT JOIN "public"."django_content_type" AS "r2" ON "r2"."id" OPERATOR("pg_catalog".=) "t"."content_type_id" LEFT JOIN (SELECT x."id"::text AS "#id", pg_catalog.jsonb_build_array(x."label") AS "#key" FROM (SELECT "t"."label" AS "label", t."id", true AS "#hit" FROM "public"."app_cabinet" AS t ) AS x) AS "r3" ON pg_catalog.concat("r2"."app_label"::text, '_', "r2"."model"::text) OPERATOR("pg_catalog".=) 'app_cabinet' AND "r3"."#id" OPERATOR("pg_catalog".=) "t"."object_id"::text LEFT JOIN (SELECT x."id"::text AS "#id", pg_catalog.jsonb_build_array(x."name") AS "#key" FROM (SELECT "t"."name" AS "name", t."id", true AS "#hit" FROM "public"."app_document" AS t ) AS x) AS "r4" ON pg_catalog.concat("r2"."app_label"::text, '_', "r2"."model"::text) OPERATOR("pg_catalog".=) 'app_document' AND "r4"."#id" OPERATOR("pg_catalog".=) "t"."object_id"::text LEFT JOIN (SELECT x."id"::text AS "#id", pg_catalog.jsonb_build_array(x."path") AS "#key" FROM (SELECT "t"."path" AS "path", t."id", true AS "#hit" FROM "public"."app_folder" AS t ) AS x) AS "r5" ON pg_catalog.concat("r2"."app_label"::text, '_', "r2"."model"::text) OPERATOR("pg_catalog".=) 'app_folder' AND "r5"."#id" OPERATOR("pg_catalog".=) "t"."object_id"::text LEFT JOIN (SELECT x."id"::text AS "#id", pg_catalog.jsonb_build_array(x."name") AS "#key" FROM (SELECT "t"."name" AS "name", t."id", true AS "#hit" FROM "public"."app_tag" AS t ) AS x) AS "r6" ON pg_catalog.concat("r2"."app_label"::text, '_', "r2"."model"::text) OPERATOR("pg_catalog".=) 'app_tag' AND "r6"."#id" OPERATOR("pg_catalog".=) "t"."object_id"::text LEFT JOIN "public"."app_role" AS "r7" ON "r7"."id" OPERATOR("pg_catalog".=) "t"."role_id") TO '0007.copy'
\set rows_0007 :ROW_COUNT

-- public.app_comment
\copy (SELECT "r1"."app_label", "r1"."model", CASE WHEN "t"."object_id" IS NULL THEN NULL ELSE COALESCE("r3"."#key", "r4"."#key", "r5"."#key", "r6"."#key") END, t."body" FROM "public"."app_comment" AS t LEFT JOIN "public"."django_content_type" AS "r1" ON "r1"."id" OPERATOR("pg_catalog".=) "t"."content_type_id" LEFT JOIN "public"."django_content_type" AS "r2" ON "r2"."id" OPERATOR("pg_catalog".=) "t"."content_type_id" LEFT JOIN (SELECT x."id"::text AS "#id", pg_catalog.jsonb_build_array(x."label") AS "#key" FROM (SELECT "t"."label" AS "label", t."id", true AS "#hit" FROM "public"."app_cabinet" AS t ) AS x) AS "r3" ON pg_catalog.concat("r2"."app_label"::text, '_', "r2"."model"::text) OPERATOR("pg_catalog".=) 'app_cabinet' AND "r3"."#id" OPERATOR("pg_catalog".=) "t"."object_id"::text LEFT JOIN (SELECT x."id"::text AS "#id", pg_catalog.jsonb_build_array(x."name") AS "#key" FROM (SELECT "t"."name" AS "name", t."id", true AS "#hit" FROM "public"."app_document" AS t ) AS x) AS "r4" ON pg_catalog.concat("r2"."app_label"::text, '_', "r2"."model"::text) OPERATOR("pg_catalog".=) 'app_document' AND "r4"."#id" OPERATOR("pg_catalog".=) "t"."object_id"::text LEFT JOIN (SELECT x."id"::text AS "#id", pg_catalog.jsonb_build_array(x."path") AS "#key" FROM (SELECT "t"."path" AS "path", t."id", true AS "#hit" FROM "public"."app_folder" AS t ) AS x) AS "r5" ON pg_catalog.concat("r2"."app_label"::text, '_', "r2"."model"::text) OPERATOR("pg_catalog".=) 'app_folder' AND "r5"."#id" OPERATOR("pg_catalog".=) "t"."object_id"::text LEFT JOIN (SELECT x."id"::text AS "#id", pg_catalog.jsonb_build_array(x."name") AS "#key" FROM (SELECT "t"."name" AS "name", t."id", true AS "#hit" FROM "public"."app_tag" AS t ) AS x) AS "r6" ON pg_catalog.concat("r2"."app_label"::text, '_', "r2"."model"::text) OPERATOR("pg_catalog".=) 'app_tag' AND "r6"."#id" OPERATOR("pg_catalog".=) "t"."object_id"::text) TO '0008.copy'
\set rows_0008 :ROW_COUNT

-- public.category
\copy (SELECT t."code" FROM "public"."category" AS t) TO '0009.copy'
\set rows_0009 :ROW_COUNT

-- public.party
\copy (SELECT t."code" FROM "public"."party" AS t) TO '0010.copy'
\set rows_0010 :ROW_COUNT

-- public.doc
\copy (SELECT t."ref", "r1"."code" FROM "public"."doc" AS t LEFT JOIN "public"."party" AS "r1" ON "r1"."id" OPERATOR("pg_catalog".=) "t"."party_id") TO '0011.copy'
\set rows_0011 :ROW_COUNT

-- public.item
\copy (SELECT t."name", "r1"."code", ("t"."category_id" IS NOT NULL) FROM "public"."item" AS t LEFT JOIN "public"."category" AS "r1" ON "r1"."id" OPERATOR("pg_catalog".=) "t"."category_id") TO '0012.copy'
\set rows_0012 :ROW_COUNT

-- public.node
\copy (WITH RECURSIVE "rpath1" ("id", "#path") AS (SELECT t."id", pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array("t"."label")) FROM "public"."node" AS t WHERE t."parent_id" IS NULL UNION ALL SELECT c."id", p."#path" || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array("c"."label")) FROM "public"."node" AS c JOIN "rpath1" AS p ON c."parent_id" OPERATOR("pg_catalog".=) p."id") SELECT "r1"."#path", t."label" FROM "public"."node" AS t LEFT JOIN "rpath1" AS "r1" ON "r1"."id" OPERATOR("pg_catalog".=) "t"."parent_id") TO '0013.copy'
\set rows_0013 :ROW_COUNT

-- public.note
\copy (SELECT t."ref", "r1"."code" FROM "public"."note" AS t LEFT JOIN "public"."party" AS "r1" ON "r1"."id" OPERATOR("pg_catalog".=) "t"."party_id") TO '0014.copy'
\set rows_0014 :ROW_COUNT

-- public.person
\copy (SELECT t."email", t."name" FROM "public"."person" AS t) TO '0015.copy'
\set rows_0015 :ROW_COUNT

-- public.product
\copy (SELECT t."sku" FROM "public"."product" AS t) TO '0016.copy'
\set rows_0016 :ROW_COUNT

-- public.sale
\copy (SELECT t."ref", t."product_id" FROM "public"."sale" AS t) TO '0017.copy'
\set rows_0017 :ROW_COUNT

-- all tables
COPY (VALUES (1, 'archive.product', :rows_0001, '["sku"]'), (2, 'public.app_cabinet', :rows_0002, '["label"]'), (3, 'public.app_document', :rows_0003, '["name"]'), (4, 'public.app_folder', :rows_0004, '["path"]'), (5, 'public.app_role', :rows_0005, '["name"]'), (6, 'public.app_tag', :rows_0006, '["name"]'), (7, 'public.app_accessentry', :rows_0007, '["content_type_id.app_label", "content_type_id.model", "object_id.#key", "role_id.name"]'), (8, 'public.app_comment', :rows_0008, '["content_type_id.app_label", "content_type_id.model", "object_id.#key", "body"]'), (9, 'public.category', :rows_0009, '["code"]'), (10, 'public.party', :rows_0010, '["code"]'), (11, 'public.doc', :rows_0011, '["ref", "party_id.code"]'), (12, 'public.item', :rows_0012, '["name", "category_id.code", "category_id.#present"]'), (13, 'public.node', :rows_0013, '["parent_id.#path", "label"]'), (14, 'public.note', :rows_0014, '["ref", "party_id.code"]'), (15, 'public.person', :rows_0015, '["email", "name"]'), (16, 'public.product', :rows_0016, '["sku"]'), (17, 'public.sale', :rows_0017, '["ref", "product_id"]')) TO STDOUT \g 'counts.copy'
COPY (VALUES (1, 'archive.product', '{"rule": "whole"}', NULL::bigint), (2, 'public.app_cabinet', '{"rule": "whole"}', NULL::bigint), (3, 'public.app_document', '{"rule": "whole"}', NULL::bigint), (4, 'public.app_folder', '{"rule": "whole"}', NULL::bigint), (5, 'public.app_role', '{"rule": "whole"}', NULL::bigint), (6, 'public.app_tag', '{"rule": "whole"}', NULL::bigint), (7, 'public.app_accessentry', '{"rule": "whole"}', NULL::bigint), (8, 'public.app_comment', '{"rule": "whole"}', NULL::bigint), (9, 'public.category', '{"rule": "whole"}', NULL::bigint), (10, 'public.party', '{"rule": "whole"}', NULL::bigint), (11, 'public.doc', '{"rule": "whole"}', NULL::bigint), (12, 'public.item', '{"rule": "whole"}', NULL::bigint), (13, 'public.node', '{"rule": "whole"}', NULL::bigint), (14, 'public.note', '{"rule": "whole"}', NULL::bigint), (15, 'public.person', '{"rule": "whole"}', NULL::bigint), (16, 'public.product', '{"rule": "whole"}', NULL::bigint), (17, 'public.sale', '{"rule": "whole"}', NULL::bigint)) TO STDOUT \g 'scope.copy'
COMMIT;
