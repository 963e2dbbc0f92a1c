"""import-fixture: Django JSON backups through the import program."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, cast

import typer

from edms_pgdump.cli.app import (
    EXIT_PROBLEM,
    app,
    audit_option,
    emit_json,
    err,
    json_option,
    out,
    progress_bars,
    quiet_option,
    run,
    verbose_option,
)
from edms_pgdump.cli.conventions import dbname_option, host_option, port_option, target_dsn, username_option
from edms_pgdump.cli.core import CONFLICT_POLICIES, checked, print_import_report

if TYPE_CHECKING:
    from edms_pgdump.mapping import ConflictPolicy
    from edms_pgdump.options import ConstraintMode
    from edms_pgdump.results import ImportResult, InitResult


@app.command("import-fixture")
def import_fixture_cmd(
    fixture: Path = typer.Argument(
        ..., help="Django JSON fixture (dumpdata output; plain, .gz or .zst).", show_default=False
    ),
    dsn: str = dbname_option(),
    host: str = host_option(),
    port: str = port_option(),
    username: str = username_option(),
    mapping: Path = typer.Option(
        ..., "--mapping", "-m", help="YAML mapping (edms-pgdump init --django writes one)."
    ),
    table: list[str] = typer.Option(
        None,
        "--table",
        help="app.model=schema.table for a model whose table is not app_model (repeatable).",
        show_default=False,
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Do everything, then roll back."),
    on_conflict: str = typer.Option(
        None, "--on-conflict", help="Override every table's policy: " + ", ".join(CONFLICT_POLICIES) + "."
    ),
    constraints: str = typer.Option("auto", "--constraints", help="auto, keep or recreate (as for import)."),
    no_history: bool = typer.Option(
        False, "--no-history", help="Do not record the import in the target's edms_pgdump.history table."
    ),
    audit_log: Path = audit_option(),
    json_out: bool = json_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Restore a Django JSON fixture (dumpdata, natural keys or pks) in one transaction, set-based.

    The same program as import: staged through COPY, references resolved by natural key,
    counts proven, history recorded. Generic object ids are resolved through the pks the
    fixture carries (dumpdata --natural-foreign keeps them).

    Example: edms-pgdump import-fixture backup.json.gz --dsn postgresql://localhost/fresh -m mapping.yaml
    """
    from edms_pgdump.api import import_fixture
    from edms_pgdump.options import ImportOptions

    opts = checked(
        lambda: ImportOptions(
            dry_run=dry_run,
            on_conflict=cast("ConflictPolicy | None", on_conflict),
            constraints=cast("ConstraintMode", constraints),
        ),
        json_out,
    )
    target = target_dsn(dsn, host, port, username)
    overrides = dict(item.partition("=")[::2] for item in table or [])

    def go() -> ImportResult:
        with progress_bars(not quiet and not json_out) as bars:
            return import_fixture(
                target,
                fixture,
                mapping,
                options=opts,
                tables=overrides,
                progress=bars,
                history=not no_history,
                audit_log=audit_log,
            )

    report = run(go, json_output=json_out)
    if json_out:
        emit_json(report.to_dict())
    else:
        print_import_report(report, report.history, verbose)
        if report.audit_log:
            out.print(f"audit: {report.audit_log}", markup=False)


def print_django_init(result: InitResult) -> None:
    """The mapping (or where it went), then why check would refuse it; exit 1 if it would."""
    from edms_pgdump.django.scaffold import DjangoInitResult

    problems = result.problems if isinstance(result, DjangoInitResult) else []
    if result.output is None:
        sys.stdout.write(result.mapping)
    else:
        out.print(
            f"wrote {result.output}: {result.keyed} table(s) with a natural key, "
            f"{len(result.tables) - result.keyed} excluded (see the comments)",
            markup=False,
        )
    for p in problems:
        err.print(f"check: {p}", markup=False)
    if problems:
        err.print(
            f"check: {len(problems)} error(s): fix the mapping, then run edms-pgdump check", markup=False
        )
        raise typer.Exit(EXIT_PROBLEM)
    err.print("check: the mapping passes check on this database", markup=False)
