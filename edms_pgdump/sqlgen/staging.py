"""Staging: archive rows copied in, matched to the target by natural key, references resolved."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from psycopg import sql

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import Column
from edms_pgdump.plan.build import Expansion, GenericPlan, KeyField, Plan, TablePlan
from edms_pgdump.plan.model import carried_field, present_field
from edms_pgdump.sqlgen.common import equals, ident, qualified_literal
from edms_pgdump.sqlgen.export import ID, KEY, all_null_key, key_relation, target_keys, tree_step
from edms_pgdump.sqlgen.generic import RAW, is_raw, names_table, type_key_fields


@dataclass(frozen=True)
class StagingNames:
    raw: sql.Identifier
    keyed: sql.Identifier
    final: sql.Identifier
    label: str
    # None: the raw table is temporary (dropped at commit); otherwise an UNLOGGED table
    # of this private schema, which other connections can load (import -j N) and the
    # server can read with a parallel plan (any import whose role may create it). The
    # tables the transaction derives from it stay temporary either way (they live in
    # the session's temp_buffers instead of competing with the target's pages in
    # shared buffers), except ``same``.
    schema: str | None = None
    # The archive rows found unchanged in the target before anything was resolved
    # (``sqlgen.unchanged``): their natural key and the target's ids, one per row. When
    # set, only the other raw rows are keyed, resolved and written, and references to
    # this table resolve against the keyed or final rows plus these. Beside the raw rows
    # (``beside_raw``): the anti-join that lists the rows left reads both in parallel.
    same: sql.Identifier | None = None
    # With ``same``: the raw rows not set aside, which are keyed and resolved
    # (``unresolved_rows``). A temporary table, analyzed, when they are few (the planner
    # then finds their keys by the target's indexes instead of hashing every target
    # row), else a temporary view of the same query (``program.unchanged``).
    todo: sql.Identifier | None = None

    def scratch(self, suffix: str) -> sql.Identifier:
        """Another staging table of this table's, temporary like keyed and final."""
        return ident(f"{self.label}_{suffix}")

    def beside_raw(self, suffix: str) -> sql.Identifier:
        """Another staging table of this table's, where the raw one is: UNLOGGED in the
        private schema (readable by a parallel plan) or temporary (``create_as``)."""
        return _staging_ident(self.schema, f"{self.label}_{suffix}")


def _staging_ident(schema: str | None, name: str) -> sql.Identifier:
    return sql.Identifier(schema, name) if schema is not None else ident(name)


def staging_names(index: int, table: QualifiedName, schema: str | None = None) -> StagingNames:
    slug = re.sub(r"[^a-z0-9]+", "_", table.name.lower()).strip("_")[:32] or "t"
    label = f"edms_{index:03d}_{slug}"
    return StagingNames(
        _staging_ident(schema, label + "_raw"),
        ident(label + "_keyed"),
        ident(label + "_final"),
        label,
        schema,
    )


def field_types(
    tp: TablePlan, fields: list[str] | None = None, extra: dict[str, str] | None = None
) -> list[tuple[str, str]]:
    """Each staged field's type: the target's; ``extra`` types archive fields the target
    has no column for (``--ignore-column``), staged as they are and never written."""
    chosen = fields if fields is not None else list(tp.field_names)
    by_name = {**(extra or {}), **{f.name: f.type for f in tp.fields}}
    return [(n, by_name[n]) for n in chosen]


def create_raw(
    tp: TablePlan, names: StagingNames, fields: list[str], extra: dict[str, str] | None = None
) -> sql.Composed:
    """Raw staging columns typed like the target's, with the target column's collation:
    the archive's duplicate check and the key match then agree (a nondeterministic
    collation calls 'A' and 'a' one key in both)."""
    collations = {f.name: f.collation for f in tp.fields if f.collation}
    cols = sql.SQL(", ").join(
        sql.SQL("{} {}{}").format(
            ident(n),
            sql.SQL(t),
            sql.SQL(" COLLATE {}").format(sql.SQL(collations[n])) if n in collations else sql.SQL(""),
        )
        for n, t in field_types(tp, fields, extra)
    )
    if names.schema is None:
        return sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(names.raw, cols)
    # loaded by other connections, read once by the import: autovacuum would only compete
    return sql.SQL("CREATE UNLOGGED TABLE {} ({}) WITH (autovacuum_enabled = false)").format(names.raw, cols)


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
            kf.equality,
        )
        for kf in keys
    )


