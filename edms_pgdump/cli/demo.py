"""demo."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table
from rich.text import Text

from edms_pgdump.cli.app import app, emit_json, err, json_option, out, run

if TYPE_CHECKING:
    from edms_pgdump.results import DemoResult, RestoreResult

# demo.story.DEFAULT_SCALE, spelled here so the help needs no import (a test compares them)
DEFAULT_SCALE = 2000


@app.command("demo")
def demo_cmd(
    scale: int = typer.Option(
        DEFAULT_SCALE, "--scale", help="Documents in the production database (users = 1%, versions = 2x)."
    ),
    dsn: str = typer.Option(
        None,
        "--dsn",
        help="Use this server instead of an embedded one; the demo creates and drops its own "
        "uniquely named databases (the role needs CREATEDB).",
    ),
    keep: bool = typer.Option(
        False, "--keep", help="Keep the server, databases and files; print their DSNs."
    ),
    json_out: bool = json_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No step log on stderr."),
) -> None:
    """Show an id-based restore losing rows and attaching others to the wrong owners, and
    edms-pgdump's natural-key import doing neither, side by side.

    Runs on an embedded PostgreSQL (no installation needed) and leaves nothing behind.
    Exit code 0 only if the edms-pgdump side verified row by row.

    Example: edms-pgdump demo --scale 5000
    """

    from edms_pgdump.demo.story import run_demo

    def log(msg: str) -> None:
        if not quiet and not json_out:
            err.print(Text(f"- {msg}", style="dim"))

    result = run(lambda: run_demo(scale=scale, dsn=dsn, keep=keep, log=log), json_output=json_out)
    if json_out:
        emit_json(result.to_dict())
    else:
        print_demo(result)
    if not result.ok:
        raise typer.Exit(1)


def _cell(r: RestoreResult, table: str, via_archive: bool = False) -> Text:
    t = next(t for t in r.tables if t.table == table)
    counts = f"{t.before} -> {t.archive} -> {t.after}" if via_archive else f"{t.before} -> {t.after}"
    if t.ok:
        return Text.assemble(f"{counts}  ", ("ok", "green"))
    damage = ", ".join(
        x for x in (f"{t.lost} lost" if t.lost else "", f"{t.wrong} wrong" if t.wrong else "") if x
    )
    return Text.assemble(f"{counts}  ", (damage, "bold red"))


def print_demo(result: DemoResult) -> None:
    out.print(
        f"PostgreSQL {result.postgres_version} ({result.server}), {result.scale} documents. "
        "Restoring production into a re-initialised copy that has been in use: its own accounts and "
        "versions are numbered from 1 like production's, so ids overlap:"
    )
    if result.id_based_skipped:
        out.print(
            f"id-based side not run ({result.id_based_skipped}): no pg_dump was made, only the "
            "edms-pgdump import is shown",
            markup=False,
        )
    t = Table(show_edge=False, pad_edge=False)
    t.add_column("table")
    t.add_column("source", justify="right")
    headers = {
        "pg_dump/pg_restore (ids) one transaction": "pg_restore --single-transaction",
        "pg_dump/pg_restore (ids)": "pg_restore (errors ignored)",
        "edms-pgdump": "edms-pgdump import",
    }
    for r in result.restores:
        t.add_column(headers.get(r.method, r.method))
    reference = result.restores[-1].tables if result.restores else []
    for check in reference:
        cells: list[str | Text] = [check.table.removeprefix("public."), str(check.source)]
        cells += [_cell(r, check.table, r.method == "edms-pgdump") for r in result.restores]
        t.add_row(*cells)
    t.add_row("exit code", "", *[str(r.exit_code) for r in result.restores])
    if not out.is_terminal:
        out.width = max(out.width, 120)  # logs and pipes: keep one line per table
    out.print(t)
    from edms_pgdump.demo.story import RELATIONSHIPS

    rels = "; ".join(f"{k.removeprefix('public.')}: {v}" for k, v in RELATIONSHIPS.items() if v != "-")
    out.print(
        "Counts are rows before -> after (edms-pgdump: before -> archive -> after). Each source row was "
        "looked up in the target by natural key with its relationships spelled as natural keys "
        f"({rels}): "
        "lost = missing, wrong = a value or relationship differs.",
        markup=False,
    )
    for r in result.restores:
        lost = sum(x.lost for x in r.tables)
        wrong = sum(x.wrong for x in r.tables)
        line = f"{r.command}: exit {r.exit_code}, {lost} rows lost, {wrong} wrong"
        if r.error:
            line += f"; first error: {r.error}"
        if r.method == "edms-pgdump":
            line += " - VERIFIED" if r.verified else " - NOT VERIFIED"
        out.print(line, markup=False)
    if result.reimport:
        out.print(
            f"importing the same archive again: already applied = {result.reimport['already_applied']}, "
            f"{result.reimport['inserted']} inserted, {result.reimport['updated']} updated; "
            f"edms_pgdump.history now holds {result.history_rows} row(s)",
            markup=False,
        )
    out.print(
        f"archive {result.archive_id}, manifest sha256 {result.manifest_sha256}; "
        f"{len(result.audit_lines)} audit line(s) written",
        markup=False,
    )
    for note in result.notes:
        out.print(f"note: {note}", markup=False)
    for name, dsn in result.kept.items():
        out.print(f"kept {name}: {dsn}", markup=False)
    out.print(f"done in {result.seconds:.1f}s")
