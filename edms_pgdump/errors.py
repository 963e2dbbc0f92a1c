"""One exception type per kind of failure.

Every message names the object at fault (file, YAML path, table, column, key) and
the fix, so the CLI can print it as one line without a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any


def sql_literal(value: Any) -> str:
    """A value as it would be typed in SQL (``'2010-05-26 00:00:00'``, ``42``, ``NULL``,
    ``'O''Brien'``), so a sample key can be pasted into a WHERE clause."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (float, Decimal)):
        text = str(value)
        return text if value == value and text.lstrip("-")[:1].isdigit() else _quoted(text)
    if isinstance(value, dt.datetime):
        return _quoted(value.isoformat(sep=" "))
    if isinstance(value, (dt.date, dt.time)):
        return _quoted(value.isoformat())
    if isinstance(value, dt.timedelta):
        return _quoted(f"{value.days} days {value.seconds} seconds {value.microseconds} microseconds")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _quoted("\\x" + bytes(value).hex())
    if isinstance(value, (list, dict)):  # jsonb (a tree key's path)
        return _quoted(json.dumps(value, ensure_ascii=False, default=str))
    return _quoted(str(value))


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sample_keys(rows: Iterable[Sequence[Any]], names: Sequence[str]) -> str:
    """Sample rows as ``(name=value, ...)`` groups with SQL literals, for messages that
    name the keys."""
    return ", ".join(
        "(" + ", ".join(f"{n}={sql_literal(v)}" for n, v in zip(names, r)) + ")" for r in rows
    )


class EdmsPgdumpError(Exception):
    """Base class: a problem the user can act on (exit code 1)."""

    exit_code = 1


class UsageError(EdmsPgdumpError):
    """The command line or its arguments are wrong (exit code 2)."""

    exit_code = 2


class MappingError(EdmsPgdumpError):
    """The YAML mapping is malformed or does not fit the database."""


class PlanError(EdmsPgdumpError):
    """The mapping and the catalog together cannot be exported or imported safely."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class ArchiveError(EdmsPgdumpError):
    """The archive is damaged, incomplete, or of an unknown format."""

    def __init__(self, message: str, damages: list[str] | None = None) -> None:
        super().__init__(message)
        self.damages = damages or [message]


class SchemaDriftError(EdmsPgdumpError):
    """The target database does not have the columns or keys the archive needs."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class ImportRejected(EdmsPgdumpError):
    """The import found bad data (duplicates, unresolved references, count mismatch).

    The transaction was rolled back; ``report`` holds what was found.
    """

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class DatabaseError(EdmsPgdumpError):
    """The server refused or failed (connection, permission, lock timeout)."""


class DataRuleError(PlanError):
    """The exported snapshot's data breaks a rule the mapping relies on; ``found`` holds
    every problem (plan.Problem), so one run names all the tables to fix."""

    def __init__(self, message: str, problems: list[str], found: Sequence[object] = ()) -> None:
        super().__init__(message, problems)
        self.found = list(found)


class KeyNotUniqueError(DataRuleError):
    """A natural key names more than one row in the data (no unique constraint proves it)."""


class LikelyReferenceError(DataRuleError):
    """A column holds ids of another table with no foreign key or mapping decision."""
