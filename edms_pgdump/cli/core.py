"""export, import, verify, inspect."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from .. import history
from ..api import export_archive, import_archive, inspect_archive, verify_archive
from ..audit import written_path
from ..export import ExportResult
from ..load import ImportOptions, ImportReport
from ..mapping import CONFLICT_POLICIES, ConflictPolicy, load_mapping
from .app import app, audit_option, emit_json, json_option, out, progress_bars, quiet_option, run

DSN_HELP = "Connection string, e.g. postgresql://user@host:5432/dbname (or set PGHOST etc.)."


@app.command("export")
def export_cmd(
    dsn: str = typer.Option(..., "--dsn", help=DSN_HELP),
    mapping: Path = typer.Option(..., "--mapping", "-m", help="YAML mapping with natural keys."),
    output: Path = typer.Option(..., "--output", "-o", help="Archive to write."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Tables exported in parallel on one snapshot."),
    compression: str = typer.Option("zstd", "--compression", help="zstd or none."),
    level: int = typer.Option(3, "--level", help="zstd level (1-19)."),
    fmt: str = typer.Option("file", "--format", help="file (one tar file) or dir (a folder)."),
    sort_rows: bool = typer.Option(
        False, "--sorted", help="Rows in natural-key order: re-exports of the same data are byte-identical."
    ),
    audit_log: Path = audit_option(),
    json_out: bool = json_option(),
    quiet: bool = quiet_option(),
) -> None:
    """Export mapped tables with natural keys instead of ids, on one snapshot.

    Example: edms-pgdump export --dsn postgresql://localhost/prod -m config/edms.yaml -o prod.edmsdump
    """
    if fmt not in ("file", "dir"):
        raise typer.BadParameter("use file or dir", param_hint="--format")

    def go() -> ExportResult:
        m = load_mapping(mapping)
        with progress_bars(not quiet and not json_out) as bars:
            return export_archive(
                dsn,
                m,
                output,
                jobs=jobs,
                compression=compression,
                level=level,
                directory=fmt == "dir",
                progress=bars,
                audit_log=audit_log,
                sort_rows=sort_rows,
            )

    result = run(go, json_output=json_out)
    logged = written_path(audit_log, result.warnings)
    if json_out:
        emit_json({"ok": True, **result.to_dict(), "audit_log": str(logged) if logged else None})
        return
    t = Table("table", "rows", "bytes", title=f"exported {result.archive}")
    for row in result.tables:
        t.add_row(row["table"], str(row["rows"]), str(row["bytes"]))
    out.print(t)
    for w in result.warnings:
        out.print(f"warning: {w}", markup=False)
    out.print(f"{result.rows} rows in {result.seconds:.2f}s; archive id {result.archive_id}")
    out.print(f"manifest sha256 {result.manifest_sha256}", markup=False)
    if logged:
        out.print(f"audit: {logged}", markup=False)


def print_import_report(report: ImportReport, history_status: str | None = None) -> None:
    title = f"import {report.archive} -> {report.target}" + (
        " (dry run, rolled back)" if report.dry_run else ""
    )
    skipped = any(r.skipped for r in report.tables)
    headers = ["table", "expected", "staged", "inserted", "updated", "unchanged"]
    t = Table(*headers, *(["skipped"] if skipped else []), "ok", title=title)
    for r in report.tables:
        cells = [r.table, str(r.expected), str(r.staged), str(r.inserted), str(r.updated), str(r.unchanged)]
        if skipped:
            cells.append(str(r.skipped))
        t.add_row(*cells, "yes" if r.balanced else "NO")
    out.print(t)
    for w in report.warnings:
        out.print(f"warning: {w}", markup=False)
    if report.inserted == 0 and report.updated == 0:
        out.print("nothing to change: the target already holds this archive's data")
    state = (
        "committed" if report.committed else ("rolled back (dry run)" if report.dry_run else "not committed")
    )
    done = "would be applied" if report.dry_run else "applied"
    out.print(
        f"{report.inserted} inserted, {report.updated} updated ({done}); {state} in {report.seconds:.2f}s"
    )
    if history_status is not None:
        out.print(f"history: {history_status}", markup=False)


@app.command("import")
def import_cmd(
    archive: Path = typer.Argument(..., help="Archive written by edms-pgdump export."),
    dsn: str = typer.Option(..., "--dsn", help=DSN_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="Do everything, then roll back."),
    on_conflict: str = typer.Option(
        None, "--on-conflict", help="Override every table's policy: update, skip or error."
    ),
    lock_timeout: str = typer.Option("30s", "--lock-timeout", help="Give up waiting for locks after this."),
    statement_timeout: str = typer.Option("0", "--statement-timeout", help="0 means no limit."),
    work_mem: str = typer.Option("256MB", "--work-mem", help="work_mem for the resolving joins."),
    constraints: str = typer.Option(
        "keep",
        "--constraints",
        help="keep: foreign keys checked row by row. recreate: for big loads, drop the affected "
        "foreign keys and plain indexes inside the transaction and re-add them (validated set-based); "
        "needs table ownership and locks those tables ACCESS EXCLUSIVE until COMMIT.",
    ),
    no_history: bool = typer.Option(
        False, "--no-history", help="Do not record the import in the target's edms_pgdump.history table."
    ),
    audit_log: Path = audit_option(),
    json_out: bool = json_option(),
    quiet: bool = quiet_option(),
) -> None:
    """Import an archive in one transaction, resolving natural keys to the target's ids.

    Example: edms-pgdump import prod.edmsdump --dsn postgresql://localhost/fresh --dry-run
    """
    if on_conflict is not None and on_conflict not in CONFLICT_POLICIES:
        raise typer.BadParameter("use update, skip or error", param_hint="--on-conflict")
    if constraints not in ("keep", "recreate"):
        raise typer.BadParameter("use keep or recreate", param_hint="--constraints")
    opts = ImportOptions(
        dry_run=dry_run,
        on_conflict=_policy(on_conflict),
        lock_timeout=lock_timeout,
        statement_timeout=statement_timeout,
        work_mem=work_mem,
        constraints="recreate" if constraints == "recreate" else "keep",
    )

    def go() -> ImportReport:
        with progress_bars(not quiet and not json_out) as bars:
            return import_archive(
                dsn, archive, options=opts, progress=bars, history=not no_history, audit_log=audit_log
            )

    report = run(go, json_output=json_out)
    hist = history.status(report, not no_history)
    logged = written_path(audit_log, report.warnings)
    if json_out:
        emit_json({**report.to_dict(), "history": hist, "audit_log": str(logged) if logged else None})
    else:
        print_import_report(report, hist)
        if logged:
            out.print(f"audit: {logged}", markup=False)


@app.command("verify")
def verify_cmd(
    archive: Path = typer.Argument(..., help="Archive to check."),
    dsn: str = typer.Option(None, "--dsn", help="Also compare the archive's rows with this database."),
    json_out: bool = json_option(),
) -> None:
    """Check an archive's integrity (sizes, SHA-256, row counts); with --dsn, compare with a database.

    Example: edms-pgdump verify prod.edmsdump --dsn postgresql://localhost/fresh
    """
    result = run(lambda: verify_archive(archive, dsn), json_output=json_out)
    if json_out:
        emit_json(result)
    else:
        for d in result["damages"]:
            out.print(f"damaged: {d}", markup=False)
        for t in result["tables"]:
            out.print(f"{'ok' if t['ok'] else 'BAD'}  {t['table']}  {t['rows']} rows", markup=False)
        if result.get("database"):
            db = result["database"]
            out.print(
                f"database {db['target']}: {db['missing']} archive rows missing, "
                f"{db['different']} different" + (" - matches the archive" if db["matches"] else ""),
                markup=False,
            )
        out.print("archive OK" if result["ok"] else "archive FAILED verification", markup=False)
    if not result["ok"]:
        raise typer.Exit(1)


@app.command("inspect")
def inspect_cmd(
    archive: Path = typer.Argument(..., help="Archive to describe."),
    json_out: bool = json_option(),
) -> None:
    """Summarise an archive's manifest: source, snapshot, tables, counts, natural keys.

    Example: edms-pgdump inspect prod.edmsdump
    """
    info = run(lambda: inspect_archive(archive), json_output=json_out)
    if json_out:
        emit_json({"ok": True, **info})
        return
    src = info["source"]
    out.print(f"archive {info['archive']}  id {info['archive_id']}", markup=False)
    out.print(
        f"created {info['created_at']} by edms-pgdump {info['tool_version']} from "
        f"{src.get('database')} (PostgreSQL {src.get('server_version')}), snapshot {src.get('snapshot')}",
        markup=False,
    )
    out.print(f"mapping sha256 {info['mapping_sha256']}", markup=False)
    t = Table("table", "rows", "bytes", "natural key", "references")
    for row in info["tables"]:
        t.add_row(
            row["table"],
            str(row["rows"]),
            str(row["bytes"]),
            ", ".join(row["key_fields"]),
            ", ".join(f"{e['label']} -> {e['ref_table']}" for e in row["expansions"]),
        )
    out.print(t)


def _policy(value: str | None) -> ConflictPolicy | None:
    for p in CONFLICT_POLICIES:
        if value == p:
            return p
    return None
