"""Natural keys over real tables: the export query, and the target's rows keyed by natural key."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.plan.build import Expansion, GenericPlan, Plan, TablePlan
from edms_pgdump.plan.model import EmbeddedPlan, carried_field
from edms_pgdump.sqlgen import embedded
from edms_pgdump.sqlgen.common import equals, ident, relation, table_ident
from edms_pgdump.sqlgen.generic import names_table, raw_id, type_key_columns, type_label


def table_rel(plan: Plan, name: QualifiedName) -> sql.Composable:
    """``name`` as the statements read it: with ONLY when tables inherit from it."""
    tp = plan.tables.get(name)
    return relation(name, tp is not None and tp.only)


def own_rel(tp: TablePlan) -> sql.Composable:
    return relation(tp.table, tp.only)


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


def _key_exprs(
    plan: Plan, tp: TablePlan, alias: str, aliases: _Aliases, joins: list[sql.Composable]
) -> list[sql.Composable]:
    """Expressions, in key_fields order, for ``tp``'s natural key of the row ``alias``."""
    exprs: list[sql.Composable] = []
    for kind, name in tp.key_parts:
        if kind == "column":
            exprs.append(sql.SQL("{}.{}").format(ident(alias), ident(name)))
        elif kind == "generic":
            exprs.append(generic_key(plan, tp, alias, tp.generic_for(name), aliases, joins).key)
        elif tp.expansion(name).tree:
            exprs.append(_tree_path(tp, alias, tp.expansion(name), aliases, joins))
        else:
            exprs.extend(_expand(plan, alias, tp.expansion(name), aliases, joins))
    return exprs


def tree_step(tp: TablePlan, alias: str) -> sql.Composable:
    """One step of a tree path: the row's own key columns as a jsonb array."""
    return sql.SQL("pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_array({}))").format(
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
            sql.SQL("c.{} {} p.{}").format(ident(c), equals(tp.eq(rc)), ident(rc))
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
            table=own_rel(tp),
            roots=roots,
            ccols=sql.SQL(", ").join(sql.SQL("c.{}").format(ident(c)) for c in refs),
            cstep=tree_step(tp, "c"),
            link=link,
        )
        aliases.ctes[tp.table] = (name, body)
    cte = aliases.ctes[tp.table][0]
    b = aliases.next()
    cond = sql.SQL(" AND ").join(
        sql.SQL("{}.{} {} {}.{}").format(ident(b), ident(rc), equals(tp.eq(rc)), ident(alias), ident(c))
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
        sql.SQL("{}.{} {} {}.{}").format(ident(b), ident(rc), equals(ref.eq(rc)), ident(alias), ident(c))
        for c, rc in zip(exp.fk.columns, exp.fk.ref_columns)
    )
    joins.append(sql.SQL("LEFT JOIN {} AS {} ON {}").format(table_rel(plan, exp.ref_table), ident(b), cond))
    return _key_exprs(plan, ref, b, aliases, joins)


def presence(exp: Expansion, alias: str) -> sql.Composable:
    """Archive format 2: whether the row references a row through ``exp``. Every column
    set: the database found the row (MATCH SIMPLE checks only then; an unchecked
    reference to no row is refused at export); any NULL: no reference, whatever the
    referenced row's key looks like."""
    return sql.SQL("({})").format(
        sql.SQL(" AND ").join(
            sql.SQL("{}.{} IS NOT NULL").format(ident(alias), ident(c)) for c in exp.fk.columns
        )
    )


def array_keys(plan: Plan, alias: str, exp: Expansion) -> sql.Composable:
    """An array of ids as the jsonb array of the referenced rows' natural keys, element by
    element in order (``[["red"], null, ["blue"]]``): a NULL element stays JSON null, an
    empty array ``[]``, a NULL array NULL. A row whose key is all NULL is ``[null]``, so
    it is told apart from a NULL element."""
    ref = plan.tables[exp.ref_table]
    aliases = _Aliases("a")
    joins: list[sql.Composable] = []
    r = aliases.next()
    exprs = _key_exprs(plan, ref, r, aliases, joins)
    column = sql.SQL("{}.{}").format(ident(alias), ident(exp.fk.columns[0]))
    return sql.SQL(
        "(CASE WHEN {col} IS NULL THEN NULL ELSE ({cte}SELECT COALESCE(jsonb_agg(CASE WHEN e.v IS NULL "
        "THEN NULL ELSE jsonb_build_array({key}) END ORDER BY e.o), '[]'::jsonb) FROM unnest({col}) "
        "WITH ORDINALITY AS e(v, o) LEFT JOIN {ref} AS {r} ON {r}.{rc} = e.v{joins}) END)"
    ).format(
        col=column,
        cte=aliases.with_clause(),
        key=sql.SQL(", ").join(exprs),
        ref=table_ident(exp.ref_table),
        r=ident(r),
        rc=ident(exp.fk.ref_columns[0]),
        joins=sql.SQL("").join(sql.SQL(" {}").format(j) for j in joins),
    )


