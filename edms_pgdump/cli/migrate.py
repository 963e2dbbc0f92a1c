"""diff: what differs between an archive and a database (or two archives), by natural key."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from edms_pgdump.cli.app import app, emit_json, json_option, one_line, out, progress_bars, quiet_option, run
from edms_pgdump.cli.conventions import dbname_option, host_option, optional_dsn, port_option, username_option
from edms_pgdump.cli.core import identity_option, table, trusted_key_option

if TYPE_CHECKING:
    from edms_pgdump.results import ArchivesDiffResult, DiffResult


def _field(name: str) -> str:
    """A key field as the mapping names it (``parent_id``, not ``parent_id.#path``)."""
    from edms_pgdump.plan.model import TREE_PATH

    return name.replace("." + TREE_PATH, "")


def _value(value: object) -> str:
    """A key value as a person reads it: NULL, a tree's path as ``root / child``."""
    if value is None:
        return "NULL"
    if isinstance(value, list):  # a tree path: one key (a list of parts) per ancestor
        return " / ".join(
            ", ".join(_value(p) for p in node) if isinstance(node, list) else _value(node) for node in value
        )
    return one_line(str(value))


def _print_database(result: DiffResult) -> None:
    # a subset archive speaks for the rows in its scope: the others are counted apart
    subset = any(row.scope.get("rule", "whole") != "whole" for row in result.tables)
    columns = ["table", "only in archive", "only in target", "different", "identical"]
    t = table(
        *columns,
        *(["outside scope", "scope"] if subset else []),
        title=f"diff {result.archive} -> {result.target}",
    )
    for row in result.tables:
        cells = [
            row.table,
            str(row.only_in_archive),
            str(row.only_in_target),
            str(row.different),
            str(row.identical),
        ]
        if subset:
            cells += [str(row.outside_scope), str(row.scope.get("rule", "whole"))]
        t.add_row(*cells)
    out.print(t)
    for row in result.tables:
        for kind, samples in row.samples.items():
            if samples:
                keys = "; ".join(", ".join(f"{_field(k)}={_value(v)}" for k, v in s.items()) for s in samples)
                out.print(one_line(f"{row.table} {kind.replace('_', ' ')}: {keys}"), markup=False)
    out.print("identical" if result.identical else "differences found", markup=False)


def _print_archives(result: ArchivesDiffResult) -> None:
    t = table(
        "table", "rows (a)", "rows (b)", "same content", title=f"diff {result.archive_a} {result.archive_b}"
    )
    for row in result.tables:
        t.add_row(row.table, str(row.rows_a), str(row.rows_b), "yes" if not row.differs else "NO")
    out.print(t)
    out.print("identical" if result.identical else "differences found", markup=False)


@app.command("diff")
def diff_cmd(
    archive: str = typer.Argument(..., help="Archive written by edms-pgdump export (a path or s3://BUCKET/KEY)."),
    other: str = typer.Argument(None, help="A second archive to compare with (no database needed)."),
    dsn: str = dbname_option(),
    host: str = host_option(),
    port: str = port_option(),
    username: str = username_option(),
    identity: list[Path] = identity_option(),
    trusted_key: list[Path] = trusted_key_option(),
    json_out: bool = json_option(),
    quiet: bool = quiet_option(),
) -> None:
    """Compare an archive with a database by natural key (read only), or two archives.

    Exit codes: 0 no difference, 1 differences, 2 error.

    Example: edms-pgdump diff staging.edmsdump --dsn postgresql://localhost/prod
    """
    from edms_pgdump import api
    from edms_pgdump.results import DiffResult

    target = optional_dsn(dsn, host, port, username, environment=other is None)

    def go() -> DiffResult | ArchivesDiffResult:
        with progress_bars(not quiet and not json_out and target is not None) as bars:
            return api.diff(
                archive,
                other,
                dsn=target,
                identities=identity or (),
                trusted_keys=trusted_key or (),
                progress=bars,
            )

    result = run(
        go,
        json_output=json_out,
        error_exit=2,  # 1 means "differences found"
    )
    if json_out:
        emit_json(result.to_dict())
    elif isinstance(result, DiffResult):
        _print_database(result)
    else:
        _print_archives(result)
    if not result.identical:
        raise typer.Exit(1)
