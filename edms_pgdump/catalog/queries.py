"""The pg_catalog queries behind ``catalog.read_catalog``, and nowhere else.

Each query covers every table at once (an array of oids), so reading the catalog costs
a fixed handful of round trips whatever the schema's size. They run with search_path
pinned empty (``db.pin_session``), so ``format_type``, ``pg_get_constraintdef`` and
``pg_get_indexdef`` return schema-qualified text that can be pasted back as is.
Needs PostgreSQL 12 or later (``pg_collation.collisdeterministic``).
"""

from __future__ import annotations

# Ordinary and partitioned tables that are not themselves partitions.
TABLES = """
SELECT c.oid, n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity,
       pg_get_userbyid(c.relowner), greatest(c.reltuples, 0)::bigint, c.relkind,
       pg_has_role(c.relowner, 'USAGE'),
       c.relkind = 'r' AND EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname <> ALL (%(system)s) AND n.nspname NOT LIKE 'pg\\_temp\\_%%'
  AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%%'
ORDER BY n.nspname, c.relname
"""

# Every partition in the database with its direct parent (a partition has exactly
# one) and its root: the trees, and the table an FK to a partition really points at.
PARTITIONS = """
SELECT c.oid, n.nspname, c.relname, c.relkind, i.inhparent, greatest(c.reltuples, 0)::bigint,
       r.oid, rn.nspname, r.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_inherits i ON i.inhrelid = c.oid
JOIN pg_class r ON r.oid = pg_partition_root(c.oid)
JOIN pg_namespace rn ON rn.oid = r.relnamespace
WHERE c.relispartition
ORDER BY n.nspname, c.relname
"""

# Classic inheritance (INHERITS), not partitioning: each child with its direct parent.
# A child is a table of its own (it can be mapped or excluded on its own); a parent's
# rows are read and written with ONLY, so a child's rows never travel as the parent's.
INHERITANCE = """
SELECT i.inhrelid, cn.nspname, c.relname, i.inhparent, pn.nspname, p.relname
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE NOT c.relispartition AND p.relkind = 'r'
ORDER BY cn.nspname, c.relname, i.inhseqno
"""

# Columns with the base type of a domain (through domains over domains), the
# collation's determinism and the identity, owned (serial) or default's sequence.
COLUMNS = """
WITH RECURSIVE chain(domain, base, typmod) AS (
    SELECT t.oid, t.typbasetype, t.typtypmod FROM pg_type t WHERE t.typtype = 'd'
    UNION ALL
    SELECT ch.domain, t.typbasetype, CASE WHEN ch.typmod = -1 THEN t.typtypmod ELSE ch.typmod END
    FROM chain ch JOIN pg_type t ON t.oid = ch.base AND t.typtype = 'd'
), domain_base AS (
    SELECT ch.domain, format_type(ch.base, ch.typmod) AS base_type, ch.base AS base_oid
    FROM chain ch JOIN pg_type b ON b.oid = ch.base AND b.typtype <> 'd'
)
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
       coalesce(db.base_type, format_type(a.atttypid, a.atttypmod)),
       coalesce(coll.collisdeterministic, true),
       seq.nspname, seq.relname, seq.data_type, seq.seqmin, seq.seqmax, seq.seqincrement,
       -- the schema of the type's own "=" (citext's, in the extension's schema): key
       -- equality names it, OPERATOR(schema.=), instead of trusting the search_path
       coalesce((SELECT on_.nspname FROM pg_operator o
                 JOIN pg_type ty ON ty.oid = coalesce(db.base_oid, a.atttypid)
                 JOIN pg_namespace on_ ON on_.oid = o.oprnamespace
                 WHERE o.oprname = '=' AND o.oprleft = ty.oid AND o.oprright = ty.oid
                   AND o.oprnamespace = ty.typnamespace
                 LIMIT 1), 'pg_catalog'),
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> at.typcollation
            THEN quote_ident(colln.nspname) || '.' || quote_ident(coll.collname) END
FROM pg_attribute a
JOIN pg_type at ON at.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN domain_base db ON db.domain = a.atttypid
LEFT JOIN pg_collation coll ON coll.oid = a.attcollation
LEFT JOIN pg_namespace colln ON colln.oid = coll.collnamespace
LEFT JOIN LATERAL (
    SELECT sn.nspname, s.relname, format_type(ps.seqtypid, NULL) AS data_type,
           ps.seqmin, ps.seqmax, ps.seqincrement,
           CASE dep.deptype WHEN 'i' THEN 'a' ELSE 'b' END AS rank, s.oid AS seq_oid
    FROM pg_depend dep
    JOIN pg_class s ON s.oid = dep.objid AND s.relkind = 'S'
    JOIN pg_namespace sn ON sn.oid = s.relnamespace
    JOIN pg_sequence ps ON ps.seqrelid = s.oid
    WHERE dep.classid = 'pg_class'::regclass AND dep.refclassid = 'pg_class'::regclass
      AND dep.refobjid = a.attrelid AND dep.refobjsubid = a.attnum AND dep.deptype IN ('a', 'i')
    UNION ALL
    -- a sequence no column owns (DEFAULT nextval('x') without OWNED BY, as pg_dump
    -- restores many schemas and Pagila publishes): the default's own dependency on it
    SELECT sn.nspname, s.relname, format_type(ps.seqtypid, NULL), ps.seqmin, ps.seqmax, ps.seqincrement,
           'z', s.oid
    FROM pg_depend dep
    JOIN pg_class s ON s.oid = dep.refobjid AND s.relkind = 'S'
    JOIN pg_namespace sn ON sn.oid = s.relnamespace
    JOIN pg_sequence ps ON ps.seqrelid = s.oid
    WHERE d.oid IS NOT NULL AND dep.classid = 'pg_attrdef'::regclass AND dep.objid = d.oid
      AND dep.refclassid = 'pg_class'::regclass
      AND pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%%'
    ORDER BY 7, 8
    LIMIT 1
) seq ON true
WHERE a.attrelid = ANY(%(oids)s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

# Keys of the tables themselves; foreign keys of the tables and of every partition,
# except clones (conparentid <> 0): the copies a parent's FK leaves on its partitions
# and the per-partition rows of an FK that references a partitioned table.
CONSTRAINTS = """
SELECT con.conrelid, con.conname, con.contype,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
             ORDER BY k.ord) AS cols,
       con.confrelid, rn.nspname, rc.relname,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num
             ORDER BY k.ord) AS ref_cols,
       con.condeferrable, con.condeferred, con.convalidated, con.conislocal,
       CASE WHEN con.contype = 'f' THEN pg_get_constraintdef(con.oid) END,
       CASE WHEN con.contype = 'f' THEN obj_description(con.oid, 'pg_constraint') END,
       con.confdeltype, con.confupdtype,
       -- PostgreSQL 18+ (NOT ENFORCED, temporal PERIOD); absent on older servers
       coalesce((to_jsonb(con) ->> 'conenforced')::boolean, true) AS enforced,
       coalesce((to_jsonb(con) ->> 'conperiod')::boolean, false) AS period
