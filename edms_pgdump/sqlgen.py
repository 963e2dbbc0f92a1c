"""Plan -> SQL, composed from identifiers with ``psycopg.sql`` (never pasted strings).

The statements built here are exactly what the export/import code executes and what
``edms-pgdump sql`` writes into psql runbooks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg import sql

from .catalog import Column
from .names import QualifiedName
from .plan import Expansion, KeyField, Plan, TablePlan

# Session settings pinned like pg_dump does, so COPY text is byte-stable whatever the
# role's or database's defaults are.
SESSION_SETTINGS: tuple[tuple[str, str], ...] = (
    ("DateStyle", "ISO"),
    ("IntervalStyle", "postgres"),
    ("TimeZone", "UTC"),
    ("extra_float_digits", "3"),
    ("bytea_output", "hex"),
    ("search_path", ""),
    ("client_encoding", "UTF8"),
    ("standard_conforming_strings", "on"),
    ("row_security", "off"),
)


def session_statements() -> list[sql.Composed]:
    return [sql.SQL("SET {} = {}").format(sql.Identifier(k), sql.Literal(v)) for k, v in SESSION_SETTINGS]


def ident(*parts: str) -> sql.Identifier:
    return sql.Identifier(*parts)


def table_ident(name: QualifiedName) -> sql.Identifier:
    return sql.Identifier(name.schema, name.name)


def qualified_literal(name: QualifiedName) -> sql.Literal:
    """A fully quoted ``"schema"."table"`` string for regclass-taking functions."""
    text = '"' + name.schema.replace('"', '""') + '"."' + name.name.replace('"', '""') + '"'
    return sql.Literal(text)


class _Aliases:
    """Alias generator for one query, plus the recursive CTEs (tree paths) it needs."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.n = 0
        self.ctes: dict[QualifiedName, tuple[str, sql.Composable]] = {}

    def with_clause(self) -> sql.Composable:
        if not self.ctes:
            return sql.SQL("")
        return sql.SQL("WITH RECURSIVE {} ").format(
            sql.SQL(", ").join(body for _, body in self.ctes.values())
        )

    def next(self) -> str:
        self.n += 1
        return f"{self.prefix}{self.n}"


# -- natural key expressions over real tables (export, and lookups in the target) ------


def _key_exprs(
    plan: Plan, tp: TablePlan, alias: str, aliases: _Aliases, joins: list[sql.Composable]
) -> list[sql.Composable]:
    """Expressions, in key_fields order, for ``tp``'s natural key of the row ``alias``."""
    exprs: list[sql.Composable] = []
    for kind, name in tp.key_parts:
        if kind == "column":
            exprs.append(sql.SQL("{}.{}").format(ident(alias), ident(name)))
        elif tp.expansion(name).tree:
            exprs.append(_tree_path(tp, alias, tp.expansion(name), aliases, joins))
        else:
            exprs.extend(_expand(plan, alias, tp.expansion(name), aliases, joins))
    return exprs


def tree_step(tp: TablePlan, alias: str) -> sql.Composable:
    """One step of a tree path: the row's own key columns as a jsonb array."""
    return sql.SQL("jsonb_build_array(jsonb_build_array({}))").format(
        sql.SQL(", ").join(sql.SQL("{}.{}").format(ident(alias), ident(c)) for c in tp.tree_steps)
    )


def _tree_path(
    tp: TablePlan, alias: str, exp: Expansion, aliases: _Aliases, joins: list[sql.Composable]
) -> sql.Composable:
    """The path from the root to the row that ``alias``'s parent reference points at."""
    if tp.table not in aliases.ctes:
        name = f"{aliases.prefix}path{len(aliases.ctes) + 1}"
        refs = list(exp.fk.ref_columns)
        roots = sql.SQL(" AND ").join(sql.SQL("t.{} IS NULL").format(ident(c)) for c in exp.fk.columns)
        link = sql.SQL(" AND ").join(
            sql.SQL("c.{} = p.{}").format(ident(c), ident(rc))
            for c, rc in zip(exp.fk.columns, exp.fk.ref_columns)
        )
        body = sql.SQL(
            "{name} ({cols}, {path}) AS (SELECT {tcols}, {tstep} FROM {table} AS t WHERE {roots} "
            "UNION ALL SELECT {ccols}, p.{path} || {cstep} FROM {table} AS c JOIN {name} AS p ON {link})"
        ).format(
            name=ident(name),
            cols=sql.SQL(", ").join(ident(c) for c in refs),
            path=ident(tp.path_marker),
            tcols=sql.SQL(", ").join(sql.SQL("t.{}").format(ident(c)) for c in refs),
            tstep=tree_step(tp, "t"),
            table=table_ident(tp.table),
            roots=roots,
            ccols=sql.SQL(", ").join(sql.SQL("c.{}").format(ident(c)) for c in refs),
            cstep=tree_step(tp, "c"),
            link=link,
        )
        aliases.ctes[tp.table] = (name, body)
    cte = aliases.ctes[tp.table][0]
    b = aliases.next()
    cond = sql.SQL(" AND ").join(
        sql.SQL("{}.{} = {}.{}").format(ident(b), ident(rc), ident(alias), ident(c))
        for c, rc in zip(exp.fk.columns, exp.fk.ref_columns)
    )
    joins.append(sql.SQL("LEFT JOIN {} AS {} ON {}").format(ident(cte), ident(b), cond))
    return sql.SQL("{}.{}").format(ident(b), ident(tp.path_marker))


