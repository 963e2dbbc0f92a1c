"""The ``fix:`` text of plan and check problems: SQL and mapping lines that work when pasted.

Why a module of its own: a fix a user copies into psql or into the mapping must be valid
as printed, whatever the names (capitals, spaces, reserved words). Table names come from
``QualifiedName.__str__`` (quoted where PostgreSQL needs it), column and constraint names
from ``psycopg.sql.Identifier`` (always quoted); mapping lines from the YAML dumper.
Each SQL statement ends with ``;`` so it can be told apart from the prose around it.
"""

from __future__ import annotations

from collections.abc import Iterable

import yaml
from psycopg import sql

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import ForeignKey

NULLS_NOT_DISTINCT_VERSION = 150000  # PostgreSQL 15


def ident(name: str) -> str:
    """One column or constraint name as SQL text."""
    return sql.Identifier(name).as_string(None)


def ident_list(names: Iterable[str]) -> str:
    return ", ".join(ident(n) for n in names)


def yaml_flow(value: object) -> str:
    """A mapping fragment on one line (``{columns: [a], table: public.b}``), quoted by the
    YAML dumper where a name needs it (``'reg."Contract"'``)."""
    return str(yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False)).strip()


def unique_index(
    table: QualifiedName, columns: tuple[str, ...], nullable: Iterable[str], server_version: int
) -> str:
    """``CREATE UNIQUE INDEX`` that really makes ``columns`` unique.

    A plain unique index lets any number of rows share a key that has a NULL part, so on a
    nullable key it must say ``NULLS NOT DISTINCT`` (PostgreSQL 15+). Older servers cannot;
    the fix then makes the nullable columns NOT NULL first. ``server_version`` 0 (unknown,
    e.g. a hand-built catalog) is taken as a current server.
    """
    nulls = [c for c in columns if c in set(nullable)]
    create = f"CREATE UNIQUE INDEX ON {table} ({ident_list(columns)})"
    if not nulls:
        return create + ";"
    if server_version == 0 or server_version >= NULLS_NOT_DISTINCT_VERSION:
        return create + " NULLS NOT DISTINCT;"
    set_not_null = " ".join(f"ALTER TABLE {table} ALTER COLUMN {ident(c)} SET NOT NULL;" for c in nulls)
    return (
        f"{set_not_null} {create}; (this server is older than PostgreSQL 15, whose unique indexes "
        "count rows with a NULL key part as distinct, so the key columns must be NOT NULL first; "
        "if NULLs are needed, leave it: uniqueness is proven on the data at export and import)"
    )


def make_deferrable(table: QualifiedName, constraint: str) -> str:
    return f"ALTER TABLE {table} ALTER CONSTRAINT {ident(constraint)} DEFERRABLE;"


def drop_not_null(table: QualifiedName, columns: Iterable[str]) -> str:
    return " ".join(f"ALTER TABLE {table} ALTER COLUMN {ident(c)} DROP NOT NULL;" for c in columns)


def add_foreign_key(table: QualifiedName, fk: ForeignKey) -> str:
    """The FK ``fk`` added to ``table`` (a partition that lacks it)."""
    return (
        f"ALTER TABLE {table} ADD FOREIGN KEY ({ident_list(fk.columns)}) "
        f"REFERENCES {fk.ref_table} ({ident_list(fk.ref_columns)});"
    )


def declared_reference(
    column: str, target: QualifiedName, target_column: str | None, target_pk: tuple[str, ...] | None
) -> str:
    """``references: [...]`` for one column; ``target_columns`` only when it is not the
    primary key (None: the primary key, as the mapping's default)."""
    ref: dict[str, object] = {"columns": [column], "table": str(target)}
    if target_column is not None and target_pk != (target_column,):
        ref["target_columns"] = [target_column]
    return "references: " + yaml_flow([ref])


def raw_columns(columns: Iterable[str]) -> str:
    return "raw_columns: " + yaml_flow(list(columns))


def mapped_table(table: QualifiedName, key: tuple[str, ...] | None, export: bool = True) -> str:
    """A ``tables:`` entry, or a placeholder sentence when no key can be guessed."""
    if key is None:
        return f"add {table} under tables: with the columns that identify a row as natural_key"
    entry: dict[str, object] = {"natural_key": list(key)}
    if not export:
        entry["export"] = False
    return "add under tables: " + yaml_flow({str(table): entry})[1:-1]