FROM pg_constraint con
LEFT JOIN pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE (con.contype IN ('p', 'u') AND con.conrelid = ANY(%(tables)s))
   OR (con.contype = 'f' AND con.conparentid = 0
       AND (con.conrelid = ANY(%(tables)s) OR con.conrelid = ANY(%(partitions)s)))
ORDER BY con.conrelid, con.conname
"""

# Unique indexes on plain columns (keys an INSERT or ON CONFLICT can use), and the
# "plain" indexes constraints=recreate may drop and build again after a big load:
# non-unique, backing no constraint, in the default tablespace, not clustered, on an
# ordinary table. Their definition is the server's own, fully qualified.
INDEXES = """
SELECT x.indrelid, x.cols, x.indimmediate, x.plain,
       x.relname, CASE WHEN x.plain THEN pg_get_indexdef(x.indexrelid) END,
       CASE WHEN x.plain THEN obj_description(x.indexrelid, 'pg_class') END,
       x.nulls_not_distinct
FROM (
    SELECT i.indrelid, i.indexrelid, i.indisunique, i.indimmediate, ic.relname,
           -- PostgreSQL 15+ (indnullsnotdistinct); absent, so false, on older servers
           coalesce((to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false) AS nulls_not_distinct,
           ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(num, ord)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num
                 ORDER BY k.ord) AS cols,
           (c.relkind = 'r' AND NOT ic.relispartition
            AND NOT i.indisunique AND NOT i.indisprimary AND NOT i.indisexclusion
            AND i.indisvalid AND i.indisready AND i.indislive AND NOT i.indisclustered
            AND ic.reltablespace = 0
            AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
           ) AS plain,
           (i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL) AS unique_key
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indrelid
    JOIN pg_class ic ON ic.oid = i.indexrelid
    WHERE i.indrelid = ANY(%(oids)s)
) x
WHERE x.plain OR x.unique_key
ORDER BY x.indrelid, x.relname
"""

# Unique indexes (primary keys included) constraints=auto|recreate may drop before a big
# load and build again after it: one sort instead of a B-tree insert per row. B-tree,
# checked immediately, valid, on an ordinary table in no inheritance or partition tree,
# in the default tablespace, not clustered, not the replica identity (a primary key is,
# by default, on a table some publication publishes: its UPDATEs and DELETEs would be
# refused while the key is away), no per-column statistics target, not an extension's;
# and nothing depends on the index or its constraint but the foreign keys that reference
# it, listed (table oid, name) to be dropped and re-added around it.
# Their definition is the index's (pg_get_constraintdef leaves out its storage options):
# a constraint is added again over the index built from it (ADD CONSTRAINT ... USING INDEX).
REBUILDABLE_UNIQUE = """
SELECT i.indrelid, ic.relname, n.nspname, con.conname, con.contype::text, pg_get_indexdef(i.indexrelid),
       obj_description(i.indexrelid, 'pg_class'),
       CASE WHEN con.oid IS NOT NULL THEN obj_description(con.oid, 'pg_constraint') END,
       ARRAY(SELECT f.conrelid::bigint FROM pg_constraint f
             WHERE f.contype = 'f' AND f.conindid = i.indexrelid ORDER BY f.conrelid, f.conname),
       ARRAY(SELECT f.conname::text FROM pg_constraint f
             WHERE f.contype = 'f' AND f.conindid = i.indexrelid ORDER BY f.conrelid, f.conname),
       EXISTS (SELECT 1 FROM pg_constraint f
               WHERE f.contype = 'f' AND f.conindid = i.indexrelid AND f.conparentid <> 0)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_am am ON am.oid = ic.relam