def export_query(
    plan: Plan, tp: TablePlan, ordered: bool = False, keep: sql.Composable | None = None
) -> sql.Composed:
    """SELECT producing the archive member: FK ids replaced by natural keys.

    ``ordered`` sorts rows by the natural key's text in the "C" collation, so two
    exports of the same data are byte-identical whatever the databases' collations
    and physical row order (it costs a sort per table). ``keep``: a condition on the
    row ``t`` (a subset export's kept keys, ``sqlgen.subset.keep_condition``).
    """
    aliases = _Aliases("r")
    joins: list[sql.Composable] = []
    select: list[sql.Composable] = []
    names: list[str] = []
    seen: set[str] = set()
    skip: list[sql.Composable] = []
    inside = embedded.by_column(tp)
    for f in tp.fields:
        if f.role == "column" and f.column in inside:
            rels = [key_relation(plan, plan.tables[ep.ref_table]) for ep in inside[f.column]]
            select.append(embedded.export_column(plan, tp, f.column, joins, rels))
            names.append(f.name)
        elif f.role == "column":
            assert f.column is not None
            select.append(sql.SQL("t.{}").format(ident(f.column)))
            names.append(f.name)
        elif f.role == "parent":
            select.append(_parent_key(plan, tp, aliases, joins))
            names.append(f.name)
        elif f.role == "generic":
            assert f.column is not None
            gp = tp.generic_for(f.column)
            found = generic_key(plan, tp, "t", gp, aliases, joins)
            select.append(found.key)
            names.append(f.name)
            if gp.on_dangling == "skip":
                skip.append(found.dangling)
        else:
            assert f.reference is not None
            if f.reference in seen:
                continue
            seen.add(f.reference)
            exp = tp.expansion(f.reference)
            if exp.array:
                select.append(array_keys(plan, "t", exp))
            elif exp.tree:
                select.append(_tree_path(tp, "t", exp, aliases, joins))
            else:
                select.extend(_expand(plan, "t", exp, aliases, joins))
            names.extend(kf.name for kf in exp.fields)
            if exp.present:
                select.append(presence(exp, "t"))
                names.append(exp.present_field)
            for c in exp.carried:
                select.append(sql.SQL("t.{}").format(ident(c)))
                names.append(carried_field(exp.label, c))
    order: sql.Composable = sql.SQL("")
    if ordered:
        by_name = dict(zip(names, select))
        keys = [by_name[kf.name] for kf in tp.key_fields if kf.name in by_name]
        if keys:
            order = sql.SQL(" ORDER BY {}").format(
                sql.SQL(", ").join(sql.SQL('({})::text COLLATE "C"').format(k) for k in keys)
            )
    joined = sql.SQL("").join(sql.SQL(" {}").format(j) for j in joins)
    conditions: list[sql.Composable] = []
    if keep is not None:
        conditions.append(keep)
    if skip:  # on_dangling: skip
        conditions.append(sql.SQL("NOT ({})").format(sql.SQL(" OR ").join(skip)))
    where: sql.Composable = sql.SQL("")
    if conditions:
        where = sql.SQL(" WHERE {}").format(sql.SQL(" AND ").join(conditions))
    return sql.SQL("{}SELECT {} FROM {} AS t{}{}{}").format(
        aliases.with_clause(), sql.SQL(", ").join(select), own_rel(tp), joined, where, order
    )


def _parent_key(plan: Plan, tp: TablePlan, aliases: _Aliases, joins: list[sql.Composable]) -> sql.Composable:
    """A materialized-path node's parent's natural key (jsonb array of its key fields):
    the row whose path is this row's path less one step; NULL for a root."""
    assert tp.tree is not None
    path, step = tp.tree.get("path"), int(tp.tree.get("steplen"))
    p = aliases.next()
    joins.append(
        sql.SQL(
            "LEFT JOIN {rel} AS {p} ON pg_catalog.length(t.{path}) > {step} "
            "AND {p}.{path} {eq} pg_catalog.substr(t.{path}, 1, pg_catalog.length(t.{path}) - {step})"
        ).format(
            rel=own_rel(tp), p=ident(p), path=ident(path), step=sql.Literal(step), eq=equals(tp.eq(path))
        )
    )
    exprs = _key_exprs(plan, tp, p, aliases, joins)
    return sql.SQL("CASE WHEN {}.{} IS NULL THEN NULL ELSE pg_catalog.jsonb_build_array({}) END").format(
        ident(p), ident(path), sql.SQL(", ").join(exprs)
    )


