"""psql runbooks: export.sql and import.sql a DBA can review and run with plain psql.

Why scripts at all: change tickets want the exact SQL, reviewed before it runs, and
some sites allow nothing but psql on production. Each script is a program the library
runs (``export.program``, ``program``) rendered statement for statement; only the
plumbing around them (``\\copy`` instead of the driver's COPY streams, DO blocks
instead of Python ``if``) is psql-specific.

Counts: psql cannot count the lines of a file, so export.sql records each ``\\copy``'s
row count (psql's ``ROW_COUNT``) and writes them to ``counts.copy`` beside the data
files, inside the same snapshot. import.sql loads that file and enforces the same
invariants as the Python import: expected == staged == inserted + updated + unchanged,
and every staged natural key present in the target afterwards.

export.sql is the export program (``export.program``, the steps the library's export
runs) rendered for psql: the same snapshot and settings, the same refusals of the data
with the same messages (``export_checks`` renders them as DO blocks; a failure RAISEs,
psql stops, nothing is written), the same subset closure (its repeat-until-nothing-grows
loops are DO blocks) and the same COPY per table.

Subsets (the mapping's ``where:``): export.sql records each table's rule in
``scope.copy`` (the manifest's ``scope``), and an import.sql with ``--delete-missing``
refuses data whose scope is not the one it deletes in, so a slice is never mirrored as
whole tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from edms_pgdump import sqlgen as g
from edms_pgdump.analysis.check import cycles_of
from edms_pgdump.analysis.generic_probe import plan_for_runbook
from edms_pgdump.catalog.names import QualifiedName, parse_qualified_name
from edms_pgdump.catalog.read import Catalog, read_catalog
from edms_pgdump.db import connect
from edms_pgdump.errors import UsageError
from edms_pgdump.export.program import (
    NOTHING_EXPORTED,
    REFUSALS,
    Commit,
    CopyOut,
    Counts,
    ExportProgram,
    PinSession,
    Settings,
    Snapshot,
    SubsetClosure,
    SubsetCounts,
    SubsetFilter,
    SubsetNeeded,
    SubsetStart,
    export_program,
)
from edms_pgdump.export.program import Step as ExportStep
from edms_pgdump.export.subset import TableScope, resolve_filters, subset_steps
from edms_pgdump.load.subset_scope import planned_scopes, scope_json
from edms_pgdump.mapping import Mapping
from edms_pgdump.options import ExportOptions, ImportOptions
from edms_pgdump.plan.build import Plan
from edms_pgdump.program.build import import_program
from edms_pgdump.program.render_psql import (
    COUNTS_FILE,
    SCOPE_FILE,
    data_file,
    do_block,
    field_list,
    import_script,
    literal,
    psql_copy,
    render,
)
from edms_pgdump.program.render_psql import ScriptLine as Step
from edms_pgdump.runbook.export_checks import render_refusal
from edms_pgdump.sqlgen import subset as q
from edms_pgdump.sqlgen.where import RowFilter

Kind = Literal["export", "import"]
KINDS: tuple[Kind, ...] = ("export", "import")


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
        "-- DIR holds one COPY text file per table (0001.copy, ...), counts.copy and scope.copy.",
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


def export_steps(
    plan: Plan,
    catalog: Catalog,
    mapping: Mapping,
    filters: dict[QualifiedName, RowFilter] | None = None,
    options: ExportOptions | None = None,
) -> list[Step]:
    """The export program (the one the library runs) rendered for psql: one snapshot,
    the refusals of the data, a subset's closure, one ``\\copy`` per table, then the row
    counts import.sql checks and each table's scope."""
    subset = subset_steps(plan, catalog, filters) if filters else None
    return export_script(export_program(plan, catalog, mapping, options, subset))


def export_script(program: ExportProgram) -> list[Step]:
    """Each step of ``program`` as psql lines."""
    lines: list[Step] = []
    for step in program.steps:
        lines += _export_lines(step)
    return lines


def _export_lines(step: ExportStep) -> list[Step]:
    if isinstance(step, PinSession):
        return [Step("session", None, render(s) + ";") for s in step.statements]
    if isinstance(step, Snapshot):
        return [Step("begin", None, render(step.statement) + ";")]
    if isinstance(step, Settings):
        return [Step("session", None, render(s) + ";") for s in step.statements]
    if isinstance(step, REFUSALS):
        return render_refusal(step)
    if isinstance(step, SubsetStart):
        lines = [Step("subset", None, render(q.create_kept(k)) + ";") for k in step.kept]
        return [*lines, Step("subset", None, render(q.read_only_from_now()) + ";")]
    if isinstance(step, SubsetFilter):
        # user SQL runs inside a DO block, where psql substitutes no :variable
        body = (
            f"  EXECUTE {literal(render(step.statement))};\n"
            "EXCEPTION WHEN OTHERS THEN\n"
            f"  RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = {literal(step.failed + ': ')}"
            f" || SQLERRM || {literal(NOTHING_EXPORTED)};"
        )
        return [Step("subset where", str(step.filter.table), do_block("", body))]
    if isinstance(step, SubsetClosure):
        return _closure_block(step)
    if isinstance(step, SubsetNeeded):
        return [
            Step("subset needed", None, f"-- {step.what}"),
            Step("subset needed", None, render(step.statement) + ";"),
        ]
    if isinstance(step, SubsetCounts):
        t = str(step.table)
        counts = render(q.kept_counts(step.kept))
        gset = f"\\gset subset_{step.index:04d}_"
        return [
            Step("subset counts", t, render(q.analyze_kept(step.kept)) + ";"),
            Step("subset counts", t, f"SELECT * FROM ({counts}) AS c(kept, in_scope) {gset}"),
        ]
    if isinstance(step, CopyOut):
        i = step.index
        copy = psql_copy(step.statement, "STDOUT", data_file(i))
        return [
            Step("copy_out", str(step.table), copy),
            Step("count", str(step.table), f"\\set rows_{i:04d} :ROW_COUNT"),
        ]
    if isinstance(step, Counts):
        return _counts_lines(step)
    assert isinstance(step, Commit)
    return [Step("commit", None, render(step.statement) + ";")]