def equal_or_both_null(
    a: sql.Composable, b: sql.Composable, nullable: bool, equality: str = "pg_catalog"
) -> sql.Composable:
    """Key equality where two NULLs match. ``IS NOT DISTINCT FROM`` would say the same,
    but PostgreSQL can only run it as a nested loop (quadratic); one-element arrays
    compare NULLs as equal and hash, so the join stays a hash or merge join.

    The operator is named with its schema (``equality``: the type's own, citext's in
    its extension's schema), so the search_path cannot change what equal means; array
    equality uses the element type's default operator class, the type's own too."""
    if not nullable:
        return sql.SQL("{} {} {}").format(a, equals(equality), b)
    return sql.SQL("ARRAY[{}] {} ARRAY[{}]").format(a, equals(), b)


def duplicate_keys(tp: TablePlan, relation: sql.Composable, samples: int = 5) -> sql.Composed:
    keys = sql.SQL(", ").join(ident(kf.name) for kf in tp.key_fields)
    return sql.SQL(
        "SELECT {keys}, pg_catalog.count(*) FROM {rel} AS d GROUP BY {keys} HAVING pg_catalog.count(*) > 1 "
        "ORDER BY pg_catalog.count(*) DESC LIMIT {n}"
    ).format(keys=keys, rel=relation, n=sql.Literal(samples))


def target_duplicate_keys(plan: Plan, tp: TablePlan, samples: int = 5) -> sql.Composed:
    return duplicate_keys(tp, sql.SQL("({})").format(key_relation(plan, tp)), samples)


def default_expr(table: QualifiedName, col: Column) -> sql.Composable:
    """Allocate a new value the way the target would on INSERT."""
    if col.identity and col.sequence is not None:
        # the sequence as a constant: pg_get_serial_sequence() per row costs ~10 µs each
        return sql.SQL("pg_catalog.nextval({}::regclass)").format(qualified_literal(col.sequence))
    if col.identity:
        return sql.SQL("pg_catalog.nextval(pg_catalog.pg_get_serial_sequence({}, {}))").format(
            qualified_literal(table), sql.Literal(col.name)
        )
    assert col.default is not None
    # The default is the server's own expression text (pg_get_expr), read with the
    # search_path pinned empty, so it is fully qualified.
    return sql.SQL("({})").format(sql.SQL(col.default))


def computed_id(sequence: QualifiedName, start: int, increment: int) -> sql.Composable:
    """New ids for a dry run or a comparison: the values ``nextval`` would hand out next,
    computed from the sequence's last value without drawing them (no sequence moves)."""
    expr = "(coalesce(pg_catalog.pg_sequence_last_value({}), {}) + {} * pg_catalog.row_number() OVER ())"
    return sql.SQL(expr).format(
        qualified_literal(sequence), sql.Literal(start - increment), sql.Literal(increment)
    )


def sequence_position(sequence: QualifiedName, start: int, increment: int) -> sql.Composed:
    """The last value a sequence handed out (or the one before its start), read
    without drawing one."""
    return sql.SQL("SELECT coalesce(pg_catalog.pg_sequence_last_value({}), {})").format(
        qualified_literal(sequence), sql.Literal(start - increment)
    )


def create_as(
    name: sql.Composable, select: sql.Composable, empty: bool = False, unlogged: bool = False
) -> sql.Composed:
    """A staging table from a query; ``empty`` creates it with the query's column types
    only (filled later by ``insert_select``, e.g. after ``SET TRANSACTION READ ONLY``).
    Temporary (dropped at commit), or with ``unlogged`` an UNLOGGED table of the private
    schema (``StagingNames.beside_raw``), which goes with the schema."""
    data = sql.SQL(" WITH NO DATA") if empty else sql.SQL("")
    if unlogged:
        return sql.SQL("CREATE UNLOGGED TABLE {} WITH (autovacuum_enabled = false) AS {}{}").format(
            name, select, data
        )
    return sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS {}{}").format(name, select, data)