def _expand(
    plan: Plan, alias: str, exp: Expansion, aliases: _Aliases, joins: list[sql.Composable]
) -> list[sql.Composable]:
    ref = plan.tables[exp.ref_table]
    b = aliases.next()
    cond = sql.SQL(" AND ").join(
        sql.SQL("{}.{} = {}.{}").format(ident(b), ident(rc), ident(alias), ident(c))
        for c, rc in zip(exp.fk.columns, exp.fk.ref_columns)
    )
    joins.append(sql.SQL("LEFT JOIN {} AS {} ON {}").format(table_ident(exp.ref_table), ident(b), cond))
    return _key_exprs(plan, ref, b, aliases, joins)


def export_query(plan: Plan, tp: TablePlan, ordered: bool = False) -> sql.Composed:
    """SELECT producing the archive member: FK ids replaced by natural keys.

    ``ordered`` sorts rows by the natural key's text in the "C" collation, so two
    exports of the same data are byte-identical whatever the databases' collations
    and physical row order (it costs a sort per table).
    """
    aliases = _Aliases("r")
    joins: list[sql.Composable] = []
    select: list[sql.Composable] = []
    names: list[str] = []
    seen: set[str] = set()
    for f in tp.fields:
        if f.role == "column":
            assert f.column is not None
            select.append(sql.SQL("t.{}").format(ident(f.column)))
            names.append(f.name)
        else:
            assert f.reference is not None
            if f.reference in seen:
                continue
            seen.add(f.reference)
            exp = tp.expansion(f.reference)
            if exp.tree:
                select.append(_tree_path(tp, "t", exp, aliases, joins))
            else:
                select.extend(_expand(plan, "t", exp, aliases, joins))
            names.extend(kf.name for kf in exp.fields)
    order: sql.Composable = sql.SQL("")
    if ordered:
        by_name = dict(zip(names, select))
        keys = [by_name[kf.name] for kf in tp.key_fields if kf.name in by_name]
        if keys:
            order = sql.SQL(" ORDER BY {}").format(
                sql.SQL(", ").join(sql.SQL('({})::text COLLATE "C"').format(k) for k in keys)
            )
    joined = sql.SQL("").join(sql.SQL(" {}").format(j) for j in joins)
    return sql.SQL("{}SELECT {} FROM {} AS t{}{}").format(
        aliases.with_clause(), sql.SQL(", ").join(select), table_ident(tp.table), joined, order
    )


def tree_rows_off_path(tp: TablePlan) -> sql.Composed | None:
    """Rows of a tree-keyed table that have a parent but no path from a root (their
    parent chain loops): their key cannot be written, so export refuses them."""
    exp = tp.tree_expansion
    if exp is None:
        return None
    aliases = _Aliases("o")
    joins: list[sql.Composable] = []
    path = _tree_path(tp, "t", exp, aliases, joins)
    has_parent = sql.SQL(" AND ").join(sql.SQL("t.{} IS NOT NULL").format(ident(c)) for c in exp.fk.columns)
    return sql.SQL("{}SELECT count(*) OVER (), {} FROM {} AS t{} WHERE {} AND {} IS NULL LIMIT 5").format(
        aliases.with_clause(),
        sql.SQL(", ").join(sql.SQL("t.{}").format(ident(c)) for c in (*exp.fk.columns, *tp.tree_steps)),
        table_ident(tp.table),
        sql.SQL("").join(sql.SQL(" {}").format(j) for j in joins),
        has_parent,
        path,
    )


def copy_out(plan: Plan, tp: TablePlan, ordered: bool = False) -> sql.Composed:
    return sql.SQL("COPY ({}) TO STDOUT").format(export_query(plan, tp, ordered))


