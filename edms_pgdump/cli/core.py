"""export, import, verify, inspect."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, cast

import typer
from rich.table import Table
from typer.core import TyperCommand

from edms_pgdump.api import cleanup_staging, export_archive, import_archive, inspect_archive, verify_archive
from edms_pgdump.cli.app import (
    app,
    audit_option,
    emit_json,
    err,
    json_option,
    out,
    print_warnings,
    progress_bars,
    quiet_option,
    run,
    verbose_option,
)
from edms_pgdump.mapping import CONFLICT_POLICIES, ConflictPolicy
from edms_pgdump.options import ConstraintMode, ExportOptions, ImportOptions
from edms_pgdump.results import ExportResult, ImportReport, ImportResult


def _scope_text(scope: dict[str, Any] | None) -> str:
    """One line per table of a subset export: its rule, as ``plan`` shows it."""
    if not scope:
        return ""
    rule = str(scope.get("rule", ""))
    if rule == "where":
        return f"where {scope.get('where', '')}"
    if rule == "owned":
        return "owned by " + ", ".join(scope.get("owners", []))
    if rule == "needed":
        return "needed by " + ", ".join(scope.get("needed_by", []))
    return rule


DSN_HELP = "Connection string, e.g. postgresql://user@host:5432/dbname (or set PGHOST etc.)."


def identity_option() -> Any:
    return typer.Option(
        None,
        "--identity",
        "-i",
        help="age identity file (from age-keygen) that decrypts an encrypted archive; repeatable.",
        show_default=False,
    )


def trusted_key_option() -> Any:
    return typer.Option(
        None,
        "--trusted-key",
        help="minisign public key (key.pub) the archive must be signed with; repeatable, also "
        "$EDMS_PGDUMP_TRUSTED_KEYS (paths separated by ':'). Unsigned, otherwise signed or changed "
        "archives are refused before anything is written.",
        show_default=False,
    )


class _PairedWhere(TyperCommand):
    """``--where TABLE EXPR`` takes two values each time: typer has no repeatable
    two-value option, so the parameter is told to read two (each use: a 2-tuple)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for p in self.params:
            if p.name == "where":
                p.nargs = 2


def where_option() -> Any:
    return typer.Option(
        None,
        "--where",
        metavar="TABLE EXPR",
        help="Subset: keep TABLE's rows matching the SQL condition EXPR (repeatable; replaces the "
        "mapping's where: for TABLE), their owned children and every row they need.",
        show_default=False,
    )


