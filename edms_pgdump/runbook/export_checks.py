"""export.sql's refusals of the data: every check ``edms-pgdump export`` runs on the
data, in the same order and the same snapshot, from the same queries (sqlgen, probes)
and with the same messages (the library's problems, built with placeholders that each
DO block fills in at run time): generic ids of unmapped types or naming nothing, tree
parent chains that loop, natural keys not unique in the data, undecided likely
references, references to a NULL natural key or to rows that do not exist, and
multi-column references partly NULL. A failure RAISEs, psql stops, and no data file
is written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from psycopg import sql

from edms_pgdump.analysis.generic_probe import (
    NO_SUCH_TABLE,
    dangling_problem,
    dangling_sample_names,
    unmapped_type_problem,
    why_not_a_target,
)
from edms_pgdump.analysis.likely_refs import Candidate, likely_reference_candidates
from edms_pgdump.analysis.probes import (
    UNSAFE_DATA_HEADS,
    duplicate_keys_query,
    key_not_unique_problem,
    likely_reference_problem,
    match_counts_query,
    missing_reference_problem,
    needs_uniqueness_proof,
    null_key_reference_problem,
    null_key_sample_names,
    partly_null_problem,
    partly_null_sample_names,
    partly_nullable_references,
    unchecked_references,
    unsafe_data_line,
    unsafe_data_place,
)
from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import Catalog
from edms_pgdump.mapping import Mapping
from edms_pgdump.plan.build import GenericPlan, Plan, TablePlan
from edms_pgdump.plan.generic import target_of
from edms_pgdump.program.render_psql import ScriptLine as Step
from edms_pgdump.program.render_psql import (
    do_block,
    literal,
    render,
)
from edms_pgdump.sqlgen.export import (
    all_null_key,
    generic_dangling,
    missing_references,
    null_key_references,
    partly_null_references,
    tree_rows_off_path,
)
from edms_pgdump.sqlgen.generic import discover_types

# Each is one DO block running the library's queries (EXECUTE of the rendered sqlgen
# statement, so no psql :variable and no PL/pgSQL name can touch them) and raising the
# library's message. The messages are the library's problems built with placeholders
# ("holes") where the data goes; _text turns one into a SQL expression filling them.

_HOLE = "\x1eedms-hole:{}\x1e"
_HOLES = re.compile("\x1eedms-hole:([a-z_]+)\x1e")
_THOUSANDS = "'FM999,999,999,999,999,999,990'"  # probes._n: 1,234,567
NOTHING_EXPORTED = "; nothing was exported"
_DECLARE = "  n1 numeric;\n  n2 numeric;\n  samples text;"

Block = tuple[str, str, str]  # comment, DECLARE, body


def _hole(name: str) -> str:
    return _HOLE.format(name)


def _text(message: str, **values: str) -> str:
    """``message`` as a SQL text expression: its literal parts as they are, each hole
    replaced by the SQL expression ``values`` gives for it."""
    parts = _HOLES.split(message)
    out = [values[part] if i % 2 else literal(part) for i, part in enumerate(parts) if i % 2 or part]
    return " || ".join(out) or "''"


def _sql_value(value: sql.Composable) -> sql.Composable:
    """A sample value as ``errors.sql_literal`` writes it: NULL, numbers and booleans bare,
    anything else quoted."""
    return sql.SQL(
        "CASE WHEN {v} IS NULL THEN 'NULL' WHEN jsonb_typeof(to_jsonb({v})) IN ('number', 'boolean') "
        "THEN {v}::text ELSE chr(39) || replace({v}::text, chr(39), chr(39) || chr(39)) || chr(39) END"
    ).format(v=value)


def _sampled(query: sql.Composable, lead: int, names: Sequence[str], times: bool = False) -> str:
    """``query`` (``lead`` count columns, the sample columns ``names``, then with ``times``
    how often the row repeats) as one row: the counts, then the samples as
    ``errors.sample_keys`` writes them (NULL when the query finds nothing). Returned as
    the literal an EXECUTE takes."""
    width = lead + len(names) + (1 if times else 0)
    cols = [sql.SQL("q.{}").format(sql.Identifier(f"#{i}")) for i in range(width)]
    parts: list[sql.Composable] = []
    for j, name in enumerate(names):
        parts += [sql.Literal((", " if j else "(") + f"{name}="), _sql_value(cols[lead + j])]
    row: sql.Composable = sql.SQL("{} || ')'").format(sql.SQL(" || ").join(parts))
    if times:
        row = sql.SQL("{} || ' ' || {} || ' times'").format(row, cols[-1])
    statement = sql.SQL("SELECT {leads}, string_agg({row}, ', ') FROM ({query}) AS q({aliases})").format(
        leads=sql.SQL(", ").join(sql.SQL("max({})").format(c) for c in cols[:lead]),
        row=row,
        query=query,
        aliases=sql.SQL(", ").join(sql.Identifier(f"#{i}") for i in range(width)),
    )
    return literal(render(statement))


def _more(array: str) -> str:
    """`` (and N more)`` when ``array`` holds more than one message, as the library says it."""
    n = f"cardinality({array})"
    return f"CASE WHEN {n} > 1 THEN ' (and ' || ({n} - 1) || ' more)' ELSE '' END"


def _raise_first(array: str) -> str:
    return (
        f"  IF cardinality({array}) > 0 THEN\n"
        f"    RAISE EXCEPTION USING MESSAGE = {array}[1] || {_more(array)} || {literal(NOTHING_EXPORTED)};\n"
        "  END IF;"
    )


def refusal_steps(plan: Plan, catalog: Catalog, mapping: Mapping) -> list[Step]:
    """``export.write_archive``'s refusals of the data, in its order, before any \\copy."""
    steps: list[Step] = []
    for block in (
        _generic_types_block(plan, catalog, mapping),
        _dangling_block(plan),
        _looping_trees_block(plan),
        _unsafe_data_block(plan, catalog),
    ):
        if block is not None:
            steps += [Step("check", None, "\n" + block[0]), Step("check", None, do_block(block[1], block[2]))]
    return steps


