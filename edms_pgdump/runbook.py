"""psql runbooks: export.sql and import.sql a DBA can review and run with plain psql.

Why scripts at all: change tickets want the exact SQL, reviewed before it runs, and
some sites allow nothing but psql on production. Every statement below is the one
``export.py`` / ``load.py`` execute, taken from ``sqlgen`` and rendered, in the same
order as ``load._Importer``; only the plumbing around them (``\\copy`` instead of the
driver's COPY streams, DO blocks instead of Python ``if``) is psql-specific.

Counts: psql cannot count the lines of a file, so export.sql records each ``\\copy``'s
row count (psql's ``ROW_COUNT``) and writes them to ``counts.copy`` beside the data
files, inside the same snapshot. import.sql loads that file and enforces the same
invariants as the Python import: expected == staged == inserted + updated + unchanged,
and every staged natural key present in the target afterwards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from psycopg import sql

from . import sqlgen as g
from .catalog import Catalog, read_catalog
from .check import cycles_of
from .db import connect
from .errors import UsageError
from .load import ImportOptions
from .mapping import Mapping
from .names import QualifiedName, parse_qualified_name
from .plan import Expansion, Plan, TablePlan, build_plan

Kind = Literal["export", "import"]
KINDS: tuple[Kind, ...] = ("export", "import")
COUNTS_FILE = "counts.copy"


@dataclass(frozen=True)
class Step:
    """One runbook statement: what it is for, the table it touches, its psql text."""

    phase: str
    table: str | None
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "table": self.table, "sql": self.text}


def data_file(index: int) -> str:
    """The COPY text file of the index-th exported table (1-based, load order)."""
    return f"{index:04d}.copy"


def field_list(tp: TablePlan) -> str:
    """The data file's columns, written by export.sql and compared by import.sql, because
    COPY text has no header: the same types in another order would load silently wrong."""
    return json.dumps(list(tp.field_names))


def _r(stmt: sql.Composable) -> str:
    return g.render(stmt)


def _lit(value: object) -> str:
    return _r(sql.Literal(value))


def _psql_copy(statement: sql.Composable, stdio: str, path: str) -> str:
    """``COPY … TO STDOUT`` / ``FROM STDIN`` from sqlgen, as a one-line ``\\copy``."""
    text = _r(statement)
    assert text.startswith("COPY ") and text.endswith(" " + stdio) and "\n" not in text
    direction = "TO" if stdio == "STDOUT" else "FROM"
    return "\\copy " + text[len("COPY ") : -len(f" {direction} {stdio}")] + f" {direction} {_lit(path)}"


def _do(declare: str, body: str) -> str:
    """A DO block around sqlgen's statements, dollar-quoted with a tag they do not contain
    (an identifier may contain anything, ``$edms$`` included)."""
    tag, n = "$edms$", 0
    while tag in body or tag in declare:
        n += 1
        tag = f"$edms{n}$"
    return f"DO {tag}\nDECLARE\n{declare}\nBEGIN\n{body}\nEND\n{tag};"


def _samples_check(
    query: sql.Composable, fields: list[str], prefix: str, suffix: str, middle: str | None = None
) -> str:
    """RAISE with up to five offending rows (as JSON) when ``query`` returns any.

    Without ``middle`` the query returns ``fields`` then a duplicate count; with it, the
    total number of offending rows (``count(*) OVER ()``) then ``fields``, and the message
    reads prefix, total, middle, samples. The columns are renamed so that a key field
    called ``count`` cannot clash.
    """
    if middle is None:
        names = [*fields, "#count"]
        row = "(to_jsonb(q) - '#count')::text || ' ' || q.\"#count\" || ' times'"
        total_col, head = 'q."#count"', _lit(prefix)
    else:
        names = ["#total", *fields]
        row = "(to_jsonb(q) - '#total')::text"
        total_col, head = 'q."#total"', f"{_lit(prefix)} || total || {_lit(middle)}"
    alias = _r(sql.SQL(", ").join(sql.Identifier(n) for n in names))
    body = (
        f"  SELECT max({total_col}), string_agg({row}, ', ') INTO total, found\n"
        f"    FROM ({_r(query)}) AS q({alias});\n"
        "  IF found IS NOT NULL THEN\n"
        f"    RAISE EXCEPTION USING MESSAGE = {head} || found || {_lit(suffix)};\n"
        "  END IF;"
    )
    return _do("  total bigint;\n  found text;", body)


def _preamble(kind: Kind, plan: Plan, mapping: Mapping) -> list[str]:
    tables = ", ".join(str(n) for n in plan.load_order) or "(none)"
    usage = (
        "psql -v ON_ERROR_STOP=1 -v datadir=DIR -d SOURCE -f export.sql"
        if kind == "export"
        else "psql -v ON_ERROR_STOP=1 -v datadir=DIR -d TARGET -f import.sql"
    )
    return [
        f"-- edms-pgdump {kind} runbook; generated from the mapping with sha256 {mapping.sha256}",
        f"-- tables in load order: {tables}",
        f"-- run: {usage}",
        "-- DIR holds one COPY text file per table (0001.copy, ...) and counts.copy.",
        "-- psqlrc settings that would change the transaction semantics are reset here.",
        "\\set ON_ERROR_STOP on",
        "\\set ON_ERROR_ROLLBACK off",
        "\\set AUTOCOMMIT on",
        "\\if :{?datadir}",
        "\\else",
        "\\set datadir .",
        "\\endif",
        "\\cd :datadir",
    ]


def export_steps(plan: Plan) -> list[Step]:
    """One snapshot, one ``\\copy`` per table, then the row counts import.sql checks."""
    steps = [Step("session", None, _r(s) + ";") for s in g.session_statements()]
    steps.append(Step("begin", None, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"))
    counts: list[str] = []
    for i, tp in enumerate(plan.exported, start=1):
        copy = _psql_copy(g.copy_out(plan, tp), "STDOUT", data_file(i))
        steps.append(Step("copy_out", str(tp.table), copy))
        steps.append(Step("count", str(tp.table), f"\\set rows_{i:04d} :ROW_COUNT"))
        counts.append(f"({i}, {_lit(str(tp.table))}, :rows_{i:04d}, {_lit(field_list(tp))})")
    if counts:
        values = "COPY (VALUES " + ", ".join(counts) + f") TO STDOUT \\g {_lit(COUNTS_FILE)}"
        steps.append(Step("counts", None, values))
    steps.append(Step("commit", None, "COMMIT;"))
    return steps


class _ImportScript:
    """Mirrors ``load._Importer`` statement by statement, with checks as DO blocks."""

    def __init__(self, plan: Plan, options: ImportOptions) -> None:
        self.plan = plan
        self.opts = options
        self.steps: list[Step] = []
        self.tables = list(plan.load_order)
        self.index = {n: i for i, n in enumerate(self.tables, start=1)}
        self.staged = {n: g.staging_names(i, n) for n, i in self.index.items()}
        self.finalized: set[QualifiedName] = set()

    def add(self, phase: str, table: QualifiedName | None, text: str) -> None:
        self.steps.append(Step(phase, None if table is None else str(table), text))

    def fields(self, name: QualifiedName) -> set[str]:
        return set(self.plan.tables[name].field_names)

    def result(self, name: QualifiedName, column: str, value: str) -> None:
        self.add(
            "count",
            name,
            f"UPDATE edms_result SET {column} = {value} WHERE idx = {self.index[name]};",
        )

    def build(self) -> list[Step]:
        for s in g.session_statements():
            self.add("session", None, _r(s) + ";")
        self.add("begin", None, "BEGIN;")
        for setting, value in (
            ("lock_timeout", self.opts.lock_timeout),
            ("statement_timeout", self.opts.statement_timeout),
            ("work_mem", self.opts.work_mem),
        ):
            stmt = sql.SQL("SET LOCAL {} = {}").format(sql.Identifier(setting), sql.Literal(value))
            self.add("session", None, _r(stmt) + ";")
        self.expected_counts()
        if self.tables:
            self.add("lock", None, _r(g.lock_tables(self.tables)) + ";")
        for comp in self.plan.components:
            self.component(list(comp))
        for name in self.tables:
            self.balance(name)
        self.add(
            "report",
            None,
            "SELECT idx, table_name, expected, staged, inserted, updated, existing - updated AS unchanged"
            " FROM edms_result ORDER BY idx;",
        )
        self.add("commit", None, "COMMIT;")
        return self.steps

    def expected_counts(self) -> None:
        """Load counts.copy; refuse data whose tables or columns differ from this plan's."""
        self.add(
            "counts",
            None,
            "CREATE TEMP TABLE edms_expected (idx integer, table_name text, rows bigint, fields text)"
            " ON COMMIT DROP;",
        )
        self.add("counts", None, f"\\copy edms_expected FROM {_lit(COUNTS_FILE)}")
        self.add(
            "counts",
            None,
            "CREATE TEMP TABLE edms_result (idx integer PRIMARY KEY, table_name text NOT NULL,"
            " fields text NOT NULL, expected bigint, staged bigint, inserted bigint, updated bigint,"
            " existing bigint) ON COMMIT DROP;",
        )
        if not self.tables:
            return
        values = ", ".join(
            f"({i}, {_lit(str(n))}, {_lit(field_list(self.plan.tables[n]))})" for n, i in self.index.items()
        )
        self.add("counts", None, f"INSERT INTO edms_result (idx, table_name, fields) VALUES {values};")
        body = (
            "  SELECT string_agg(coalesce(e.idx, r.idx) || ': ' || coalesce(e.table_name, '(missing)')"
            " || ' vs ' || coalesce(r.table_name, '(missing)'), ', ')\n"
            "    INTO found FROM edms_expected AS e FULL JOIN edms_result AS r ON r.idx = e.idx\n"
            "    WHERE e.table_name IS DISTINCT FROM r.table_name;\n"
            "  IF found IS NOT NULL THEN\n"
            "    RAISE EXCEPTION USING MESSAGE = 'counts.copy does not list the tables this script loads ('"
            " || found || '); use data written by the export.sql generated from the same mapping';\n"
            "  END IF;\n"
            "  SELECT string_agg(r.table_name || ' was exported with ' || e.fields || ' but is loaded as '"
            " || r.fields, '; ')\n"
            "    INTO found FROM edms_expected AS e JOIN edms_result AS r ON r.idx = e.idx\n"
            "    WHERE e.fields IS DISTINCT FROM r.fields;\n"
            "  IF found IS NOT NULL THEN\n"
            "    RAISE EXCEPTION USING MESSAGE = 'the data files do not have the columns this script loads: '"
            " || found || '; migrate the schemas to match, then generate export.sql against the source"
            " and import.sql against the target again';\n"
            "  END IF;\n"
            "  UPDATE edms_result AS r SET expected = e.rows FROM edms_expected AS e WHERE e.idx = r.idx;"
        )
        self.add("check", None, _do("  found text;", body))

    # -- per component, the order of load._Importer.load_component -----------------
    def component(self, members: list[QualifiedName]) -> None:
        for n in members:
            self.stage(n)
        for n in members:
            self.key(n)
        deferred = sorted(
            {
                (n, e.fk.name)
                for n in members
                for e in self.plan.tables[n].expansions
                if e.edge == "deferred" and not e.fk.declared
            }
        )
        if deferred:
            self.add("constraints", None, _r(g.set_constraints(deferred, "DEFERRED")) + ";")
        for n in members:
            self.resolve(n)
        for n in members:
            tp = self.plan.tables[n]
            names = self.staged[n]
            if tp.on_conflict == "error":
                self.add(
                    "check",
                    n,
                    _samples_check(
                        g.changed_rows(tp, names, self.fields(n)),
                        [kf.name for kf in tp.key_fields],
                        f"{n}: ",
                        "; set on_conflict: update or skip in the mapping to proceed",
                        " existing row(s) differ from the archive and on_conflict is error: ",
                    ),
                )
            self.add("insert", n, _r(g.insert_new(tp, names, self.fields(n))) + ";")
            self.result(n, "inserted", ":ROW_COUNT")
        for n in members:
            tp = self.plan.tables[n]
            for e in g.active_expansions(tp, self.fields(n)):
                if e.edge == "second_pass":
                    self.add("second_pass", n, _r(g.second_pass(tp, self.staged[n], e)) + ";")
        for n in members:
            tp = self.plan.tables[n]
            names = self.staged[n]
            existing = g.count_rows(names.final, sql.SQL("NOT {}").format(g.ident(tp.new_marker)))
            self.result(n, "existing", f"({_r(existing)})")
            stmt = g.update_existing(tp, names, self.fields(n)) if tp.on_conflict != "skip" else None
            if stmt is not None:
                self.add("update", n, _r(stmt) + ";")
                self.result(n, "updated", ":ROW_COUNT")
            else:
                self.result(n, "updated", "0")
        if deferred:
            self.add("constraints", None, _r(g.set_constraints(deferred, "IMMEDIATE")) + ";")

    def stage(self, name: QualifiedName) -> None:
        tp = self.plan.tables[name]
        names = self.staged[name]
        fields = list(tp.field_names)
        i = self.index[name]
        self.add("stage", name, _r(g.create_raw(tp, names, fields)) + ";")
        self.add("copy_in", name, _psql_copy(g.copy_in(names, fields), "STDIN", data_file(i)))
        body = (
            f"  got := ({_r(g.count_rows(names.raw))});\n"
            f"  SELECT expected INTO want FROM edms_result WHERE idx = {i};\n"
            "  IF got IS DISTINCT FROM want THEN\n"
            f"    RAISE EXCEPTION USING MESSAGE = {_lit(f'{name}: staged ')} || got || "
            f"' rows from {data_file(i)} but counts.copy says ' || coalesce(want::text, 'nothing')"
            " || '; the data directory is inconsistent, re-run export.sql';\n"
            "  END IF;\n"
            f"  UPDATE edms_result SET staged = got WHERE idx = {i};"
        )
        self.add("check", name, _do("  got bigint;\n  want bigint;", body))
        self.add("analyze", name, _r(sql.SQL("ANALYZE {}").format(names.raw)) + ";")
        key_names = ", ".join(kf.name for kf in tp.key_fields)
        self.add(
            "check",
            name,
            _samples_check(
                g.duplicate_keys(tp, names.raw),
                [kf.name for kf in tp.key_fields],
                f"{name}: the archive holds duplicate natural keys ({key_names}): ",
                "; fix the source data or choose a natural key that is unique",
            ),
        )
        if not tp.key_is_unique or any(kf.nullable for kf in tp.key_fields):
            self.add(
                "check",
                name,
                _samples_check(
                    g.target_duplicate_keys(self.plan, tp),
                    [kf.name for kf in tp.key_fields],
                    f"{name}: the target holds duplicate natural keys ({key_names}): ",
                    "; deduplicate the target or add a unique constraint",
                ),
            )

    def key(self, name: QualifiedName) -> None:
        tp = self.plan.tables[name]
        names = self.staged[name]
        self.add("key", name, _r(g.create_keyed(self.plan, tp, names)) + ";")
        body = (
            f"  keyed := ({_r(g.count_rows(names.keyed))});\n"
            f"  SELECT staged INTO want FROM edms_result WHERE idx = {self.index[name]};\n"
            "  IF keyed <> want THEN\n"
            f"    RAISE EXCEPTION USING MESSAGE = {_lit(f'{name}: natural keys matched ')} || keyed"
            " || ' target rows for ' || want || ' archive rows; the target has duplicate keys';\n"
            "  END IF;"
        )
        self.add("check", name, _do("  keyed bigint;\n  want bigint;", body))

    def resolve(self, name: QualifiedName) -> None:
        tp = self.plan.tables[name]
        names = self.staged[name]
        fields = self.fields(name)
        self.add(
            "resolve",
            name,
            _r(g.create_final(self.plan, tp, names, self.staged, fields, self.finalized)) + ";",
        )
        self.finalized.add(name)
        self.add("analyze", name, _r(sql.SQL("ANALYZE {}").format(names.final)) + ";")
        for exp in g.active_expansions(tp, fields):
            self.add("check", name, self.unresolved_check(tp, exp))

    def unresolved_check(self, tp: TablePlan, exp: Expansion) -> str:
        return _samples_check(
            g.unresolved(tp, self.staged[tp.table], exp),
            [f.name for f in exp.fields],
            f"{tp.table}: ",
            f"; those rows of {exp.ref_table} are neither in the archive nor in the target",
            f" unresolved reference(s) through {exp.fk.name} ({', '.join(exp.columns)} -> {exp.ref_table}): ",
        )

    def balance(self, name: QualifiedName) -> None:
        tp = self.plan.tables[name]
        i = self.index[name]
        body = (
            f"  present := ({_r(g.count_present(self.plan, tp, self.staged[name]))});\n"
            f"  SELECT * INTO r FROM edms_result WHERE idx = {i};\n"
            "  IF NOT (r.expected = r.staged AND r.staged = r.inserted + r.existing"
            " AND present = r.staged) THEN\n"
            "    RAISE EXCEPTION USING MESSAGE = format('%s: counts do not balance (expected %s, staged %s,"
            " inserted %s + updated %s + unchanged %s, present after %s)', r.table_name, r.expected,"
            " r.staged, r.inserted, r.updated, r.existing - r.updated, present);\n"
            "  END IF;"
        )
        self.add("verify", name, _do("  present bigint;\n  r record;", body))