def key_relation(plan: Plan, tp: TablePlan) -> sql.Composed:
    """The target's rows of ``tp`` with their natural key fields and id columns."""
    aliases = _Aliases("k")
    joins: list[sql.Composable] = []
    exprs = _key_exprs(plan, tp, "t", aliases, joins)
    cols = [sql.SQL("{} AS {}").format(e, ident(kf.name)) for e, kf in zip(exprs, tp.key_fields)]
    key_names = {kf.name for kf in tp.key_fields}
    for c in tp.ref_columns:
        if c not in key_names:
            cols.append(sql.SQL("t.{}").format(ident(c)))
    cols.append(sql.SQL("true AS {}").format(ident(tp.hit_marker)))
    return sql.SQL("{}SELECT {} FROM {} AS t {}").format(
        aliases.with_clause(), sql.SQL(", ").join(cols), table_ident(tp.table), sql.SQL(" ").join(joins)
    )


# -- staging ------------------------------------------------------------------------


@dataclass(frozen=True)
class StagingNames:
    raw: sql.Identifier
    keyed: sql.Identifier
    final: sql.Identifier
    label: str


def staging_names(index: int, table: QualifiedName) -> StagingNames:
    slug = re.sub(r"[^a-z0-9]+", "_", table.name.lower()).strip("_")[:32] or "t"
    label = f"edms_{index:03d}_{slug}"
    return StagingNames(ident(label + "_raw"), ident(label + "_keyed"), ident(label + "_final"), label)


def field_types(tp: TablePlan, fields: list[str] | None = None) -> list[tuple[str, str]]:
    chosen = fields if fields is not None else list(tp.field_names)
    by_name = {f.name: f.type for f in tp.fields}
    return [(n, by_name[n]) for n in chosen]


def create_raw(tp: TablePlan, names: StagingNames, fields: list[str]) -> sql.Composed:
    cols = sql.SQL(", ").join(
        sql.SQL("{} {}").format(ident(n), sql.SQL(t)) for n, t in field_types(tp, fields)
    )
    return sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(names.raw, cols)


def copy_in(names: StagingNames, fields: list[str]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(names.raw, sql.SQL(", ").join(ident(f) for f in fields))


def _match(
    left: str, right: str, keys: list[KeyField], left_prefix: str = "", right_prefix: str = ""
) -> sql.Composable:
    return sql.SQL(" AND ").join(
        equal_or_both_null(
            sql.SQL("{}.{}").format(ident(left), ident(left_prefix + kf.name)),
            sql.SQL("{}.{}").format(ident(right), ident(right_prefix + kf.name)),
            kf.nullable,
        )
        for kf in keys
    )


def equal_or_both_null(a: sql.Composable, b: sql.Composable, nullable: bool) -> sql.Composable:
    """Key equality where two NULLs match. ``IS NOT DISTINCT FROM`` would say the same,
    but PostgreSQL can only run it as a nested loop (quadratic); one-element arrays
    compare NULLs as equal and hash, so the join stays a hash or merge join."""
    if not nullable:
        return sql.SQL("{} = {}").format(a, b)
    return sql.SQL("ARRAY[{}] = ARRAY[{}]").format(a, b)


def duplicate_keys(tp: TablePlan, relation: sql.Composable, samples: int = 5) -> sql.Composed:
    keys = sql.SQL(", ").join(ident(kf.name) for kf in tp.key_fields)
    return sql.SQL(
        "SELECT {keys}, count(*) FROM {rel} AS d GROUP BY {keys} HAVING count(*) > 1 "
        "ORDER BY count(*) DESC LIMIT {n}"
    ).format(keys=keys, rel=relation, n=sql.Literal(samples))


def target_duplicate_keys(plan: Plan, tp: TablePlan, samples: int = 5) -> sql.Composed:
    return duplicate_keys(tp, sql.SQL("({})").format(key_relation(plan, tp)), samples)


def default_expr(table: QualifiedName, col: Column) -> sql.Composable:
    """Allocate a new value the way the target would on INSERT."""
    if col.identity:
        return sql.SQL("nextval(pg_get_serial_sequence({}, {}))").format(
            qualified_literal(table), sql.Literal(col.name)
        )
    assert col.default is not None
    # The default is the server's own expression text (pg_get_expr), read with the
    # search_path pinned empty, so it is fully qualified.
    return sql.SQL("({})").format(sql.SQL(col.default))


def computed_id(sequence: QualifiedName, start: int, increment: int) -> sql.Composable:
    """New ids for a dry run or a comparison: the values ``nextval`` would hand out next,
    computed from the sequence's last value without drawing them (no sequence moves)."""
    expr = "(coalesce(pg_catalog.pg_sequence_last_value({}), {}) + {} * row_number() OVER ())"
    return sql.SQL(expr).format(
        qualified_literal(sequence), sql.Literal(start - increment), sql.Literal(increment)
    )


def create_as(name: sql.Composable, select: sql.Composable, empty: bool = False) -> sql.Composed:
    """A staging table from a query; ``empty`` creates it with the query's column types
    only (filled later by ``insert_select``, e.g. after ``SET TRANSACTION READ ONLY``)."""
    return sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS {}{}").format(
        name, select, sql.SQL(" WITH NO DATA") if empty else sql.SQL("")
    )