def _generic_types_block(plan: Plan, catalog: Catalog, mapping: Mapping) -> Block | None:
    """``generic_probe.discover_targets``: rows whose type names a table that is no target
    (unless ignored). The tables this script resolves were those the type table named
    when it was generated; a table only a newer type row names is refused with its own
    advice (the library would have resolved it)."""
    known = set(mapping.exclude) | set(mapping.tables) | set(catalog.tables)
    body = "".join(
        _generic_types_check(gp, catalog, mapping, known) for tp in plan.exported for gp in tp.generic
    )
    if not body:
        return None
    comment = "-- refused like edms-pgdump export: generic ids whose type names a table that is not mapped"
    return comment, "  r record;\n  found text[] := '{}';", body + _raise_first("found")


def _generic_types_check(
    gp: GenericPlan, catalog: Catalog, mapping: Mapping, known: set[QualifiedName]
) -> str:
    targets = {t.table for t in gp.targets}
    facts: list[sql.Composable] = []
    for name in sorted(known, key=str):
        if name in targets:
            status, why = "target", ""
        elif target_of(catalog, mapping, name) is not None:
            status, why = "stale", ""
        else:
            status, why = "refused", why_not_a_target(catalog, mapping, name)
            if why == NO_SUCH_TABLE:
                continue  # what a name the script does not know gets
        values = (name.schema, name.name, str(name), status, why)
        facts.append(sql.SQL("({})").format(sql.SQL(", ").join(map(sql.Literal, values))))
    names: sql.Composable = (
        sql.SQL("VALUES {}").format(sql.SQL(", ").join(facts))
        if facts
        else sql.SQL("SELECT NULL::text, NULL::text, NULL::text, NULL::text, NULL::text WHERE false")
    )
    type_pk = (catalog.tables[gp.type_table].primary_key or ("id",))[0]
    query = sql.SQL(
        "SELECT q.n, q.label, coalesce(w.named, quote_ident(q.s) || '.' || quote_ident(q.t)) AS named, "
        "coalesce(w.status, 'refused') AS status, coalesce(w.why, {missing}) AS why "
        "FROM ({discover}) AS q(s, t, label, n) LEFT JOIN ({names}) AS w(s, t, named, status, why) "
        "ON w.s = q.s AND w.t = q.t "
        "WHERE NOT (q.label = ANY({ignored}::text[])) AND coalesce(w.status, 'refused') <> 'target' "
        "ORDER BY q.s, q.t, q.label"
    ).format(
        missing=sql.Literal(NO_SUCH_TABLE),
        discover=discover_types(gp, type_pk),
        names=names,
        ignored=sql.Literal(list(gp.ignore_types)),
    )
    holes = {"count": "r.n::text", "label": "r.label", "named": "r.named", "why": "r.why"}
    p = unmapped_type_problem(gp, _hole("count"), _hole("label"), _hole("named"), _hole("why"))
    unmapped = _text(f"error: {p.table}: {p.message}; fix: {p.fix}", **holes)
    stale = _text(
        f"error: {gp.table}: {_hole('count')} row(s) have a {gp.type_column} of type {_hole('label')}, "
        f"which names {_hole('named')}; no {gp.type_table} row named that table when this export.sql "
        f"was generated, so it cannot write their {gp.id_column}; fix: generate export.sql again "
        "(edms-pgdump sql export)",
        **holes,
    )
    return (
        f"  -- {gp.table} ({gp.type_column}, {gp.id_column})\n"
        f"  FOR r IN EXECUTE {literal(render(query))} LOOP\n"
        f"    found := array_append(found, CASE WHEN r.status = 'stale' THEN {stale} ELSE {unmapped} END);\n"
        "  END LOOP;\n"
    )


