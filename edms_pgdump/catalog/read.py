"""Read pg_catalog once into plain data: tables, columns, keys, foreign keys, partitions,
sequences, triggers, rules, indexes and dependent materialized views.

This is the only module that reads pg_catalog (its SQL is in ``catalog_queries``);
everything downstream (plan, sqlgen, check, load, history) works from this snapshot,
so it can be unit-tested without a server and stored in manifests.

Partitioned tables appear as one table (the root); their partitions never do. The
foreign keys a root has are those declared on it plus those declared on its
partitions, merged by what they reference (``ForeignKey.on_partitions``/``missing_on``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg

from edms_pgdump.catalog import queries as q
from edms_pgdump.catalog.names import QualifiedName

Connection = psycopg.Connection[tuple[Any, ...]]

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
    # the identity sequence, the sequence a serial column owns (OWNED BY), or the one
    # its default draws from (nextval without OWNED BY, found through pg_depend)
    sequence: QualifiedName | None = None
    # format_type() of the domain's base type for a domain column, else ``type``
    base_type: str = ""
    # False for a nondeterministic (ICU) collation: equal is not byte-equal
    collation_deterministic: bool = True
    # the schema of the "=" operator of the column's (base) type: pg_catalog, or the
    # extension's schema for a type such as citext that brings its own
    equality: str = "pg_catalog"
    # the column's collation, schema-qualified ("pg_catalog"."C"), when it is not the
    # type's default: staging columns take it so keys compare as in the target
    collation: str | None = None

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
    validated: bool = True  # False: added NOT VALID, old rows may point at nothing
    definition: str = ""  # pg_get_constraintdef(), schema-qualified
    comment: str | None = None
    # declared on a partitioned parent, on a partition, or inherited: it cannot be
    # dropped and re-added on this table alone
    inherited: bool = False
    # non-empty: found only on these partitions of the table, not on the table itself
    on_partitions: tuple[QualifiedName, ...] = ()
    # leaf partitions of the table that lack this FK (their rows are not checked)
    missing_on: tuple[QualifiedName, ...] = ()
    # pg_constraint.confdeltype / confupdtype: a no action, r restrict, c cascade,
    # n set null, d set default (the last three change rows of this table by themselves)
    on_delete: str = "a"
    on_update: str = "a"
    # PostgreSQL 18: NOT ENFORCED (the server checks nothing, like a declared reference)
    not_enforced: bool = False
    # PostgreSQL 18: a temporal FK (its last column is a PERIOD, matched by containment)
    period: bool = False

    @property
    def enforced(self) -> bool:
        """The database guarantees every existing row's reference exists."""
        return not self.declared and self.validated and not self.not_enforced


@dataclass(frozen=True)
class IndexDef:
    """A plain index constraints=recreate may drop and create again from ``definition``."""

    name: str
    schema: str
    definition: str  # pg_get_indexdef(), schema-qualified
    comment: str | None = None


@dataclass(frozen=True)
class UniqueIndexDef:
    """A unique index (a primary key's or unique constraint's, or one of its own) that
    constraints=auto|recreate may drop before a big load and build again after it."""

    name: str
    schema: str
    constraint: str | None  # the constraint it backs (same name), or None: a bare index
    constraint_type: str | None  # 'p' (primary key) or 'u' (unique), with ``constraint``
    definition: str  # pg_get_indexdef(), schema-qualified, storage options included
    comment: str | None = None  # on the index
    constraint_comment: str | None = None
    # the foreign keys that reference it: dropped and re-added around it
    referenced_by: tuple[tuple[QualifiedName, str], ...] = ()