@app.command("export", cls=_PairedWhere)
def export_cmd(
    dsn: str = typer.Option(..., "--dsn", help=DSN_HELP),
    mapping: Path = typer.Option(..., "--mapping", "-m", help="YAML mapping with natural keys."),
    output: Path = typer.Option(..., "--output", "-o", help="Archive to write; - for stdout (a pipe)."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Tables exported in parallel on one snapshot."),
    compression: str = typer.Option("zstd", "--compression", help="zstd or none."),
    level: int = typer.Option(3, "--level", help="zstd level (1-19)."),
    fmt: str = typer.Option("file", "--format", help="file (one tar file) or dir (a folder)."),
    sort_rows: bool = typer.Option(
        False, "--sorted", help="Rows in natural-key order: re-exports of the same data are byte-identical."
    ),
    encrypt_to: list[str] = typer.Option(
        None,
        "--encrypt-to",
        "-r",
        help="Encrypt the archive with age to this recipient (age1…); repeatable.",
        show_default=False,
    ),
    recipients_file: list[Path] = typer.Option(
        None,
        "--recipients-file",
        "-R",
        help="File of age recipients, one per line (as age -R); repeatable.",
        show_default=False,
    ),
    sign_key: Path = typer.Option(
        None,
        "--sign-key",
        help="minisign secret key that signs the manifest (password from $EDMS_PGDUMP_SIGN_PASSWORD "
        "or asked for).",
        show_default=False,
    ),
    where: list[Any] = where_option(),
    audit_log: Path = audit_option(),
    json_out: bool = json_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Export mapped tables with natural keys instead of ids, on one snapshot.

    Example: edms-pgdump export --dsn postgresql://localhost/prod -m config/edms.yaml -o prod.edmsdump

    Subset: edms-pgdump export … --where public.documents "status = 'published'"
    """
    if fmt not in ("file", "dir"):
        raise typer.BadParameter("use file or dir", param_hint="--format")

    def go() -> ExportResult:
        options = ExportOptions(
            jobs=jobs,
            compression=compression,
            level=level,
            directory=fmt == "dir",
            sort_rows=sort_rows,
            encrypt_to=tuple(encrypt_to or ()),
            recipients_file=tuple(recipients_file or ()),
            sign_key=sign_key,
            where=tuple((str(a), str(b)) for a, b in where or ()),
        )
        with progress_bars(not quiet and not json_out) as bars:
            return export_archive(dsn, mapping, output, options=options, progress=bars, audit_log=audit_log)

    result = run(go, json_output=json_out)
    # ``-o -``: stdout carries the archive, so the report goes to stderr
    report_to = err if str(output) == "-" else out
    if json_out:
        if report_to is err:
            sys.stderr.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
        else:
            emit_json(result.to_dict())
        return
    subset = bool(result.manifest.filters)
    extra = ["rows chosen by"] if subset else []
    t = Table("table", "rows", "bytes", *extra, title=f"exported {result.archive}")
    for row in result.tables:
        t.add_row(row.table, str(row.rows), str(row.bytes), *([_scope_text(row.scope)] if subset else []))
    report_to.print(t)
    print_warnings(result.warnings, verbose, report_to)
    report_to.print(f"{result.rows} rows in {result.seconds:.2f}s; archive id {result.archive_id}")
    report_to.print(f"manifest sha256 {result.manifest_sha256}", markup=False)
    if sign_key is not None:
        report_to.print(f"manifest signed with {sign_key} (member manifest.json.minisig)", markup=False)
    if encrypt_to or recipients_file:
        report_to.print("archive encrypted with age: decrypt with --identity FILE, or age -d", markup=False)
    if result.audit_log:
        report_to.print(f"audit: {result.audit_log}", markup=False)


def print_import_report(
    report: ImportReport, history_status: str | None = None, verbose: bool = True
) -> None:
    title = f"import {report.archive} -> {report.target}" + (
        " (dry run, rolled back)" if report.dry_run else ""
    )
    skipped = any(r.skipped for r in report.tables)
    deleted = any(r.deleted for r in report.tables)
    headers = ["table", "expected", "staged", "inserted", "updated", "unchanged"]
    extra = [*(["skipped"] if skipped else []), *(["deleted"] if deleted else [])]
    t = Table(*headers, *extra, "ok", title=title)
    for r in report.tables:
        cells = [r.table, str(r.expected), str(r.staged), str(r.inserted), str(r.updated), str(r.unchanged)]
        if skipped:
            cells.append(str(r.skipped))
        if deleted:
            cells.append(str(r.deleted))
        t.add_row(*cells, "yes" if r.balanced else "NO")
    out.print(t)
    print_warnings(report.warnings, verbose)
    for e in report.side_effects:
        out.print(
            f"side effect: {e['table']} +{e['inserted']} inserted, {e['updated']} updated, "
            f"{e['deleted']} deleted ({e['cause']})",
            markup=False,
        )
    if report.inserted == 0 and report.updated == 0:
        out.print("nothing to change: the target already holds this archive's data")
    state = (
        "committed" if report.committed else ("rolled back (dry run)" if report.dry_run else "not committed")
    )
    done = "would be applied" if report.dry_run else "applied"
    gone = sum(r.deleted for r in report.tables)
    out.print(
        f"{report.inserted} inserted, {report.updated} updated"
        + (f", {gone} deleted" if gone else "")
        + f" ({done}); {state} in {report.seconds:.2f}s"
    )
    staging = report.staging
    if staging.get("schema"):
        out.print(
            f"staged over {staging['connections']} connections in {staging['schema']} (dropped)", markup=False
        )
    if history_status is not None:
        out.print(f"history: {history_status}", markup=False)


@app.command("import")
def import_cmd(
    archive: Path = typer.Argument(..., help="Archive written by edms-pgdump export; - reads stdin."),
    dsn: str = typer.Option(..., "--dsn", help=DSN_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="Do everything, then roll back."),
    on_conflict: str = typer.Option(
        None, "--on-conflict", help="Override every table's policy: " + ", ".join(CONFLICT_POLICIES) + "."
    ),
    lock_timeout: str = typer.Option("30s", "--lock-timeout", help="Give up waiting for locks after this."),
    statement_timeout: str = typer.Option("0", "--statement-timeout", help="0 means no limit."),
    work_mem: str = typer.Option("256MB", "--work-mem", help="work_mem for the resolving joins."),
    constraints: str = typer.Option(
        "auto",
        "--constraints",
        help="keep: foreign keys checked row by row. recreate: for big loads, drop the affected "
        "foreign keys and plain indexes inside the transaction and re-add them (validated set-based); "
        "needs table ownership and locks those tables ACCESS EXCLUSIVE until COMMIT. auto (default): "
        "recreate where the role owns the table and the import brings more rows than it held, keep "
        "elsewhere.",
    ),
    no_history: bool = typer.Option(
        False, "--no-history", help="Do not record the import in the target's edms_pgdump.history table."
    ),
    refresh_views: bool = typer.Option(
        False,
        "--refresh-materialized-views",
        help="Refresh the materialized views that read the imported tables, in the same transaction.",
    ),
    delete_missing: bool = typer.Option(
        False,
        "--delete-missing",
        help="Mirror: also delete the target rows of the archive's tables whose natural key the archive "
        "does not hold (children first; a row still referenced by a row that stays stops the import).",
    ),
    max_deletes: int = typer.Option(
        None, "--max-deletes", help="With --delete-missing: refuse, writing nothing, if more rows would go."
    ),
    allow_cascade: bool = typer.Option(
        False,
        "--allow-cascade",
        help="With --delete-missing: accept ON DELETE CASCADE / SET NULL / SET DEFAULT from tables outside "
        "the archive (otherwise refused before any write); their changes are reported as side effects.",
    ),
    allow_side_effects: list[str] = typer.Option(
        None,
        "--allow-side-effects",
        help="A TABLE outside the archive whose updates and deletes by this transaction (FK actions, "
        "triggers) are expected: reported as side effects instead of refused. Repeatable.",
    ),
    prove: bool = typer.Option(
        False,
        "--prove",
        help="Before COMMIT, compare every written table's rows with the archive's (by default only tables "
        "whose triggers, rules, RLS, inheritance or key collation can change what was written).",
    ),
    ignore_column: list[str] = typer.Option(
        None, "--ignore-column", help="TABLE.COLUMN of the archive the target lacks: carried, not written."
    ),
    skip_table: list[str] = typer.Option(
        None, "--skip-table", help="A TABLE of the archive the target lacks: left out."
    ),
    jobs: int = typer.Option(
        1,
        "--jobs",
        "-j",
        help="Stage the archive over this many connections, into UNLOGGED tables of a private schema "
        "(edms_pgdump_stage_<archive id>, dropped at the end), before the one transaction that writes. "
        "Needs CREATE on the database; otherwise staged on one connection.",
    ),
    identity: list[Path] = identity_option(),
    trusted_key: list[Path] = trusted_key_option(),
    audit_log: Path = audit_option(),
    json_out: bool = json_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Import an archive in one transaction, resolving natural keys to the target's ids.

    Example: edms-pgdump import prod.edmsdump --dsn postgresql://localhost/fresh --dry-run
    """
    # passed on as typed text: the library validates both and names the allowed values
    opts = run(
        lambda: ImportOptions(
            dry_run=dry_run,
            on_conflict=cast("ConflictPolicy | None", on_conflict),
            lock_timeout=lock_timeout,
            statement_timeout=statement_timeout,
            work_mem=work_mem,
            constraints=cast("ConstraintMode", constraints),
            refresh_materialized_views=refresh_views,
            delete_missing=delete_missing,
            max_deletes=max_deletes,
            ignore_columns=tuple(ignore_column or ()),
            skip_tables=tuple(skip_table or ()),
            jobs=jobs,
            allow_cascade=allow_cascade,
            allow_side_effects=tuple(allow_side_effects or ()),
            prove=prove,
        ),
        json_output=json_out,
    )

    def go() -> ImportResult:
        with progress_bars(not quiet and not json_out) as bars:
            return import_archive(
                dsn,
                archive,
                options=opts,
                progress=bars,
                history=not no_history,
                audit_log=audit_log,
                identities=identity or (),
                trusted_keys=trusted_key or (),
            )

    report = run(go, json_output=json_out)
    if json_out:
        emit_json(report.to_dict())
    else:
        print_import_report(report, report.history, verbose)
        if report.audit_log:
            out.print(f"audit: {report.audit_log}", markup=False)


@app.command("verify")
def verify_cmd(
    archive: Path = typer.Argument(..., help="Archive to check; - reads stdin."),
    dsn: str = typer.Option(None, "--dsn", help="Also compare the archive's rows with this database."),
    identity: list[Path] = identity_option(),
    trusted_key: list[Path] = trusted_key_option(),
    json_out: bool = json_option(),
) -> None:
    """Check an archive's integrity (sizes, SHA-256, row counts); with --dsn, compare with a database.

    Example: edms-pgdump verify prod.edmsdump --dsn postgresql://localhost/fresh
    """
    result = run(
        lambda: verify_archive(archive, dsn, identities=identity or (), trusted_keys=trusted_key or ()),
        json_output=json_out,
    )
    if json_out:
        emit_json(result.to_dict())
    else:
        print_warnings(result.warnings, True)
        if result.signature is not None:
            out.print(f"signed by {result.signature.describe()}", markup=False)
        for d in result.damages:
            out.print(f"damaged: {d}", markup=False)
        for t in result.tables:
            out.print(f"{'ok' if t['ok'] else 'BAD'}  {t['table']}  {t['rows']} rows", markup=False)
        db = result.database
        if db is not None and db.error:
            out.print(f"database {db.target}: cannot compare: {db.error}", markup=False)
        elif db is not None:
            out.print(
                f"database {db.target}: {db.missing} archive rows missing, "
                f"{db.different} different" + (" - matches the archive" if db.matches else ""),
                markup=False,
            )
        out.print("archive OK" if result.ok else "archive FAILED verification", markup=False)
    if not result.ok:
        raise typer.Exit(1)


@app.command("cleanup")
def cleanup_cmd(
    dsn: str = typer.Option(..., "--dsn", help=DSN_HELP),
    json_out: bool = json_option(),
) -> None:
    """Drop the staging schemas that killed parallel imports (-j N) left behind.

    A schema whose import is still running is left alone. Every import sweeps them too.

    Example: edms-pgdump cleanup --dsn postgresql://localhost/prod
    """
    found = run(lambda: cleanup_staging(dsn), json_output=json_out)
    if json_out:
        emit_json(found.to_dict())
        return
    for schema in found.dropped:
        out.print(f"dropped {schema}", markup=False)
    for schema in found.in_use:
        out.print(f"in use  {schema} (an import is running)", markup=False)
    for note in found.not_owned_notes():
        out.print(f"warning: {note}", markup=False)
    if not (found.dropped or found.in_use or found.not_owned):
        out.print("no staging schemas left behind", markup=False)


@app.command("inspect")
def inspect_cmd(
    archive: Path = typer.Argument(..., help="Archive to describe; - reads stdin."),
    identity: list[Path] = identity_option(),
    trusted_key: list[Path] = trusted_key_option(),
    json_out: bool = json_option(),
) -> None:
    """Summarise an archive's manifest: source, snapshot, tables, counts, natural keys.

    Example: edms-pgdump inspect prod.edmsdump
    """
    info = run(
        lambda: inspect_archive(archive, identities=identity or (), trusted_keys=trusted_key or ()),
        json_output=json_out,
    )
    if json_out:
        emit_json(info.to_dict())
        return
    m = info.manifest
    src = m.source
    out.print(f"archive {info.archive}  id {m.archive_id}", markup=False)
    out.print(
        f"created {m.created_at} by edms-pgdump {m.tool_version} from "
        f"{src.database} (PostgreSQL {src.server_version}), snapshot {src.snapshot}",
        markup=False,
    )
    out.print(f"mapping sha256 {m.mapping_sha256}", markup=False)
    print_warnings(info.warnings, True)
    if info.encrypted:
        out.print("encrypted with age (decrypted with the --identity given)", markup=False)
    if info.signature is not None:
        out.print(f"signed by minisign {info.signature.describe()}", markup=False)
    else:
        out.print("not signed", markup=False)
    t = Table("table", "rows", "bytes", "natural key", "references")
    for row in m.tables:
        t.add_row(
            row.table,
            str(row.rows),
            str(row.bytes),
            ", ".join(row.key_fields),
            ", ".join(f"{e['label']} -> {e['ref_table']}" for e in row.expansions),
        )
    out.print(t)