def import_steps(plan: Plan, options: ImportOptions | None = None) -> list[Step]:
    return _ImportScript(plan, options or ImportOptions()).build()


def _refuse_line_breaks(plan: Plan) -> None:
    """psql reads scripts line by line: a name with a line break could end a comment or a
    \\copy line and smuggle in a meta-command, so such names get no runbook."""
    for tp in plan.tables.values():
        names = [tp.table.schema, tp.table.name, *tp.field_names, *tp.ref_columns]
        names += [e.fk.name for e in tp.expansions] + [c for e in tp.expansions for c in e.columns]
        for n in names:
            if "\n" in n or "\r" in n:
                raise UsageError(
                    f"{tp.table}: the name {n!r} contains a line break, which a psql runbook cannot "
                    "carry safely; use edms-pgdump export/import for this table, or rename it"
                )


def runbook_text(kind: Kind, plan: Plan, mapping: Mapping, options: ImportOptions | None = None) -> str:
    """The whole psql script; deterministic, so it can be a golden file."""
    plan.raise_for_errors()
    _refuse_line_breaks(plan)
    steps = export_steps(plan) if kind == "export" else import_steps(plan, options)
    lines = _preamble(kind, plan, mapping)
    current: str | None = None
    for step in steps:
        if step.table != current and (step.table is not None or step.phase != "session"):
            lines.append("")
            lines.append(f"-- {step.table or 'all tables'}")
            current = step.table
        lines.append(step.text)
    return "\n".join(lines) + "\n"