def _counts_lines(step: Counts) -> list[Step]:
    """counts.copy (each \\copy's ROW_COUNT, psql's own count) and scope.copy, written
    inside the snapshot."""
    counts: list[str] = []
    scopes: list[str] = []
    for e in step.entries:
        i, table = e.index, literal(str(e.table))
        counts.append(f"({i}, {table}, :rows_{i:04d}, {literal(field_list(e.fields))})")
        in_scope = f":subset_{i:04d}_in_scope" if e.kept else "NULL"
        scopes.append(f"({i}, {table}, {literal(scope_json(e.scope))}, {in_scope}::bigint)")
    return [
        Step("counts", None, "COPY (VALUES " + ", ".join(counts) + f") TO STDOUT \\g {literal(COUNTS_FILE)}"),
        Step("scope", None, "COPY (VALUES " + ", ".join(scopes) + f") TO STDOUT \\g {literal(SCOPE_FILE)}"),
    ]


def _closure_block(step: SubsetClosure) -> list[Step]:
    """A closure as one DO block: run every statement, stop when none added a row, else
    ANALYZE the kept tables and go again, at most ``step.rounds`` times."""
    run = "".join(
        f"    -- {what}\n    EXECUTE {literal(render(statement))};\n"
        "    GET DIAGNOSTICS n = ROW_COUNT;\n    grown := grown + n;\n"
        for statement, what in step.statements
    )
    analyze = "".join(f"    EXECUTE {literal(render(q.analyze_kept(k)))};\n" for k in step.kept)
    body = (
        f"  FOR i IN 1..{step.rounds} LOOP\n"
        "    grown := 0;\n"
        f"{run}"
        "    IF grown = 0 THEN\n      RETURN;\n    END IF;\n"
        f"{analyze}"
        "  END LOOP;\n"
        f"  RAISE EXCEPTION USING MESSAGE = {literal(step.overflow)};"
    )
    return [
        Step("subset closure", None, f"-- subset: {step.phase}, until nothing grows"),
        Step("subset closure", None, do_block("  grown bigint;\n  n bigint;", body)),
    ]


def import_steps(
    plan: Plan,
    catalog: Catalog,
    options: ImportOptions | None = None,
    filters: dict[QualifiedName, RowFilter] | None = None,
) -> list[Step]:
    """The import program (the one the library runs) rendered for psql.

    With --delete-missing, ``filters`` (the mapping's ``where:``) give the scope the
    deletes are limited to, as the manifest's scope does for ``import``; the script
    first checks that scope.copy, written by export.sql, records the same scope for
    every table (whole tables when nothing is filtered)."""
    if options is None or not options.delete_missing:
        return import_script(import_program(plan, catalog, options))
    scopes = planned_scopes(plan, catalog, filters or {})
    program = import_program(plan, catalog, options, scopes=scopes)
    expected = {
        str(t): scope_json(scopes[t] if t in scopes else TableScope(t, "whole")) for t in program.tables
    }
    return import_script(program, expected)


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


def runbook_text(
    kind: Kind, plan: Plan, mapping: Mapping, catalog: Catalog, options: ImportOptions | None = None
) -> str:
    """The whole psql script; deterministic, so it can be a golden file."""
    plan.raise_for_errors()
    _refuse_line_breaks(plan)
    filters = resolve_filters(mapping)
    if kind == "export":
        steps = export_steps(plan, catalog, mapping, filters)
    else:
        steps = import_steps(plan, catalog, options, filters)
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
        plan = plan_for_runbook(conn, mapping, catalog)
    finally:
        conn.close()
    return plan, catalog


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
    plan, catalog = plan_for(dsn, mapping)
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
        path.write_text(runbook_text(k, plan, mapping, catalog, options))
        written.append(path)
    return written


def render_runbook(dsn: str, mapping: Mapping, kind: Kind, options: ImportOptions | None = None) -> str:
    """One runbook as text (for printing instead of writing files)."""
    if kind not in KINDS:
        raise UsageError(f"unknown runbook {kind!r}: use export or import")
    plan, catalog = plan_for(dsn, mapping)
    return runbook_text(kind, plan, mapping, catalog, options)


def describe_plan(plan: Plan, catalog: Catalog) -> dict[str, Any]:
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
                "expansions": [e.to_dict() for e in tp.expansions]
                + [gp.to_dict() for gp in tp.generic]
                + [ep.to_dict() for ep in tp.embedded],
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
        "import_steps": [s.to_dict() for s in import_steps(plan, catalog)],
    }


def explain_plan(dsn: str, mapping: Mapping) -> dict[str, Any]:
    """``edms-pgdump plan``: the plan of ``mapping`` against the schema of ``dsn``."""
    plan, catalog = plan_for(dsn, mapping)
    return describe_plan(plan, catalog)
