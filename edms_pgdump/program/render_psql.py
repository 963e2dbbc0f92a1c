"""The psql interpreter of the import program: the same steps, written as a script.

Plumbing only: counts live in a temporary table (``edms_count``) instead of Python
variables, ``When`` becomes ``\\gset`` + ``\\if``, checks become DO blocks that raise
with up to ``sample_size`` offending rows as JSON, and ``COPY … FROM STDIN`` becomes a
``\\copy`` of the table's data file.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from edms_pgdump import sqlgen
from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.program.steps import (
    EXPECTED,
    STAGED,
    Balance,
    Check,
    CompareCounts,
    Condition,
    CopyIn,
    Derive,
    End,
    Execute,
    Message,
    Program,
    Record,
    Refuse,
    Setting,
    Step,
    Term,
    When,
)
from edms_pgdump.results import BALANCE_REFUSAL, BALANCE_RULE

COUNTS_FILE = "counts.copy"
# each table's rule (where, owned, needed, whole) as JSON, written by export.sql beside
# counts.copy and checked by an import.sql that deletes (--delete-missing)
SCOPE_FILE = "scope.copy"


@dataclass(frozen=True)
class ScriptLine:
    """One runbook statement: what it is for, the table it touches, its psql text."""

    phase: str
    table: str | None
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "table": self.table, "sql": self.text}


def data_file(index: int) -> str:
    """The COPY text file of the index-th exported table (1-based, load order)."""
    return f"{index:04d}.copy"


def render(stmt: sql.Composable) -> str:
    return sqlgen.render(stmt)


def literal(value: object) -> str:
    return render(sql.Literal(value))


def psql_copy(statement: sql.Composable, stdio: str, path: str) -> str:
    """``COPY … TO STDOUT`` / ``FROM STDIN`` from sqlgen, as a one-line ``\\copy``."""
    text = render(statement)
    assert text.startswith("COPY ") and "\n" not in text
    direction = "TO" if stdio == "STDOUT" else "FROM"
    marker = f" {direction} {stdio}"
    at = text.index(marker)
    return "\\copy " + text[len("COPY ") : at] + f" {direction} {literal(path)}" + text[at + len(marker) :]


def do_block(declare: str, body: str) -> str:
    """A DO block around sqlgen's statements, dollar-quoted with a tag they do not contain
    (an identifier may contain anything, ``$edms$`` included)."""
    tag, n = "$edms$", 0
    while tag in body or tag in declare:
        n += 1
        tag = f"$edms{n}$"
    return f"DO {tag}\nDECLARE\n{declare}\nBEGIN\n{body}\nEND\n{tag};"


class _Renderer:
    def __init__(self, program: Program, scopes: dict[str, str] | None = None) -> None:
        self.program = program
        self.scopes = scopes
        self.index = {n: i for i, n in enumerate(program.tables, start=1)}
        self.lines: list[ScriptLine] = []

    def add(self, phase: str, table: QualifiedName | None, text: str) -> None:
        self.lines.append(ScriptLine(phase, None if table is None else str(table), text))

    # -- counts ------------------------------------------------------------------------
    def count_expr(self, term: Term) -> str:
        value = (
            f"coalesce((SELECT value FROM edms_count WHERE idx = {self.index[term.table]}"
            f" AND name = {literal(term.count)}), 0)"
        )
        return value if term.factor == 1 else f"{term.factor} * {value}"

    def sum_expr(self, terms: tuple[Term, ...]) -> str:
        return " + ".join(self.count_expr(t) for t in terms) or "0"

    def condition(self, condition: Condition) -> str:
        return " AND ".join(f"({self.sum_expr(terms)}) >= {minimum}" for terms, minimum in condition.bounds)

    def store(self, table: QualifiedName, name: str, value: str) -> str:
        return (
            f"INSERT INTO edms_count VALUES ({self.index[table]}, {literal(name)}, {value})"
            " ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;"
        )

    # -- the script ----------------------------------------------------------------------
    def build(self) -> list[ScriptLine]:
        self.steps(self.program.opening)
        self.expected_counts()
        self.steps(self.program.steps)
        self.add(
            "report",
            None,
            "SELECT t.idx, t.table_name, "
            + ", ".join(
                "coalesce((SELECT value FROM edms_count c WHERE c.idx = t.idx"
                f" AND c.name = {literal(n)}), 0) AS {n}"
                for n in ("expected", "staged", "inserted", "updated", "unchanged", "skipped")
            )
            + " FROM edms_tables AS t ORDER BY t.idx;",
        )
        self.steps(self.program.closing)
        return self.lines

    def expected_counts(self) -> None:
        """Load counts.copy; refuse data whose tables or columns differ from this plan's."""
        self.add(
            "counts",
            None,
            "CREATE TEMP TABLE edms_expected (idx integer, table_name text, rows bigint, fields text)"
            " ON COMMIT DROP;",
        )
        self.add("counts", None, f"\\copy edms_expected FROM {literal(COUNTS_FILE)}")
        self.add(
            "counts",
            None,
            "CREATE TEMP TABLE edms_tables (idx integer PRIMARY KEY, table_name text NOT NULL,"
            " fields text NOT NULL) ON COMMIT DROP;",
        )
        self.add(
            "counts",
            None,
            "CREATE TEMP TABLE edms_count (idx integer, name text, value bigint, PRIMARY KEY (idx, name))"
            " ON COMMIT DROP;",
        )
        if not self.index:
            return
        values = ", ".join(
            f"({i}, {literal(str(n))}, {literal(field_list(self.program.fields[n]))})"
            for n, i in self.index.items()
        )
        self.add("counts", None, f"INSERT INTO edms_tables (idx, table_name, fields) VALUES {values};")
        body = (
            "  SELECT string_agg(coalesce(e.idx, r.idx) || ': ' || coalesce(e.table_name, '(missing)')"
            " || ' vs ' || coalesce(r.table_name, '(missing)'), ', ')\n"
            "    INTO found FROM edms_expected AS e FULL JOIN edms_tables AS r ON r.idx = e.idx\n"
            "    WHERE e.table_name IS DISTINCT FROM r.table_name;\n"
            "  IF found IS NOT NULL THEN\n"
            "    RAISE EXCEPTION USING MESSAGE = 'counts.copy does not list the tables this script loads ('"
            " || found || '); use data written by the export.sql generated from the same mapping';\n"
            "  END IF;\n"
            "  SELECT string_agg(r.table_name || ' was exported with ' || e.fields || ' but is loaded as '"
            " || r.fields, '; ')\n"
            "    INTO found FROM edms_expected AS e JOIN edms_tables AS r ON r.idx = e.idx\n"
            "    WHERE e.fields IS DISTINCT FROM r.fields;\n"
            "  IF found IS NOT NULL THEN\n"
            "    RAISE EXCEPTION USING MESSAGE = 'the data files do not have the columns this script loads: '"
            " || found || '; migrate the schemas to match, then generate export.sql against the source"
            " and import.sql against the target again';\n"
            "  END IF;\n"
            f"  INSERT INTO edms_count SELECT idx, {literal(EXPECTED)}, rows FROM edms_expected;"
        )
        self.add("check", None, do_block("  found text;", body))
        if self.scopes is not None:
            self.expected_scopes(self.scopes)

    def expected_scopes(self, scopes: dict[str, str]) -> None:
        """--delete-missing: the data must have been exported with the scope this script
        deletes in (a slice mirrored as whole tables would delete every row outside
        it). Rules compare as jsonb, without ``needed_by`` (needed rows are never deleted)."""
        self.add(
            "counts",
            None,
            "CREATE TEMP TABLE edms_scope (idx integer, table_name text, scope text, rows_in_scope bigint)"
            " ON COMMIT DROP;",
        )
        self.add("counts", None, f"\\copy edms_scope FROM {literal(SCOPE_FILE)}")
        if not scopes:
            return
        values = ", ".join(f"({literal(t)}, {literal(j)})" for t, j in scopes.items())
        body = (
            "  SELECT string_agg(r.table_name || ' was exported with the scope '"
            " || coalesce(e.scope, '(none)') || ' but this script deletes in ' || r.scope, '; ')\n"
            f"    INTO found FROM (VALUES {values}) AS r(table_name, scope)\n"
            "    LEFT JOIN edms_scope AS e ON e.table_name = r.table_name\n"
            "    WHERE (e.scope::jsonb - 'needed_by') IS DISTINCT FROM (r.scope::jsonb - 'needed_by');\n"
            "  IF found IS NOT NULL THEN\n"
            "    RAISE EXCEPTION USING MESSAGE = 'scope.copy: ' || found || '; generate export.sql and"
            " import.sql from the same mapping (the same where: entries), or generate import.sql without"
            " --delete-missing; nothing was written';\n"
            "  END IF;"
        )
        self.add("check", None, do_block("  found text;", body))

    def steps(self, steps: tuple[Step, ...]) -> None:
        for step in steps:
            self.step(step)

    def step(self, step: Step) -> None:
        if isinstance(step, When):
            self.add("when", None, f"SELECT {self.condition(step.condition)} AS edms_when \\gset")
            self.add("when", None, f"-- when {step.why or 'the condition holds'}")
            self.add("when", None, "\\if :edms_when")
            self.steps(step.steps)
            self.add("when", None, "\\endif")
        elif isinstance(step, Execute):
            for check in step.on_unique_violation:
                self.check(check)
            self.add(step.step.replace(" ", "_"), step.table, render(step.statement) + ";")
            if step.count is not None and step.table is not None:
                self.add("count", step.table, self.store(step.table, step.count, ":ROW_COUNT"))
        elif isinstance(step, CopyIn):
            path = data_file(self.index[step.table])
            self.add("copy_in", step.table, psql_copy(step.statement, "STDIN", path))
            self.add("count", step.table, self.store(step.table, STAGED, ":ROW_COUNT"))
        elif isinstance(step, Record):
            self.record(step)
        elif isinstance(step, Derive):
            self.add(
                "count", step.table, self.store(step.table, step.count, f"({self.sum_expr(step.terms)})")
            )
        elif isinstance(step, Check):
            self.check(step)
        elif isinstance(step, CompareCounts):
            self.compare(step)
        elif isinstance(step, Refuse):
            value = self.count_expr(step.value)
            body = (
                f"  RAISE EXCEPTION USING MESSAGE = {literal(step.message.head)} || {value}"
                f" || {literal(step.message.tail)};"
            )
            self.add("check", step.table, do_block("", body))
        elif isinstance(step, Balance):
            self.balance(step.table)
        elif isinstance(step, Setting):
            self.add("session", None, render(step.statement) + ";")
        elif isinstance(step, End):
            self.add("commit", None, render(sqlgen.commit() if step.commit else sqlgen.rollback()) + ";")
        else:  # pragma: no cover - exhaustive
            raise TypeError(step)

    def record(self, step: Record) -> None:
        names = [f"c{i}" for i in range(len(step.counts))]
        alias = ", ".join(names)
        values = ", ".join(f"({literal(n)}, q.{c})" for n, c in zip(step.counts, names))
        self.add(
            "count",
            step.table,
            f"INSERT INTO edms_count SELECT {self.index[step.table]}, v.name, v.value"
            f" FROM ({render(step.query)}) AS q({alias})"
            f" CROSS JOIN LATERAL (VALUES {values}) AS v(name, value)"
            " ON CONFLICT (idx, name) DO UPDATE SET value = EXCLUDED.value;",
        )

    def explained(self, failed_when: str, explain: tuple[Check, ...], raise_block: str, table: Any) -> None:
        """Run ``explain`` only once the cheap test shows a failure, then raise."""
        if not explain:
            self.add("check", table, raise_block)
            return
        self.add("check", table, f"SELECT {failed_when} AS edms_failed \\gset")
        self.add("check", table, "\\if :edms_failed")
        for check in explain:
            self.check(check)
        self.add("check", table, raise_block)
        self.add("check", table, "\\endif")

    def check(self, step: Check) -> None:
        if step.shape == "exists":
            body = (
                f"  IF EXISTS ({render(step.query)}) THEN\n"
                f"    RAISE EXCEPTION USING MESSAGE = {literal(step.message.head + step.message.tail)};\n"
                "  END IF;"
            )
            block = do_block("", body)
            self.explained(f"EXISTS ({render(step.query)})", step.explain, block, step.table)
            return
        block = samples_block(
            step, self.store(step.table, step.count, "total") if step.count and step.table else ""
        )
        if step.explain:
            self.explained(f"EXISTS ({render(step.query)})", step.explain, block, step.table)
        else:
            self.add("check", step.table, block)

    def compare(self, step: CompareCounts) -> None:
        left = self.count_expr(Term(step.table, step.left))
        right = self.count_expr(Term(step.table, step.right))
        m = step.message
        body = (
            f"  got := {left};\n"
            f"  want := {right};\n"
            "  IF got <> want THEN\n"
            f"    RAISE EXCEPTION USING MESSAGE = {literal(m.head)} || got || {literal(m.middle or ' vs ')}"
            f" || want || {literal(m.tail)};\n"
            "  END IF;"
        )
        self.explained(
            f"{left} <> {right}", step.explain, do_block("  got bigint;\n  want bigint;", body), step.table
        )

    def balance(self, name: QualifiedName) -> None:
        """``results.BALANCE_RULE`` as a condition, ``BALANCE_REFUSAL`` as a format()."""
        names = list(dict.fromkeys(n for pair in BALANCE_RULE for side in pair for n in side))
        c = {n: self.count_expr(Term(name, n)) for n in names}
        rule = " AND ".join(" = ".join(" + ".join(side) for side in pair) for pair in BALANCE_RULE)
        text, args = "", []
        for literal_text, field, _, _ in string.Formatter().parse(BALANCE_REFUSAL):
            text += literal_text.replace("%", "%%")
            if field is not None:
                text += "%s"
                args.append(literal(str(name)) if field == "table" else field)
        body = (
            "".join(f"  {n} := {expr};\n" for n, expr in c.items())
            + f"  IF NOT ({rule}) THEN\n"
            f"    RAISE EXCEPTION USING MESSAGE = format({literal(text)}, {', '.join(args)});\n"
            "  END IF;"
        )
        declare = "\n".join(f"  {n} bigint;" for n in c)
        self.add("verify", name, do_block(declare, body))