def insert_select(name: sql.Composable, select: sql.Composable) -> sql.Composed:
    return sql.SQL("INSERT INTO {} {}").format(name, select)


def kept_value(tp: TablePlan, column: str) -> str:
    """The staging column holding what ``column`` will hold in the target after the import
    when existing rows keep their values (on_conflict skip): the target's value for them,
    the archive's for new rows."""
    return f"{tp.hit_marker}:{column}"


def kept_columns(tp: TablePlan) -> list[str]:
    """Columns others reference that travel as values outside the natural key (a FK to a
    UNIQUE column that is not the primary key): under on_conflict skip a reference must
    take the target's value, which the skipped row keeps."""
    key_names = {kf.name for kf in tp.key_fields}
    fields = set(tp.field_names)
    return [c for c in tp.ref_columns if c in fields and c not in key_names]


def keyed_select(
    plan: Plan,
    tp: TablePlan,
    names: StagingNames,
    ids: dict[str, sql.Composable] | None = None,
    keep_existing: bool = False,
) -> sql.Composed:
    """Staging rows with the target's ids: existing rows matched by natural key, new
    rows given ids now, so every reference to them is known before any INSERT.
    ``keep_existing`` (on_conflict skip): also the values existing rows keep."""
    field_names = set(tp.field_names)
    surrogate = {c.name: c for c in tp.surrogate}
    extra: list[sql.Composable] = []
    later = tp.resolved_columns  # filled in the final rows, not here
    for c in tp.ref_columns:
        if c in field_names or c in later:
            continue
        if c in surrogate:
            new_id = (ids or {}).get(c) or default_expr(tp.table, surrogate[c])
            extra.append(sql.SQL("COALESCE(o.{c}, {d}) AS {c}").format(c=ident(c), d=new_id))
        else:
            extra.append(sql.SQL("o.{c} AS {c}").format(c=ident(c)))
    extra.append(sql.SQL("o.{} IS NULL AS {}").format(ident(tp.hit_marker), ident(tp.new_marker)))
    for c in kept_columns(tp) if keep_existing else ():
        extra.append(
            sql.SQL("CASE WHEN o.{hit} IS NULL THEN s.{c} ELSE o.{c} END AS {kept}").format(
                hit=ident(tp.hit_marker), c=ident(c), kept=ident(kept_value(tp, c))
            )
        )
    tree = tp.tree_expansion
    if tree is not None:
        extra.append(
            sql.SQL("COALESCE(s.{}, '[]'::jsonb) || {} AS {}").format(
                ident(tree.fields[0].name), tree_step(tp, "s"), ident(tp.path_marker)
            )
        )
    return sql.SQL("SELECT s.*, {extra} FROM {raw} AS s LEFT JOIN ({rel}) AS o ON {match}").format(
        extra=sql.SQL(", ").join(extra),
        raw=rows_to_resolve(tp, names),
        rel=key_relation(plan, tp),
        match=_match("o", "s", list(tp.key_fields)),
    )


def rows_to_resolve(tp: TablePlan, names: StagingNames) -> sql.Composable:
    """The raw rows the import keys and resolves: all of them, or those whose key is not
    among the rows found unchanged (``names.todo``, or ``unresolved_rows`` inline)."""
    if names.todo is not None:
        return names.todo
    if names.same is None:
        return names.raw
    return sql.SQL("({})").format(unresolved_rows(tp, names))


def unresolved_rows(tp: TablePlan, names: StagingNames) -> sql.Composed:
    """The raw rows whose key is not among the rows found unchanged (``names.same``: one
    per target row, so an archive key staged twice leaves both rows out, and the keyed
    count falls short of the rows to resolve, which names the repeated key)."""
    assert names.same is not None
    return sql.SQL(
        "SELECT s.* FROM {raw} AS s WHERE NOT EXISTS (SELECT 1 FROM {same} AS m WHERE {match})"
    ).format(raw=names.raw, same=names.same, match=_match("m", "s", list(tp.key_fields)))