def insert_select(name: sql.Composable, select: sql.Composable) -> sql.Composed:
    return sql.SQL("INSERT INTO {} {}").format(name, select)


def create_keyed(
    plan: Plan, tp: TablePlan, names: StagingNames, ids: dict[str, sql.Composable] | None = None
) -> sql.Composed:
    """Staging rows with the target's ids (see ``keyed_select``), as a temp table."""
    return create_as(names.keyed, keyed_select(plan, tp, names, ids))


def keyed_select(
    plan: Plan, tp: TablePlan, names: StagingNames, ids: dict[str, sql.Composable] | None = None
) -> sql.Composed:
    """Staging rows with the target's ids: existing rows matched by natural key, new
    rows given ids now, so every reference to them is known before any INSERT."""
    field_names = set(tp.field_names)
    surrogate = {c.name: c for c in tp.surrogate}
    extra: list[sql.Composable] = []
    fk_columns = {c for e in tp.expansions for c in e.fk.columns}
    for c in tp.ref_columns:
        if c in field_names or c in fk_columns:
            continue
        if c in surrogate:
            new_id = (ids or {}).get(c) or default_expr(tp.table, surrogate[c])
            extra.append(sql.SQL("COALESCE(o.{c}, {d}) AS {c}").format(c=ident(c), d=new_id))
        else:
            extra.append(sql.SQL("o.{c} AS {c}").format(c=ident(c)))
    extra.append(sql.SQL("o.{} IS NULL AS {}").format(ident(tp.hit_marker), ident(tp.new_marker)))
    tree = tp.tree_expansion
    if tree is not None:
        extra.append(
            sql.SQL("COALESCE(s.{}, '[]'::jsonb) || {} AS {}").format(
                ident(tree.fields[0].name), tree_step(tp, "s"), ident(tp.path_marker)
            )
        )
    return sql.SQL("SELECT s.*, {extra} FROM {raw} AS s LEFT JOIN ({rel}) AS o ON {match}").format(
        extra=sql.SQL(", ").join(extra),
        raw=names.raw,
        rel=key_relation(plan, tp),
        match=_match("o", "s", list(tp.key_fields)),
    )


def _resolve_source(
    plan: Plan,
    exp: Expansion,
    staged: dict[QualifiedName, StagingNames],
    finalized: set[QualifiedName],
) -> sql.Composable:
    ref = plan.tables[exp.ref_table]
    if exp.ref_table in staged and ref.export:
        if exp.ref_table in finalized:
            return staged[exp.ref_table].final
        return staged[exp.ref_table].keyed
    return sql.SQL("({})").format(key_relation(plan, ref))


def create_final(
    plan: Plan,
    tp: TablePlan,
    names: StagingNames,
    staged: dict[QualifiedName, StagingNames],
    loaded_fields: set[str],
    finalized: set[QualifiedName],
) -> sql.Composed:
    """Staging rows with every foreign key resolved to the target's ids."""
    return create_as(names.final, final_select(plan, tp, names, staged, loaded_fields, finalized))


def final_select(
    plan: Plan,
    tp: TablePlan,
    names: StagingNames,
    staged: dict[QualifiedName, StagingNames],
    loaded_fields: set[str],
    finalized: set[QualifiedName],
) -> sql.Composed:
    """The keyed rows with every foreign key resolved to the target's ids."""
    select: list[sql.Composable] = [sql.SQL("k.*")]
    joins: list[sql.Composable] = []
    for i, exp in enumerate(active_expansions(tp, loaded_fields)):
        a = f"f{i + 1}"
        ref = plan.tables[exp.ref_table]
        for c, rc in zip(exp.fk.columns, exp.fk.ref_columns):
            select.append(sql.SQL("{}.{} AS {}").format(ident(a), ident(rc), ident(c)))
        if exp.tree:
            joins.append(
                sql.SQL("LEFT JOIN {} AS {} ON {}.{} = k.{}").format(
                    names.keyed, ident(a), ident(a), ident(ref.path_marker), ident(exp.fields[0].name)
                )
            )
            continue
        joins.append(
            sql.SQL("LEFT JOIN {} AS {} ON {}").format(
                _resolve_source(plan, exp, staged, finalized),
                ident(a),
                _match(a, "k", list(ref.key_fields), right_prefix=exp.label + "."),
            )
        )
    return sql.SQL("SELECT {} FROM {} AS k {}").format(
        sql.SQL(", ").join(select), names.keyed, sql.SQL(" ").join(joins)
    )


