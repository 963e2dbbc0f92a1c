"""What every part of the import program's builder shares: the plan, the catalog,
the options, the steps written so far, and facts about the tables."""

from __future__ import annotations

from . import sqlgen
from .catalog import Catalog, Table
from .import_options import ImportOptions
from .mapping import ConflictPolicy
from .names import QualifiedName
from .plan import Plan, TablePlan
from .program_steps import (
    Step,
)


class BuilderBase:
    # archive fields the target has no column for (--ignore-column): staged, never written
    archive_types: dict[QualifiedName, dict[str, str]] = {}  # noqa: RUF012 (set per build)

    def __init__(
        self,
        plan: Plan,
        catalog: Catalog,
        options: ImportOptions,
        loaded: dict[QualifiedName, tuple[str, ...]],
    ) -> None:
        self.plan = plan
        self.catalog = catalog
        self.opts = options
        self.tables = tuple(n for n in plan.load_order if n in loaded)
        self.fields = {n: loaded[n] for n in self.tables}
        self.staging = {n: sqlgen.staging_names(i, n) for i, n in enumerate(self.tables, start=1)}
        self.finalized: set[QualifiedName] = set()
        self.steps: list[Step] = []
        self.recreated: dict[QualifiedName, tuple[str, ...]] = {}
        self.rebuild_steps: list[Step] = []
        self.compare = options.compare_only
        self.creates: list[Step] = []

    # -- facts -----------------------------------------------------------------------
    def table(self, name: QualifiedName) -> Table:
        return self.catalog.tables[name]

    def loaded(self, name: QualifiedName) -> set[str]:
        return set(self.fields[name])

    def policy(self, tp: TablePlan) -> ConflictPolicy:
        return self.opts.on_conflict or tp.on_conflict

    def derivable(self, name: QualifiedName) -> bool:
        """Whether "present after" follows from inserted + existing: nothing but our own
        statement decides what an inserted row holds (no user triggers, rules, row-level
        security, or generated column in the natural key)."""
        t = self.table(name)
        if t.triggers or t.has_rules or t.rls_enabled:
            return False
        cols = [t.column(c) for c in self.plan.tables[name].natural_key]
        return not any(c is None or c.is_generated for c in cols)

    def enforced(self, name: QualifiedName) -> bool:
        """An immediate unique index on the natural key makes an INSERT of a duplicate
        fail, so the up-front GROUP BY over the archive rows can be skipped."""
        tp = self.plan.tables[name]
        if not tp.identity_is_pk or any(kf.nullable for kf in tp.key_fields):
            return False
        return any(set(k) <= set(tp.natural_key) for k in self.table(name).immediate_unique_keys)

    def referenced_by_others(self, name: QualifiedName) -> bool:
        return any(
            e.ref_table == name for n in self.tables if n != name for e in self.plan.tables[n].expansions
        )

    def key_names(self, tp: TablePlan) -> tuple[str, ...]:
        return tuple(kf.name for kf in tp.key_fields)
