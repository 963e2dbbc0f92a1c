"""Read pg_catalog once into plain data: tables, columns, keys, foreign keys.

Everything downstream (plan, sqlgen, check) works from this snapshot, so it can be
unit-tested without a server and stored in manifests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from .names import QualifiedName

# Schemas that never hold user data; ``edms_pgdump`` holds our own import history.
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast", "edms_pgdump")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # format_type(), schema-qualified because search_path is pinned empty
    not_null: bool
    default: str | None
    identity: str  # '' | 'a' (ALWAYS) | 'd' (BY DEFAULT)
    generated: str  # '' | 's' (STORED) | 'v' (VIRTUAL, PostgreSQL 18)

    @property
    def is_generated(self) -> bool:
        return self.generated != ""

    @property
    def has_default(self) -> bool:
        return self.identity != "" or self.default is not None


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    ref_table: QualifiedName
    ref_columns: tuple[str, ...]
    deferrable: bool
    initially_deferred: bool
    declared: bool = False  # True: from the mapping's references:, not a constraint


@dataclass(frozen=True)
class Table:
    name: QualifiedName
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] | None
    unique_keys: tuple[tuple[str, ...], ...]
    foreign_keys: tuple[ForeignKey, ...]
    rls_enabled: bool = False
    rls_forced: bool = False
    # unique indexes (primary key included) checked as each row goes in, not deferred:
    # an INSERT cannot duplicate them
    immediate_unique_keys: tuple[tuple[str, ...], ...] = ()
    owner: str = ""
    estimated_rows: int = 0

    def column(self, name: str) -> Column | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None

    def has_unique(self, cols: tuple[str, ...]) -> bool:
        """True when some unique key is a subset of ``cols`` (then ``cols`` is unique too)."""
        want = set(cols)
        keys = list(self.unique_keys)
        if self.primary_key:
            keys.append(self.primary_key)
        return any(set(k) <= want for k in keys)


@dataclass(frozen=True)
class Catalog:
    tables: dict[QualifiedName, Table]
    server_version: int = 0
    database: str = ""
    current_user: str = ""
    is_superuser: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def get(self, name: QualifiedName) -> Table | None:
        return self.tables.get(name)


_TABLES = """
SELECT c.oid, n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity,
       pg_get_userbyid(c.relowner), greatest(c.reltuples, 0)::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname <> ALL (%(system)s) AND n.nspname NOT LIKE 'pg\\_temp\\_%%'
  AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%%'
ORDER BY n.nspname, c.relname
"""

_COLUMNS = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated
FROM pg_attribute a
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = ANY(%(oids)s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

_CONSTRAINTS = """
SELECT con.conrelid, con.conname, con.contype,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
             ORDER BY k.ord) AS cols,
       rn.nspname, rc.relname,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num
             ORDER BY k.ord) AS ref_cols,
       con.condeferrable, con.condeferred
FROM pg_constraint con
LEFT JOIN pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE con.conrelid = ANY(%(oids)s) AND con.contype IN ('p', 'u', 'f')
  AND (con.contype <> 'f' OR con.conparentid = 0)
ORDER BY con.conrelid, con.conname
"""

_UNIQUE_INDEXES = """
SELECT i.indrelid,
       ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num
             ORDER BY k.ord),
       i.indimmediate
FROM pg_index i
WHERE i.indrelid = ANY(%(oids)s) AND i.indisunique AND i.indisvalid
  AND i.indpred IS NULL AND i.indexprs IS NULL
"""


def read_catalog(conn: psycopg.Connection[tuple[object, ...]]) -> Catalog:
    """Introspect every user table visible to the connection."""
    with conn.cursor() as cur:
        cur.execute(_TABLES, {"system": list(SYSTEM_SCHEMAS)})
        rows = cur.fetchall()
        oids = [r[0] for r in rows]
        names = {r[0]: QualifiedName(str(r[1]), str(r[2])) for r in rows}
        columns: dict[object, list[Column]] = {o: [] for o in oids}
        cur.execute(_COLUMNS, {"oids": oids})
        for relid, name, typ, notnull, default, ident, gen in cur.fetchall():
            columns[relid].append(
                Column(
                    str(name),
                    str(typ),
                    bool(notnull),
                    None if default is None else str(default),
                    str(ident),
                    str(gen),
                )
            )
        pks: dict[object, tuple[str, ...]] = {}
        uniques: dict[object, list[tuple[str, ...]]] = {o: [] for o in oids}
        fks: dict[object, list[ForeignKey]] = {o: [] for o in oids}
        cur.execute(_CONSTRAINTS, {"oids": oids})
        for (
            relid,
            conname,
            contype,
            cols,
            rschema,
            rname,
            rcols,
            deferrable,
            deferred,
        ) in cur.fetchall():
            key = tuple(str(c) for c in cols)  # type: ignore[attr-defined]
            if contype == "p":
                pks[relid] = key
            elif contype == "u":
                uniques[relid].append(key)
            else:
                fks[relid].append(
                    ForeignKey(
                        str(conname),
                        key,
                        QualifiedName(str(rschema), str(rname)),
                        tuple(str(c) for c in rcols),  # type: ignore[attr-defined]
                        bool(deferrable),
                        bool(deferred),
                    )
                )
        immediate: dict[object, list[tuple[str, ...]]] = {o: [] for o in oids}
        cur.execute(_UNIQUE_INDEXES, {"oids": oids})
        for relid, cols, is_immediate in cur.fetchall():
            key = tuple(str(c) for c in cols)  # type: ignore[attr-defined]
            if key not in uniques[relid] and key != pks.get(relid):
                uniques[relid].append(key)
            if is_immediate:
                immediate[relid].append(key)
        cur.execute(
            "SELECT current_setting('server_version_num')::int, current_database(),"
            " current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
        )
        info = cur.fetchone()
        assert info is not None
    tables = {
        names[r[0]]: Table(
            name=names[r[0]],
            columns=tuple(columns[r[0]]),
            primary_key=pks.get(r[0]),
            unique_keys=tuple(uniques[r[0]]),
            immediate_unique_keys=tuple(immediate[r[0]]),
            foreign_keys=tuple(fks[r[0]]),
            rls_enabled=bool(r[3]),
            rls_forced=bool(r[4]),
            owner=str(r[5]),
            estimated_rows=int(r[6]),  # type: ignore[call-overload]
        )
        for r in rows
    }
    return Catalog(
        tables,
        server_version=int(info[0]),  # type: ignore[call-overload]
        database=str(info[1]),
        current_user=str(info[2]),
        is_superuser=bool(info[3]),
    )
