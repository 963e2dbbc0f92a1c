"""Ids inside JSON or text (``embedded_references:``), rewritten in place, set-based.

Why this shape: PostgreSQL's jsonpath finds values but cannot replace them, and
``regexp_replace`` cannot look a capture up. So the path (``embedded_syntax.py``) is walked by
generated SQL that rebuilds the value: a member with ``jsonb_set``, each array element
with ``jsonb_agg(… ORDER BY ordinality)``, a filter with ``CASE``, a JSON string parsed,
rewritten and written back as a string (left as it was when nothing in it changed). A
text pattern is split into ``(before)(id)(after)``; the value is rebuilt from
``regexp_split_to_array`` (the text between matches) and ``regexp_matches(…, 'g')``
(the matches), in order.

Each id is looked up in one jsonb object per referenced table, built once per
statement with ``jsonb_object_agg`` (id -> natural key at export, natural key -> the
target's id at import): a lookup is a binary search inside it, so the rewrite costs one
pass over the rows whatever the size of the referenced table, with no index needed.

In the archive an id inside JSON becomes the referenced row's natural key as a JSON
array (``{"type": "image", "value": ["sunset.jpg"]}``); an id inside text becomes
``nk:`` and that array's JSON text with ``% " ' < > &`` and white space percent-encoded
(``<a linktype="page" id="nk:[%22/home/about/%22]">``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from psycopg import sql

from edms_pgdump.plan.model import EmbeddedPlan, Plan, TablePlan
from edms_pgdump.sqlgen.common import equals, ident
from edms_pgdump.sqlgen.embedded_syntax import Condition, Step, TextPattern

TOKEN = "nk:"
MARK = "\x01"  # never in a key token; a text holding it is rewritten the slower way
TOKEN_PATTERN = "nk:[^[:space:]\"'<>&]*"
# percent-encoded inside a token ('%' first when encoding, last when decoding)
_ENCODED = (("%", "%25"), ('"', "%22"), ("'", "%27"), ("<", "%3C"), (">", "%3E"), ("&", "%26"),
            (" ", "%20"), ("\t", "%09"), ("\n", "%0A"), ("\r", "%0D"))  # fmt: skip

Leaf = Callable[[sql.Composable], sql.Composable]


class _Names:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.n = 0

    def next(self) -> sql.Identifier:
        self.n += 1
        return ident(f"{self.prefix}{self.n}")


def _lit(text: str) -> sql.Composable:
    return sql.Literal(text)


def _typeof(e: sql.Composable, kind: str) -> sql.Composable:
    return sql.SQL("pg_catalog.jsonb_typeof({}) {} {}").format(e, equals(), _lit(kind))


def _condition(e: sql.Composable, c: Condition) -> sql.Composable:
    value = e
    if c.path:
        value = sql.SQL("pg_catalog.jsonb_extract_path({}, VARIADIC {}::text[])").format(
            e, sql.Literal(list(c.path))
        )
    return sql.SQL("{} {} {}::jsonb").format(value, equals(), _lit(c.value))


def _parsed(e: sql.Composable) -> sql.Composable:
    """A JSON string's content as jsonb (an empty string stays NULL: nothing inside)."""
    return sql.SQL("NULLIF({} #>> '{{}}', '')::jsonb").format(e)


def _bind(
    value: sql.Composable, body: Callable[[sql.Composable], sql.Composable], names: _Names
) -> sql.Composable:
    """``body`` over ``value`` evaluated once (OFFSET 0 keeps the planner from pasting the
    expression into every place ``body`` names it)."""
    a = names.next()
    return sql.SQL("(SELECT {} FROM (SELECT {} AS v OFFSET 0) AS {})").format(
        body(sql.SQL("{}.v").format(a)), value, a
    )


Walk = list[tuple[tuple[Step, ...], Leaf]]


def rewrite(e: sql.Composable, walks: Walk, names: _Names) -> sql.Composable:
    """``e`` (a jsonb column reference) with each walk's leaf applied at every place its
    steps select; the rest of the value as it was. Walks that start with the same step
    share it (one pass over an array for all the block types of a StreamField), and
    what they do there is applied one after the other, in the mapping's order."""
    groups: dict[Step | None, Walk] = {}
    for steps, leaf in walks:
        groups.setdefault(steps[0] if steps else None, []).append((steps[1:], leaf))
    if len(groups) > 1 and _exclusive(list(groups)):
        # block types: at most one filter holds for an item, so one CASE picks its walk
        return sql.SQL("CASE {} ELSE {} END").format(
            sql.SQL(" ").join(
                sql.SQL("WHEN COALESCE({}, false) THEN {}").format(
                    _condition(e, step.conditions[0]), rewrite(e, rest, names)
                )
                for step, rest in groups.items()
                if step is not None
            ),
            e,
        )
    value: sql.Composable | None = None
    for step, rest in groups.items():
        if value is None:
            value = _one_step(e, step, rest, names)
        else:
            value = _bind(value, lambda v, step=step, rest=rest: _one_step(v, step, rest, names), names)  # type: ignore[misc]
    assert value is not None
    return value