def staged_rows(names: StagingNames) -> sql.Composed:
    """Every raw row (none was set aside as unchanged). A temporary view of it outlives
    the transaction where the raw table is UNLOGGED: it goes with the import's session,
    or with the private schema it reads when that is dropped."""
    return sql.SQL("SELECT s.* FROM {} AS s").format(names.raw)


def create_view(name: sql.Composable, select: sql.Composable) -> sql.Composed:
    """A temporary view: a name for a query that is not worth storing. It goes with the
    staging table it reads (dropped at commit, or with the staging schema)."""
    return sql.SQL("CREATE TEMP VIEW {} AS {}").format(name, select)


def staged_source(
    ref: TablePlan, names: StagingNames, relation: sql.Composable, columns: list[str]
) -> sql.Composable:
    """Where references to a staged table resolve: its keyed or final rows, plus the rows
    found unchanged (with the target's ids) when those were set aside."""
    if names.same is None:
        return relation
    cols = sql.SQL(", ").join(
        ident(c) for c in dict.fromkeys([*(kf.name for kf in ref.key_fields), *columns])
    )
    return sql.SQL("(SELECT {c} FROM {rel} UNION ALL SELECT {c} FROM {same})").format(
        c=cols, rel=relation, same=names.same
    )


def _resolve_source(
    plan: Plan,
    exp: Expansion,
    staged: dict[QualifiedName, StagingNames],
    finalized: set[QualifiedName],
) -> sql.Composable:
    ref = plan.tables[exp.ref_table]
    if exp.ref_table in staged and ref.export:
        names = staged[exp.ref_table]
        relation = names.final if exp.ref_table in finalized else names.keyed
        return staged_source(ref, names, relation, list(exp.fk.ref_columns))
    return sql.SQL("({})").format(key_relation(plan, ref))


def final_select(
    plan: Plan,
    tp: TablePlan,
    names: StagingNames,
    staged: dict[QualifiedName, StagingNames],
    loaded_fields: set[str],
    finalized: set[QualifiedName],
    keep_existing: frozenset[QualifiedName] = frozenset(),
) -> sql.Composed:
    """The keyed rows with every foreign key resolved to the target's ids.

    ``keep_existing``: tables whose existing rows keep their values (on_conflict skip);
    a reference to one of their unique columns takes the value the target keeps."""
    select: list[sql.Composable] = [sql.SQL("k.*")]
    joins: list[sql.Composable] = []
    for i, exp in enumerate(active_expansions(tp, loaded_fields)):
        a = f"f{i + 1}"
        ref = plan.tables[exp.ref_table]
        if exp.array:
            select.append(_resolve_array(plan, exp, staged, finalized))
            continue
        staged_ref = (exp.ref_table in staged and ref.export) or exp.tree
        kept = set(kept_columns(ref)) if staged_ref and exp.ref_table in keep_existing else set()
        present = loaded_presence(exp, loaded_fields)
        for c, rc in zip(exp.fk.columns, exp.fk.ref_columns):
            if c in exp.written:  # a shared column is written by its own reference or the key
                source = kept_value(ref, rc) if rc in kept else rc
                value: sql.Composable = sql.SQL("{}.{}").format(ident(a), ident(source))
                carried = carried_field(exp.label, c)
                if present is not None and carried in loaded_fields:
                    # a partly NULL reference (format 2): no row, its set columns as values
                    value = sql.SQL("CASE WHEN k.{} THEN {} ELSE k.{} END").format(
                        ident(present), value, ident(carried)
                    )
                select.append(sql.SQL("{} AS {}").format(value, ident(c)))
        if exp.tree:
            joins.append(
                sql.SQL("LEFT JOIN {} AS {} ON {}.{} {} k.{}").format(
                    names.keyed,
                    ident(a),
                    ident(a),
                    ident(ref.path_marker),
                    equals(),
                    ident(exp.fields[0].name),
                )
            )
            continue
        match = _match(a, "k", list(ref.key_fields), right_prefix=exp.label + ".")
        if present is not None:
            # format 2: the reference says whether it is present; a key that is NULL in
            # every field then names the row whose key is all NULL
            match = sql.SQL("k.{} AND {}").format(ident(present), match)
        elif all_null_key(plan, exp):
            # format 1: an all-NULL carried key means "no reference" (that export refused a
            # reference to the one row whose key is all NULL), never a match with that row
            match = sql.SQL("{} AND ({})").format(
                match,
                sql.SQL(" OR ").join(sql.SQL("k.{} IS NOT NULL").format(ident(f.name)) for f in exp.fields),
            )
        joins.append(
            sql.SQL("LEFT JOIN {} AS {} ON {}").format(
                _resolve_source(plan, exp, staged, finalized), ident(a), match
            )
        )
    for i, gp in enumerate(active_generic(tp, loaded_fields)):
        select.append(_resolve_generic(plan, gp, staged, finalized, f"g{i + 1}_", joins))
    return sql.SQL("SELECT {} FROM {} AS k {}").format(
        sql.SQL(", ").join(select), names.keyed, sql.SQL(" ").join(joins)
    )


