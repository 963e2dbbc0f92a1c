"""What every part of the import program's builder shares: the plan, the catalog,
the options, the steps written so far, and facts about the tables."""

from __future__ import annotations

from collections.abc import Mapping as AbcMapping

from edms_pgdump import sqlgen
from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import Catalog, Table
from edms_pgdump.export.subset import TableScope
from edms_pgdump.mapping import ConflictPolicy
from edms_pgdump.options import ImportOptions
from edms_pgdump.plan.build import Plan, TablePlan
from edms_pgdump.program.steps import (
    Check,
    Message,
    Step,
)


class BuilderBase:
    def __init__(
        self,
        plan: Plan,
        catalog: Catalog,
        options: ImportOptions,
        loaded: dict[QualifiedName, tuple[str, ...]],
        staging_schema: str | None = None,
        archive_types: dict[QualifiedName, dict[str, str]] | None = None,
        scopes: AbcMapping[QualifiedName, TableScope] | None = None,
    ) -> None:
        # archive fields the target has no column for (--ignore-column): staged, never written
        self.archive_types = dict(archive_types or {})
        # a subset archive's rules: --delete-missing deletes within them
        self.scopes: dict[QualifiedName, TableScope] = dict(scopes or {})
        self.plan = plan
        self.catalog = catalog
        self.opts = options
        self.tables = tuple(n for n in plan.load_order if n in loaded)
        self.fields = {n: loaded[n] for n in self.tables}
        self.staging_schema = staging_schema
        self.staging = {
            n: sqlgen.staging_names(i, n, staging_schema) for i, n in enumerate(self.tables, start=1)
        }
        self.finalized: set[QualifiedName] = set()
        # a merged member of a cycle: the members whose keyed rows it joins
        self.joins_keyed: dict[QualifiedName, tuple[QualifiedName, ...]] = {}
        self.steps: list[Step] = []
        self.recreated: dict[QualifiedName, tuple[str, ...]] = {}
        self.rebuild_steps: list[Step] = []
        self.unique_rebuild_steps: list[Step] = []  # before rebuild_steps: keys reference them
        self.compare = options.compare_only
        self.creates: list[Step] = []

    # -- facts -----------------------------------------------------------------------
    def table(self, name: QualifiedName) -> Table:
        return self.catalog.tables[name]

    def loaded(self, name: QualifiedName) -> set[str]:
        return set(self.fields[name])

    def policy(self, tp: TablePlan) -> ConflictPolicy:
        return self.opts.on_conflict or tp.on_conflict

    def keep_existing(self) -> frozenset[QualifiedName]:
        """Tables whose existing rows keep their values (on_conflict skip): references to
        their unique columns resolve to the values the target keeps."""
        return frozenset(n for n in self.tables if self.policy(self.plan.tables[n]) == "skip")

    def derivable(self, name: QualifiedName) -> bool:
        """Whether "present after" follows from inserted + existing: nothing but our own
        statement decides what an inserted row holds (no user triggers, rules, row-level
        security, or generated column in the natural key)."""
        t = self.table(name)
        if t.triggers or t.has_rules or t.rls_enabled:
            return False
        cols = [t.column(c) for c in self.plan.tables[name].natural_key]
        return not any(c is None or c.is_generated for c in cols)

    def unique_in_target(self, name: QualifiedName, immediate: bool) -> bool:
        """A unique key of the target within the natural key that also holds for NULLs:
        its columns are NOT NULL, or it is NULLS NOT DISTINCT (PostgreSQL 15+)."""
        tp = self.plan.tables[name]
        table = self.table(name)
        keys = table.immediate_unique_keys if immediate else (*table.unique_keys, table.primary_key or ())
        for key in keys:
            if not key or not set(key) <= set(tp.natural_key):
                continue
            cols = [table.column(c) for c in key]
            if key in table.nulls_not_distinct_keys or all(c is not None and c.not_null for c in cols):
                return True
        return False

    def enforced(self, name: QualifiedName) -> bool:
        """An immediate unique index on the natural key makes an INSERT of a duplicate
        fail, so the up-front GROUP BY over the archive rows can be skipped."""
        return self.plan.tables[name].identity_is_pk and self.unique_in_target(name, immediate=True)

    def archive_duplicates(self, name: QualifiedName) -> Check:
        """The keys the archive repeats: checked up front, or where an INSERT or a unique
        index's build trips over them (``enforced``)."""
        tp = self.plan.tables[name]
        keys = self.key_names(tp)
        return Check(
            "duplicate keys",
            name,
            sqlgen.duplicate_keys(tp, self.staging[name].raw, self.opts.sample_size),
            keys,
            Message(
                f"{name}: the archive holds duplicate natural keys ({', '.join(keys)}): ",
                "; fix the source data or choose a natural key that is unique",
            ),
            shape="count_last",
        )

    def referenced_by_others(self, name: QualifiedName) -> bool:
        return any(
            e.ref_table == name for n in self.tables if n != name for e in self.plan.tables[n].expansions
        )

    def key_names(self, tp: TablePlan) -> tuple[str, ...]:
        return tuple(kf.name for kf in tp.key_fields)
