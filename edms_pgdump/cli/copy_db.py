"""copy: one database into another, by natural keys, with no archive in between.

The import options are the ``import`` command's own (the same typer options, so their
help cannot drift apart); only ``--jobs`` says what it means here.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from edms_pgdump.cli.app import (
    app,
    audit_option,
    emit_json,
    json_option,
    out,
    print_warnings,
    progress_bars,
    quiet_option,
    run,
    verbose_option,
)
from edms_pgdump.cli.core import (
    _PairedWhere,
    import_cmd,
    import_options,
    print_import_report,
    where_option,
)

if TYPE_CHECKING:
    from edms_pgdump.results import CopyResult

_IMPORT = inspect.signature(import_cmd).parameters


def _as_import(name: str) -> Any:
    """The import command's option ``name``, shared as it is."""
    return _IMPORT[name].default


@app.command("copy", cls=_PairedWhere)
def copy_cmd(
    source: str = typer.Option(
        ..., "--from", help="Source database: a name or a connection string, read on one snapshot."
    ),
    target: str = typer.Option(
        ..., "--to", help="Target database: a name or a connection string, written in one transaction."
    ),
    mapping: Path = typer.Option(..., "--mapping", "-m", help="YAML mapping with natural keys."),
    jobs: int = typer.Option(
        1,
        "--jobs",
        "-j",
        help="Tables streamed in parallel: N source connections on the first one's snapshot, each "
        "feeding a target connection that stages into UNLOGGED tables of a private schema (needs "
        "CREATE on the target database; otherwise one connection), before the one transaction that writes.",
    ),
    where: list[Any] = where_option(),
    dry_run: bool = _as_import("dry_run"),
    on_conflict: str = _as_import("on_conflict"),
    lock_timeout: str = _as_import("lock_timeout"),
    statement_timeout: str = _as_import("statement_timeout"),
    work_mem: str = _as_import("work_mem"),
    constraints: str = _as_import("constraints"),
    no_history: bool = _as_import("no_history"),
    refresh_views: bool = _as_import("refresh_views"),
    delete_missing: bool = _as_import("delete_missing"),
    max_deletes: str = _as_import("max_deletes"),
    allow_cascade: bool = _as_import("allow_cascade"),
    allow_side_effects: list[str] = _as_import("allow_side_effects"),
    prove: bool = _as_import("prove"),
    ignore_column: list[str] = _as_import("ignore_column"),
    skip_table: list[str] = _as_import("skip_table"),
    audit_log: Path = audit_option(),
    json_out: bool = json_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Copy mapped tables from one database into another by natural keys, with no archive.

    The source is read as export reads it (one snapshot, the same refusals) and streamed
    straight into the import's staging on the target (one transaction, every count proven).

    Example: edms-pgdump copy --from prod --to staging -m config/edms.yaml --dry-run
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

    def go() -> CopyResult:
        from edms_pgdump.api import copy_database

        with progress_bars(not quiet and not json_out) as bars:
            return copy_database(
                source,
                target,
                mapping,
                options=opts,
                where=tuple((str(a), str(b)) for a, b in where or ()),
                progress=bars,
                history=not no_history,
                audit_log=audit_log,
            )

    result = run(go, json_output=json_out)
    if json_out:
        emit_json(result.to_dict())
        return
    print_warnings(result.source_warnings, verbose)
    title = f"copy {result.source} -> {result.target}"
    print_import_report(result, result.history, verbose, title, holder="the source")
    sent = sum(int(t["rows"]) for t in result.streamed)
    size = sum(int(t["bytes"]) for t in result.streamed)
    out.print(
        f"streamed {sent} rows ({size} bytes) from {result.source} on snapshot {result.snapshot}; "
        f"copy id {result.archive_id}",
        markup=False,
    )
    if result.audit_log:
        out.print(f"audit: {result.audit_log}", markup=False)
