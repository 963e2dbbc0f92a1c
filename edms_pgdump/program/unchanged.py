"""Part of the builder: archive rows found unchanged in the target are set aside before
any key is resolved (``sqlgen.unchanged``), so a re-import of an unchanged archive
neither resolves, compares nor writes them. Their count joins "existing" (and so
"unchanged" in the report). A key the archive repeats is left out of both sets, so the
keyed rows fall short of the rows to resolve, which names it."""

from __future__ import annotations

from dataclasses import replace

from edms_pgdump import sqlgen
from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.program.proof import ProofSteps
from edms_pgdump.program.steps import (
    STAGED,
    Condition,
    Derive,
    Execute,
    Record,
    Step,
    When,
    at_least,
    count_of,
)
from edms_pgdump.sqlgen.export import all_null_key
from edms_pgdump.sqlgen.staging import create_view, staged_rows, unresolved_rows
from edms_pgdump.sqlgen.unchanged import (
    counted_rows,
    join_method,
    parallel_costs,
    same_rows,
    scans,
    target_rows,
)

SAME = "same"  # archive rows the target already holds as they are
TO_RESOLVE = "to resolve"  # the other staged rows: keyed, resolved and written
FEW = 10  # rows to resolve are stored apart when at most 1 in FEW of the staged rows
TARGET_ROWS = "target rows"  # the target's row count, as the server estimates it
HELD = "target rows held"  # counted where the estimate is small (``held_rows``)