def active_expansions(tp: TablePlan, loaded_fields: set[str]) -> list[Expansion]:
    """Expansions whose fields are in the archive (a target-only FK stays NULL)."""
    return [e for e in tp.expansions if all(f.name in loaded_fields for f in e.fields)]


def unresolved_condition(exp: Expansion) -> sql.Composed:
    """A reference the archive carries (some key field set) that resolved to no row."""
    present = sql.SQL(" OR ").join(sql.SQL("{} IS NOT NULL").format(ident(f.name)) for f in exp.fields)
    return sql.SQL("{} IS NULL AND ({})").format(ident(exp.fk.columns[0]), present)


def unresolved(tp: TablePlan, names: StagingNames, exp: Expansion, samples: int = 5) -> sql.Composed:
    return sql.SQL("SELECT count(*) OVER (), {} FROM {} WHERE {} LIMIT {}").format(
        sql.SQL(", ").join(ident(f.name) for f in exp.fields),
        names.final,
        unresolved_condition(exp),
        sql.Literal(samples),
    )


def insert_columns(tp: TablePlan, loaded_fields: set[str]) -> list[str]:
    cols = [c for c in tp.plain_columns if c in loaded_fields]
    cols += [c.name for c in tp.surrogate]
    for e in active_expansions(tp, loaded_fields):
        cols += [c for c in e.fk.columns if c not in cols]
    return cols


def insert_new(tp: TablePlan, names: StagingNames, loaded_fields: set[str]) -> sql.Composed:
    cols = insert_columns(tp, loaded_fields)
    nulled = {
        c for e in active_expansions(tp, loaded_fields) if e.edge == "second_pass" for c in e.fk.columns
    }
    values = [sql.SQL("NULL") if c in nulled else ident(c) for c in cols]
    overriding = sql.SQL(" OVERRIDING SYSTEM VALUE") if tp.identity_always else sql.SQL("")
    return sql.SQL("INSERT INTO {} ({}){} SELECT {} FROM {} WHERE {}").format(
        table_ident(tp.table),
        sql.SQL(", ").join(ident(c) for c in cols),
        overriding,
        sql.SQL(", ").join(values),
        names.final,
        ident(tp.new_marker),
    )


def _identity_match(tp: TablePlan, t: str, f: str) -> sql.Composable:
    # a primary key is never NULL; a natural key standing in for it may be
    return sql.SQL(" AND ").join(
        equal_or_both_null(
            sql.SQL("{}.{}").format(ident(t), ident(c)),
            sql.SQL("{}.{}").format(ident(f), ident(c)),
            not tp.identity_is_pk,
        )
        for c in tp.row_identity
    )


def second_pass(tp: TablePlan, names: StagingNames, exp: Expansion) -> sql.Composed:
    sets = sql.SQL(", ").join(sql.SQL("{c} = f.{c}").format(c=ident(c)) for c in exp.fk.columns)
    return sql.SQL(
        "UPDATE {t} AS t SET {sets} FROM {final} AS f WHERE f.{new} AND {match} AND f.{first} IS NOT NULL"
    ).format(
        t=table_ident(tp.table),
        sets=sets,
        final=names.final,
        new=ident(tp.new_marker),
        match=_identity_match(tp, "t", "f"),
        first=ident(exp.fk.columns[0]),
    )


# Types whose '=' means "same text output"; everything else is compared as text so
# that 1.0 vs 1.00, '1 day' vs '24:00:00' or citext case changes are not skipped.
_EXACT_TYPES = re.compile(
    r"^(smallint|integer|bigint|text|character varying(\(\d+\))?|character(\(\d+\))?|"
    r"boolean|date|timestamp(\(\d\))? with(out)? time zone|uuid|bytea|\"char\"|name|oid)"
    r"(\[\])*$"
)


def _differs(tp: TablePlan, cols: list[str], t: str, f: str) -> sql.Composable:
    types = {fl.column: fl.type for fl in tp.fields if fl.column}
    parts = []
    for c in cols:
        if c in types and not _EXACT_TYPES.match(types[c]):
            parts.append(
                sql.SQL("{}.{}::text IS DISTINCT FROM {}.{}::text").format(
                    ident(t), ident(c), ident(f), ident(c)
                )
            )
        else:
            parts.append(
                sql.SQL("{}.{} IS DISTINCT FROM {}.{}").format(ident(t), ident(c), ident(f), ident(c))
            )
    if not parts:
        return sql.SQL("false")
    return sql.SQL("({})").format(sql.SQL(" OR ").join(parts))