@dataclass(frozen=True)
class GenericKey:
    key: sql.Composable  # the jsonb the archive carries for the id
    label: sql.Composable  # the type row's natural key joined by '.'
    dangling: sql.Composable  # an id set whose type or row cannot be found


def generic_key(
    plan: Plan, tp: TablePlan, alias: str, gp: GenericPlan, aliases: _Aliases, joins: list[sql.Composable]
) -> GenericKey:
    """The natural key of the row a generic reference names: one LEFT JOIN per table
    the data names, matched on the type row naming it and the id as text (so ids of
    other types are never cast), as a jsonb array of that row's key fields."""
    type_exp = next(e for e in tp.expansions if gp.type_column in e.columns)
    ty = aliases.next()
    joins.append(
        sql.SQL("LEFT JOIN {} AS {} ON {}.{} {} {}.{}").format(
            table_rel(plan, gp.type_table),
            ident(ty),
            ident(ty),
            ident(type_exp.fk.ref_columns[0]),
            equals(plan.tables[gp.type_table].eq(type_exp.fk.ref_columns[0])),
            ident(alias),
            ident(gp.type_column),
        )
    )
    key = type_key_columns(gp, ty)
    id_expr = sql.SQL("{}.{}").format(ident(alias), ident(gp.id_column))
    found: list[sql.Composable] = []
    for target in gp.targets:
        ref = plan.tables[target.table]
        g = aliases.next()
        joins.append(
            sql.SQL("LEFT JOIN ({}) AS {} ON {} AND {}.{} {} {}::text").format(
                target_keys(plan, ref, target.id_column, sql.SQL("({})").format(key_relation(plan, ref))),
                ident(g),
                names_table(gp, key, target.table),
                ident(g),
                ident(ID),
                equals(),
                id_expr,
            )
        )
        found.append(sql.SQL("{}.{}").format(ident(g), ident(KEY)))
    named: sql.Composable = (
        sql.SQL("COALESCE({})").format(sql.SQL(", ").join(found)) if found else sql.SQL("NULL::jsonb")
    )
    label = type_label(gp, key)
    if gp.ignore_types:
        named = sql.SQL("CASE WHEN {} {} ANY({}::text[]) THEN {} ELSE {} END").format(
            label, equals(), sql.Literal(list(gp.ignore_types)), raw_id(gp, id_expr), named
        )
    value = sql.SQL("CASE WHEN {} IS NULL THEN NULL ELSE {} END").format(id_expr, named)
    dangling = sql.SQL("({} IS NOT NULL AND {} IS NULL)").format(id_expr, named)
    return GenericKey(value, label, dangling)


ID = "#id"
KEY = "#key"


def target_keys(plan: Plan, ref: TablePlan, id_column: str, relation: sql.Composable) -> sql.Composed:
    """A target table's rows as (id as text, natural key as jsonb), from ``relation``
    (the table's key relation, or its staging table on import)."""
    return sql.SQL("SELECT x.{}::text AS {}, pg_catalog.jsonb_build_array({}) AS {} FROM {} AS x").format(
        ident(id_column),
        ident(ID),
        sql.SQL(", ").join(sql.SQL("x.{}").format(ident(kf.name)) for kf in ref.key_fields),
        ident(KEY),
        relation,
    )