def samples_block(step: Check, store: str) -> str:
    """RAISE (or warn) with up to ``sample_size`` offending rows, as JSON, when the check's
    query returns any. The columns are renamed so that a key field called ``count``
    cannot clash."""
    m: Message = step.message
    if step.shape == "count_last":
        names = [*step.fields, "#count"]
        row = "(to_jsonb(q) - '#count')::text || ' ' || q.\"#count\" || ' times'"
        total_col, head = 'q."#count"', literal(m.head)
    else:
        names = ["#total", *step.fields]
        row = "(to_jsonb(q) - '#total')::text"
        total_col = 'q."#total"'
        head = (
            f"{literal(m.head)} || total || {literal(m.middle or '')}"
            if m.middle is not None
            else literal(m.head)
        )
    alias = render(sql.SQL(", ").join(sql.Identifier(n) for n in names))
    level = "WARNING" if step.warn else "EXCEPTION"
    body = (
        f"  SELECT max({total_col}), string_agg({row}, ', ') INTO total, found\n"
        f"    FROM ({render(step.query)}) AS q({alias});\n"
        "  IF found IS NOT NULL THEN\n"
        + (f"    {store}\n" if store else "")
        + f"    RAISE {level} USING MESSAGE = {head} || found || {literal(m.tail)};\n"
        "  END IF;"
    )
    return do_block("  total bigint;\n  found text;", body)


def field_list(fields: tuple[str, ...]) -> str:
    """The data file's columns, written by export.sql and compared by import.sql, because
    COPY text has no header: the same types in another order would load silently wrong."""
    import json

    return json.dumps(list(fields))


def import_script(program: Program, scopes: dict[str, str] | None = None) -> list[ScriptLine]:
    """``scopes`` (table -> rule as JSON): refuse data whose scope.copy records others."""
    return _Renderer(program, scopes).build()
