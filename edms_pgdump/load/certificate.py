"""An import's certificate, and the proof a re-import of the same archive takes from it.

Before it commits, an import that left every archive row in the target as the archive
holds it sums up each table its rows' natural values depend on (``sqlgen.certificate``:
the row count, and a count per transaction of the rows written at or after a horizon,
its own rows among them). The summary goes into its history row (``load.history``),
with a digest of everything that decides what the import does (``inputs_digest``).

A later import of the same archive, with the same digest, runs the same summary with
the same horizon. If every table matches, no row was written, updated or deleted in
any of them since: the target holds what the earlier import proved it held, and
importing again would change nothing. The archive's members are still read whole and
checked against the manifest, then nothing is staged, resolved or compared; every
table is reported unchanged (1M documents: a re-import that staged and compared 4M
rows, 6-7 s, takes about 1.1 s; docs/performance.md).

Any difference, a digest that differs (another tool version, mapping, option, target
schema or type), a history row not written by the transaction the certificate names
(restored into another server, or edited), a certificate older than ``WINDOW``
transactions, a table with more than ``CAP`` recent writers, or a check the role may not
run, and the import runs in full, as it always did.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields, replace
from typing import Any

from edms_pgdump import __version__
from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.db import Connection
from edms_pgdump.load.transaction import ImportInput
from edms_pgdump.options import ImportOptions
from edms_pgdump.program.steps import Program
from edms_pgdump.results import ImportReport
from edms_pgdump.sqlgen.certificate import WRAP, summaries, type_signature

CAP = 1000  # transactions with recent rows a table's summary lists; more: no certificate
WINDOW = 1 << 30  # transactions after its horizon a certificate is trusted for (exact below 2**31)

# options that change how fast an import runs, never what it leaves in the target
_PACE = ("dry_run", "jobs", "lock_timeout", "statement_timeout", "work_mem", "temp_buffers", "sample_size",
         "constraints")


@dataclass(frozen=True)
class Certificate:
    inputs: str  # inputs_digest of the import that took it
    horizon: int  # 64-bit transaction id: the oldest running when it was taken
    tables: dict[str, Any]  # table -> {"rows": N, "recent": {xid: rows} | None}
    taken_at: str  # when it was taken (carried on by the imports proven in place by it)
    # the 64-bit id of the transaction that wrote the history row holding it: that row's
    # xmin must still be it, or the row (and the database) came from elsewhere
    xid: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "horizon": self.horizon,
            "tables": self.tables,
            "taken_at": self.taken_at,
            "xid": self.xid,
        }

    @classmethod
    def from_json(cls, doc: Any) -> Certificate | None:
        """The certificate a history row holds; None for anything else (an older or an
        edited row): the import then runs in full."""
        try:
            tables = dict(doc["tables"])
            for summary in tables.values():
                int(summary["rows"])
                recent = summary["recent"]
                if recent is not None:
                    [int(v) for v in dict(recent).values()]
            return cls(str(doc["inputs"]), int(doc["horizon"]), tables, str(doc["taken_at"]), int(doc["xid"]))
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def inputs_digest(
    conn: Connection, given: ImportInput, options: ImportOptions, tables: list[QualifiedName]
) -> str:
    """What decides what the import does to the target: the tool's version, the plan, the
    target's catalog (its row estimates aside), the tables' identities and every type
    their columns use, down to enum labels and composite attributes (``type_signature``:
    a renamed label or a table swapped in by renames rewrites no row), the fields loaded
    and the options that change the outcome. Two imports of one archive with equal
    digests run equal programs on equal targets."""
    catalog = given.catalog
    described = {n: replace(t, estimated_rows=0) for n, t in sorted(catalog.tables.items())}
    outcome = {f.name: getattr(options, f.name) for f in fields(options) if f.name not in _PACE}
    types = conn.execute(type_signature(tables)).fetchall()
    text = repr(
        (
            __version__,
            catalog.server_version,
            catalog.current_user,
            described,
            types,
            sorted(catalog.sequences.items()),
            given.plan,
            sorted(given.loaded.items()),
            sorted(given.archive_types.items()),
            sorted(given.scopes.items()),
            sorted(outcome.items()),
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()


def scope(given: ImportInput, program: Program) -> list[QualifiedName] | None:
    """The tables whose rows decide what the archive's rows are in the target: every
    mapped table. None where the import does not write them all (``--skip-tables``, a
    subset): a table it only reads keys from is not locked, and a write to it during
    the import would go into the certificate unseen by the import's own proof."""
    mapped = set(given.plan.tables)
    if not mapped <= set(program.tables):
        return None
    return sorted(mapped)


def eligible(options: ImportOptions, given: ImportInput) -> bool:
    """An import that may be proven in place: it writes (not verify or diff), it is not
    asked to compare every row (``--prove``) or to refresh views, and its source can
    read its members whole without staging them (an archive)."""
    return not (
        options.compare_only or options.prove or options.refresh_materialized_views
    ) and given.read_whole is not None


def take(conn: Connection, inputs: str, tables: list[QualifiedName]) -> Certificate:
    """The horizon and every table's summary, as the transaction sees them now."""
    row = conn.execute(summaries(tables, None, CAP)).fetchone()
    assert row is not None
    return Certificate(inputs, int(row[0]), dict(row[1]), str(row[3]))


def certifiable(report: ImportReport) -> bool:
    """Every archive row is in the target as the archive holds it (no row skipped)."""
    return not report.dry_run and all(t.skipped == 0 for t in report.tables)


def changes_since(
    conn: Connection, cert: Certificate, tables: list[QualifiedName], written_by: int
) -> list[str]:
    """What differs from the certificate, one line per table; empty: nothing was written.
    ``written_by``: the xmin of the history row holding it."""
    names = [str(t) for t in tables]
    if sorted(cert.tables) != sorted(names):
        return ["the certificate sums up other tables"]
    if written_by != cert.xid % WRAP:
        return ["the certificate's history row was written by another transaction than it names (restored?)"]
    row = conn.execute(summaries(tables, cert.horizon, CAP)).fetchone()
    assert row is not None
    found, newest = dict(row[1]), int(row[2])
    if newest < cert.horizon:
        return ["the certificate is ahead of this server's transaction ids"]
    if newest - cert.horizon >= WINDOW:
        return [f"the certificate is {newest - cert.horizon} transactions old"]
    out = []
    for name in names:
        then, now = cert.tables[name], found[name]
        if then.get("recent") is None:
            out.append(f"{name}: too many writers to sum up")
        elif now != then:
            out.append(f"{name}: {now['rows']} rows ({then['rows']} then), written since")
    return out


__all__ = [
    "CAP",
    "WINDOW",
    "Certificate",
    "certifiable",
    "changes_since",
    "eligible",
    "inputs_digest",
    "scope",
    "take",
]