def generic_dangling(plan: Plan, tp: TablePlan, gp: GenericPlan, samples: int = 5) -> sql.Composed:
    """Rows whose generic id names no row the archive can carry: a type row that is
    missing, a type no table of the mapping answers to, or a deleted object."""
    aliases = _Aliases("d")
    joins: list[sql.Composable] = []
    found = generic_key(plan, tp, "t", gp, aliases, joins)
    return sql.SQL(
        "{}SELECT pg_catalog.count(*) OVER (), {}, t.{}::text FROM {} AS t{} WHERE {} LIMIT {}"
    ).format(
        aliases.with_clause(),
        found.label,
        ident(gp.id_column),
        own_rel(tp),
        sql.SQL("").join(sql.SQL(" {}").format(j) for j in joins),
        found.dangling,
        sql.Literal(samples),
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
    return sql.SQL(
        "{}SELECT pg_catalog.count(*) OVER (), {} FROM {} AS t{} WHERE {} AND {} IS NULL LIMIT 5"
    ).format(
        aliases.with_clause(),
        sql.SQL(", ").join(sql.SQL("t.{}").format(ident(c)) for c in (*exp.fk.columns, *tp.tree_steps)),
        own_rel(tp),
        sql.SQL("").join(sql.SQL(" {}").format(j) for j in joins),
        has_parent,
        path,
    )


def copy_out(
    plan: Plan, tp: TablePlan, ordered: bool = False, keep: sql.Composable | None = None
) -> sql.Composed:
    return sql.SQL("COPY ({}) TO STDOUT").format(export_query(plan, tp, ordered, keep))


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
        aliases.with_clause(), sql.SQL(", ").join(cols), own_rel(tp), sql.SQL(" ").join(joins)
    )


def embedded_dangling(plan: Plan, tp: TablePlan, ep: EmbeddedPlan, samples: int = 5) -> sql.Composed:
    """Rows whose column holds an id (inside JSON or text) naming no row of the
    referenced table: (count, the row's natural key..., the id)."""
    aliases = _Aliases("d")
    joins: list[sql.Composable] = []
    keys = _key_exprs(plan, tp, "t", aliases, joins)
    rel = key_relation(plan, plan.tables[ep.ref_table])
    return embedded.export_dangling(plan, ep, own_rel(tp), aliases.with_clause(), keys, joins, rel, samples)


def all_null_key(plan: Plan, exp: Expansion) -> bool:
    """The referenced table's natural key can be NULL in every field: in an archive of
    format 1 a reference to that row and no reference at all look the same (format 2
    carries the reference's presence, ``Expansion.present``)."""
    ref = plan.tables.get(exp.ref_table)
    # an array reference writes such a row's key as [null], a NULL element as null
    return ref is not None and not exp.tree and not exp.array and all(kf.nullable for kf in ref.key_fields)


def null_key_ambiguous(plan: Plan, tp: TablePlan, exp: Expansion) -> bool:
    """A nullable reference inside ``tp``'s natural key to a table whose key can be all
    NULL: the reference travels with its presence, but the key that others match rows
    by holds only the key fields, so "no reference" and "the row without a key" would
    name the same ``tp`` row. Still refused at export when the data has such rows."""
    return all_null_key(plan, exp) and exp.nullable and ("reference", exp.label) in tp.key_parts


def null_key_references(plan: Plan, tp: TablePlan, exp: Expansion, samples: int = 5) -> sql.Composed:
    """Rows that reference a row whose natural key is NULL in every field."""
    aliases = _Aliases("n")
    joins: list[sql.Composable] = []
    exprs = _expand(plan, "t", exp, aliases, joins)
    present = sql.SQL(" AND ").join(sql.SQL("t.{} IS NOT NULL").format(ident(c)) for c in exp.fk.columns)
    empty = sql.SQL(" AND ").join(sql.SQL("({}) IS NULL").format(e) for e in exprs)
    shown = [*tp.natural_key, *exp.fk.columns]
    return sql.SQL("{}SELECT pg_catalog.count(*) OVER (), {} FROM {} AS t{} WHERE {} AND {} LIMIT {}").format(
        aliases.with_clause(),
        sql.SQL(", ").join(sql.SQL("t.{}").format(ident(c)) for c in dict.fromkeys(shown)),
        own_rel(tp),
        sql.SQL("").join(sql.SQL(" {}").format(j) for j in joins),
        present,
        empty,
        sql.Literal(samples),
    )