def updatable_columns(tp: TablePlan, loaded_fields: set[str]) -> list[str]:
    skip = set(tp.row_identity) | {c.name for c in tp.surrogate}
    return [c for c in insert_columns(tp, loaded_fields) if c not in skip]


def changed_rows(
    tp: TablePlan, names: StagingNames, loaded_fields: set[str], samples: int = 5
) -> sql.Composed:
    cols = updatable_columns(tp, loaded_fields)
    return sql.SQL(
        "SELECT count(*) OVER (), {keys} FROM {final} AS f JOIN {t} AS t ON {match} "
        "WHERE NOT f.{new} AND {differs} LIMIT {n}"
    ).format(
        n=sql.Literal(samples),
        keys=sql.SQL(", ").join(sql.SQL("f.{}").format(ident(k.name)) for k in tp.key_fields),
        final=names.final,
        t=table_ident(tp.table),
        match=_identity_match(tp, "t", "f"),
        new=ident(tp.new_marker),
        differs=_differs(tp, cols, "t", "f"),
    )


def count_changed(tp: TablePlan, names: StagingNames, loaded_fields: set[str]) -> sql.Composed:
    """How many archive rows exist in the target with other values (verify)."""
    cols = updatable_columns(tp, loaded_fields)
    return sql.SQL(
        "SELECT count(*) FROM {final} AS f JOIN {t} AS t ON {match} WHERE NOT f.{new} AND {differs}"
    ).format(
        final=names.final,
        t=table_ident(tp.table),
        match=_identity_match(tp, "t", "f"),
        new=ident(tp.new_marker),
        differs=_differs(tp, cols, "t", "f"),
    )


def read_only() -> sql.Composed:
    return sql.SQL("SET TRANSACTION READ ONLY").format()


def update_existing(tp: TablePlan, names: StagingNames, loaded_fields: set[str]) -> sql.Composed | None:
    cols = updatable_columns(tp, loaded_fields)
    if not cols:
        return None
    sets = sql.SQL(", ").join(sql.SQL("{c} = f.{c}").format(c=ident(c)) for c in cols)
    return sql.SQL(
        "UPDATE {t} AS t SET {sets} FROM {final} AS f WHERE NOT f.{new} AND {match} AND {differs}"
    ).format(
        t=table_ident(tp.table),
        sets=sets,
        final=names.final,
        new=ident(tp.new_marker),
        match=_identity_match(tp, "t", "f"),
        differs=_differs(tp, cols, "t", "f"),
    )


def count_present(plan: Plan, tp: TablePlan, names: StagingNames) -> sql.Composed:
    """After loading: how many archive rows exist in the target by natural key."""
    return sql.SQL(
        "SELECT count(*) FROM {final} AS f WHERE EXISTS (SELECT 1 FROM ({rel}) AS o WHERE {m})"
    ).format(final=names.final, rel=key_relation(plan, tp), m=_match("o", "f", list(tp.key_fields)))


def count_rows(relation: sql.Composable, where: sql.Composable | None = None) -> sql.Composed:
    if where is None:
        return sql.SQL("SELECT count(*) FROM {}").format(relation)
    return sql.SQL("SELECT count(*) FROM {} WHERE {}").format(relation, where)


def lock_tables(tables: list[QualifiedName]) -> sql.Composed:
    return sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(
        sql.SQL(", ").join(table_ident(t) for t in sorted(tables))
    )


def set_constraints(fks: list[tuple[QualifiedName, str]], mode: str) -> sql.Composed:
    return sql.SQL("SET CONSTRAINTS {} {}").format(
        sql.SQL(", ").join(ident(schema.schema, name) for schema, name in fks),
        sql.SQL(mode),
    )


def column_maxima(relation: sql.Composable, columns: list[str]) -> sql.Composed:
    return sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(sql.SQL("max({})").format(ident(c)) for c in columns), relation
    )


def advance_sequence(table: QualifiedName, column: str, sequence: QualifiedName, start: int) -> sql.Composed:
    """``setval`` to the column's largest value when that is ahead of the sequence (or
    of its start, if it never handed out a value); never backwards."""
    return sql.SQL(
        "SELECT pg_catalog.setval({seq}, m) FROM (SELECT max({col}) AS m, "
        "pg_catalog.pg_sequence_last_value({seq}) AS last FROM {table}) AS x "
        "WHERE m > coalesce(last, {before_start})"
    ).format(
        seq=qualified_literal(sequence),
        col=ident(column),
        table=table_ident(table),
        before_start=sql.Literal(start - 1),
    )