def _exclusive(steps: list[Step | None]) -> bool:
    """Filters that compare one member with different strings (``@.type == "image"``,
    ``@.type == "hero"``): no item passes two of them (numbers could: 1 and 1.0)."""
    conds = [
        s.conditions[0] for s in steps if s is not None and s.kind == "filter" and len(s.conditions) == 1
    ]
    return (
        len(conds) == len(steps)
        and len({c.path for c in conds}) == 1
        and all(c.value.startswith('"') for c in conds)
        and len({c.value for c in conds}) == len(conds)
    )


def _one_step(e: sql.Composable, step: Step | None, rest: Walk, names: _Names) -> sql.Composable:
    if step is None:  # the leaves, one after the other
        value = rest[0][1](e)
        for _, leaf in rest[1:]:
            value = _bind(value, leaf, names)
        return value
    if step.kind == "member":
        key = _lit(step.key)
        inner = _bind(sql.SQL("{} -> {}").format(e, key), lambda v: rewrite(v, rest, names), names)
        return sql.SQL(
            "CASE WHEN {obj} AND pg_catalog.jsonb_exists({e}, {k}) "
            "THEN pg_catalog.jsonb_set({e}, ARRAY[{k}]::text[], {inner}) ELSE {e} END"
        ).format(obj=_typeof(e, "object"), e=e, k=key, inner=inner)
    if step.kind == "each":
        a = names.next()
        v = sql.SQL("{}.v").format(a)
        return sql.SQL(
            "CASE WHEN {arr} THEN "
            "(SELECT COALESCE(pg_catalog.jsonb_agg({inner} ORDER BY {a}.o), '[]'::jsonb) "
            "FROM pg_catalog.jsonb_array_elements({e}) WITH ORDINALITY AS {a}(v, o)) ELSE {e} END"
        ).format(arr=_typeof(e, "array"), inner=rewrite(v, rest, names), a=a, e=e)
    if step.kind == "filter":
        conds = sql.SQL(" AND ").join(_condition(e, c) for c in step.conditions)
        return sql.SQL("CASE WHEN COALESCE({}, false) THEN {} ELSE {} END").format(
            conds, rewrite(e, rest, names), e
        )

    # parse: rewritten inside, written back as a string only when something changed
    def back(v: sql.Composable) -> sql.Composable:
        return _bind(
            rewrite(v, rest, names),
            lambda w: sql.SQL(
                "CASE WHEN {w} IS NOT DISTINCT FROM {v} THEN {e} ELSE pg_catalog.to_jsonb({w}::text) END"
            ).format(w=w, v=v, e=e),
            names,
        )

    return sql.SQL("CASE WHEN {} THEN COALESCE({}, {}) ELSE {} END").format(
        _typeof(e, "string"), _bind(_parsed(e), back, names), e, e
    )


def _char(char: str) -> sql.Composable:
    """A character as SQL: control characters as ``chr(n)``, so every statement stays on one
    line (psql's ``\\copy`` takes one)."""
    return _lit(char) if char.isprintable() else sql.SQL("pg_catalog.chr({})").format(sql.Literal(ord(char)))


def _encode(text: sql.Composable) -> sql.Composable:
    out = text
    for char, code in _ENCODED:
        out = sql.SQL("pg_catalog.replace({}, {}, {})").format(out, _char(char), _lit(code))
    return out


def _decode(text: sql.Composable) -> sql.Composable:
    out = text
    for char, code in reversed(_ENCODED):
        out = sql.SQL("pg_catalog.replace({}, {}, {})").format(out, _lit(code), _char(char))
    return out


def split_regex(p: TextPattern, importing: bool) -> str:
    """The pattern as ``(before)(id)(after)``; on import the id is a ``nk:`` token."""
    return f"({p.before})({TOKEN_PATTERN if importing else p.capture})({p.after})"