@dataclass(frozen=True)
class SequenceInfo:
    name: QualifiedName
    data_type: str  # smallint, integer or bigint
    min_value: int
    max_value: int
    increment: int


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
    # unique keys declared NULLS NOT DISTINCT (PostgreSQL 15+): rows whose key parts are
    # NULL cannot repeat either
    nulls_not_distinct_keys: tuple[tuple[str, ...], ...] = ()
    owner: str = ""
    estimated_rows: int = 0  # of a partitioned table: summed over its partitions
    kind: str = "r"  # 'r' ordinary, 'p' partitioned
    partitions: tuple[QualifiedName, ...] = ()  # every partition, at any depth
    triggers: tuple[str, ...] = ()  # user triggers; a partition's as "name on partition"
    has_rules: bool = False  # rules other than _RETURN, on the table or a partition
    rules: tuple[str, ...] = ()  # their names (a partition's as "name on partition")
    inheritance_children: bool = False  # classic INHERITS children (not partitions)
    owned: bool = False  # current_user is (a member of) the owner
    plain_indexes: tuple[IndexDef, ...] = ()
    rebuildable_unique: tuple[UniqueIndexDef, ...] = ()  # constraints.py
    matviews: tuple[QualifiedName, ...] = ()  # materialized views reading it
    # classic inheritance (INHERITS): the tables this one inherits from, and the tables
    # inheriting from it (direct ones). A parent's own rows are read and written with
    # ONLY: a plain SELECT or DELETE on it would reach its children's rows too.
    inherits: tuple[QualifiedName, ...] = ()
    children: tuple[QualifiedName, ...] = ()

    @property
    def is_partitioned(self) -> bool:
        return self.kind == "p"

    @property
    def has_children(self) -> bool:
        """Some table INHERITS from this one: statements must name it with ONLY."""
        return bool(self.children) and not self.is_partitioned

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
    sequences: dict[QualifiedName, SequenceInfo] = field(default_factory=dict)
    partition_of: dict[QualifiedName, QualifiedName] = field(default_factory=dict)  # -> root
    history_table: bool = False  # edms_pgdump.history exists
    history_writable: bool = False  # ... and current_user may read and insert into it

    def get(self, name: QualifiedName) -> Table | None:
        return self.tables.get(name)


HISTORY_TABLE = QualifiedName("edms_pgdump", "history")

FkSignature = tuple[tuple[str, ...], QualifiedName, tuple[str, ...]]


@dataclass(frozen=True)
class _Partition:
    name: QualifiedName
    kind: str
    parent: int
    rows: int
    root: int
    root_name: QualifiedName