def refresh_view(view: QualifiedName) -> sql.Composed:
    return sql.SQL("REFRESH MATERIALIZED VIEW {}").format(table_ident(view))


def set_all_constraints(mode: str) -> sql.Composed:
    """Deferrable constraints of a cycle are deferred while its tables load and checked
    at the end of it. ``ALL`` rather than names: a constraint the import recreated is
    gone by then."""
    assert mode in ("DEFERRED", "IMMEDIATE")
    return sql.SQL("SET CONSTRAINTS ALL {}").format(sql.SQL(mode))


def analyze(relation: sql.Composable) -> sql.Composed:
    return sql.SQL("ANALYZE {}").format(relation)


def begin(isolation: str | None = None, read_only: bool = False) -> sql.Composed:
    parts = ["BEGIN"]
    if isolation:
        assert isolation in ("REPEATABLE READ", "SERIALIZABLE", "READ COMMITTED")
        parts.append(f"ISOLATION LEVEL {isolation}")
    if read_only:
        parts.append("READ ONLY")
    return sql.SQL(" ".join(parts)).format()


def set_local(name: str, value: str) -> sql.Composed:
    return sql.SQL("SET LOCAL {} = {}").format(sql.Identifier(name), sql.Literal(value))


def commit() -> sql.Composed:
    return sql.SQL("COMMIT").format()


def rollback() -> sql.Composed:
    return sql.SQL("ROLLBACK").format()


def import_settings(lock_timeout: str, statement_timeout: str, work_mem: str) -> list[sql.Composed]:
    """The import transaction's own limits; ADD FOREIGN KEY (constraints recreate)
    validates with maintenance_work_mem."""
    return [
        set_local("lock_timeout", lock_timeout),
        set_local("statement_timeout", statement_timeout),
        set_local("work_mem", work_mem),
        set_local("maintenance_work_mem", work_mem),
    ]


def savepoint(name: str) -> sql.Composed:
    return sql.SQL("SAVEPOINT {}").format(sql.Identifier(name))


def rollback_to(name: str) -> sql.Composed:
    return sql.SQL("ROLLBACK TO SAVEPOINT {}").format(sql.Identifier(name))


def release(name: str) -> sql.Composed:
    return sql.SQL("RELEASE SAVEPOINT {}").format(sql.Identifier(name))


def render(statement: sql.Composable) -> str:
    return statement.as_string(None)


# -- performance helpers --------------------------------------------------------------
# Appended for the fast import (load.py); the functions above are shared with the psql
# runbook and keep their output.


def _regclass_array(tables: list[QualifiedName]) -> sql.Composed:
    return sql.SQL("ARRAY[{}]::regclass[]").format(sql.SQL(", ").join(qualified_literal(t) for t in tables))


def lock_tables_exclusive(tables: list[QualifiedName]) -> sql.Composed:
    """constraints=recreate drops foreign keys, which needs ACCESS EXCLUSIVE: take it
    up front, in a stable order, instead of upgrading a weaker lock later."""
    return sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
        sql.SQL(", ").join(table_ident(t) for t in sorted(tables))
    )


def table_guards(tables: list[QualifiedName]) -> sql.Composed:
    """Per table: does anything besides our own statement decide what a row becomes
    (user triggers, rules, row-level security)? If not, counts can be derived."""
    return sql.SQL(
        "SELECT n.nspname, c.relname, "
        "EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal), "
        "EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite w "
        "WHERE w.ev_class = c.oid AND w.rulename <> '_RETURN'), "
        "c.relrowsecurity "
        "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = ANY({})"
    ).format(_regclass_array(tables))


def foreign_key_definitions(tables: list[QualifiedName]) -> sql.Composed:
    """Foreign keys declared on ``tables``: what constraints=recreate drops and re-adds.
    The definition text is the server's own (search_path is pinned empty, so it is
    fully qualified)."""
    return sql.SQL(
        "SELECT n.nspname, r.relname, c.conname, pg_catalog.pg_get_constraintdef(c.oid), "
        "pg_catalog.obj_description(c.oid, 'pg_constraint'), "
        "pg_catalog.pg_has_role(r.relowner, 'USAGE'), "
        "r.relkind = 'p' OR c.conparentid <> 0 OR NOT c.conislocal "
        "FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_class r ON r.oid = c.conrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace "
        "WHERE c.contype = 'f' AND c.conrelid = ANY({}) ORDER BY n.nspname, r.relname, c.conname"
    ).format(_regclass_array(tables))


def drop_constraint(table: QualifiedName, name: str) -> sql.Composed:
    return sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(table_ident(table), ident(name))


