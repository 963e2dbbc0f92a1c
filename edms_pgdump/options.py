"""The options an import takes, validated once for the library, the CLI and the runbook."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

from edms_pgdump.errors import UsageError
from edms_pgdump.mapping import CONFLICT_POLICIES, ConflictPolicy

ConstraintMode = Literal["auto", "keep", "recreate"]
CONSTRAINT_MODES: tuple[ConstraintMode, ...] = ("auto", "keep", "recreate")


# PostgreSQL's own spellings of a duration and of an amount of memory (postgresql.conf
# units): anything else would only fail at the server, as a data error instead of a usage one
DURATION = re.compile(r"\d+(\.\d+)?\s*(us|ms|s|min|h|d)?")
MEMORY = re.compile(r"\d+\s*(B|kB|MB|GB|TB)?")


def _setting(option: str, value: object, pattern: re.Pattern[str], example: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value.strip()):
        raise UsageError(f"{option} {value!s}: not a PostgreSQL {example}")


# A task whose name starts with PHASE is a step of the work after staging (resolve, write,
# re-add keys, verify: "phase: insert public.documents"), not a table's rows: a display
# shows one line for the current phase, with the time it has run, so long work is never
# silent after the bars reach 100%.
PHASE = "phase: "


# The CLI's guard for --delete-missing without --max-deletes: no table may lose more than
# this percent of its rows in the target (--max-deletes all: no guard)
DEFAULT_MAX_DELETES_PERCENT = 10


class Progress(Protocol):
    def start(self, task: str, total: int | None) -> None: ...
    def advance(self, task: str, rows: int, nbytes: int) -> None: ...
    def finish(self, task: str) -> None: ...


class NoProgress:
    def start(self, task: str, total: int | None) -> None:
        pass

    def advance(self, task: str, rows: int, nbytes: int) -> None:
        pass

    def finish(self, task: str) -> None:
        pass


@dataclass(frozen=True)
class ImportOptions:
    dry_run: bool = False
    on_conflict: ConflictPolicy | None = None  # overrides the mapping for every table
    lock_timeout: str = "30s"
    statement_timeout: str = "0"
    work_mem: str = "256MB"
    sample_size: int = 5
    # "keep": foreign keys stay in place and are checked row by row as rows go in.
    # "recreate": when a table brings many new rows (program_constraints.RECREATE_MIN_ROWS), its
    # foreign keys and plain indexes are dropped inside the transaction and re-added
    # at the end, each foreign key validated by one set-based join, before the counts
    # are checked. Several times faster for big loads. Needs ownership of the tables
    # (checked before loading). From the drop until COMMIT the table, and the tables
    # its keys reference, are ACCESS EXCLUSIVE locked: readers wait too.
    # "auto" (the default): recreate where the role owns the table and the import
    # brings more rows than the table held before (a restore or a first load); keep
    # elsewhere (a small sync into a large live table).
    constraints: ConstraintMode = "auto"
    # Staging lives in temporary tables, held in this many buffers before they spill
    # to disk (server memory, per import session, only as much as is used).
    temp_buffers: str = "256MB"
    # materialized views reading the imported tables are refreshed in the transaction
    # (otherwise the report lists them as stale)
    refresh_materialized_views: bool = False
    # verify: stage and resolve, then compare with the target in a READ ONLY
    # transaction (implies a dry run; nothing is written, no sequence moves)
    compare_only: bool = False
    # after loading, delete the target rows of the archive's tables whose natural key
    # the archive does not hold (a mirror); at most max_deletes rows in all, if set
    delete_missing: bool = False
    max_deletes: int | None = None
    # with delete_missing and no max_deletes: refuse when a table would lose more than
    # this share (percent) of its target rows; the CLI's default guard
    # (DEFAULT_MAX_DELETES_PERCENT), None here for the library (no guard unless asked)
    max_deletes_percent: int | None = None
    # schema drift: archive fields (TABLE.COLUMN) the target lacks, carried but not
    # written; archive tables (TABLE) the target lacks, left out
    ignore_columns: tuple[str, ...] = ()
    skip_tables: tuple[str, ...] = ()
    # more than 1: the archive's members are loaded over this many connections into
    # UNLOGGED tables of a private schema (edms_pgdump_stage_<archive id>) before the
    # one transaction that resolves and writes. A role that may not create a schema
    # stages as with 1.
    jobs: int = 1

    def validate(self) -> None:
        """Refuse values the import would otherwise misread (an unknown policy must not
        quietly mean "never update")."""
        if self.on_conflict is not None and self.on_conflict not in CONFLICT_POLICIES:
            raise UsageError(f"on_conflict={self.on_conflict!r}: use one of " + ", ".join(CONFLICT_POLICIES))
        if self.constraints not in CONSTRAINT_MODES:
            raise UsageError(f"constraints={self.constraints!r}: use one of " + ", ".join(CONSTRAINT_MODES))
        _setting(
            "--lock-timeout", self.lock_timeout, DURATION, "duration (e.g. 30s, 500ms, 2min; 0: no limit)"
        )
        _setting(
            "--statement-timeout", self.statement_timeout, DURATION, "duration (e.g. 10min, 90s; 0: no limit)"
        )
        _setting("--work-mem", self.work_mem, MEMORY, "amount of memory (e.g. 256MB, 1GB, 65536 for kB)")
        _setting("temp_buffers", self.temp_buffers, MEMORY, "amount of memory (e.g. 256MB)")
        if self.compare_only and not self.dry_run:
            raise UsageError("compare_only needs dry_run=True: a comparison never commits")
        if self.max_deletes is not None:
            if (
                isinstance(self.max_deletes, bool)
                or not isinstance(self.max_deletes, int)
                or self.max_deletes < 0
            ):
                raise UsageError(
                    f"--max-deletes {self.max_deletes!s}: use a whole number, 0 or more (or all: no limit)"
                )
            if not self.delete_missing:
                raise UsageError("--max-deletes limits --delete-missing: give both, or neither")
        share = self.max_deletes_percent
        if share is not None and (
            isinstance(share, bool) or not isinstance(share, int) or not 0 <= share <= 100
        ):
            raise UsageError(f"max_deletes_percent={share!r}: use a whole number from 0 to 100")
        if isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or not 1 <= self.jobs <= 64:
            raise UsageError(f"jobs={self.jobs!r}: use a whole number of connections from 1 to 64")
        size = self.sample_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise UsageError(f"sample_size={self.sample_size!r}: use a whole number of at least 1")
