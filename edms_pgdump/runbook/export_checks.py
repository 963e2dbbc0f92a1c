"""export.sql's refusals of the data: the export program's refusal steps
(``export.program``) rendered as DO blocks. Each runs the step's queries (EXECUTE of the
rendered sqlgen statement, so no psql :variable and no PL/pgSQL name can touch them) and
raises the step's message, its holes filled from the rows: generic ids of unmapped types
or naming nothing, tree parent chains that loop, natural keys not unique in the data,
undecided likely references, references to a NULL natural key or to rows that do not
exist, and multi-column references partly NULL. A failure RAISEs, psql stops, and no
data file is written.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from edms_pgdump.analysis.probes import unsafe_data_line
from edms_pgdump.export.program import (
    HOLES,
    NOTHING_EXPORTED,
    LikelyColumn,
    RefuseDangling,
    RefuseLoopingTrees,
    RefusePlanWarnings,
    RefuseUnmappedTypes,
    RefuseUnsafeData,
    Sampled,
    Step,
    hole,
)
from edms_pgdump.program.render_psql import (
    ScriptLine,
    do_block,
    literal,
    render,
)

_THOUSANDS = "'FM999,999,999,999,999,999,990'"  # probes._n: 1,234,567
_DECLARE = "  n1 numeric;\n  n2 numeric;\n  samples text;"
# a sampled check's holes (export.program.SAMPLED_HOLES) as the DO block's expressions
_SAMPLED = {"n": "n1::text", "values": f"to_char(n1, {_THOUSANDS})", "rows": f"to_char(n2, {_THOUSANDS})",
            "s": "samples"}  # fmt: skip

Block = tuple[str, str, str]  # comment, DECLARE, body


def _text(message: str, **values: str) -> str:
    """``message`` as a SQL text expression: its literal parts as they are, each hole
    replaced by the SQL expression ``values`` gives for it."""
    parts = HOLES.split(message)
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


def render_refusal(step: Step) -> list[ScriptLine]:
    """One refusal step of the export program as a comment and a DO block (no lines for
    a step that is not a refusal)."""
    block: Block | None = None
    if isinstance(step, RefuseUnmappedTypes):
        block = _generic_types_block(step)
    elif isinstance(step, RefuseDangling):
        block = _dangling_block(step)
    elif isinstance(step, RefusePlanWarnings):
        block = _plan_warnings_block(step)
    elif isinstance(step, RefuseLoopingTrees):
        block = _looping_trees_block(step)
    elif isinstance(step, RefuseUnsafeData):
        block = _unsafe_data_block(step)
    if block is None:
        return []
    return [
        ScriptLine("check", None, "\n" + block[0]),
        ScriptLine("check", None, do_block(block[1], block[2])),
    ]


def _generic_types_block(step: RefuseUnmappedTypes) -> Block:
    holes = {"count": "r.n::text", "label": "r.label", "named": "r.named", "why": "r.why"}
    body = "".join(
        f"  -- {c.table} ({c.type_column}, {c.id_column})\n"
        f"  FOR r IN EXECUTE {literal(render(c.query))} LOOP\n"
        f"    found := array_append(found, CASE WHEN r.status = 'stale' THEN {_text(c.stale, **holes)} "
        f"ELSE {_text(c.unmapped, **holes)} END);\n"
        "  END LOOP;\n"
        for c in step.checks
    )
    comment = "-- refused like edms-pgdump export: generic ids whose type names a table that is not mapped"
    return comment, "  r record;\n  found text[] := '{}';", body + _raise_first("found")


def _query(c: Sampled) -> str:
    return _sampled(c.query, c.lead, c.names, c.times)


def _dangling_block(step: RefuseDangling) -> Block:
    """Generic ids naming nothing are an error under ``on_dangling: error`` (all
    gathered, the first shown), else a warning."""
    body = ""
    for c in step.checks:
        text = _text(str(c.problem), **_SAMPLED)
        act = f"RAISE WARNING USING MESSAGE = {text};" if c.warn else f"found := array_append(found, {text});"
        body += (
            f"  -- {c.about}\n"
            f"  EXECUTE {_query(c)} INTO n1, samples;\n"
            f"  IF samples IS NOT NULL THEN\n    {act}\n  END IF;\n"
        )
    comment = "-- refused like edms-pgdump export: generic ids that name no row"
    return comment, _DECLARE + "\n  found text[] := '{}';", body + _raise_first("found")


def _plan_warnings_block(step: RefusePlanWarnings) -> Block:
    comment = "-- refused like edms-pgdump export: the plan has warnings and none are allowed"
    return comment, "", f"  RAISE EXCEPTION USING MESSAGE = {literal(step.message)};"


def _looping_trees_block(step: RefuseLoopingTrees) -> Block:
    """The first tree whose parent chains loop."""
    body = ""
    for c in step.checks:
        message = _text(c.problem.message, **_SAMPLED)
        body += (
            f"  -- {c.about}\n"
            f"  EXECUTE {_query(c)} INTO n1, samples;\n"
            f"  IF samples IS NOT NULL THEN\n    RAISE EXCEPTION USING MESSAGE = {message};\n  END IF;\n"
        )
    comment = "-- refused like edms-pgdump export: tree keys whose parent chain loops"
    return comment, _DECLARE, body.rstrip("\n")


def _found(step: RefuseUnsafeData, code: str, place: str, line: str) -> str:
    """Record one problem of kind ``code``: its place for the head, its line."""
    i = [c for c, _ in step.heads].index(code) + 1
    return (
        f"places_{i} := array_append(places_{i}, {literal(place)});\n"
        f"    lines_{i} := array_append(lines_{i}, {line});"
    )


def _unsafe_data_block(step: RefuseUnsafeData) -> Block:
    """Every problem of every kind gathered, then one message heading each kind with its
    places, and the first problem in full."""
    body = ""
    for c in step.checks:
        if isinstance(c, LikelyColumn):
            body += _likely_column(step, c)
            continue
        into = "n1, n2, samples" if c.lead == 2 else "n1, samples"
        line = _text(unsafe_data_line(c.problem), **_SAMPLED)
        body += (
            f"  -- {c.about}\n"
            f"  EXECUTE {_query(c)} INTO {into};\n"
            f"  IF samples IS NOT NULL THEN\n    {_found(step, c.code, c.place, line)}\n  END IF;\n"
        )
    codes = step.codes
    kinds = [(i, head) for i, (code, head) in enumerate(step.heads, start=1) if code in codes]
    heads = ", ".join(
        f"CASE WHEN cardinality(places_{i}) > 0 THEN {literal(head)} || array_to_string(places_{i}, ', ') END"
        for i, head in kinds
    )
    body += (
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


def _likely_column(step: RefuseUnsafeData, c: LikelyColumn) -> str:
    """The first candidate matched in full names the problem; the others follow it."""
    n = f"to_char(n2, {_THOUSANDS})"
    body = f"  -- {c.table}.{c.column}: a likely reference?\n  hit := NULL;\n  also := NULL;\n"
    for i, cand in enumerate(c.candidates, start=1):
        body += (
            f"  EXECUTE {literal(render(cand.query))} INTO n1, matched;\n"
            "  IF n1 > 0 AND matched = n1 THEN\n"
            f"    IF hit IS NULL THEN\n      hit := {i};\n      n2 := n1;\n"
            f"    ELSE\n      also := concat_ws(', ', also, {literal(str(cand.target))});\n    END IF;\n"
            "  END IF;\n"
        )
    body += "  IF hit IS NOT NULL THEN\n"
    for i, cand in enumerate(c.candidates, start=1):
        line = (
            f"CASE WHEN also IS NULL THEN {_text(unsafe_data_line(cand.alone), n=n)}"
            f" ELSE {_text(unsafe_data_line(cand.more), n=n, also='also')} END"
        )
        body += f"    {'IF' if i == 1 else 'ELSIF'} hit = {i} THEN\n      line := {line};\n"
    body += f"    END IF;\n    {_found(step, c.code, c.place, 'line')}\n  END IF;\n"
    return body


__all__ = ["hole", "render_refusal"]
