"""Set-based probes of the data, run inside the export's snapshot and by ``check --dsn``.

Why: the plan only sees the catalog, and the catalog cannot tell whether a natural key
without a unique constraint is unique in the rows, or whether a ``productid`` column
with no foreign key holds product ids. Both are silent-loss paths (an import that
merges two people into one, ids that point at other rows after a re-initialisation),
so they are proven on the data, in the same snapshot the archive is written from.
Every probe is one aggregate query per table or column (no row-by-row work) and
returns ``plan.Problem`` values; the export program's ``RefuseUnsafeData`` step
(export/program.py) turns them into one error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from psycopg import sql

from edms_pgdump.analysis.likely_refs import (
    Candidate,
    id_family,
    likely_reference_candidates,
    uncovered_columns,
)
from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import Catalog, Column
from edms_pgdump.db import Connection
from edms_pgdump.errors import (
    sample_keys,
    sql_literal,
)
from edms_pgdump.plan.build import Expansion, Plan, Problem, TablePlan
from edms_pgdump.sqlgen import key_relation
from edms_pgdump.sqlgen.export import (
    missing_references,
    null_key_ambiguous,
    null_key_references,
    partly_null_references,
    uncarried,
)

SAMPLE = 5
# A type column with more distinct values than this is not a "type" (issue 16).
MAX_TYPE_VALUES = 10

# "char" is the classic one-letter type column; likely_refs' text family lacks it.
_CHAR = '"char"'

# told of each item a long probe reaches: (what, its number, how many), for progress
Each = Callable[[str, int, int], None]


def _family(column: Column) -> str | None:
    """Which columns can hold each other's ids (likely_refs.id_family: integer, uuid, text)."""
    if (column.base_type or column.type) == _CHAR:
        return "text"
    return id_family(column)


def _tbl(name: QualifiedName) -> sql.Identifier:
    return sql.Identifier(name.schema, name.name)


def _n(value: int | str) -> str:
    """A count with thousands separators; a str (export.sql's placeholder) as it is."""
    return value if isinstance(value, str) else f"{value:,}"


# -- 1. natural-key uniqueness -----------------------------------------------------


def needs_uniqueness_proof(tp: TablePlan) -> bool:
    """A unique constraint proves the key only when no part of it can be NULL (the
    import matches NULLs as equal; the constraint treats them as distinct)."""
    return not tp.key_is_unique or any(kf.nullable for kf in tp.key_fields)


def duplicate_keys_query(plan: Plan, tp: TablePlan, sample_size: int = SAMPLE) -> sql.Composed:
    """Natural-key values held by more than one row, over the key relation (references
    expanded to the referenced rows' keys); GROUP BY matches NULLs as equal, as the
    import does. Columns: duplicated values, rows involved, the key fields, count."""
    keys = sql.SQL(", ").join(sql.Identifier(kf.name) for kf in tp.key_fields)
    return sql.SQL(
        "SELECT count(*) OVER (), sum(count(*)) OVER (), {keys}, count(*) FROM ({rel}) AS k "
        "GROUP BY {keys} HAVING count(*) > 1 ORDER BY count(*) DESC, {keys} LIMIT {n}"
    ).format(keys=keys, rel=key_relation(plan, tp), n=sql.Literal(sample_size))


def prove_unique_keys(
    conn: Connection,
    plan: Plan,
    sample_size: int = SAMPLE,
    tables: Iterable[TablePlan] | None = None,
) -> list[Problem]:
    """One ``key-not-unique-data`` error per table whose natural key names several rows
    (default: every exported table), each with sample keys and their counts."""
    found: list[Problem] = []
    for tp in plan.exported if tables is None else tables:
        if not needs_uniqueness_proof(tp):
            continue
        rows = conn.execute(duplicate_keys_query(plan, tp, sample_size)).fetchall()
        if not rows:
            continue
        names = [kf.name for kf in tp.key_fields]
        samples = ", ".join(f"{sample_keys([r[2:-1]], names)} {r[-1]} times" for r in rows)
        found.append(key_not_unique_problem(tp, samples, int(rows[0][0]), int(rows[0][1])))
    return found


def key_not_unique_problem(tp: TablePlan, samples: str, values: int | str, rows: int | str) -> Problem:
    """``values`` key values shared by ``rows`` rows (export.sql fills in placeholders)."""
    names = [kf.name for kf in tp.key_fields]
    return Problem(
        "error",
        "key-not-unique-data",
        str(tp.table),
        f"natural key ({', '.join(names)}) is not unique in the data: {samples}"
        f" ({_n(values)} key value(s) shared by {_n(rows)} rows); "
        "the import would merge those rows into one",
        "deduplicate those rows, or add columns to natural_key until each key names one row",
        tp.natural_key[0],
    )