def _text_rewrite(
    text: sql.Composable, p: TextPattern, importing: bool, lookup: Leaf, names: _Names
) -> sql.Composable:
    """``text`` with each match's capture replaced by ``lookup(capture)`` (NULL: kept)."""
    regex = _lit(split_regex(p, importing))

    def body(s: sql.Composable) -> sql.Composable:
        a, m = names.next(), names.next()
        # One regexp pass marks each capture with \x01 on both sides; the pieces between the
        # marks then alternate text, id, text, id, …, text. A text that holds \x01 itself
        # takes the slower way: the texts between matches and the matches, side by side.
        marked = sql.SQL(
            "(SELECT pg_catalog.string_agg(CASE WHEN {a}.o % 2 = 0 THEN COALESCE({found}, {a}.piece) "
            "ELSE {a}.piece END, '' ORDER BY {a}.o) FROM pg_catalog.unnest(pg_catalog.string_to_array("
            "pg_catalog.regexp_replace({s}, {r}, {marks}, 'g'), {mark})) WITH ORDINALITY AS {a}(piece, o))"
        ).format(
            s=s,
            r=regex,
            a=a,
            marks=sql.SQL(" || ").join([_lit("\\1"), _char(MARK), _lit("\\2"), _char(MARK), _lit("\\3")]),
            mark=_char(MARK),
            found=lookup(sql.SQL("{}.piece").format(a)),
        )
        side_by_side = sql.SQL(
            "(SELECT pg_catalog.string_agg({a}.piece || COALESCE({m}.g[1] || "
            "COALESCE({found}, {m}.g[2]) || {m}.g[3], ''), '' ORDER BY {a}.o) "
            "FROM pg_catalog.unnest(pg_catalog.regexp_split_to_array({s}, {r})) "
            "WITH ORDINALITY AS {a}(piece, o) "
            "LEFT JOIN pg_catalog.regexp_matches({s}, {r}, 'g') "
            "WITH ORDINALITY AS {m}(g, o) ON {m}.o = {a}.o)"
        ).format(s=s, r=regex, a=a, m=m, found=lookup(sql.SQL("{}.g[2]").format(m)))
        return sql.SQL("CASE WHEN pg_catalog.strpos({s}, {mark}) = 0 THEN {marked} ELSE {side} END").format(
            s=s, mark=_char(MARK), marked=marked, side=side_by_side
        )

    return _bind(text, body, names)


def _leaf(ep: EmbeddedPlan, importing: bool, m: sql.Composable, names: _Names) -> Leaf:
    """What replaces one selected value: the id looked up in the map ``m`` (JSON), or the
    string with each pattern match's capture looked up."""
    p = ep.ref.pattern
    if p is None:
        if importing:
            return lambda e: sql.SQL("COALESCE({} -> ({}::text), {})").format(m, e, e)
        return lambda e: sql.SQL("COALESCE({} -> ({} #>> '{{}}'), {})").format(m, e, e)
    if importing:

        def lookup(g: sql.Composable) -> sql.Composable:
            key = _decode(sql.SQL("pg_catalog.substr({}, {})").format(g, sql.Literal(len(TOKEN) + 1)))
            return sql.SQL("({} -> {}) #>> '{{}}'").format(m, key)
    else:

        def lookup(g: sql.Composable) -> sql.Composable:
            return sql.SQL("{} || {}").format(_lit(TOKEN), _encode(sql.SQL("({} -> {})::text").format(m, g)))

    def leaf(e: sql.Composable) -> sql.Composable:
        return sql.SQL("CASE WHEN {} THEN pg_catalog.to_jsonb({}) ELSE {} END").format(
            _typeof(e, "string"),
            _text_rewrite(sql.SQL("({} #>> '{{}}')").format(e), p, importing, lookup, names),
            e,
        )

    return leaf


def _to_domain(ep: EmbeddedPlan, value: sql.Composable) -> sql.Composable:
    if ep.kind == "jsonb":
        return value
    if ep.kind == "json":
        return sql.SQL("{}::jsonb").format(value)
    return sql.SQL("pg_catalog.to_jsonb({}::text)").format(value)


def _from_domain(ep: EmbeddedPlan, value: sql.Composable) -> sql.Composable:
    if ep.kind == "jsonb":
        return value
    if ep.kind == "json":
        return sql.SQL("{}::json").format(value)
    return sql.SQL("({} #>> '{{}}')::{}").format(value, sql.SQL(ep.column_type))


def _key_array(plan: Plan, ep: EmbeddedPlan, alias: str) -> sql.Composable:
    ref = plan.tables[ep.ref_table]
    return sql.SQL("pg_catalog.jsonb_build_array({})").format(
        sql.SQL(", ").join(sql.SQL("{}.{}").format(ident(alias), ident(kf.name)) for kf in ref.key_fields)
    )