class UnchangedSteps(ProofSteps):
    def prunable(self, name: QualifiedName) -> bool:
        """Where setting unchanged rows aside is proven to change nothing (see
        docs/performance.md): a table the program writes with on_conflict update,
        whose written rows nothing in the target can change (otherwise they are compared
        after the writes), whose fields are exactly the plan's, with plain columns and
        plain references only, keyed by deterministic equality. Not for a comparison or
        --delete-missing, which read every staged row."""
        if self.compare or self.opts.delete_missing or self.compared(name):
            return False
        tp = self.plan.tables[name]
        if self.policy(tp) != "update" or tuple(self.fields[name]) != tp.field_names:
            return False
        if self.archive_types.get(name) or tp.generic or tp.moving_key or tp.byte_compared or tp.equality:
            return False
        # positions the import computes (tree:), ids inside JSON or text rewritten in
        # staging (embedded_references:): the staged row is not yet what is written
        if tp.tree is not None or tp.embedded:
            return False
        if any(f.role not in ("column", "reference") for f in tp.fields):
            return False
        # a reference's presence and carried values (archive format 2) are not in the
        # natural view's comparison: such tables import as before
        return not any(
            e.tree or e.array or e.shared or e.present or e.carried or all_null_key(self.plan, e)
            for e in tp.expansions
        )

    def set_aside_unchanged(self, tables: list[QualifiedName]) -> None:
        chosen = [n for n in tables if self.prunable(n)]
        if not chosen:
            return
        for setting in [join_method("nestloop", False), *parallel_costs(True)]:
            self.steps.append(Execute("session", None, setting))
        for name in chosen:
            self.set_aside(name)
        for setting in [join_method("nestloop", True), *parallel_costs(False)]:
            self.steps.append(Execute("session", None, setting))

    def without_merge_joins(self, on: bool) -> None:
        """Around the resolving steps when rows were set aside (``join_method``)."""
        if any(self.staging[n].same is not None for n in self.tables):
            self.steps.append(Execute("session", None, join_method("mergejoin", not on)))

    def set_aside(self, name: QualifiedName) -> None:
        tp = self.plan.tables[name]
        names = replace(self.staging[name], same=self.staging[name].beside_raw("same"))
        self.staging[name] = names
        assert names.same is not None
        add = self.steps.append
        keys = [kf.name for kf in tp.key_fields]
        add(Record("target rows", name, target_rows(name), (TARGET_ROWS,)))
        if self.enforced(name):  # otherwise staging analyzed the raw rows for its duplicate check
            # The row count: estimated from the pages just written, the planner hashed the
            # target's natural view on one process; counted, the raw rows in parallel (1M
            # documents: the versions' comparison 3.8 s -> 2.7-2.9 s). Only where the target
            # already holds about as many rows (a re-import): the statistics also steer the
            # keyed join, and in a first load it should keep probing with the staged rows in
            # archive order, so new rows take their ids in that order (as loaddata gives
            # them; docs/django.md, generic object ids in a --natural-primary backup).
            analyze = Execute("analyze raw", name, sqlgen.analyze(names.raw, keys))
            big = at_least(0, count_of(name, TARGET_ROWS, 2), count_of(name, STAGED, -1))
            add(When(big, (analyze,), "the target holds at least half as many rows"))
        self.held_rows(name)
        # The comparison hashes every staged row whatever the target holds. Where the
        # target holds fewer than 1 row in FEW of the staged (a first load), what it could
        # set aside is not worth that: ``same`` is made empty, and the target's few rows
        # are keyed and compared as before (1M documents into a target of 4, PostgreSQL 15:
        # 1.8 s of comparisons; docs/performance.md).
        select = same_rows(self.plan, tp, names)
        # beside the raw rows: the rows left are then found by a parallel anti-join (1% changed
        # at 1M documents, PostgreSQL 15: 2.5 s -> 1.2 s; docs/performance.md)
        unlogged = names.schema is not None
        compare, skip = (
            Execute("unchanged", name, sqlgen.create_as(names.same, select, empty, unlogged), count=SAME)
            for empty in (False, True)
        )
        enough = at_least(0, count_of(name, HELD, FEW), count_of(name, STAGED, -1))
        few = at_least(1, count_of(name, STAGED), count_of(name, HELD, -FEW))
        add(When(enough, (compare,), "the target holds at least 1 row in 10 of the staged"))
        add(When(few, (skip,), "the target holds fewer than 1 row in 10 of the staged"))
        add(Derive(name, TO_RESOLVE, (count_of(name, STAGED), count_of(name, SAME, -1))))
        # the rows keyed next are those whose key is not here; references join on the key
        add(Execute("analyze unchanged", name, sqlgen.analyze(names.same, keys)))
        self.rows_left(name, keys)

    def held_rows(self, name: QualifiedName) -> None:
        """``HELD``: the target's rows, counted exactly where the estimate says they are
        fewer than 1 in ``FEW`` of the staged (the estimate lags behind a load committed
        a moment ago, and a small target is cheap to count; the import's lock keeps the
        count true), the estimate otherwise (a re-import: its table is not scanned)."""
        count = Record("target rows held", name, counted_rows(self.plan.tables[name]), (HELD,))
        few = at_least(1, count_of(name, STAGED), count_of(name, TARGET_ROWS, -FEW))
        many = at_least(0, count_of(name, TARGET_ROWS, FEW), count_of(name, STAGED, -1))
        self.steps += [
            When(few, (count,), "the target holds few rows, as estimated"),
            When(many, (Derive(name, HELD, (count_of(name, TARGET_ROWS),)),), "the target holds many rows"),
        ]

    def rows_left(self, name: QualifiedName, keys: list[str]) -> None:
        """The raw rows not set aside, named ``todo`` for the keyed step. When they are
        few (at most 1 in ``FEW`` staged rows: a re-import after small changes), a table
        with statistics: the planner then looks each key up in the target's indexes
        instead of hashing every target row (1% changed at 1M documents: the keyed
        statements 3.2 s -> 0.5-0.9 s; docs/performance.md). Otherwise a view of the same
        query, not stored; it goes with the ``same`` table it reads (at commit, or with the
        private schema)."""
        tp = self.plan.tables[name]
        names = replace(self.staging[name], todo=self.staging[name].scratch("todo"))
        self.staging[name] = names
        assert names.todo is not None
        rows = unresolved_rows(tp, names)
        few = (
            Execute("rows to resolve", name, sqlgen.create_as(names.todo, rows)),
            Execute("analyze rows to resolve", name, sqlgen.analyze(names.todo, keys)),
        )
        many = (Execute("rows to resolve", name, create_view(names.todo, rows)),)
        every = (Execute("rows to resolve", name, create_view(names.todo, staged_rows(names))),)
        more = (count_of(name, TO_RESOLVE, FEW), count_of(name, STAGED, -1))
        self.steps += [
            When(self.few_left(name), few, "some rows to resolve, at most 1 in 10 staged"),
            # none (the keyed step then creates its table empty) or many: not stored
            When(at_least(0, count_of(name, TO_RESOLVE, -1)), many, "no row to resolve"),
            When(
                Condition(((more, 1), ((count_of(name, SAME),), 1))),
                many,
                "many rows to resolve",
            ),
            # none set aside: every staged row, without probing the empty ``same`` per row
            When(
                Condition(((more, 1), ((count_of(name, SAME, -1),), 0))),
                every,
                "every staged row to resolve",
            ),
        ]

    @staticmethod
    def few_left(name: QualifiedName) -> Condition:
        """Some rows left to resolve, at most 1 in ``FEW`` of the staged rows."""
        fewer = (count_of(name, STAGED), count_of(name, TO_RESOLVE, -FEW))  # staged - FEW * left >= 0
        return Condition((((count_of(name, TO_RESOLVE),), 1), (fewer, 0)))

    def by_index(self, name: QualifiedName, when: Condition, steps: tuple[Step, ...], why: str) -> list[Step]:
        """``steps`` under ``when``; where few rows are left to resolve (``rows_left``),
        with sequential scans off, so the few rows are found by the target's indexes:
        the planner costs the target's pages as if read from disk and hashes the whole
        table instead (1% changed at 1M documents, the UPDATE's join: see
        docs/performance.md)."""
        if self.staging[name].todo is None:
            return [When(when, steps, why)]
        few = Condition(when.bounds + self.few_left(name).bounds)
        off, on = (Execute("session", None, scans("seqscan", flag)) for flag in (False, True))
        return [
            When(few, (off,), why + ", few rows left to resolve"),
            When(when, steps, why),
            When(few, (on,), why + ", few rows left to resolve"),
        ]

    def resolved_count(self, name: QualifiedName) -> str:
        """The count the keyed rows must match: every staged row, or those not set aside."""
        return STAGED if self.staging[name].same is None else TO_RESOLVE


__all__ = ["SAME", "TO_RESOLVE", "UnchangedSteps"]