def _resolve_array(
    plan: Plan,
    exp: Expansion,
    staged: dict[QualifiedName, StagingNames],
    finalized: set[QualifiedName],
) -> sql.Composable:
    """An array reference resolved element by element, in order: each carried key
    matched to the target's row (NULL-safe per key field), a JSON null element kept as
    NULL; an unresolved element is NULL too, which ``unresolved_condition`` counts."""
    ref = plan.tables[exp.ref_table]
    field = sql.SQL("k.{}").format(ident(exp.fields[0].name))
    match = sql.SQL(" AND ").join(
        equal_or_both_null(
            sql.SQL("r.{}").format(ident(kf.name)),
            sql.SQL("(e.v -> {})").format(sql.Literal(i))
            if kf.type == "jsonb"
            else sql.SQL("(e.v ->> {})::{}").format(sql.Literal(i), sql.SQL(kf.type)),
            kf.nullable,
        )
        for i, kf in enumerate(ref.key_fields)
    )
    return sql.SQL(
        "(CASE WHEN {f} IS NULL THEN NULL ELSE (SELECT COALESCE(array_agg(r.{rc} ORDER BY e.o), '{{}}') "
        "FROM jsonb_array_elements({f}) WITH ORDINALITY AS e(v, o) LEFT JOIN {src} AS r "
        "ON e.v <> 'null'::jsonb AND {match}) END)::{type} AS {col}"
    ).format(
        f=field,
        rc=ident(exp.fk.ref_columns[0]),
        src=_resolve_source(plan, exp, staged, finalized),
        match=match,
        type=sql.SQL(exp.array_type),
        col=ident(exp.fk.columns[0]),
    )


def active_generic(tp: TablePlan, loaded_fields: set[str]) -> list[GenericPlan]:
    return [g for g in tp.generic if g.field in loaded_fields]


def _resolve_generic(
    plan: Plan,
    gp: GenericPlan,
    staged: dict[QualifiedName, StagingNames],
    finalized: set[QualifiedName],
    prefix: str,
    joins: list[sql.Composable],
) -> sql.Composable:
    """The target's id for a generic reference: per table the data names, the rows of
    that table (staged, or already in the target) whose natural key equals the carried
    one; the type row must name that table. An ignored type's id is taken as it is."""
    key = type_key_fields(gp, "k")
    carried = sql.SQL("k.{}").format(ident(gp.field))
    found: list[sql.Composable] = []
    for j, target in enumerate(gp.targets):
        ref = plan.tables[target.table]
        if target.table in staged and ref.export:
            names = staged[target.table]
            source: sql.Composable = staged_source(
                ref, names, names.final if target.table in finalized else names.keyed, [target.id_column]
            )
        else:
            source = sql.SQL("({})").format(key_relation(plan, ref))
        a = f"{prefix}{j + 1}"
        joins.append(
            sql.SQL("LEFT JOIN ({}) AS {} ON {} AND {}.{} {} {}").format(
                target_keys(plan, ref, target.id_column, source),
                ident(a),
                names_table(gp, key, target.table),
                ident(a),
                ident(KEY),
                equals(),
                carried,
            )
        )
        found.append(sql.SQL("{}.{}").format(ident(a), ident(ID)))
    named: sql.Composable = (
        sql.SQL("COALESCE({})").format(sql.SQL(", ").join(found)) if found else sql.SQL("NULL::text")
    )
    return sql.SQL("(CASE WHEN {raw} THEN {carried} ->> {r} ELSE {named} END)::{type} AS {col}").format(
        raw=is_raw(carried),
        carried=carried,
        r=sql.Literal(RAW),
        named=named,
        type=sql.SQL(gp.id_type),
        col=ident(gp.id_column),
    )