LEFT JOIN pg_constraint con
       ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u')
WHERE i.indrelid = ANY(%(oids)s)
  AND i.indisunique AND i.indimmediate AND NOT i.indisexclusion
  AND i.indisvalid AND i.indisready AND i.indislive AND NOT i.indisclustered AND NOT i.indisreplident
  AND c.relkind = 'r' AND NOT c.relispartition AND am.amname = 'btree' AND ic.reltablespace = 0
  AND (con.oid IS NULL OR con.conname = ic.relname)
  AND NOT (i.indisprimary AND c.relreplident = 'd' AND EXISTS (
      SELECT 1 FROM pg_publication_tables pt WHERE pt.schemaname = n.nspname AND pt.tablename = c.relname))
  AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = c.oid OR h.inhparent = c.oid)
  AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.indexrelid AND a.attstattarget >= 0)
  AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass
                  AND e.objid IN (c.oid, i.indexrelid) AND e.deptype = 'e')
  AND NOT EXISTS (
      SELECT 1 FROM pg_depend d
      WHERE ((d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indexrelid)
             OR (d.refclassid = 'pg_constraint'::regclass AND d.refobjid = con.oid))
        AND NOT (d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid)
        AND NOT (d.classid = 'pg_constraint'::regclass AND EXISTS (
            SELECT 1 FROM pg_constraint f
            WHERE f.oid = d.objid AND f.contype = 'f' AND f.conindid = i.indexrelid)))
ORDER BY i.indrelid, ic.relname
"""

# What else decides what an inserted row becomes: user triggers and rules, on the
# tables and on their partitions (rows inserted through a parent fire the triggers
# of the partition they land in).
GUARDS = """
SELECT g.tgrelid, 'trigger', g.tgname FROM pg_trigger g
WHERE g.tgrelid = ANY(%(oids)s) AND NOT g.tgisinternal
UNION ALL
SELECT w.ev_class, 'rule', w.rulename FROM pg_rewrite w
WHERE w.ev_class = ANY(%(oids)s) AND w.rulename <> '_RETURN'
ORDER BY 1, 3
"""

# Materialized views whose query reads a table, directly or through views: their
# rewrite rule depends on the table (or on a view whose rule does).
MATVIEWS = """
WITH RECURSIVE reader(source, rel) AS (
    SELECT d.refobjid, r.ev_class
    FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
    WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.refobjid = ANY(%(oids)s) AND r.ev_class <> d.refobjid
    UNION
    SELECT rd.source, r.ev_class
    FROM reader rd
    JOIN pg_class v ON v.oid = rd.rel AND v.relkind = 'v'
    JOIN pg_depend d ON d.refobjid = v.oid
         AND d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
    JOIN pg_rewrite r ON r.oid = d.objid AND r.ev_class <> v.oid
)
SELECT DISTINCT rd.source, n.nspname, c.relname
FROM reader rd JOIN pg_class c ON c.oid = rd.rel AND c.relkind = 'm'
JOIN pg_namespace n ON n.oid = c.relnamespace
ORDER BY 1, 2, 3
"""

# Whether edms_pgdump.history exists, and whether this role may read and insert into
# it (has_table_privilege with 'SELECT,INSERT' would mean either, so both are asked).
HISTORY = """
SELECT count(*) > 0,
       coalesce(bool_and(has_schema_privilege(n.oid, 'USAGE')
                         AND has_table_privilege(c.oid, 'SELECT')
                         AND has_table_privilege(c.oid, 'INSERT')), false)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = %(table)s AND c.relkind IN ('r', 'p')
"""

SERVER = f"""
SELECT current_setting('server_version_num')::int, current_database(), current_user,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), h.*
FROM ({HISTORY}) h
"""