def add_constraint(table: QualifiedName, name: str, definition: str) -> sql.Composed:
    # ``definition`` is pg_get_constraintdef() output read from the same server.
    return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
        table_ident(table), ident(name), sql.SQL(definition)
    )


def comment_constraint(table: QualifiedName, name: str, comment: str) -> sql.Composed:
    return sql.SQL("COMMENT ON CONSTRAINT {} ON {} IS {}").format(
        ident(name), table_ident(table), sql.Literal(comment)
    )


def final_summary(tp: TablePlan, names: StagingNames, expansions: list[Expansion]) -> sql.Composed:
    """One scan of the final staging table: rows already in the target, and per
    expansion the number of unresolved references (samples are fetched only on error)."""
    cols: list[sql.Composable] = [sql.SQL("count(*) FILTER (WHERE NOT {})").format(ident(tp.new_marker))]
    cols += [sql.SQL("count(*) FILTER (WHERE {})").format(unresolved_condition(e)) for e in expansions]
    return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(cols), names.final)


def merged_final(
    plan: Plan,
    tp: TablePlan,
    names: StagingNames,
    staged: dict[QualifiedName, StagingNames],
    loaded_fields: set[str],
    finalized: set[QualifiedName],
    ids: dict[str, sql.Composable] | None = None,
) -> sql.Composed:
    return create_as(names.final, merged_final_select(plan, tp, names, staged, loaded_fields, finalized, ids))


def merged_final_select(
    plan: Plan,
    tp: TablePlan,
    names: StagingNames,
    staged: dict[QualifiedName, StagingNames],
    loaded_fields: set[str],
    finalized: set[QualifiedName],
    ids: dict[str, sql.Composable] | None = None,
) -> sql.Composed:
    """``create_keyed`` and ``create_final`` as one statement (one pass over the
    staging rows instead of two), for a table nothing else in its component refers to.

    The keyed rows become a subquery of the final statement, so both paths run the
    same joins.
    """
    subquery = sql.SQL("({})").format(keyed_select(plan, tp, names, ids))
    inlined = StagingNames(names.raw, subquery, names.final, names.label)  # type: ignore[arg-type]
    return final_select(plan, tp, inlined, staged, loaded_fields, finalized)


def repeated_identity(tp: TablePlan, names: StagingNames) -> sql.Composed:
    """A target row matched by two archive rows (so the archive repeats its key)."""
    cols = sql.SQL(", ").join(ident(c) for c in tp.row_identity)
    return sql.SQL("SELECT 1 FROM {} WHERE NOT {} GROUP BY {} HAVING count(*) > 1 LIMIT 1").format(
        names.final, ident(tp.new_marker), cols
    )


def plain_indexes(tables: list[QualifiedName]) -> sql.Composed:
    """Non-unique indexes that back no constraint, in the default tablespace, not
    clustered: what constraints=recreate may drop and build again after a big load
    (one sort instead of a random B-tree insert per row). The definition is the
    server's own, fully qualified."""
    return sql.SQL(
        "SELECT n.nspname, c.relname, ic.relname, pg_catalog.pg_get_indexdef(i.indexrelid), "
        "pg_catalog.obj_description(i.indexrelid, 'pg_class'), pg_catalog.pg_has_role(c.relowner, 'USAGE') "
        "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indrelid "
        "JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE i.indrelid = ANY({}) AND c.relkind = 'r' AND NOT ic.relispartition "
        "AND NOT i.indisunique AND NOT i.indisprimary AND NOT i.indisexclusion "
        "AND i.indisvalid AND i.indisready AND i.indislive AND NOT i.indisclustered "
        "AND ic.reltablespace = 0 "
        "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid) "
        "ORDER BY 1, 2, 3"
    ).format(_regclass_array(tables))


def drop_index(schema: str, name: str) -> sql.Composed:
    return sql.SQL("DROP INDEX {}").format(ident(schema, name))


def create_from_definition(definition: str) -> sql.Composed:
    # pg_get_indexdef() output read from the same server
    return sql.SQL("{}").format(sql.SQL(definition))


def comment_index(schema: str, name: str, comment: str) -> sql.Composed:
    return sql.SQL("COMMENT ON INDEX {} IS {}").format(ident(schema, name), sql.Literal(comment))


def copy_in_frozen(names: StagingNames, fields: list[str]) -> sql.Composed:
    """``copy_in`` with FREEZE: the staging table was created in this transaction, so
    its rows can be written frozen and all-visible, and later scans of it do not go
    back to set hint bits on every page."""
    return sql.SQL("COPY {} ({}) FROM STDIN (FREEZE)").format(
        names.raw, sql.SQL(", ").join(ident(f) for f in fields)
    )
