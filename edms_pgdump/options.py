"""The options an import and an export take, validated once for the library, the CLI
and the runbook: an options object that exists holds values the stages can trust."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from edms_pgdump.archive.manifest import COMPRESSIONS
from edms_pgdump.catalog.names import parse_qualified_name
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


def copy_progress(progress: Progress, task: str) -> Callable[[bytes], None]:
    """The progress of a COPY fed in blocks (``db.copy_in``): each block advances
    ``task`` by its rows and bytes."""

    def advance(block: bytes) -> None:
        progress.advance(task, block.count(b"\n"), len(block))

    return advance


class NoProgress:
    def start(self, task: str, total: int | None) -> None:
        pass

    def advance(self, task: str, rows: int, nbytes: int) -> None:
        pass

    def finish(self, task: str) -> None:
        pass


class Steps:
    """A command's phases reported one at a time as PHASE tasks, for work that has no rows
    to count (``check``'s probes, ``cleanup``'s drops): each step finishes the one before,
    and its label says how far the command is ("public.documents (3/12)")."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress or NoProgress()
        self.current: str | None = None

    def step(self, label: str, done: int | None = None, total: int | None = None) -> None:
        self.end()
        self.current = PHASE + label + (f" ({done}/{total})" if total else "")
        self.progress.start(self.current, None)

    def end(self) -> None:
        if self.current is not None:
            self.progress.finish(self.current)
            self.current = None

    def __enter__(self) -> Steps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.end()


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
    # tables outside the archive whose changes (FK actions, triggers) the user expects:
    # their updates and deletes are reported as side effects instead of refused
    allow_side_effects: tuple[str, ...] = ()
    # --delete-missing: accept ON DELETE CASCADE / SET NULL / SET DEFAULT from tables
    # outside the archive (still observed and reported after the writes)
    allow_cascade: bool = False
    # compare every written table's rows with the staged rows before COMMIT (by default
    # only tables whose triggers, rules, RLS, inheritance or collation can change values)
    prove: bool = False

    def __post_init__(self) -> None:
        """Refuse values the import would otherwise misread (an unknown policy must not
        quietly mean "never update"), once, when the options are made: the library, the
        CLI and the runbook all get them from here. Each message names the option, its
        command-line flag and what is allowed."""
        if self.on_conflict is not None and self.on_conflict not in CONFLICT_POLICIES:
            allowed = ", ".join(CONFLICT_POLICIES)
            raise UsageError(f"on_conflict={self.on_conflict!r} (--on-conflict): use one of {allowed}")
        if self.constraints not in CONSTRAINT_MODES:
            raise UsageError(
                f"constraints={self.constraints!r} (--constraints): use one of " + ", ".join(CONSTRAINT_MODES)
            )
        _setting(
            "--lock-timeout", self.lock_timeout, DURATION, "duration (e.g. 30s, 500ms, 2min; 0: no limit)"
        )
        _setting(
            "--statement-timeout", self.statement_timeout, DURATION, "duration (e.g. 10min, 90s; 0: no limit)"
        )
        _setting("--work-mem", self.work_mem, MEMORY, "amount of memory (e.g. 256MB, 1GB, 65536 for kB)")
        _setting("temp_buffers", self.temp_buffers, MEMORY, "amount of memory (e.g. 256MB)")
        if self.compare_only and not self.dry_run:
            raise UsageError("compare_only=True needs dry_run=True: a comparison never commits; pass both")
        if self.max_deletes is not None:
            if (
                isinstance(self.max_deletes, bool)
                or not isinstance(self.max_deletes, int)
                or self.max_deletes < 0
            ):
                raise UsageError(
                    f"max_deletes={self.max_deletes!r} (--max-deletes): use a whole number, 0 or more "
                    "(or all: no limit)"
                )
            if not self.delete_missing:
                raise UsageError(
                    "max_deletes (--max-deletes) limits delete_missing (--delete-missing): "
                    "give both, or neither"
                )
        share = self.max_deletes_percent
        if share is not None and (
            isinstance(share, bool) or not isinstance(share, int) or not 0 <= share <= 100
        ):
            raise UsageError(f"max_deletes_percent={share!r}: use a whole number from 0 to 100")
        if isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or not 1 <= self.jobs <= 64:
            raise UsageError(f"jobs={self.jobs!r} (--jobs): use a whole number of connections from 1 to 64")
        for item in self.allow_side_effects:
            try:
                parse_qualified_name(item)
            except ValueError as exc:
                raise UsageError(f"allow_side_effects={item!r} (--allow-side-effects): {exc}") from None
        size = self.sample_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise UsageError(f"sample_size={self.sample_size!r}: use a whole number of at least 1")


WherePairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ExportOptions:
    """What ``export`` takes, the twin of ``ImportOptions``: checked when it is made (an
    invalid one cannot exist), before any connection, key file or output is touched.
    Each refusal names the option (and its command-line flag) and what is allowed."""

    jobs: int = 1  # tables exported in parallel, each worker on the first connection's snapshot
    compression: str = "zstd"
    level: int = 3  # zstd level
    directory: bool = False  # a folder instead of one tar file
    # False: a plan with warnings (a natural key without a unique constraint…) is refused
    allow_warnings: bool = True
    sort_rows: bool = False  # rows in natural-key order: re-exports are byte-identical
    # (table, SQL condition) pairs making it a subset export; each replaces the mapping's
    # where: for its table (a dict is taken too, and kept as pairs)
    where: WherePairs = ()
    # age recipients (age1…) and files of them: the published file is encrypted
    encrypt_to: tuple[str, ...] = ()
    recipients_file: tuple[str | Path, ...] = ()
    # a minisign secret key signing the manifest, and its password (else from
    # $EDMS_PGDUMP_SIGN_PASSWORD or the terminal)
    sign_key: str | Path | None = None
    sign_password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # the sequences a caller may pass as lists or a dict become tuples: hashable, and
        # not changed behind the options' back
        object.__setattr__(self, "where", _where_pairs(self.where))
        object.__setattr__(self, "encrypt_to", _strings("encrypt_to", "--encrypt-to", self.encrypt_to))
        files = self.recipients_file
        if isinstance(files, (str, Path)):
            files = (files,)
        object.__setattr__(self, "recipients_file", tuple(files))
        self.validate()

    @property
    def encrypted(self) -> bool:
        return bool(self.encrypt_to or self.recipients_file)

    def validate(self) -> None:
        """Refuse values the export would otherwise misread or fail on half way."""
        jobs = self.jobs
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise UsageError(f"jobs={jobs!r} (--jobs): use a whole number of at least 1")
        if self.compression not in COMPRESSIONS:
            allowed = ", ".join(COMPRESSIONS)
            raise UsageError(f"compression={self.compression!r} (--compression): use one of {allowed}")
        level = self.level
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 19:
            raise UsageError(f"level={level!r} (--level): use a zstd level from 1 to 19")
        for name in ("directory", "allow_warnings", "sort_rows"):
            if not isinstance(getattr(self, name), bool):
                raise UsageError(f"{name}={getattr(self, name)!r}: use True or False")
        if self.encrypted and self.directory:
            raise UsageError("--encrypt-to writes one encrypted file: drop --format dir")
        if self.sign_password is not None and self.sign_key is None:
            raise UsageError(
                "sign_password is the password of --sign-key: give sign_key too, or drop sign_password"
            )


def _where_pairs(where: object) -> WherePairs:
    pairs = list(where.items()) if isinstance(where, AbcMapping) else where
    if isinstance(pairs, str) or not isinstance(pairs, Sequence):
        raise UsageError(f"where={where!r} (--where): give (table, condition) pairs or a dict")
    out: list[tuple[str, str]] = []
    for pair in pairs:
        if (
            isinstance(pair, str)
            or not isinstance(pair, Sequence)
            or len(pair) != 2
            or not all(isinstance(p, str) for p in pair)
        ):
            raise UsageError(f"--where {pair!r}: give a table and an expression, --where TABLE EXPR")
        out.append((pair[0], pair[1]))
    return tuple(out)


def _strings(name: str, flag: str, values: object) -> tuple[str, ...]:
    if isinstance(values, str):
        values = (values,)
    if not isinstance(values, Sequence):
        raise UsageError(f"{name}={values!r} ({flag}): give a list of age recipients (age1…)")
    for v in values:
        if not isinstance(v, str):
            raise UsageError(f"{name}: {v!r} is no age recipient ({flag}): give each as text, age1…")
    return tuple(values)