def export_map(plan: Plan, ep: EmbeddedPlan, rel: sql.Composable) -> sql.Composed:
    """One row, one jsonb object: each id of the referenced table (as text) -> its
    natural key (a JSON array), from ``rel`` (the table's key relation)."""
    return sql.SQL(
        "SELECT (SELECT pg_catalog.jsonb_object_agg(x.{c}::text, {key}) FROM ({rel}) AS x "
        "WHERE x.{c} IS NOT NULL) AS m"
    ).format(c=ident(ep.target_column), key=_key_array(plan, ep, "x"), rel=rel)


def import_map(plan: Plan, ep: EmbeddedPlan, source: sql.Composable) -> sql.Composed:
    """One row, one jsonb object: each natural key (the JSON array's text) -> the
    target's id, from ``source`` (the referenced table's final staging rows, or its rows
    in the target)."""
    return sql.SQL(
        "SELECT (SELECT pg_catalog.jsonb_object_agg({key}::text, pg_catalog.to_jsonb(x.{c})) FROM {src} AS x "
        "WHERE x.{c} IS NOT NULL) AS m"
    ).format(c=ident(ep.target_column), key=_key_array(plan, ep, "x"), src=source)


def value_expr(
    eps: list[EmbeddedPlan],
    column: sql.Composable,
    maps: Sequence[sql.Composable],
    importing: bool,
    prefix: str,
) -> sql.Composable:
    """``column`` with the ids of every embedded reference on it rewritten, one after the
    other (``maps[i]`` is the map of ``eps[i]``)."""
    names = _Names(prefix)
    walks: Walk = [(ep.steps, _leaf(ep, importing, m, names)) for ep, m in zip(eps, maps)]
    value = _bind(_to_domain(eps[0], column), lambda v: rewrite(v, walks, names), names)
    return sql.SQL("CASE WHEN {} IS NULL THEN NULL ELSE {} END").format(column, _from_domain(eps[0], value))


def by_column(tp: TablePlan) -> dict[str, list[EmbeddedPlan]]:
    out: dict[str, list[EmbeddedPlan]] = {}
    for ep in tp.embedded:
        out.setdefault(ep.column, []).append(ep)
    return out


def export_column(
    plan: Plan, tp: TablePlan, column: str, joins: list[sql.Composable], rels: Sequence[sql.Composable]
) -> sql.Composable:
    """The export query's expression for an embedded column of the row ``t``: its ids
    replaced by natural keys; the maps it looks them up in (from ``rels``, the
    referenced tables' key relations) are added to ``joins``."""
    eps = by_column(tp)[column]
    maps: list[sql.Composable] = []
    for ep, rel in zip(eps, rels):
        alias = ident(f"em{len(joins) + 1}")
        joins.append(sql.SQL("LEFT JOIN ({}) AS {} ON true").format(export_map(plan, ep, rel), alias))
        maps.append(sql.SQL("{}.m").format(alias))
    return value_expr(eps, sql.SQL("t.{}").format(ident(column)), maps, False, f"ew{len(joins)}_")


def _leaves(ep: EmbeddedPlan, value: sql.Composable, importing: bool) -> sql.Composable:
    """``SELECT v`` of every id (export) or carried key (import, as the JSON array's text)
    at the places the reference selects in ``value`` (a jsonb)."""
    froms = [sql.SQL("(SELECT {} AS v) AS l0").format(value)]
    cur: sql.Composable = sql.SQL("l0.v")
    conds: list[sql.Composable] = []
    for i, step in enumerate(ep.steps, start=1):
        a = ident(f"l{i}")
        if step.kind == "member":
            froms.append(
                sql.SQL("CROSS JOIN LATERAL (SELECT {} -> {} AS v) AS {}").format(cur, _lit(step.key), a)
            )
        elif step.kind == "each":
            froms.append(
                sql.SQL(
                    "CROSS JOIN LATERAL pg_catalog.jsonb_array_elements(CASE WHEN {} THEN {} END) AS {}(v)"
                ).format(_typeof(cur, "array"), cur, a)
            )
        elif step.kind == "parse":
            froms.append(
                sql.SQL("CROSS JOIN LATERAL (SELECT CASE WHEN {} THEN {} END AS v) AS {}").format(
                    _typeof(cur, "string"), _parsed(cur), a
                )
            )
        else:
            conds += [sql.SQL("COALESCE({}, false)").format(_condition(cur, c)) for c in step.conditions]
            continue
        cur = sql.SQL("{}.v").format(a)
    p = ep.ref.pattern
    if p is None:
        found: sql.Composable = (
            sql.SQL("CASE WHEN {} THEN NULL ELSE {}::text END").format(_typeof(cur, "null"), cur)
            if importing
            else sql.SQL("{} #>> '{{}}'").format(cur)
        )
    else:
        froms.append(
            sql.SQL(
                "CROSS JOIN LATERAL pg_catalog.regexp_matches("
                "CASE WHEN {} THEN {} #>> '{{}}' END, {}, 'g') AS lm(g)"
            ).format(_typeof(cur, "string"), cur, _lit(split_regex(p, importing)))
        )
        found = (
            _decode(sql.SQL("pg_catalog.substr(lm.g[2], {})").format(sql.Literal(len(TOKEN) + 1)))
            if importing
            else sql.SQL("lm.g[2]")
        )
    where = sql.SQL(" WHERE {}").format(sql.SQL(" AND ").join(conds)) if conds else sql.SQL("")
    return sql.SQL("SELECT {} AS v FROM {}{}").format(found, sql.SQL(" ").join(froms), where)


