"""Row filters of a subset export (``--where TABLE EXPR``, ``where:`` in the mapping).

A filter is user SQL that runs inside the export's transaction, so it is parsed with
sqlglot (postgres dialect) before anything is sent: exactly one boolean expression over
the table's columns, subqueries allowed, nothing that writes, locks or changes the
session. What runs is sqlglot's rendering of the tree it checked (comments dropped), so
the text the server sees is the text that was validated. The export also evaluates the
filters in a READ ONLY transaction, so a function with side effects cannot write either.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass

import sqlglot
from sqlglot import TokenType, exp
from sqlglot.errors import ParseError, TokenError

from edms_pgdump.catalog.names import QualifiedName, parse_qualified_name
from edms_pgdump.errors import EdmsPgdumpError, MappingError, UsageError

# Statement kinds a filter may not contain anywhere, subqueries and CTEs included.
_FORBIDDEN_NAMES = (
    "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "AlterTable", "AlterColumn",
    "TruncateTable", "Command", "Grant", "Revoke", "Copy", "Set", "Use", "Transaction", "Commit",
    "Rollback", "Into", "Lock", "Pragma", "Analyze", "LoadData", "Cache", "Uncache", "Refresh",
    "Describe", "Kill", "Comment", "Attach", "Detach", "Install", "Summarize",
)  # fmt: skip
_FORBIDDEN: tuple[type[exp.Expression], ...] = tuple(
    t for t in (getattr(exp, n, None) for n in _FORBIDDEN_NAMES) if isinstance(t, type)
)
_WHY = {
    "Into": "SELECT … INTO creates a table",
    "Lock": "FOR UPDATE/SHARE locks rows",
    "Command": "it is a statement, not part of an expression",
}
# Top-level forms that are certainly not boolean.
_NOT_BOOLEAN_NAMES = (
    "Add", "Sub", "Mul", "Div", "Mod", "IntDiv", "DPipe", "BitwiseAnd", "BitwiseOr", "BitwiseXor",
    "BitwiseNot", "BitwiseLeftShift", "BitwiseRightShift", "Neg", "Star", "Tuple", "Array",
    "Interval", "Struct",
)  # fmt: skip
_NOT_BOOLEAN: tuple[type[exp.Expression], ...] = tuple(
    t for t in (getattr(exp, n, None) for n in _NOT_BOOLEAN_NAMES) if isinstance(t, type)
)
_QUERIES: tuple[type[exp.Expression], ...] = tuple(
    t for t in (getattr(exp, n, None) for n in ("Select", "SetOperation", "Union", "Values", "With"))
    if isinstance(t, type)
)  # fmt: skip
BOOLEAN_TYPES = ("boolean", "bool")


@dataclass(frozen=True)
class RowFilter:
    """One table's filter: the text as written, the SQL that runs, and what it names."""

    table: QualifiedName
    text: str  # as the user wrote it (recorded in the manifest)
    sql: str  # sqlglot's postgres rendering of the checked tree: what the server runs
    origin: str  # "--where public.documents" or the mapping's YAML path
    from_mapping: bool = False
    columns: tuple[str, ...] = ()  # columns of the table it names outside subqueries
    top_column: str | None = None  # the whole filter is this one column (must be boolean)

    def error(self, what: str) -> EdmsPgdumpError:
        return refusal(self.origin, self.from_mapping, what)


def refusal(origin: str, from_mapping: bool, what: str) -> EdmsPgdumpError:
    """A MappingError for the mapping's ``where:``, a UsageError (exit 2) for ``--where``."""
    if from_mapping:
        return MappingError(f"{origin}: {what}")
    return UsageError(f"{origin}: {what}")


