"""export, import, verify, inspect."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import typer
from rich.table import Table
from typer.core import TyperCommand

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
from edms_pgdump.cli.conventions import (
    dbname_option,
    host_option,
    optional_dsn,
    port_option,
    target_dsn,
    username_option,
)

if TYPE_CHECKING:  # the library is imported when a command runs: --help and --version stay fast
    from edms_pgdump.mapping import ConflictPolicy
    from edms_pgdump.options import ConstraintMode, ImportOptions
    from edms_pgdump.results import ExportResult, ImportReport, ImportResult

# mapping.CONFLICT_POLICIES, spelled here so the help needs no import (a test compares them)
CONFLICT_POLICIES = ("update", "skip", "error")
EXIT_DATABASE_DIFFERS = 3


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


def subset_notes(rows: list[tuple[str, int, dict[str, Any] | None]]) -> list[str]:
    """A filter that did not narrow its table as asked, said plainly: the rows other
    tables need come along, so ``--where`` on a table a whole table references can export
    every row of it."""
    notes: list[str] = []
    for name, count, scope in rows:
        if not scope or scope.get("rule") != "where" or "rows_in_scope" not in scope:
            continue
        matched = int(scope["rows_in_scope"])
        if count > matched:
            notes.append(
                f"note: {name}: the filter matched {matched} row(s), but {count} were exported: the "
                "others are needed by rows of other tables (a table exported whole keeps every row "
                "it references); --delete-missing treats only the matched rows as the subset's"
            )
    return notes


def table(*headers: str, title: str | None = None) -> Table:
    """A result table whose first column (a table name) is never cut or wrapped: the
    other columns give way, so the table fits 80 columns when the names do."""
    t = Table(title=title)
    for i, h in enumerate(headers):
        if i == 0:
            t.add_column(h, no_wrap=True, overflow="ignore")
        else:
            t.add_column(h, overflow="fold")
    return t


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


def _archive_exists(output: str) -> bool:
    """Whether -o names an archive already there (a file, a folder, an object in a bucket)."""
    if output == "-":
        return False
    if output.startswith("s3://"):
        from edms_pgdump.archive.object_store import object_exists

        return run(lambda: object_exists(output))
    return Path(output).exists()


@app.command("export", cls=_PairedWhere)
def export_cmd(
    dsn: str = dbname_option(),
    host: str = host_option(),
    port: str = port_option(),
    username: str = username_option(),
    mapping: Path = typer.Option(..., "--mapping", "-m", help="YAML mapping with natural keys."),
    output: str = typer.Option(
        ...,
        "--output",
        "-o",
        help="Archive to write (- for stdout, s3://BUCKET/KEY for object storage); an existing one only "
        "with --force.",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing archive."),
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
    if not force and _archive_exists(output):
        raise typer.BadParameter(
            f"{output} exists; give --force to overwrite it, or another -o FILE", param_hint="-o/--output"
        )
    target = target_dsn(dsn, host, port, username)

    def go() -> ExportResult:
        from edms_pgdump.api import export_archive
        from edms_pgdump.options import ExportOptions

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
            return export_archive(
                target, mapping, output, options=options, progress=bars, audit_log=audit_log
            )

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
    t = table("table", "rows", "bytes", *extra, title=f"exported {result.archive}")
    for row in result.tables:
        t.add_row(row.table, str(row.rows), str(row.bytes), *([_scope_text(row.scope)] if subset else []))
    report_to.print(t)
    print_warnings(result.warnings, verbose)
    for line in subset_notes([(row.table, row.rows, row.scope) for row in result.tables]):
        report_to.print(line, markup=False)
    report_to.print(f"{result.rows} rows in {result.seconds:.2f}s; archive id {result.archive_id}")
    report_to.print(f"manifest sha256 {result.manifest_sha256}", markup=False)
    if sign_key is not None:
        report_to.print(f"manifest signed with {sign_key} (member manifest.json.minisig)", markup=False)
    if encrypt_to or recipients_file:
        report_to.print("archive encrypted with age: decrypt with --identity FILE, or age -d", markup=False)
    if result.audit_log:
        report_to.print(f"audit: {result.audit_log}", markup=False)


def nothing_to_change(report: ImportReport) -> bool:
    """True only when the target holds every archive row as it is: nothing inserted,
    updated or deleted, and no row skipped (a skipped row may differ from the archive's)."""
    return not any(r.inserted or r.updated or r.deleted or r.skipped for r in report.tables)


def print_import_report(
    report: ImportReport,
    history_status: str | None = None,
    verbose: bool = True,
    title: str | None = None,
    holder: str = "this archive",
) -> None:
    """The import's table and summary; ``title`` and ``holder`` name another source (copy)."""
    title = (title or f"import {report.archive} -> {report.target}") + (
        " (dry run, rolled back)" if report.dry_run else ""
    )
    skipped = any(r.skipped for r in report.tables)
    deleted = any(r.deleted for r in report.tables)
    headers = ["table", "expected", "staged", "inserted", "updated", "unchanged"]
    extra = [*(["skipped"] if skipped else []), *(["deleted"] if deleted else [])]
    t = table(*headers, *extra, "ok", title=title)
    for r in report.tables:
        cells = [r.table, str(r.expected), str(r.staged), str(r.inserted), str(r.updated), str(r.unchanged)]
        if skipped:
            cells.append(str(r.skipped))
        if deleted:
            cells.append(str(r.deleted))
        t.add_row(*cells, "yes" if r.balanced else "NO")
    out.print(t)
    print_warnings(report.warnings, verbose)
    if verbose and report.profile:
        from edms_pgdump.results import phase_times

        spent = phase_times(report.profile, report.seconds)
        parts = ", ".join(f"{p['phase']} {p['seconds']:.2f}s" for p in spent)
        out.print(f"time by phase: {parts}", markup=False)
    for e in report.side_effects:
        out.print(
            f"side effect: {e['table']} +{e['inserted']} inserted, {e['updated']} updated, "
            f"{e['deleted']} deleted ({e['cause']})",
            markup=False,
        )
    if nothing_to_change(report):
        out.print(f"nothing to change: the target already holds {holder}'s data")
    if report.unchanged_since:
        since = report.unchanged_since
        out.print(
            f"nothing staged: no row was written in these tables since an import of this archive "
            f"certified them at {since['certified_at']} (edms_pgdump.history row {since['import']})",
            markup=False,
        )
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
    if staging.get("read"):
        out.print(f"{report.archive}: {staging['read']}", markup=False)
    if staging.get("schema") and staging["connections"] > 1:
        out.print(
            f"staged over {staging['connections']} connections in {staging['schema']} (dropped)", markup=False
        )
    if history_status is not None:
        out.print(f"history: {history_status}", markup=False)


def max_deletes_value(text: str | None) -> int | None:
    """``--max-deletes N``, or ``all`` for no limit; anything else is left for the library
    to refuse (as a usage error naming the option)."""
    if text is None or text == "all":
        return None
    try:
        return int(text)
    except ValueError:
        return cast(int, text)  # ImportOptions.validate names it


def default_guard(delete_missing: bool, max_deletes: str | None) -> int | None:
    """--delete-missing without --max-deletes: no table may lose more than
    options.DEFAULT_MAX_DELETES_PERCENT of its rows (``--max-deletes all``: no guard)."""
    from edms_pgdump.options import DEFAULT_MAX_DELETES_PERCENT

    return DEFAULT_MAX_DELETES_PERCENT if delete_missing and max_deletes is None else None


def checked(make: Callable[[], ImportOptions], json_out: bool) -> ImportOptions:
    """The options made (and so validated) before anything runs: a bad value is a usage
    error (exit 2), one line or a JSON document."""
    return run(make, json_output=json_out)


def import_options(
    json_out: bool,
    *,
    dry_run: bool,
    on_conflict: str | None,
    lock_timeout: str,
    statement_timeout: str,
    work_mem: str,
    constraints: str,
    refresh_views: bool,
    delete_missing: bool,
    max_deletes: str | None,
    ignore_column: list[str] | None,
    skip_table: list[str] | None,
    jobs: int,
    allow_cascade: bool,
    allow_side_effects: list[str] | None,
    prove: bool,
) -> ImportOptions:
    """The import options of ``import`` and ``copy`` (the same typer options), made and
    validated before anything runs (``checked``). Choices pass on as typed text: the
    library validates them and names the allowed values."""
    from edms_pgdump.options import ImportOptions

    return checked(
        lambda: ImportOptions(
            dry_run=dry_run,
            on_conflict=cast("ConflictPolicy | None", on_conflict),
            lock_timeout=lock_timeout,
            statement_timeout=statement_timeout,
            work_mem=work_mem,
            constraints=cast("ConstraintMode", constraints),
            refresh_materialized_views=refresh_views,
            delete_missing=delete_missing,
            max_deletes=max_deletes_value(max_deletes),
            max_deletes_percent=default_guard(delete_missing, max_deletes),
            ignore_columns=tuple(ignore_column or ()),
            skip_tables=tuple(skip_table or ()),
            jobs=jobs,
            allow_cascade=allow_cascade,
            allow_side_effects=tuple(allow_side_effects or ()),
            prove=prove,
        ),
        json_out,
    )


@app.command("import")
def import_cmd(
    archive: str = typer.Argument(
        ..., help="Archive written by edms-pgdump export; - reads stdin; s3://BUCKET/KEY an object."
    ),
    dsn: str = dbname_option(),
    host: str = host_option(),
    port: str = port_option(),
    username: str = username_option(),
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
        "foreign keys, plain indexes and the unique indexes nothing else needs inside the transaction and "
        "re-add them (validated set-based); "
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
    max_deletes: str = typer.Option(
        None,
        "--max-deletes",
        help="With --delete-missing: refuse, writing nothing, if more rows would go in all. Without "
        "it, a table may lose at most 10% of its rows; all: no limit.",
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
        "Needs CREATE on the database; otherwise staged on one connection. With ARCHIVE '-' and N > 1 the "
        "stream is kept in $TMPDIR first; with 1 it is staged while it is read.",
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
    opts = import_options(
        json_out,
        dry_run=dry_run,
        on_conflict=on_conflict,
        lock_timeout=lock_timeout,
        statement_timeout=statement_timeout,
        work_mem=work_mem,
        constraints=constraints,
        refresh_views=refresh_views,
        delete_missing=delete_missing,
        max_deletes=max_deletes,
        ignore_column=ignore_column,
        skip_table=skip_table,
        jobs=jobs,
        allow_cascade=allow_cascade,
        allow_side_effects=allow_side_effects,
        prove=prove,
    )
    target = target_dsn(dsn, host, port, username)

    def go() -> ImportResult:
        from edms_pgdump.api import import_archive

        with progress_bars(not quiet and not json_out) as bars:
            return import_archive(
                target,
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


def archive_damaged(result: Any) -> bool:
    return bool(result.damages) or not all(t["ok"] for t in result.tables)


def verify_verdict(result: Any) -> str:
    """Blame what is at fault: a sound archive whose rows the database lacks is a database
    that differs, not an archive that failed."""
    if result.ok:
        return "archive OK" + (" and the database matches it" if result.database is not None else "")
    if archive_damaged(result):
        return "archive FAILED verification"
    db = result.database
    if db is not None and db.error:
        return f"archive OK; the comparison with {db.target} could not run"
    return f"archive OK; the database {db.target if db else ''} does NOT hold the archive's data"


@app.command("verify")
def verify_cmd(
    archive: str = typer.Argument(..., help="Archive to check; - reads stdin; s3://BUCKET/KEY an object."),
    dsn: str = dbname_option("Also compare the archive's rows with this database (a name or a DSN)."),
    host: str = host_option(),
    port: str = port_option(),
    username: str = username_option(),
    identity: list[Path] = identity_option(),
    trusted_key: list[Path] = trusted_key_option(),
    json_out: bool = json_option(),
    quiet: bool = quiet_option(),
) -> None:
    """Check an archive's integrity (sizes, SHA-256, row counts); with --dsn, compare with a database.

    Exit codes: 0 ok, 1 the archive is damaged, 3 the archive is sound but the database
    lacks some of its rows or holds them different.

    Example: edms-pgdump verify prod.edmsdump --dsn postgresql://localhost/fresh
    """
    from edms_pgdump.api import verify_archive

    target = optional_dsn(dsn, host, port, username)

    def go() -> Any:
        with progress_bars(not quiet and not json_out) as bars:  # the members' check too
            return verify_archive(
                archive, target, identities=identity or (), trusted_keys=trusted_key or (), progress=bars
            )

    result = run(go, json_output=json_out)
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
        out.print(verify_verdict(result), markup=False)
    if not result.ok:
        raise typer.Exit(1 if archive_damaged(result) else EXIT_DATABASE_DIFFERS)


@app.command("cleanup")
def cleanup_cmd(
    dsn: str = dbname_option(),
    host: str = host_option(),
    port: str = port_option(),
    username: str = username_option(),
    json_out: bool = json_option(),
    quiet: bool = quiet_option(),
) -> None:
    """Drop the staging schemas that killed parallel imports (-j N) left behind.

    A schema whose import is still running is left alone. Every import sweeps them too.

    Example: edms-pgdump cleanup --dsn postgresql://localhost/prod
    """
    from edms_pgdump.api import cleanup_staging

    target = target_dsn(dsn, host, port, username)

    def go() -> Any:
        with progress_bars(not quiet and not json_out) as bars:
            return cleanup_staging(target, progress=bars)

    found = run(go, json_output=json_out)
    if json_out:
        emit_json(found.to_dict())
        return
    for schema in found.dropped:
        out.print(f"dropped {schema}", markup=False)
    for schema in found.in_use:
        out.print(f"in use  {schema} (an import is running)", markup=False)
    for note in found.not_owned_notes():
        err.print(f"warning: {note}", markup=False)
    if not (found.dropped or found.in_use or found.not_owned):
        out.print("no staging schemas left behind", markup=False)


@app.command("inspect")
def inspect_cmd(
    archive: str = typer.Argument(..., help="Archive to describe; - reads stdin; s3://BUCKET/KEY an object."),
    identity: list[Path] = identity_option(),
    trusted_key: list[Path] = trusted_key_option(),
    json_out: bool = json_option(),
) -> None:
    """Summarise an archive's manifest: source, snapshot, tables, counts, natural keys.

    Example: edms-pgdump inspect prod.edmsdump
    """
    from edms_pgdump.api import inspect_archive

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
    for name, expr in m.filters.items():
        out.print(f"subset: {name} where {expr}", markup=False)
    subset = bool(m.filters)
    t = table("table", "rows", "bytes", "natural key", "references", *(["rows chosen by"] if subset else []))
    for row in m.tables:
        t.add_row(
            row.table,
            str(row.rows),
            str(row.bytes),
            ", ".join(f.removesuffix(".#path") for f in row.key_fields),
            ", ".join(f"{e['label']} -> {e['ref_table']}" for e in row.expansions),
            *([_scope_text(row.scope)] if subset else []),
        )
    out.print(t)
    for line in subset_notes([(row.table, row.rows, row.scope) for row in m.tables]):
        out.print(line, markup=False)