def _dangling_block(plan: Plan) -> Block | None:
    """``export._refuse_dangling``: generic ids naming nothing are an error under
    ``on_dangling: error`` (all gathered, the first shown), else a warning."""
    body = ""
    for tp in plan.exported:
        for gp in tp.generic:
            query = _sampled(generic_dangling(plan, tp, gp), 1, dangling_sample_names(gp))
            text = _text(str(dangling_problem(gp, _hole("n"), _hole("s"))), n="n1::text", s="samples")
            act = (
                f"found := array_append(found, {text});"
                if gp.on_dangling == "error"
                else f"RAISE WARNING USING MESSAGE = {text};"
            )
            body += (
                f"  -- {tp.table} ({gp.type_column}, {gp.id_column}), on_dangling: {gp.on_dangling}\n"
                f"  EXECUTE {query} INTO n1, samples;\n"
                f"  IF samples IS NOT NULL THEN\n    {act}\n  END IF;\n"
            )
    if not body:
        return None
    comment = "-- refused like edms-pgdump export: generic ids that name no row"
    return comment, _DECLARE + "\n  found text[] := '{}';", body + _raise_first("found")


def looping_tree_message(tp: TablePlan, count: str, samples: str) -> str:
    """The message of ``export._refuse_looping_trees``, which raises it there."""
    return (
        f"{tp.table}: {count} row(s) have a parent but no path from a root (the parent "
        f"chain loops), so their natural key cannot be written: {samples}; break the loop "
        "in the data, nothing was exported"
    )


def _looping_trees_block(plan: Plan) -> Block | None:
    """``export._refuse_looping_trees``: the first tree whose parent chains loop."""
    body = ""
    for tp in plan.exported:
        query = tree_rows_off_path(tp)
        exp = tp.tree_expansion
        if query is None or exp is None:
            continue
        names = [*exp.fk.columns, *tp.tree_steps]
        message = _text(looping_tree_message(tp, _hole("n"), _hole("s")), n="n1::text", s="samples")
        body += (
            f"  -- {tp.table}\n"
            f"  EXECUTE {_sampled(query, 1, names)} INTO n1, samples;\n"
            f"  IF samples IS NOT NULL THEN\n    RAISE EXCEPTION USING MESSAGE = {message};\n  END IF;\n"
        )
    if not body:
        return None
    comment = "-- refused like edms-pgdump export: tree keys whose parent chain loops"
    return comment, _DECLARE, body.rstrip("\n")


def _found(code: str, place: str, line: str) -> str:
    """Record one problem of kind ``code``: its place for the head, its line."""
    i = [c for c, _ in UNSAFE_DATA_HEADS].index(code) + 1
    return (
        f"places_{i} := array_append(places_{i}, {literal(place)});\n"
        f"    lines_{i} := array_append(lines_{i}, {line});"
    )


def _sampled_check(comment: str, query: str, into: str, code: str, place: str, line: str) -> str:
    return (
        f"  -- {comment}\n"
        f"  EXECUTE {query} INTO {into};\n"
        f"  IF samples IS NOT NULL THEN\n    {_found(code, place, line)}\n  END IF;\n"
    )


