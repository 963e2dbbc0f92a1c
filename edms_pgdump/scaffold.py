"""A first mapping for a database nobody has mapped yet (``edms-pgdump init``).

Natural keys are guessed from what the database already promises: a unique constraint or
unique index (NOT NULL columns and fewer columns preferred), or a primary key that is not
a surrogate (no default). Tables with no candidate go under ``exclude:`` with a comment, so
the file is valid at once and ``check`` points at what is left to decide.
"""

from __future__ import annotations

import datetime as dt

import yaml

from .catalog import Catalog, Table
from .db import connect
from .names import QualifiedName


def guess_natural_key(table: Table) -> tuple[str, ...] | None:
    """The unique key most likely to identify a row across databases, or None."""
    pk = table.primary_key or ()
    surrogate = {c.name for c in table.columns if c.name in pk and (c.has_default or c.is_generated)}
    candidates = [k for k in table.unique_keys if not set(k) & surrogate]
    if pk and not set(pk) & surrogate:
        candidates.append(pk)
    if not candidates:
        return None

    def score(key: tuple[str, ...]) -> tuple[int, int]:
        nullable = sum(1 for c in key if (col := table.column(c)) is not None and not col.not_null)
        return nullable, len(key)

    return min(candidates, key=score)


def scaffold_mapping(catalog: Catalog) -> tuple[str, dict[str, tuple[str, ...] | None]]:
    """YAML text of a first mapping, and the guess for every table."""
    guesses = {str(name): guess_natural_key(t) for name, t in sorted(catalog.tables.items())}
    tables = {n: {"natural_key": list(k)} for n, k in guesses.items() if k}
    unkeyed = sorted(n for n, k in guesses.items() if not k)
    body = yaml.safe_dump({"version": 1, "tables": tables}, sort_keys=False, default_flow_style=None)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    lines = [
        f"# First mapping for database {catalog.database!r}, written by edms-pgdump init on {stamp}.",
        "# Each natural_key was taken from a unique constraint or index: check that it really",
        "# identifies a row in every environment, then run: edms-pgdump check --dsn ... -m THIS_FILE",
        body.rstrip("\n") if tables else "version: 1\ntables: {}",
    ]
    if unkeyed:
        lines.append("exclude:")
        lines.append("  # no unique constraint to take a natural key from: pick its columns and move the")
        lines.append("  # table under tables:, or keep it here to leave its rows out of exports")
        lines.extend("  - " + yaml.safe_dump(n, default_style=None).splitlines()[0] for n in unkeyed)
    return "\n".join(lines) + "\n", guesses


def scaffold_from_database(dsn: str) -> tuple[str, dict[str, tuple[str, ...] | None]]:
    from .catalog import read_catalog

    with connect(dsn) as conn:
        return scaffold_mapping(read_catalog(conn))


def suggestion(table: Table, name: QualifiedName) -> str:
    """The mapping line ``check`` proposes for an unmapped table."""
    key = guess_natural_key(table)
    if key is None:
        return f"list {name} under exclude:, or add it under tables: with the columns that identify a row"
    flow = yaml.safe_dump({str(name): {"natural_key": list(key)}}, default_flow_style=True).strip()
    return f"add under tables: {flow[1:-1]} (or list {name} under exclude:)"