def plan_for(dsn: str, mapping: Mapping) -> tuple[Plan, Catalog]:
    """Read the catalog of ``dsn`` and plan ``mapping`` against it."""
    conn = connect(dsn)
    try:
        catalog = read_catalog(conn)
    finally:
        conn.close()
    return build_plan(mapping, catalog), catalog


def write_runbooks(
    dsn: str,
    mapping: Mapping,
    kinds: list[Kind],
    output: str | Path,
    options: ImportOptions | None = None,
) -> list[Path]:
    """Write export.sql and/or import.sql into ``output`` (created if missing)."""
    for k in kinds:
        if k not in KINDS:
            raise UsageError(f"unknown runbook {k!r}: use export or import")
    plan, _ = plan_for(dsn, mapping)
    plan.raise_for_errors()
    out = Path(output)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"{out}: cannot create the output folder ({exc.strerror}); pick another -o"
        ) from None
    written = []
    for k in kinds:
        path = out / f"{k}.sql"
        path.write_text(runbook_text(k, plan, mapping, options))
        written.append(path)
    return written


def render_runbook(dsn: str, mapping: Mapping, kind: Kind, options: ImportOptions | None = None) -> str:
    """One runbook as text (for printing instead of writing files)."""
    if kind not in KINDS:
        raise UsageError(f"unknown runbook {kind!r}: use export or import")
    plan, _ = plan_for(dsn, mapping)
    return runbook_text(kind, plan, mapping, options)