def _unsafe_data_block(plan: Plan, catalog: Catalog) -> Block | None:
    """``probes.refuse_unsafe_data``: every problem of every kind gathered, then one
    message heading each kind with its places, and the first problem in full."""
    parts: dict[str, str] = {code: "" for code, _ in UNSAFE_DATA_HEADS}
    thousands = {"values": f"to_char(n1, {_THOUSANDS})", "rows": f"to_char(n2, {_THOUSANDS})"}
    for tp in plan.exported:
        if not needs_uniqueness_proof(tp):
            continue
        p = key_not_unique_problem(tp, _hole("s"), _hole("values"), _hole("rows"))
        query = _sampled(duplicate_keys_query(plan, tp), 2, [kf.name for kf in tp.key_fields], times=True)
        parts[p.code] += _sampled_check(
            f"{tp.table}: natural key unique in the data?", query, "n1, n2, samples",
            p.code, unsafe_data_place(p, plan), _text(unsafe_data_line(p), s="samples", **thousands),
        )  # fmt: skip
    parts["likely-reference"] = _likely_references(plan, catalog)
    for tp in plan.exported:
        for exp in tp.expansions:
            if not all_null_key(plan, exp):
                continue
            p = null_key_reference_problem(plan, tp, exp, _hole("n"), _hole("s"))
            query = _sampled(null_key_references(plan, tp, exp), 1, null_key_sample_names(tp, exp))
            parts[p.code] += _sampled_check(
                f"{tp.table} ({', '.join(exp.columns)}): references to a NULL natural key?", query,
                "n1, samples", p.code, unsafe_data_place(p, plan),
                _text(unsafe_data_line(p), n="n1::text", s="samples"),
            )  # fmt: skip
        for exp in unchecked_references(tp):
            p = missing_reference_problem(tp, exp, _hole("n"), _hole("s"))
            query = _sampled(missing_references(tp, exp), 1, list(exp.fk.columns))
            parts[p.code] += _sampled_check(
                f"{tp.table} ({', '.join(exp.columns)}): references to rows that do not exist?", query,
                "n1, samples", p.code, unsafe_data_place(p, plan),
                _text(unsafe_data_line(p), n="n1::text", s="samples"),
            )  # fmt: skip
        for exp in partly_nullable_references(tp, catalog):
            p = partly_null_problem(tp, exp, _hole("n"), _hole("s"))
            query = _sampled(partly_null_references(tp, exp), 1, partly_null_sample_names(tp, exp))
            parts[p.code] += _sampled_check(
                f"{tp.table} ({', '.join(exp.columns)}): references partly NULL?", query,
                "n1, samples", p.code, unsafe_data_place(p, plan),
                _text(unsafe_data_line(p), n="n1::text", s="samples"),
            )  # fmt: skip
    kinds = [(i, head) for i, (code, head) in enumerate(UNSAFE_DATA_HEADS, start=1) if parts[code]]
    if not kinds:
        return None
    heads = ", ".join(
        f"CASE WHEN cardinality(places_{i}) > 0 THEN {literal(head)} || array_to_string(places_{i}, ', ') END"
        for i, head in kinds
    )
    body = "".join(parts.values()) + (
        f"  heads := array_remove(ARRAY[{heads}], NULL);\n"
        f"  lines := {' || '.join(f'lines_{i}' for i, _ in kinds)};\n"
        "  IF cardinality(lines) > 0 THEN\n"
        "    RAISE EXCEPTION USING MESSAGE = array_to_string(heads, '; ') || "
        f"{literal(NOTHING_EXPORTED + '. ')} || lines[1] || {_more('lines')};\n"
        "  END IF;"
    )
    declare = _DECLARE + "\n  matched numeric;\n  hit integer;\n  also text;\n  line text;\n"
    declare += "".join(f"  places_{i} text[] := '{{}}';\n  lines_{i} text[] := '{{}}';\n" for i, _ in kinds)
    declare += "  heads text[];\n  lines text[];"
    comment = (
        "-- refused like edms-pgdump export: natural keys not unique in the data, likely references,"
        " references to a NULL natural key or to rows that do not exist"
    )
    return comment, declare, body


def _likely_references(plan: Plan, catalog: Catalog) -> str:
    """``probes.find_likely_references``: a column whose non-NULL values are all ids of a
    table it is named after; the message names the first such table, the others after it."""
    columns: dict[tuple[QualifiedName, str], list[Candidate]] = {}
    for c in likely_reference_candidates(plan, catalog):
        columns.setdefault((c.table, c.column), []).append(c)
    body = ""
    n = f"to_char(n2, {_THOUSANDS})"
    for (table, column), candidates in columns.items():
        body += f"  -- {table}.{column}: a likely reference?\n  hit := NULL;\n  also := NULL;\n"
        for i, c in enumerate(candidates, start=1):
            body += (
                f"  EXECUTE {literal(render(match_counts_query(c)))} INTO n1, matched;\n"
                "  IF n1 > 0 AND matched = n1 THEN\n"
                f"    IF hit IS NULL THEN\n      hit := {i};\n      n2 := n1;\n"
                f"    ELSE\n      also := concat_ws(', ', also, {literal(str(c.target))});\n    END IF;\n"
                "  END IF;\n"
            )
        body += "  IF hit IS NOT NULL THEN\n"
        for i, c in enumerate(candidates, start=1):
            # find_likely_references passes the target's primary key: the candidate's column
            alone = likely_reference_problem(c, _hole("n"), _hole("n"), (), c.target_column)
            more = likely_reference_problem(c, _hole("n"), _hole("n"), [_hole("also")], c.target_column)
            line = (
                f"CASE WHEN also IS NULL THEN {_text(unsafe_data_line(alone), n=n)}"
                f" ELSE {_text(unsafe_data_line(more), n=n, also='also')} END"
            )
            body += f"    {'IF' if i == 1 else 'ELSIF'} hit = {i} THEN\n      line := {line};\n"
        place = unsafe_data_place(likely_reference_problem(candidates[0], 0, 0), plan)
        body += f"    END IF;\n    {_found('likely-reference', place, 'line')}\n  END IF;\n"
    return body