def generic_unresolved_condition(gp: GenericPlan) -> sql.Composed:
    return sql.SQL("{} IS NULL AND {} IS NOT NULL").format(ident(gp.id_column), ident(gp.field))


def generic_unresolved(tp: TablePlan, names: StagingNames, gp: GenericPlan, samples: int = 5) -> sql.Composed:
    fields = [gp.type_field(c) for c in gp.type_key] + [gp.field]
    return sql.SQL("SELECT pg_catalog.count(*) OVER (), {} FROM {} WHERE {} LIMIT {}").format(
        sql.SQL(", ").join(ident(f) for f in fields),
        names.final,
        generic_unresolved_condition(gp),
        sql.Literal(samples),
    )


def loaded_presence(exp: Expansion, loaded_fields: set[str]) -> str | None:
    """The field saying whether ``exp`` is present, when the archive carries it (format 2;
    decided by the archive, so a target whose plan needs no such field still reads it)."""
    name = present_field(exp.label)
    return name if name in loaded_fields and not exp.array and not exp.tree else None


def presence_mismatch_condition(exp: Expansion, present: str) -> sql.Composed:
    """A presence field that contradicts the key fields: NULL, or false while a key field
    is set (an edited or foreign member); the import refuses it instead of guessing."""
    return sql.SQL("{p} IS NULL OR (NOT {p} AND ({keys}))").format(
        p=ident(present),
        keys=sql.SQL(" OR ").join(sql.SQL("{} IS NOT NULL").format(ident(f.name)) for f in exp.fields),
    )


def presence_mismatch(exp: Expansion, names: StagingNames, present: str, samples: int = 5) -> sql.Composed:
    return sql.SQL("SELECT pg_catalog.count(*) OVER (), {} FROM {} WHERE {} LIMIT {}").format(
        sql.SQL(", ").join(ident(f) for f in (*(f.name for f in exp.fields), present)),
        names.final,
        presence_mismatch_condition(exp, present),
        sql.Literal(samples),
    )


def active_expansions(tp: TablePlan, loaded_fields: set[str]) -> list[Expansion]:
    """Expansions whose fields are in the archive (a target-only FK stays NULL)."""
    return [e for e in tp.expansions if all(f.name in loaded_fields for f in e.fields)]


def unresolved_condition(exp: Expansion, present: str | None = None) -> sql.Composed:
    """A reference the archive carries (its presence field true; in format 1, some key
    field set) that resolved to no row."""
    if exp.array:  # an element carried (not JSON null) whose resolved id is NULL
        return sql.SQL(
            "EXISTS (SELECT 1 FROM jsonb_array_elements({f}) WITH ORDINALITY AS e(v, o) "
            "WHERE e.v <> 'null'::jsonb AND ({c})[e.o] IS NULL)"
        ).format(f=ident(exp.fields[0].name), c=ident(exp.fk.columns[0]))
    if present is not None:
        return sql.SQL("{} IS NULL AND {} IS TRUE").format(ident(exp.written[0]), ident(present))
    carried = sql.SQL(" OR ").join(sql.SQL("{} IS NOT NULL").format(ident(f.name)) for f in exp.fields)
    return sql.SQL("{} IS NULL AND ({})").format(ident(exp.written[0]), carried)


