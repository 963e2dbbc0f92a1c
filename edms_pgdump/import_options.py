"""The options an import takes, validated once for the library, the CLI and the runbook."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .mapping import ConflictPolicy


@dataclass(frozen=True)
class ImportOptions:
    dry_run: bool = False
    on_conflict: ConflictPolicy | None = None  # overrides the mapping for every table
    lock_timeout: str = "30s"
    statement_timeout: str = "0"
    work_mem: str = "256MB"
    sample_size: int = 5
    # "keep": foreign keys stay in place and are checked row by row as rows go in.
    # "recreate": when a component brings many new rows (RECREATE_MIN_ROWS), the
    # foreign keys declared on the imported tables still to be loaded are dropped inside
    # the transaction and re-added at the end, each validated by one set-based join,
    # before the counts are checked. Several times faster for big loads. Needs
    # ownership of the tables (checked before loading). From the drop until COMMIT the
    # tables holding those keys, and the tables they reference, are ACCESS EXCLUSIVE
    # locked: readers wait too. An import that adds few rows never drops anything.
    constraints: Literal["keep", "recreate"] = "keep"
    # Staging lives in temporary tables, held in this many buffers before they spill
    # to disk (server memory, per import session, only as much as is used).
    temp_buffers: str = "256MB"