# -- 2. likely references ------------------------------------------------------------


def _single_pk(catalog: Catalog, name: QualifiedName) -> Column | None:
    table = catalog.get(name)
    if table is None or not table.primary_key or len(table.primary_key) != 1:
        return None
    return table.column(table.primary_key[0])


def match_counts_query(c: Candidate) -> sql.Composed:
    """(non-NULL values, values that are ids of the target); the target column is
    unique, so the join does not multiply rows. An array column counts its elements."""
    if c.array:
        return sql.SQL(
            "SELECT count(e.v), count(r.{rc}) FROM {t} AS t CROSS JOIN LATERAL unnest(t.{c}) AS e(v) "
            "LEFT JOIN {r} AS r ON r.{rc} = e.v"
        ).format(
            c=sql.Identifier(c.column), rc=sql.Identifier(c.target_column), t=_tbl(c.table), r=_tbl(c.target)
        )
    return sql.SQL(
        "SELECT count(t.{c}), count(r.{rc}) FROM {t} AS t LEFT JOIN {r} AS r ON r.{rc} = t.{c}"
    ).format(
        c=sql.Identifier(c.column),
        rc=sql.Identifier(c.target_column),
        t=_tbl(c.table),
        r=_tbl(c.target),
    )


def _match_counts(conn: Connection, c: Candidate) -> tuple[int, int]:
    row = conn.execute(match_counts_query(c)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def likely_reference_problem(
    c: Candidate,
    matched: int | str,
    total: int | str,
    also: Sequence[QualifiedName | str] = (),
    target_pk: str | None = None,
) -> Problem:
    """The error for one column; ``target_pk`` is the target's primary key (a declared
    reference defaults to it, so target_columns is only written when it differs)."""
    target_cols = f", target_columns: [{c.target_column}]" if target_pk != c.target_column else ""
    more = f" (they are also ids of {', '.join(str(a) for a in also)})" if also else ""
    values = "array elements" if c.array else "values"
    return Problem(
        "error",
        "likely-reference",
        str(c.table),
        f"column {c.column!r} has no foreign key and no mapping decision, but its name matches "
        f"{c.target}.{c.target_column} and {_n(matched)} of {_n(total)} non-NULL {values} are ids of "
        f"{c.target}{more}: it is likely a reference, and its raw ids would point at other rows "
        "(or none) after a re-initialisation",
        f"decide under {c.table} in the mapping: references: [{{columns: [{c.column}], "
        f"table: {c.target}{target_cols}}}] to carry it by natural key, or raw_columns: [{c.column}] "
        "to carry the ids as they are, knowingly",
        c.column,
    )


def find_likely_references(
    conn: Connection,
    plan: Plan,
    catalog: Catalog,
    candidates: Iterable[Candidate] | None = None,
    each: Each | None = None,
) -> list[Problem]:
    """``likely-reference`` errors: candidates (by name, from ``likely_refs``) whose
    non-NULL values ALL exist as ids of the table they are named after (a partial match
    is a coincidence, not a reference). ``each`` hears of every column probed (progress)."""
    todo = list(likely_reference_candidates(plan, catalog) if candidates is None else candidates)
    by_column: dict[tuple[QualifiedName, str], list[tuple[Candidate, int]]] = {}
    for i, c in enumerate(todo, 1):
        if each is not None:
            each(f"{c.table}.{c.column}", i, len(todo))
        matched, total = _match_counts(conn, c)
        if total and matched == total:
            by_column.setdefault((c.table, c.column), []).append((c, total))
    found = []
    for hits in by_column.values():
        first, total = hits[0]
        pk = _single_pk(catalog, first.target)
        also = [h.target for h, _ in hits[1:]]
        found.append(likely_reference_problem(first, total, total, also, pk.name if pk else None))
    return found


# -- 3. ids of a table chosen by another column --------------------------------------

Target = tuple[QualifiedName, str, int, int]  # table, primary key, min id, max id


def _int_targets(conn: Connection, plan: Plan, catalog: Catalog) -> list[Target]:
    """Mapped tables with a single integer primary key, with its range (index-fast)."""
    out = []
    for name in sorted(plan.tables):
        pk = _single_pk(catalog, name)
        if pk is None or _family(pk) != "integer":
            continue
        row = conn.execute(
            sql.SQL("SELECT min({c}), max({c}) FROM {t}").format(c=sql.Identifier(pk.name), t=_tbl(name))
        ).fetchone()
        if row is not None and row[0] is not None:
            out.append((name, pk.name, int(row[0]), int(row[1])))
    return out


def _type_columns(conn: Connection, tp: TablePlan, catalog: Catalog) -> list[str]:
    """Candidate type columns: text, not unique on their own, with 2..MAX_TYPE_VALUES
    distinct values that each cover two rows on average (a code per row is no type)."""
    table = catalog.tables[tp.table]
    unique = {k[0] for k in (*table.unique_keys, table.primary_key or ()) if len(k) == 1}
    texts = [c.name for c in table.columns if _family(c) == "text" and c.name not in unique]
    if not texts:
        return []
    row = conn.execute(
        sql.SQL("SELECT count(*), {} FROM {}").format(
            sql.SQL(", ").join(sql.SQL("count(DISTINCT {})").format(sql.Identifier(c)) for c in texts),
            _tbl(tp.table),
        )
    ).fetchone()
    assert row is not None
    rows = int(row[0])
    return [c for c, n in zip(texts, row[1:]) if 2 <= int(n) <= MAX_TYPE_VALUES and 2 * int(n) <= rows]


def _switched(
    conn: Connection, tp: TablePlan, column: str, kind: str, targets: list[Target]
) -> Problem | None:
    """The warning for ``column`` when each value of ``kind`` picks a different table."""
    groups = conn.execute(
        sql.SQL(
            "SELECT {k}, count({c}), min({c}), max({c}) FROM {t} WHERE {c} IS NOT NULL "
            "GROUP BY {k} ORDER BY {k}"
        ).format(k=sql.Identifier(kind), c=sql.Identifier(column), t=_tbl(tp.table))
    ).fetchall()
    if len(groups) < 2:
        return None
    full: dict[Any, list[QualifiedName]] = {g[0]: [] for g in groups}
    for target, pk, lo, hi in targets:
        if target == tp.table:
            continue  # ids of its own rows: a tree, not a type switch
        inside = [g for g in groups if lo <= int(g[2]) and int(g[3]) <= hi]
        if not inside:
            continue
        rows = conn.execute(
            sql.SQL(
                "SELECT t.{k}, count(*) FROM {t} AS t JOIN {r} AS r ON r.{pk} = t.{c} "
                "WHERE t.{k} = ANY({vals}) GROUP BY t.{k}"
            ).format(
                k=sql.Identifier(kind),
                t=_tbl(tp.table),
                r=_tbl(target),
                pk=sql.Identifier(pk),
                c=sql.Identifier(column),
                vals=sql.Literal([g[0] for g in inside]),
            )
        ).fetchall()
        counts = dict((r[0], int(r[1])) for r in rows)
        for g in inside:
            if counts.get(g[0]) == int(g[1]):
                full[g[0]].append(target)
    matched = [set(v) for v in full.values() if v]
    if len(matched) < 2 or set.intersection(*matched):
        return None
    parts = []
    for g in groups:
        tables = full[g[0]]
        also = f" (also of {', '.join(map(str, tables[1:3]))})" if tables[1:] else ""
        where = f"ids of {tables[0]}{also}" if tables else ""
        parts.append(
            f"{kind}={sql_literal(g[0])}: {_n(int(g[1]))} of {_n(int(g[1]))} non-NULL values are {where}"
            if tables
            else f"{kind}={sql_literal(g[0])}: {_n(int(g[1]))} values match no single mapped table"
        )
    return Problem(
        "warning",
        "generic-without-type-table",
        str(tp.table),
        f"column {column!r} holds ids of different tables depending on {kind!r} ("
        + "; ".join(parts)
        + "): a generic reference without a type table, so its raw ids travel as they are and "
        "point at other rows after a re-initialisation",
        f"keep the ids knowingly with raw_columns: [{column}] under {tp.table} (the target must then "
        "have the same ids), or add a type table so it can be declared as a generic reference",
        column,
    )


def find_type_switched_ids(
    conn: Connection, plan: Plan, catalog: Catalog, each: Each | None = None
) -> list[Problem]:
    """``generic-without-type-table`` warnings (check only): an undecided integer ``*id``
    column whose values are ids of one table for one value of a low-cardinality text
    column and of another table for another value, with no single table holding all.
    ``each`` hears of every table probed (progress)."""
    targets = _int_targets(conn, plan, catalog)
    found: list[Problem] = []
    exported = list(plan.exported)
    for i, tp in enumerate(exported, 1):
        if each is not None:
            each(str(tp.table), i, len(exported))
        table = catalog.tables[tp.table]
        own = set(table.primary_key or ())
        ids = [
            c.name
            for c in uncovered_columns(tp, table)
            if c.name not in own and c.name.lower().endswith("id") and _family(c) == "integer"
        ]
        if not ids or not targets:
            continue
        kinds = _type_columns(conn, tp, catalog)
        for column in ids:
            for kind in kinds:
                problem = _switched(conn, tp, column, kind, targets)
                if problem is not None:
                    found.append(problem)
                    break
    return found


# -- the export's refusal ---------------------------------------------------------------


def _where(p: Problem) -> str:
    return f"{p.table}.{p.column}" if p.column else p.table


def references_to_null_keys(conn: Connection, plan: Plan, sample_size: int = 5) -> list[Problem]:
    """References to the row whose natural key is NULL in every field, from inside a
    natural key (``null_key_ambiguous``): the archive carries the reference's presence
    (format 2), but the key other rows are matched by would hold NULL either way, so
    export refuses them, naming the rows. Elsewhere such references travel."""
    found: list[Problem] = []
    for tp in plan.exported:
        for exp in tp.expansions:
            if not null_key_ambiguous(plan, tp, exp):
                continue
            rows = conn.execute(null_key_references(plan, tp, exp, sample_size)).fetchall()
            if not rows:
                continue
            names = null_key_sample_names(tp, exp)
            samples = sample_keys((r[1:] for r in rows), names)
            found.append(null_key_reference_problem(plan, tp, exp, rows[0][0], samples))
    return found


def null_key_sample_names(tp: TablePlan, exp: Expansion) -> list[str]:
    """The columns ``null_key_references`` shows after its count."""
    return list(dict.fromkeys([*tp.natural_key, *exp.fk.columns]))


def null_key_reference_problem(
    plan: Plan, tp: TablePlan, exp: Expansion, count: object, samples: str
) -> Problem:
    return Problem(
        "error",
        "reference-to-null-key",
        str(tp.table),
        f"{count} row(s) reference the {exp.ref_table} row whose natural key "
        f"({', '.join(plan.tables[exp.ref_table].natural_key)}) is NULL from {tp.table}'s natural key "
        f"({', '.join(tp.natural_key)}): that key cannot tell such a reference from none: " + samples,
        f"give that {exp.ref_table} row a natural key value, choose a natural key for "
        f"{exp.ref_table} that is never NULL in every column, or declare {', '.join(exp.columns)} NOT NULL",
        exp.columns[0],
    )


def unchecked_references(tp: TablePlan) -> list[Expansion]:
    """References the database does not check (declared in the mapping, a NOT VALID or a
    NOT ENFORCED foreign key): old rows may name rows that do not exist."""
    return [e for e in tp.expansions if not e.fk.enforced]


def references_to_missing_rows(conn: Connection, plan: Plan, sample_size: int = 5) -> list[Problem]:
    """References to rows that do not exist, where the database does not check them:
    the export query's join finds no row, so the archive would carry NULL (the
    reference lost without a word), and export refuses them instead."""
    found: list[Problem] = []
    for tp in plan.exported:
        found += missing_rows_of(conn, tp, sample_size)
    return found


def missing_rows_of(conn: Connection, tp: TablePlan, sample_size: int = 5) -> list[Problem]:
    """``references_to_missing_rows`` for one table."""
    found: list[Problem] = []
    for exp in unchecked_references(tp):
        rows = conn.execute(missing_references(tp, exp, sample_size)).fetchall()
        if rows:
            samples = sample_keys((r[1:] for r in rows), list(exp.fk.columns))
            found.append(missing_reference_problem(tp, exp, rows[0][0], samples))
    return found


def missing_reference_problem(tp: TablePlan, exp: Expansion, count: object, samples: str) -> Problem:
    cols = ", ".join(exp.columns)
    if exp.fk.declared:
        how = f"declared reference ({cols})"
        fix = "delete or fix those rows, or remove the reference from the mapping"
    elif exp.fk.not_enforced:
        # PostgreSQL 18 NOT ENFORCED: the server never checks it, VALIDATE does not apply
        how = f"foreign key {exp.fk.name} ({cols}), which is NOT ENFORCED (the database never checks it)"
        fix = (
            f"delete or fix those rows; to have the database check them from now on: "
            f"ALTER TABLE {tp.table} ALTER CONSTRAINT {exp.fk.name} ENFORCED"
        )
    else:
        how = f"foreign key {exp.fk.name} ({cols}), which is NOT VALID"
        fix = f"delete or fix those rows, then ALTER TABLE {tp.table} VALIDATE CONSTRAINT {exp.fk.name}"
    return Problem(
        "error",
        "reference-dangling",
        str(tp.table),
        f"{count} row(s) reference {exp.ref_table} rows that do not exist through the {how}: "
        f"{samples}; they would be exported as NULL",
        fix,
        exp.columns[0],
    )


def partly_nullable_references(tp: TablePlan, catalog: Catalog) -> list[Expansion]:
    """References of two or more columns that are not all NOT NULL, and write an id
    column: a row may set it and leave others NULL, which PostgreSQL's default MATCH
    SIMPLE accepts without checking anything. (A partly NULL row whose set columns are
    all carried as values, or resolved by references of their own, travels.)"""
    table = catalog.tables.get(tp.table)
    if table is None:
        return []
    nullable = {c.name for c in table.columns if not c.not_null}
    return [
        e for e in tp.expansions if len(e.fk.columns) > 1 and nullable & set(e.fk.columns) and uncarried(e)
    ]


def partly_null_sample_names(tp: TablePlan, exp: Expansion) -> list[str]:
    """The columns ``partly_null_references`` shows after its count."""
    return list(dict.fromkeys([*tp.natural_key, *exp.fk.columns]))


def references_partly_null(
    conn: Connection, plan: Plan, catalog: Catalog, sample_size: int = 5
) -> list[Problem]:
    """Multi-column references with some columns NULL and an id column set: the export's
    join finds no row whose key could carry that id, so it would be lost without a word
    (or travel raw); export refuses them instead."""
    found: list[Problem] = []
    for tp in plan.exported:
        found += partly_null_of(conn, tp, catalog, sample_size)
    return found


def partly_null_of(conn: Connection, tp: TablePlan, catalog: Catalog, sample_size: int = 5) -> list[Problem]:
    """``references_partly_null`` for one table."""
    found: list[Problem] = []
    for exp in partly_nullable_references(tp, catalog):
        rows = conn.execute(partly_null_references(tp, exp, sample_size)).fetchall()
        if rows:
            samples = sample_keys((r[1:] for r in rows), partly_null_sample_names(tp, exp))
            found.append(partly_null_problem(tp, exp, rows[0][0], samples))
    return found


def partly_null_problem(tp: TablePlan, exp: Expansion, count: object, samples: str) -> Problem:
    cols = ", ".join(exp.columns)
    ids = ", ".join(uncarried(exp))
    how = f"declared reference ({cols})" if exp.fk.declared else f"foreign key {exp.fk.name} ({cols})"
    fix = f"in those rows set {ids} NULL (the other columns travel as values) or fill in the NULL ones"
    if not exp.fk.declared and not exp.fk.not_enforced:
        fix += f"; re-create {exp.fk.name} with MATCH FULL so such rows cannot come back"
    return Problem(
        "error",
        "reference-partly-null",
        str(tp.table),
        f"{count} row(s) have some but not all columns of the {how} NULL, which PostgreSQL "
        f"does not check (MATCH SIMPLE): {samples}; such a row references no {exp.ref_table} row, "
        f"so {ids} (an id of {exp.ref_table}) has no natural key to travel as and would be lost",
        fix,
        exp.columns[0],
    )


# The export's refusal of unsafe data, kind by kind in the order it reports them: the
# problem code and the words that head the list of places (export.sql says the same).
UNSAFE_DATA_HEADS = (
    ("key-not-unique-data", "natural key not unique in the data of "),
    ("likely-reference", "likely reference not decided in "),
    ("reference-to-null-key", "reference to a row whose natural key is NULL in "),
    ("reference-dangling", "reference to rows that do not exist in "),
    ("reference-partly-null", "reference partly NULL in "),
    ("embedded-dangling", "ids inside JSON or text naming no row in "),
)


def unsafe_data_place(p: Problem, plan: Plan) -> str:
    """How the refusal's head names the place of ``p``."""
    if p.code == "key-not-unique-data":
        tp = next(t for n, t in plan.tables.items() if str(n) == p.table)
        return f"{p.table} ({', '.join(tp.natural_key)})"
    return _where(p)


def unsafe_data_line(p: Problem) -> str:
    return f"{_where(p)} [{p.code}]: {p.message}; fix: {p.fix}"
