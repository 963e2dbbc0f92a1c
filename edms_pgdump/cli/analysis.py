"""check, plan, sql: look before exporting, and psql runbooks for DBAs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import typer

from edms_pgdump.cli.app import (
    EXIT_PROBLEM,
    app,
    emit_json,
    json_option,
    one_line,
    out,
    progress_bars,
    quiet_option,
    run,
)
from edms_pgdump.cli.conventions import (
    DSN_HELP,
    dbname_option,
    host_option,
    optional_dsn,
    port_option,
    target_dsn,
    username_option,
)
from edms_pgdump.cli.core import checked, default_guard, identity_option, max_deletes_value
from edms_pgdump.cli.django import print_django_init

if TYPE_CHECKING:
    from edms_pgdump.mapping import ConflictPolicy
    from edms_pgdump.options import ConstraintMode
    from edms_pgdump.results import CheckReport, PlanResult

MAPPING_HELP = "YAML mapping with natural keys."


@app.command("check")
def check_cmd(
    archive: str = typer.Argument(
        None, help="Check an archive's manifest instead of a live database.", show_default=False
    ),
    dsn: str = dbname_option(),
    host: str = host_option(),
    port: str = port_option(),
    username: str = username_option(),
    mapping: Path = typer.Option(None, "--mapping", "-m", help=MAPPING_HELP),
    identity: list[Path] = identity_option(),
    json_out: bool = json_option(),
    quiet: bool = quiet_option(),
) -> None:
    """Find foreign-key problems that would leak ids or lose rows, with the mapping fix for each.

    Exit 0 when there are no errors (warnings allowed), 1 when any error is found.

    Example: edms-pgdump check --dsn postgresql://localhost/prod -m config/edms.yaml
    """
    from edms_pgdump.api import check_mapping

    target = optional_dsn(dsn, host, port, username, environment=archive is None)

    def go() -> CheckReport:
        with progress_bars(not quiet and not json_out and archive is None) as bars:
            return check_mapping(
                archive, dsn=target, mapping=mapping, identities=identity or (), progress=bars
            )

    report = run(go, json_output=json_out)
    if json_out:
        emit_json(report.to_dict())
    else:
        print_check_report(report)
    if not report.ok:
        raise typer.Exit(EXIT_PROBLEM)


def print_check_report(report: CheckReport) -> None:
    for p in report.problems:
        where = f"{p.table}.{p.column}" if p.column else p.table
        out.print(one_line(f"{p.severity}: {where} [{p.code}]: {p.message}"), markup=False)
        out.print(one_line(f"    fix: {p.fix}"), markup=False)
    for c in report.cycles:
        kind = "self-reference" if len(c.tables) == 1 else "cycle"
        out.print(f"{kind}: {' <-> '.join(c.tables)}", markup=False)
        for e in c.edges:
            facts = [
                f"nullable={_yn(e.nullable)}",
                f"deferrable={_yn(e.deferrable)}",
            ]
            mark = "breaks here" if e.broken else e.edge
            out.print(
                f"    {e.table} ({', '.join(e.columns)}) -> {e.ref_table} [{e.constraint}] "
                f"{mark}: {e.how}; {', '.join(facts)}",
                markup=False,
            )
    verdict = "OK" if report.ok else "PROBLEMS FOUND"
    out.print(
        f"{report.source}: {len(report.errors)} error(s), {len(report.warnings)} warning(s) - {verdict}",
        markup=False,
    )


def _yn(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


@app.command("init")
def init_cmd(
    dsn: str = dbname_option(DSN_HELP + " Its tables are mapped (with --django: default the project's)."),
    host: str = host_option(),
    port: str = port_option(),
    username: str = username_option(),
    output: Path = typer.Option(
        None, "--output", "-o", help="Write the mapping here (default: print it).", show_default=False
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
    django: str = typer.Option(
        None,
        "--django",
        help="Django settings module: write the mapping from the project's models "
        "(natural_key(), generic foreign keys, M2M); needs pip install 'edms-pgdump[django]'.",
        show_default=False,
    ),
    include_app: list[str] = typer.Option(
        None,
        "--include-app",
        help="With --django: also map this app (sessions, admin are left out).",
        show_default=False,
    ),
    json_out: bool = json_option(),
) -> None:
    """Write a first mapping: a natural key per table, guessed from its unique constraints.

    Tables with no unique key to use go under exclude: with a comment. Review the keys,
    then run check.

    Example: edms-pgdump init --dsn postgresql://localhost/prod -o mapping.yaml
    """
    from edms_pgdump.api import init_mapping

    target = optional_dsn(dsn, host, port, username, environment=django is None)
    result = run(
        lambda: init_mapping(
            target, output=output, force=force, django=django, include_apps=tuple(include_app or ())
        ),
        json_output=json_out,
    )
    if json_out:
        data = result.to_dict()
        emit_json(data)
        if not data["ok"]:
            raise typer.Exit(EXIT_PROBLEM)  # init --django: check found errors in the mapping
        return
    if django:
        print_django_init(result)
        return
    if result.output is None:
        sys.stdout.write(result.mapping)
        return
    out.print(
        f"wrote {result.output}: {result.keyed} table(s) with a natural key, "
        f"{len(result.tables) - result.keyed} excluded for lack of a unique key; "
        f"next: edms-pgdump check --dsn ... -m {result.output}",
        markup=False,
    )


@app.command("plan")
def plan_cmd(
    archive: str = typer.Argument(
        None, help="An archive: plan its import into --dsn, showing schema drift before any write."
    ),
    dsn: str = dbname_option(DSN_HELP + " Its schema is planned against."),
    host: str = host_option(),
    port: str = port_option(),
    username: str = username_option(),
    mapping: Path = typer.Option(None, "--mapping", "-m", help=MAPPING_HELP + " (not with an archive)"),
    show_sql: bool = typer.Option(True, "--sql/--no-sql", help="Print the SQL of every step."),
    ignore_column: list[str] = typer.Option(
        None, "--ignore-column", help="With an archive: TABLE.COLUMN the target lacks (carried, not written)."
    ),
    skip_table: list[str] = typer.Option(
        None, "--skip-table", help="With an archive: a TABLE the target lacks, left out."
    ),
    identity: list[Path] = identity_option(),
    json_out: bool = json_option(),
) -> None:
    """Show load order, cycles, how each foreign key becomes natural-key fields, and the SQL of each step.

    With an ARCHIVE, plan its import into --dsn: every schema drift (a column or table
    the target lacks, a NOT NULL column the archive lacks, a changed type) is named
    before anything is written.

    Example: edms-pgdump plan --dsn postgresql://localhost/prod -m config/edms.yaml --no-sql
    """
    if (archive is None) == (mapping is None):
        raise typer.BadParameter("give a mapping (-m) to plan an export, or an ARCHIVE to plan its import")

    from edms_pgdump.api import plan_archive, plan_mapping

    target = target_dsn(dsn, host, port, username)

    def go() -> PlanResult:
        if archive is not None:
            return plan_archive(
                archive,
                target,
                identities=identity or (),
                ignore_columns=ignore_column or (),
                skip_tables=skip_table or (),
            )
        return plan_mapping(target, mapping)

    info = run(go, json_output=json_out)
    if json_out:
        emit_json(info.to_dict())
        return
    out.print("load order (natural key fields; surrogate columns dropped and re-allocated):", markup=False)
    for i, row in enumerate(info.tables, start=1):
        exps: list[dict[str, Any]] = row["expansions"]
        dropped = f"; drops {', '.join(row['dropped_columns'])}" if row["dropped_columns"] else ""
        label = f"{i}." if row["export"] else "lookup"
        out.print(f"  {label} {row['table']} ({', '.join(row['key_fields'])}){dropped}", markup=False)
        for e in exps:
            if e.get("kind") == "generic":
                out.print(
                    f"       ({e['type_column']}, {e['id_column']}) -> per type: {e['ref_table']} "
                    f"as {e['field']} [generic, on_dangling {e['on_dangling']}]",
                    markup=False,
                )
                continue
            if e.get("kind") == "embedded":
                where = " ".join(f"{k} '{e[k]}'" for k in ("json", "pattern") if k in e)
                out.print(
                    f"       {e['column']} ({where}) -> {e['table']}.{e['target_column']} "
                    "as natural keys inside the value [embedded]",
                    markup=False,
                )
                continue
            cols, fields = ", ".join(e["columns"]), ", ".join(e["fields"])
            out.print(f"       {cols} -> {e['ref_table']} as {fields} [{e['edge']}]", markup=False)
    if info.subset:  # the mapping has where: filters: which rows each table brings, and why
        out.print("subset (rows chosen by):", markup=False)
        for rule in info.subset:
            out.print(f"  {rule['table']}: {rule['describe']}", markup=False)
    for c in info.cycles:
        for e in c["edges"]:
            if e["broken"]:
                out.print(
                    f"cycle {' <-> '.join(c['tables'])}: breaks {e['table']} ({', '.join(e['columns'])}) "
                    f"-> {e['ref_table']} [{e['constraint']}]: {e['how']}",
                    markup=False,
                )
    for p in info.problems:
        fix = f"; fix: {p['fix']}" if p["fix"] else ""
        out.print(one_line(f"{p['severity']}: {p['table']}: {p['message']}{fix}"), markup=False)
    if not show_sql:
        return
    out.print("\n-- export (one REPEATABLE READ snapshot)", markup=False)
    for row in info.tables:
        if row["export_sql"]:
            out.print(f"-- {row['table']}\n{row['export_sql']};", markup=False)
    out.print("\n-- import (one transaction)", markup=False)
    last: tuple[str, str | None] | None = None
    for step in info.import_steps:
        if (step["phase"], step["table"]) != last:
            last = (step["phase"], step["table"])
            out.print(f"-- {step['phase']}" + (f" {step['table']}" if step["table"] else ""), markup=False)
        out.print(step["sql"], markup=False)


@app.command("sql")
def sql_cmd(
    kind: str = typer.Argument(..., help="export or import.", show_default=False),
    dsn: str = dbname_option(DSN_HELP + " Source for export, target for import."),
    host: str = host_option(),
    port: str = port_option(),
    username: str = username_option(),
    mapping: Path = typer.Option(..., "--mapping", "-m", help=MAPPING_HELP),
    output: Path = typer.Option(
        None, "--output", "-o", help="Folder to write export.sql / import.sql into; stdout if omitted."
    ),
    lock_timeout: str = typer.Option("30s", "--lock-timeout", help="import.sql: SET LOCAL lock_timeout."),
    statement_timeout: str = typer.Option("0", "--statement-timeout", help="import.sql: 0 means no limit."),
    work_mem: str = typer.Option("256MB", "--work-mem", help="import.sql: work_mem for the resolving joins."),
    on_conflict: str = typer.Option(
        None, "--on-conflict", help="import.sql: update, skip or error for every table."
    ),
    constraints: str = typer.Option("auto", "--constraints", help="import.sql: auto, keep or recreate."),
    dry_run: bool = typer.Option(False, "--dry-run", help="import.sql ends with ROLLBACK instead of COMMIT."),
    delete_missing: bool = typer.Option(False, "--delete-missing", help="import.sql mirrors whole tables."),
    max_deletes: str = typer.Option(
        None, "--max-deletes", help="import.sql: with --delete-missing, a limit in all (all: none)."
    ),
    refresh_views: bool = typer.Option(
        False, "--refresh-materialized-views", help="import.sql refreshes views over the imported tables."
    ),
    allow_cascade: bool = typer.Option(
        False, "--allow-cascade", help="import.sql: with --delete-missing, accept FK actions of other tables."
    ),
    allow_side_effects: list[str] = typer.Option(
        None, "--allow-side-effects", help="import.sql: a TABLE outside the archive it may change (repeat)."
    ),
    prove: bool = typer.Option(False, "--prove", help="import.sql compares every written table's rows."),
    json_out: bool = json_option(),
) -> None:
    """Write a psql runbook (export.sql or import.sql) to review and run with psql -v ON_ERROR_STOP=1.

    The scripts read and write the data files in psql's variable datadir
    (psql -v datadir=DIR), default the current directory. Generate export.sql against
    the source and import.sql against the target.

    Example: edms-pgdump sql import --dsn postgresql://localhost/fresh -m config/edms.yaml -o runbooks/
    """
    from edms_pgdump.api import sql_runbook
    from edms_pgdump.options import ImportOptions

    # the same options as import: the runbook is rendered from the same import program
    opts = checked(
        lambda: ImportOptions(
            lock_timeout=lock_timeout,
            statement_timeout=statement_timeout,
            work_mem=work_mem,
            on_conflict=cast("ConflictPolicy | None", on_conflict),
            constraints=cast("ConstraintMode", constraints),
            dry_run=dry_run,
            delete_missing=delete_missing,
            max_deletes=max_deletes_value(max_deletes),
            max_deletes_percent=default_guard(delete_missing, max_deletes),
            refresh_materialized_views=refresh_views,
            allow_cascade=allow_cascade,
            allow_side_effects=tuple(allow_side_effects or ()),
            prove=prove,
        ),
        json_out,
    )
    target = target_dsn(dsn, host, port, username)
    result = run(
        lambda: sql_runbook(kind, target, mapping, output=output, options=opts), json_output=json_out
    )
    if json_out:
        emit_json(result.to_dict())
    elif result.script is not None:
        sys.stdout.write(result.script)
    else:
        for p in result.written:
            out.print(f"wrote {p}", markup=False)