def parse_where(table: QualifiedName, text: str, origin: str, *, from_mapping: bool = False) -> RowFilter:
    """Parse and check ``text`` without a database; refuse with ``origin`` named."""

    def bad(what: str) -> EdmsPgdumpError:
        return refusal(origin, from_mapping, what)

    fix = "write one condition over the table's columns, e.g. status = 'published'"
    if not isinstance(text, str) or not text.strip():
        raise bad(f"the filter of {table} is empty; {fix}")
    try:
        tokens = sqlglot.tokenize(text, read="postgres")
    except (TokenError, ParseError) as exc:
        raise bad(f"the filter of {table} is not valid SQL ({_first_line(exc)}); {fix}") from None
    if any(t.token_type == TokenType.SEMICOLON for t in tokens):
        raise bad(f"the filter of {table} contains ';': one expression only, never a second statement; {fix}")
    try:
        parsed = [p for p in sqlglot.parse(text, read="postgres") if p is not None]
    except (TokenError, ParseError) as exc:
        raise bad(f"the filter of {table} is not valid SQL ({_first_line(exc)}); {fix}") from None
    if len(parsed) != 1:
        raise bad(f"the filter of {table} holds {len(parsed)} statements; {fix}")
    tree = parsed[0]
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN):
            kind = type(node).__name__
            why = _WHY.get(kind, "a filter may only read")
            raise bad(
                f"the filter of {table} contains {_statement_name(node)} ({why}); "
                "only a condition is allowed (subqueries may SELECT); " + fix
            )
    top = tree.unnest() if isinstance(tree, exp.Paren) else tree
    if isinstance(top, _QUERIES):
        raise bad(f"the filter of {table} is a query, not a condition; wrap it as EXISTS (…) or col IN (…)")
    if isinstance(top, (exp.Literal, *_NOT_BOOLEAN)):
        raise bad(f"the filter of {table} is not a boolean expression ({top.sql('postgres')}); {fix}")
    if isinstance(top, exp.Cast) and top.to.this not in (exp.DataType.Type.BOOLEAN,):
        raise bad(f"the filter of {table} casts to {top.to.sql('postgres')}, not boolean; {fix}")
    for t in tree.find_all(exp.Table):
        ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        if not t.args.get("db") and t.name and t.name not in ctes:
            raise bad(
                f"the filter of {table} reads table {t.name!r} without a schema; the export runs with "
                f"an empty search_path, so write it as schema.table (e.g. public.{t.name})"
            )
    columns: list[str] = []
    for col in tree.find_all(exp.Column):
        if col.find_ancestor(exp.Select) is not None:
            continue  # inside a subquery: may name the subquery's own tables
        qualifier = col.table
        if qualifier and qualifier not in (table.name,):
            raise bad(
                f"the filter of {table} names {qualifier}.{col.name}; refer to {table}'s own columns "
                f"unqualified (or as {table.name}.column), other tables only inside a subquery"
            )
        if col.name and col.name not in columns:
            columns.append(col.name)
    top_column = top.name if isinstance(top, exp.Column) else None
    rendered = tree.sql(dialect="postgres", comments=False)
    return RowFilter(table, text, rendered, origin, from_mapping, tuple(columns), top_column)


def check_columns(f: RowFilter, column_types: AbcMapping[str, str]) -> None:
    """Refuse names that are not columns of the table, and a bare non-boolean column."""
    for name in f.columns:
        if name not in column_types:
            known = ", ".join(sorted(column_types)[:12])
            raise f.error(f"{f.table} has no column {name!r} (its columns: {known})")
    if f.top_column is not None:
        typ = column_types.get(f.top_column, "")
        if typ.split(".")[-1] not in BOOLEAN_TYPES:
            raise f.error(
                f"the filter of {f.table} is the column {f.top_column} of type {typ}, not a boolean "
                f"expression; compare it, e.g. {f.top_column} = …"
            )


def filter_table_name(text: str, known: Iterable[QualifiedName], origin: str = "--where") -> QualifiedName:
    """The mapping key a ``--where TABLE`` names; refused unless it is one."""
    tables = sorted(known)
    listing = ", ".join(str(t) for t in tables[:12])
    try:
        name = parse_qualified_name(text)
    except ValueError as exc:
        raise UsageError(f"{origin} {text}: {exc}; use a table of the mapping ({listing})") from None
    if name not in tables:
        raise UsageError(
            f"{origin} {text}: {name} is not an exported table of the mapping; use one of: {listing}"
        )
    return name


def _statement_name(node: exp.Expression) -> str:
    kind = type(node).__name__
    if kind == "Command":
        return str(node.this).upper()
    if kind == "Into":
        return "SELECT … INTO"
    if kind == "Lock":
        return "FOR UPDATE"
    return kind.upper()


def _first_line(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


__all__ = ["RowFilter", "check_columns", "filter_table_name", "parse_where"]


_COMPARISONS = (exp.Predicate, exp.In, exp.Between, exp.Is)


def compared_by_value(f: RowFilter, columns: Iterable[str]) -> list[str]:
    """Those of ``columns`` the filter judges by their values (``id <= 2``,
    ``team_id = 1``, ``mod(id, 2) = 0``), not only against ids a subquery of the same
    database finds (``parent_id IN (SELECT id FROM … WHERE name = 'root')``) or
    against NULL. Surrogate ids judged by value name other rows in another database."""
    wanted = set(columns)
    tree = sqlglot.parse_one(f.sql, read="postgres")
    found: list[str] = []
    for col in tree.find_all(exp.Column):
        if col.name not in wanted or col.name in found or col.find_ancestor(exp.Select) is not None:
            continue
        test = col.find_ancestor(*_COMPARISONS)
        if isinstance(test, exp.Is):
            continue  # IS [NOT] NULL: the same in every database
        if test is not None and test.find(exp.Select) is not None:
            continue  # compared with what a subquery finds in the same database
        found.append(col.name)
    return found