def describe_plan(plan: Plan) -> dict[str, Any]:
    """Load order, FK expansions, broken cycle edges and the SQL of every step."""
    plan.raise_for_errors()
    tables: list[dict[str, Any]] = []
    for tp in plan.tables.values():
        tables.append(
            {
                "table": str(tp.table),
                "export": tp.export,
                "natural_key": list(tp.natural_key),
                "key_fields": [kf.name for kf in tp.key_fields],
                "dropped_columns": [c.name for c in tp.surrogate],
                "on_conflict": tp.on_conflict,
                "expansions": [e.to_dict() for e in tp.expansions],
                "export_sql": g.render(g.copy_out(plan, tp)) if tp.export else None,
            }
        )
    order = {n: i for i, n in enumerate(plan.load_order)}
    tables.sort(key=lambda t: (order.get(parse_qualified_name(str(t["table"])), len(order)), t["table"]))
    return {
        "load_order": [str(n) for n in plan.load_order],
        "components": [[str(n) for n in c] for c in plan.components],
        "cycles": [c.to_dict() for c in cycles_of(plan)],
        "tables": tables,
        "problems": [p.to_dict() for p in plan.problems],
        "import_steps": [s.to_dict() for s in import_steps(plan)],
    }


def explain_plan(dsn: str, mapping: Mapping) -> dict[str, Any]:
    """``edms-pgdump plan``: the plan of ``mapping`` against the schema of ``dsn``."""
    plan, _ = plan_for(dsn, mapping)
    return describe_plan(plan)