def missing_references(tp: TablePlan, exp: Expansion, samples: int = 5) -> sql.Composed:
    """Rows whose reference (all columns set) names no row of the referenced table:
    possible only where the database does not check it (a declared reference, a NOT
    VALID foreign key); the export would write such a reference as NULL. For an array
    of ids: rows with an element (not NULL) that names no row."""
    if exp.array:
        return sql.SQL(
            "SELECT count(*) OVER (), t.{c} FROM {t} AS t WHERE EXISTS (SELECT 1 FROM unnest(t.{c}) AS e(v) "
            "WHERE e.v IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {r} AS r WHERE r.{rc} = e.v)) LIMIT {n}"
        ).format(
            c=ident(exp.fk.columns[0]),
            t=own_rel(tp),
            r=table_ident(exp.ref_table),
            rc=ident(exp.fk.ref_columns[0]),
            n=sql.Literal(samples),
        )
    present = sql.SQL(" AND ").join(sql.SQL("t.{} IS NOT NULL").format(ident(c)) for c in exp.fk.columns)
    match = sql.SQL(" AND ").join(
        sql.SQL("r.{} = t.{}").format(ident(rc), ident(c))
        for c, rc in zip(exp.fk.columns, exp.fk.ref_columns)
    )
    return sql.SQL(
        "SELECT pg_catalog.count(*) OVER (), {cols} FROM {t} AS t WHERE {present} "
        "AND NOT EXISTS (SELECT 1 FROM {r} AS r WHERE {match}) LIMIT {n}"
    ).format(
        cols=sql.SQL(", ").join(sql.SQL("t.{}").format(ident(c)) for c in exp.fk.columns),
        t=own_rel(tp),
        present=present,
        r=table_ident(exp.ref_table),
        match=match,
        n=sql.Literal(samples),
    )


def uncarried(exp: Expansion) -> tuple[str, ...]:
    """The columns a reference writes that cannot travel as values (ids of the
    referenced row, re-allocated on import): a partly NULL row that sets one of them
    names no row whose key could carry it."""
    return tuple(c for c in exp.written if c not in exp.carried)


def partly_null_references(tp: TablePlan, exp: Expansion, samples: int = 5) -> sql.Composed:
    """Rows whose multi-column reference has some columns NULL and an id column set:
    PostgreSQL does not check it (MATCH SIMPLE), the export's join finds no row, and the
    id could only travel raw. (The columns archive format 2 carries as values travel.)"""

    def cols(names: tuple[str, ...]) -> sql.Composable:
        return sql.SQL(", ").join(sql.SQL("t.{}").format(ident(c)) for c in names)

    shown = tuple(dict.fromkeys([*tp.natural_key, *exp.fk.columns]))
    # some id column this reference writes is set, and some column of the FK is NULL
    # (columns it shares with another reference or the key, or carries as values, do
    # not make it an id)
    ids = uncarried(exp)
    return sql.SQL(
        "SELECT pg_catalog.count(*) OVER (), {shown} FROM {t} AS t "
        "WHERE pg_catalog.num_nulls({written}) < {n_written} AND pg_catalog.num_nulls({cols}) > 0 LIMIT {n}"
    ).format(
        shown=cols(shown),
        t=own_rel(tp),
        written=cols(ids),
        n_written=sql.Literal(len(ids)),
        cols=cols(exp.fk.columns),
        n=sql.Literal(samples),
    )


def natural_view(plan: Plan, tp: TablePlan, ids: list[str], prefix: str) -> sql.Composed:
    """The target's rows of ``tp`` as an export of the target would write them now: each
    field under its archive name (references as the referenced rows' natural keys,
    joined through the target's own tables), plus the columns ``ids`` under ``prefix``
    and, per reference, whether its columns are all NULL (``prefix + "null:" + label``).
    Only plain columns and plain references (no generic, array or tree reference of
    the table's own)."""
    aliases = _Aliases("u")
    joins: list[sql.Composable] = []
    cols: list[sql.Composable] = []
    seen: set[str] = set()
    for f in tp.fields:
        if f.role == "column":
            assert f.column is not None
            cols.append(sql.SQL("t.{} AS {}").format(ident(f.column), ident(f.name)))
            continue
        if f.role != "reference" or f.reference is None:
            raise ValueError(f"{tp.table}.{f.name}: a generic reference has no natural view")
        if f.reference in seen:
            continue
        seen.add(f.reference)
        exp = tp.expansion(f.reference)
        exprs = _expand(plan, "t", exp, aliases, joins)
        cols += [sql.SQL("{} AS {}").format(e, ident(kf.name)) for e, kf in zip(exprs, exp.fields)]
        nulls = sql.SQL(" AND ").join(sql.SQL("t.{} IS NULL").format(ident(c)) for c in exp.fk.columns)
        cols.append(sql.SQL("({}) AS {}").format(nulls, ident(f"{prefix}null:{exp.label}")))
    cols += [sql.SQL("t.{} AS {}").format(ident(c), ident(prefix + c)) for c in ids]
    return sql.SQL("{}SELECT {} FROM {} AS t{}").format(
        aliases.with_clause(),
        sql.SQL(", ").join(cols),
        own_rel(tp),
        sql.SQL("").join(sql.SQL(" {}").format(j) for j in joins),
    )