def export_dangling(
    plan: Plan,
    ep: EmbeddedPlan,
    table: sql.Composable,
    cte: sql.Composable,
    keys: list[sql.Composable],
    joins: list[sql.Composable],
    rel: sql.Composable,
    samples: int = 5,
) -> sql.Composed:
    """Rows ``t`` of ``table`` with an id inside the column that names no row of the
    referenced table: (count, the row's natural key ``keys``..., the id). Parsing a
    value that is not JSON raises here, before any COPY."""
    column = sql.SQL("t.{}").format(ident(ep.column))
    return sql.SQL(
        "{cte}SELECT pg_catalog.count(*) OVER (), {keys}, ed.v FROM {t} AS t{joins} "
        "LEFT JOIN ({map}) AS em ON true CROSS JOIN LATERAL ({leaves}) AS ed "
        "WHERE t.{c} IS NOT NULL AND ed.v IS NOT NULL "
        "AND NOT COALESCE(pg_catalog.jsonb_exists(em.m, ed.v), false) LIMIT {n}"
    ).format(
        cte=cte,
        keys=sql.SQL(", ").join(keys),
        t=table,
        joins=sql.SQL("").join(sql.SQL(" {}").format(j) for j in joins),
        map=export_map(plan, ep, rel),
        leaves=_leaves(ep, _to_domain(ep, column), False),
        c=ident(ep.column),
        n=sql.Literal(samples),
    )


def import_unresolved(
    plan: Plan,
    tp: TablePlan,
    ep: EmbeddedPlan,
    final: sql.Composable,
    source: sql.Composable,
    samples: int = 5,
) -> sql.Composed:
    """Staged rows carrying a natural key inside the column that names no row of the
    referenced table in the archive (or the target): (count, key fields..., the key)."""
    column = sql.SQL("f.{}").format(ident(ep.column))
    return sql.SQL(
        "SELECT pg_catalog.count(*) OVER (), {keys}, ed.v FROM {final} AS f LEFT JOIN ({map}) AS em ON true "
        "CROSS JOIN LATERAL ({leaves}) AS ed WHERE f.{c} IS NOT NULL AND ed.v IS NOT NULL "
        "AND NOT COALESCE(pg_catalog.jsonb_exists(em.m, ed.v), false) LIMIT {n}"
    ).format(
        keys=sql.SQL(", ").join(sql.SQL("f.{}").format(ident(kf.name)) for kf in tp.key_fields),
        final=final,
        map=import_map(plan, ep, source),
        leaves=_leaves(ep, _to_domain(ep, column), True),
        c=ident(ep.column),
        n=sql.Literal(samples),
    )


def import_rewrite(
    plan: Plan, tp: TablePlan, column: str, final: sql.Composable, sources: list[sql.Composable]
) -> sql.Composed:
    """``UPDATE`` of the final staging rows: the natural keys inside ``column`` replaced
    by the target's ids (``sources[i]``: where the i-th reference's rows are)."""
    eps = by_column(tp)[column]
    maps = [sql.SQL("{}.m").format(ident(f"em{i + 1}")) for i in range(len(eps))]
    froms = sql.SQL(", ").join(
        sql.SQL("({}) AS {}").format(import_map(plan, ep, src), ident(f"em{i + 1}"))
        for i, (ep, src) in enumerate(zip(eps, sources))
    )
    col = ident(column)
    value = value_expr(eps, sql.SQL("f.{}").format(col), maps, True, "iw")
    return sql.SQL("UPDATE {} AS f SET {} = {} FROM {} WHERE f.{} IS NOT NULL").format(
        final, col, value, froms, col
    )
