"""The import program's vocabulary: typed steps and the counts they record.

Pure data, no SQL of its own: ``build`` makes a list of these, ``run``
executes it with psycopg and ``render_psql`` writes it as a psql script.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Union

from psycopg import sql

from edms_pgdump import sqlgen
from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.errors import EdmsPgdumpError
from edms_pgdump.options import ImportOptions
from edms_pgdump.plan.build import Plan

# Counts the program records per table (and ``unresolved:<label>`` per reference).
EXPECTED = "expected"
STAGED = "staged"
KEYED = "keyed"
EXISTING = "existing"
INSERTED = "inserted"
UPDATED = "updated"
SKIPPED = "skipped"
UNCHANGED = "unchanged"
PRESENT = "present"
ABSENT = "absent"  # target rows whose natural key the archive does not hold
DELETED = "deleted"
RECREATING = "recreating"  # 1 once a table's foreign keys were dropped, to re-add at the end


INTEGER_LIMITS = {"smallint": 32767, "integer": 2147483647}


class ProgramRefused(EdmsPgdumpError):
    """The options ask for something this target does not allow (nothing was written)."""


@dataclass(frozen=True)
class Term:
    table: QualifiedName
    count: str
    factor: int = 1


@dataclass(frozen=True)
class Condition:
    """True when, for every bound, ``sum(factor * count) >= minimum``."""

    bounds: tuple[tuple[tuple[Term, ...], int], ...]

    def describe(self) -> str:
        parts = []
        for terms, minimum in self.bounds:
            expr = " + ".join(f"{t.factor}*{t.table}.{t.count}" for t in terms)
            parts.append(f"{expr} >= {minimum}")
        return " and ".join(parts)


def at_least(minimum: int, *terms: Term) -> Condition:
    return Condition(((tuple(terms), minimum),))


@dataclass(frozen=True)
class Message:
    """A failure message around the offending rows: ``head + total + middle + samples + tail``
    (``total`` is left out when ``middle`` is None)."""

    head: str
    tail: str
    middle: str | None = None


# the step that creates a table's raw staging table (run ahead, on the loading
# connections, when staging is parallel)
CREATE_RAW = "create raw"


@dataclass(frozen=True)
class Execute:
    step: str  # profile name
    table: QualifiedName | None
    statement: sql.Composed
    count: str | None = None  # record the statement's row count under this name
    # Checks that name the cause when the statement trips a unique index (run after
    # rolling back to a savepoint by the Python interpreter, up front by psql).
    on_unique_violation: tuple[Check, ...] = ()
    # When the statement breaks an integrity constraint, the import is refused with this
    # text before the server's own message (instead of reporting a server failure).
    refusal: str | None = None
    # A lock that may be refused (deadlock, lock timeout): the Python interpreter rolls
    # back to a savepoint and skips the rest of the enclosing When (psql just runs it).
    optional: bool = False


@dataclass(frozen=True)
class CopyIn:
    table: QualifiedName
    statement: sql.Composed  # COPY … FROM STDIN
    fields: tuple[str, ...]


@dataclass(frozen=True)
class Record:
    """Run a one-row query and keep its columns as counts of ``table``."""

    step: str
    table: QualifiedName
    query: sql.Composed
    counts: tuple[str, ...]


@dataclass(frozen=True)
class Derive:
    """A count computed from other counts: ``sum(factor * count)``."""

    table: QualifiedName
    count: str
    terms: tuple[Term, ...]


@dataclass(frozen=True)
class Check:
    """The query returns offending rows; any row fails the import (or warns).

    ``shape`` says how its columns read: ``total_first`` is ``count(*) OVER ()`` then
    the fields; ``count_last`` is the fields then how often they repeat.
    """

    step: str
    table: QualifiedName | None
    query: sql.Composed
    fields: tuple[str, ...]
    message: Message
    shape: Literal["total_first", "count_last", "exists"] = "total_first"
    warn: bool = False  # a warning with the samples instead of a failure
    count: str | None = None  # keep the total under this name
    gather: bool = False  # failures are collected until the next step that is not gathering
    explain: tuple[Check, ...] = ()  # run first when this check fails, for a better message


@dataclass(frozen=True)
class CompareCounts:
    table: QualifiedName
    left: str
    right: str
    message: Message  # head + left + middle + right + tail
    explain: tuple[Check, ...] = ()


@dataclass(frozen=True)
class Refuse:
    """Stop the import: ``message.head + value + message.tail`` (inside a ``When``)."""

    table: QualifiedName
    message: Message
    value: Term


@dataclass(frozen=True)
class Balance:
    """The table's counts must balance (``results.BALANCE_RULE``); else the import is
    refused with ``results.BALANCE_REFUSAL``. Every table's are reported together."""

    table: QualifiedName


@dataclass(frozen=True)
class Setting:
    """A ``SET LOCAL`` of the import transaction. ``best_effort``: a refusal keeps the
    server's value (temp_buffers cannot change after the session's first temporary
    table, which a pooled connection may have had; psql's session is new)."""

    statement: sql.Composed
    best_effort: bool = False


@dataclass(frozen=True)
class End:
    """Close the import transaction: COMMIT, or ROLLBACK for a dry run or a comparison."""

    commit: bool


@dataclass(frozen=True)
class When:
    condition: Condition
    steps: tuple[Step, ...]
    why: str = ""


Step = Union[  # noqa: UP007 (runtime alias on 3.10)
    Execute, CopyIn, Record, Derive, Check, CompareCounts, Refuse, Balance, Setting, End, When
]


@dataclass(frozen=True)
class Program:
    tables: tuple[QualifiedName, ...]  # in load order
    staging: dict[QualifiedName, sqlgen.StagingNames]
    fields: dict[QualifiedName, tuple[str, ...]]  # COPY field order per table
    steps: tuple[Step, ...]
    recreated: dict[QualifiedName, tuple[str, ...]]  # FKs that may be recreated, per table
    options: ImportOptions
    # materialized views reading the imported tables: refreshed when asked, else stale
    views: tuple[QualifiedName, ...] = ()
    plan: Plan | None = None
    # the transaction's frame: the pinned session, BEGIN and its settings before
    # ``steps``; COMMIT or ROLLBACK after them (``program.build.transaction_opening``)
    opening: tuple[Step, ...] = ()
    closing: tuple[Step, ...] = ()

    def walk(self) -> Iterator[Step]:
        """Every step, those inside ``When`` included, in order."""
        yield from _walk((*self.opening, *self.steps, *self.closing))


def _walk(steps: tuple[Step, ...]) -> Iterator[Step]:
    for s in steps:
        yield s
        if isinstance(s, When):
            yield from _walk(s.steps)


def count_of(table: QualifiedName, count: str, factor: int = 1) -> Term:
    return Term(table, count, factor)