def unresolved(
    tp: TablePlan, names: StagingNames, exp: Expansion, samples: int = 5, present: str | None = None
) -> sql.Composed:
    return sql.SQL("SELECT pg_catalog.count(*) OVER (), {} FROM {} WHERE {} LIMIT {}").format(
        sql.SQL(", ").join(ident(f.name) for f in exp.fields),
        names.final,
        unresolved_condition(exp, present),
        sql.Literal(samples),
    )


def count_present(plan: Plan, tp: TablePlan, names: StagingNames) -> sql.Composed:
    """After loading: how many archive rows exist in the target by natural key."""
    return sql.SQL(
        "SELECT pg_catalog.count(*) FROM {final} AS f WHERE EXISTS (SELECT 1 FROM ({rel}) AS o WHERE {m})"
    ).format(final=names.final, rel=key_relation(plan, tp), m=_match("o", "f", list(tp.key_fields)))


def final_summary(
    tp: TablePlan,
    names: StagingNames,
    expansions: list[Expansion],
    generic: list[GenericPlan] | None = None,
    loaded_fields: set[str] | None = None,
) -> sql.Composed:
    """One scan of the final staging table: rows already in the target, per reference
    the number left unresolved, then per reference with a presence field (format 2) the
    number whose presence contradicts its key (samples are fetched only on error)."""
    loaded = loaded_fields or set()
    cols: list[sql.Composable] = [
        sql.SQL("pg_catalog.count(*) FILTER (WHERE NOT {})").format(ident(tp.new_marker))
    ]
    cols += [
        sql.SQL("pg_catalog.count(*) FILTER (WHERE {})").format(
            unresolved_condition(e, loaded_presence(e, loaded))
        )
        for e in expansions
    ]
    cols += [
        sql.SQL("pg_catalog.count(*) FILTER (WHERE {})").format(generic_unresolved_condition(g))
        for g in generic or []
    ]
    for e in expansions:
        present = loaded_presence(e, loaded)
        if present is not None:
            cols.append(
                sql.SQL("pg_catalog.count(*) FILTER (WHERE {})").format(
                    presence_mismatch_condition(e, present)
                )
            )
    return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(cols), names.final)


def merged_final_select(
    plan: Plan,
    tp: TablePlan,
    names: StagingNames,
    staged: dict[QualifiedName, StagingNames],
    loaded_fields: set[str],
    finalized: set[QualifiedName],
    ids: dict[str, sql.Composable] | None = None,
    keep_existing: frozenset[QualifiedName] = frozenset(),
) -> sql.Composed:
    """``keyed_select`` and ``final_select`` as one statement (one pass over the
    staging rows instead of two), for a table nothing else in its component refers to.

    The keyed rows become a subquery of the final statement, so both paths run the
    same joins.
    """
    subquery = sql.SQL("({})").format(keyed_select(plan, tp, names, ids, tp.table in keep_existing))
    inlined = replace(names, keyed=subquery)  # type: ignore[arg-type]
    return final_select(plan, tp, inlined, staged, loaded_fields, finalized, keep_existing)


def repeated_identity(tp: TablePlan, names: StagingNames) -> sql.Composed:
    """A target row matched by two archive rows (so the archive repeats its key). Rows
    found unchanged need no such check: one per target row, and none of their keys is
    resolved (``rows_to_resolve``)."""
    cols = sql.SQL(", ").join(ident(c) for c in tp.row_identity)
    return sql.SQL("SELECT 1 FROM {} WHERE NOT {} GROUP BY {} HAVING pg_catalog.count(*) > 1 LIMIT 1").format(
        names.final, ident(tp.new_marker), cols
    )


def copy_in_frozen(names: StagingNames, fields: list[str]) -> sql.Composed:
    """``copy_in`` with FREEZE: the staging table was created in this transaction, so
    its rows can be written frozen and all-visible, and later scans of it do not go
    back to set hint bits on every page."""
    return sql.SQL("COPY {} ({}) FROM STDIN (FREEZE)").format(
        names.raw, sql.SQL(", ").join(ident(f) for f in fields)
    )
