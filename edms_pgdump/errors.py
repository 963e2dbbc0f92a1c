"""One exception type per kind of failure.

Every message names the object at fault (file, YAML path, table, column, key) and
the fix, so the CLI can print it as one line without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def sample_keys(rows: Iterable[Sequence[Any]], names: Sequence[str]) -> str:
    """Sample rows as ``(name=value, ...)`` groups, for messages that name the keys."""
    return ", ".join("(" + ", ".join(f"{n}={v!r}" for n, v in zip(names, r)) + ")" for r in rows)


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