class _Partitions:
    """Every partition tree in the database, keyed by oid."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.parts: dict[int, _Partition] = {
            int(r[0]): _Partition(
                QualifiedName(str(r[1]), str(r[2])),
                str(r[3]),
                int(r[4]),
                int(r[5]),
                int(r[6]),
                QualifiedName(str(r[7]), str(r[8])),
            )
            for r in rows
        }
        self.of_root: dict[int, list[int]] = defaultdict(list)
        for oid, p in self.parts.items():
            self.of_root[p.root].append(oid)

    def ancestors(self, oid: int) -> set[int]:
        """The partition itself and every partition above it (the root excluded)."""
        found = set()
        while oid in self.parts:
            found.add(oid)
            oid = self.parts[oid].parent
        return found

    def leaves(self, root: int) -> list[int]:
        return [o for o in self.of_root[root] if self.parts[o].kind != "p"]


def _strings(values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


def _fk_of(row: tuple[Any, ...], ref: QualifiedName, inherited: bool) -> ForeignKey:
    head, (on_delete_code, on_update_code, enforced, period) = row[:14], row[14:18]
    (_, conname, _, cols, _, _, _, ref_cols, deferrable, deferred, validated, _, definition, comment) = head
    on_delete, on_update = str(on_delete_code or "a"), str(on_update_code or "a")
    return ForeignKey(
        str(conname),
        _strings(cols),
        ref,
        _strings(ref_cols),
        bool(deferrable),
        bool(deferred),
        validated=bool(validated),
        definition=str(definition or ""),
        comment=None if comment is None else str(comment),
        inherited=inherited,
        on_delete=on_delete,
        on_update=on_update,
        not_enforced=not enforced,
        period=bool(period),
    )


def _merge_partition_fks(
    root: int,
    own: list[ForeignKey],
    declared: list[tuple[int, ForeignKey]],
    tree: _Partitions,
) -> list[ForeignKey]:
    """FKs declared on partitions, one entry per (columns, referenced table, referenced
    columns) the root itself does not declare, listing where it is and where it is not."""
    taken = {(fk.columns, fk.ref_table, fk.ref_columns) for fk in own}
    groups: dict[FkSignature, list[tuple[int, ForeignKey]]] = defaultdict(list)
    for oid, fk in declared:
        sig = (fk.columns, fk.ref_table, fk.ref_columns)
        if sig not in taken:
            groups[sig].append((oid, fk))
    merged: list[ForeignKey] = []
    for found in groups.values():
        found.sort(key=lambda f: (tree.parts[f[0]].name, f[1].name))
        holders = {oid for oid, _ in found}
        missing = [o for o in tree.leaves(root) if not tree.ancestors(o) & holders]
        fks = [fk for _, fk in found]
        names = {fk.name for fk in fks}
        merged.append(
            replace(
                fks[0],
                name=fks[0].name if len(names) == 1 else sorted(names)[0],
                deferrable=all(fk.deferrable for fk in fks),
                initially_deferred=all(fk.initially_deferred for fk in fks),
                validated=all(fk.validated for fk in fks),
                comment=next((fk.comment for fk in fks if fk.comment is not None), None),
                inherited=True,
                on_partitions=tuple(sorted({tree.parts[o].name for o in holders})),
                missing_on=tuple(sorted(tree.parts[o].name for o in missing)),
            )
        )
    return sorted(merged, key=lambda fk: fk.name)


def read_history_access(conn: Connection) -> tuple[bool, bool]:
    """(edms_pgdump.history exists, current_user may read and insert into it): for
    callers that need only this, without reading the whole catalog."""
    row = conn.execute(q.HISTORY, {"schema": HISTORY_TABLE.schema, "table": HISTORY_TABLE.name}).fetchone()
    assert row is not None
    return bool(row[0]), bool(row[1])


Cursor = psycopg.Cursor[tuple[Any, ...]]


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)


def _read_columns(
    cur: Cursor, oids: list[int]
) -> tuple[dict[int, list[Column]], dict[QualifiedName, SequenceInfo]]:
    columns: dict[int, list[Column]] = {o: [] for o in oids}
    sequences: dict[QualifiedName, SequenceInfo] = {}
    cur.execute(q.COLUMNS, {"oids": oids})
    for relid, name, typ, notnull, default, ident, gen, base, determ, *rest in cur.fetchall():
        seq, equality, collation = rest[:6], rest[6], rest[7]
        seq_name = None if seq[0] is None else QualifiedName(str(seq[0]), str(seq[1]))
        if seq_name is not None:
            sequences[seq_name] = SequenceInfo(seq_name, str(seq[2]), int(seq[3]), int(seq[4]), int(seq[5]))
        columns[int(relid)].append(
            Column(
                str(name),
                str(typ),
                bool(notnull),
                _optional(default),
                str(ident),
                str(gen),
                sequence=seq_name,
                base_type=str(base),
                collation_deterministic=bool(determ),
                equality=str(equality),
                collation=_optional(collation),
            )
        )
    return columns, sequences


@dataclass
class _Keys:
    """What the constraint and index queries found, per table oid."""

    primary: dict[int, tuple[str, ...]] = field(default_factory=dict)
    unique: dict[int, list[tuple[str, ...]]] = field(default_factory=lambda: defaultdict(list))
    immediate: dict[int, list[tuple[str, ...]]] = field(default_factory=lambda: defaultdict(list))
    nulls_not_distinct: dict[int, list[tuple[str, ...]]] = field(default_factory=lambda: defaultdict(list))
    foreign: dict[int, list[ForeignKey]] = field(default_factory=lambda: defaultdict(list))
    # FKs declared on a partition, under the root's oid, with the partition's oid
    on_partitions: dict[int, list[tuple[int, ForeignKey]]] = field(default_factory=lambda: defaultdict(list))
    plain: dict[int, list[IndexDef]] = field(default_factory=lambda: defaultdict(list))
    rebuildable: dict[int, list[UniqueIndexDef]] = field(default_factory=lambda: defaultdict(list))


def _read_keys(cur: Cursor, tables: dict[int, tuple[QualifiedName, str]], tree: _Partitions) -> _Keys:
    keys = _Keys()
    oids = list(tables)
    part_oids = [o for root in oids for o in tree.of_root.get(root, [])]
    cur.execute(q.CONSTRAINTS, {"tables": oids, "partitions": part_oids})
    for row in cur.fetchall():
        relid, contype, cols = int(row[0]), row[2], _strings(row[3])
        if contype == "p":
            keys.primary[relid] = cols
        elif contype == "u":
            keys.unique[relid].append(cols)
        else:
            ref_oid = int(row[4])
            part = tree.parts.get(ref_oid)
            ref = part.root_name if part else QualifiedName(str(row[5]), str(row[6]))
            if relid in tree.parts:
                keys.on_partitions[tree.parts[relid].root].append((relid, _fk_of(row, ref, True)))
            else:
                inherited = tables[relid][1] == "p" or not row[11]
                keys.foreign[relid].append(_fk_of(row, ref, inherited))
    cur.execute(q.INDEXES, {"oids": oids})
    for relid, cols, is_immediate, is_plain, index, definition, comment, nnd in cur.fetchall():
        relid = int(relid)
        if is_plain:
            schema = tables[relid][0].schema
            keys.plain[relid].append(IndexDef(str(index), schema, str(definition), _optional(comment)))
            continue
        key = _strings(cols)
        if key not in keys.unique[relid] and key != keys.primary.get(relid):
            keys.unique[relid].append(key)
        if is_immediate:
            keys.immediate[relid].append(key)
        if nnd:
            keys.nulls_not_distinct[relid].append(key)
    cur.execute(q.REBUILDABLE_UNIQUE, {"oids": oids})
    for row in cur.fetchall():
        relid, index, schema, constraint, contype, definition, comment, con_comment = row[:8]
        ref_oids, ref_names, on_part = row[8:]
        # referenced from a partition's key, or from a table this catalog does not hold
        # (another schema the tool skips): such an index stays
        if on_part or any(int(o) not in tables for o in ref_oids):
            continue
        refs = tuple((tables[int(o)][0], str(n)) for o, n in zip(ref_oids, ref_names))
        keys.rebuildable[int(relid)].append(
            UniqueIndexDef(
                str(index), str(schema), _optional(constraint), _optional(contype), str(definition),
                _optional(comment), _optional(con_comment), refs,
            )
        )
    return keys


def _read_dependents(
    cur: Cursor, oids: list[int], tree: _Partitions
) -> tuple[dict[int, list[str]], dict[int, list[str]], dict[int, set[QualifiedName]]]:
    """Triggers, rules and materialized views of the tables and their partitions,
    each credited to the table (the root)."""
    part_oids = [o for root in oids for o in tree.of_root.get(root, [])]
    root_of = {o: tree.parts[o].root for o in part_oids} | {o: o for o in oids}
    triggers: dict[int, list[str]] = defaultdict(list)
    rules: dict[int, list[str]] = defaultdict(list)
    cur.execute(q.GUARDS, {"oids": oids + part_oids})
    for relid, kind, name in cur.fetchall():
        relid = int(relid)
        root = root_of[relid]
        if kind == "rule":
            rules[root].append(str(name) if relid == root else f"{name} on {tree.parts[relid].name}")
        elif relid == root:
            triggers[root].append(str(name))
        elif str(name) not in triggers[root]:  # same name: the clone of the root's trigger
            triggers[root].append(f"{name} on {tree.parts[relid].name}")
    matviews: dict[int, set[QualifiedName]] = defaultdict(set)
    cur.execute(q.MATVIEWS, {"oids": oids + part_oids})
    for source, schema, name in cur.fetchall():
        matviews[root_of[int(source)]].add(QualifiedName(str(schema), str(name)))
    return triggers, rules, matviews


def read_catalog(conn: Connection) -> Catalog:
    """Introspect every user table visible to the connection, in a fixed number of
    queries (each over all tables)."""
    with conn.cursor() as cur:
        cur.execute(q.TABLES, {"system": list(SYSTEM_SCHEMAS)})
        rows = cur.fetchall()
        oids = [int(r[0]) for r in rows]
        tables = {int(r[0]): (QualifiedName(str(r[1]), str(r[2])), str(r[7])) for r in rows}
        cur.execute(q.PARTITIONS)
        tree = _Partitions(cur.fetchall())
        columns, sequences = _read_columns(cur, oids)
        keys = _read_keys(cur, tables, tree)
        triggers, rules, matviews = _read_dependents(cur, oids, tree)
        cur.execute(q.INHERITANCE)
        parents: dict[QualifiedName, list[QualifiedName]] = defaultdict(list)
        children: dict[QualifiedName, list[QualifiedName]] = defaultdict(list)
        for _, cs, cn, _, ps, pn in cur.fetchall():
            child, parent = QualifiedName(str(cs), str(cn)), QualifiedName(str(ps), str(pn))
            parents[child].append(parent)
            children[parent].append(child)
        cur.execute(q.SERVER, {"schema": HISTORY_TABLE.schema, "table": HISTORY_TABLE.name})
        info = cur.fetchone()
        assert info is not None
    result: dict[QualifiedName, Table] = {}
    for r in rows:
        oid = int(r[0])
        name, kind = tables[oid]
        own_fks = keys.foreign[oid]
        result[name] = Table(
            name=name,
            columns=tuple(columns[oid]),
            primary_key=keys.primary.get(oid),
            unique_keys=tuple(keys.unique[oid]),
            immediate_unique_keys=tuple(keys.immediate[oid]),
            nulls_not_distinct_keys=tuple(keys.nulls_not_distinct[oid]),
            foreign_keys=tuple(own_fks + _merge_partition_fks(oid, own_fks, keys.on_partitions[oid], tree)),
            rls_enabled=bool(r[3]),
            rls_forced=bool(r[4]),
            owner=str(r[5]),
            # rows live in the leaf partitions (a partitioned table's own reltuples
            # is -1 or, after ANALYZE on recent servers, the same sum)
            estimated_rows=sum(tree.parts[o].rows for o in tree.leaves(oid)) if kind == "p" else int(r[6]),
            kind=kind,
            partitions=tuple(sorted(tree.parts[o].name for o in tree.of_root.get(oid, []))),
            triggers=tuple(triggers[oid]),
            has_rules=bool(rules.get(oid)),
            rules=tuple(rules.get(oid, ())),
            inheritance_children=bool(r[9]),
            owned=bool(r[8]),
            plain_indexes=tuple(keys.plain[oid]),
            rebuildable_unique=tuple(keys.rebuildable[oid]),
            matviews=tuple(sorted(matviews[oid])),
            inherits=tuple(parents.get(name, ())),
            children=tuple(sorted(children.get(name, ()))),
        )
    return Catalog(
        result,
        server_version=int(info[0]),
        database=str(info[1]),
        current_user=str(info[2]),
        is_superuser=bool(info[3]),
        sequences=sequences,
        partition_of={p.name: p.root_name for p in tree.parts.values() if p.root in tables},
        history_table=bool(info[4]),
        history_writable=bool(info[5]),
    )
