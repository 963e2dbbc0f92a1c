"""The import program's constraint steps (--constraints auto|recreate): foreign keys and
plain indexes of a table that brings many new rows are dropped inside the transaction
and re-added (validated set-based) at the end; so are its unique indexes, primary key
included, where nothing but those foreign keys depends on them (``drop_unique_indexes``)."""

from __future__ import annotations

from edms_pgdump import sqlgen
from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import ForeignKey, UniqueIndexDef
from edms_pgdump.program.base import BuilderBase
from edms_pgdump.program.steps import (
    EXISTING,
    RECREATING,
    STAGED,
    Condition,
    Execute,
    ProgramRefused,
    Record,
    Step,
    When,
    at_least,
    count_of,
)

# constraints=recreate drops a table's foreign keys only when it brings at least this
# many new rows, and at least a ninth of the table's size after the load: a per-row
# check costs about ten times what re-validating one row does.
RECREATE_MIN_ROWS = 10_000
RECREATE_MIN_SHARE = 9


class ConstraintSteps(BuilderBase):
    # -- constraints=auto|recreate ------------------------------------------------------
    def droppable(self, name: QualifiedName) -> list[ForeignKey]:
        """Foreign keys declared on this table itself (not inherited from a partitioned
        parent), which the import may drop and re-add. Not where either side has user
        triggers: a deferred one may hold pending events by then, and PostgreSQL refuses
        to ALTER a table with pending trigger events (such keys stay, checked per row)."""
        table = self.table(name)
        if table.triggers:
            return []
        return [
            fk
            for fk in table.foreign_keys
            if not fk.declared
            and not fk.inherited
            and not (self.catalog.get(fk.ref_table) and self.table(fk.ref_table).triggers)
        ]

    def recreate_condition(self, name: QualifiedName) -> Condition | None:
        mode = self.opts.constraints
        if mode == "keep":
            return None
        table = self.table(name)
        if not table.owned:
            if mode == "recreate":
                raise ProgramRefused(
                    f"{name}: --constraints recreate drops and re-adds its foreign keys, which needs "
                    f"ownership of the table (owner {table.owner}); run the import as its owner, or "
                    "use --constraints keep or auto"
                )
            return None
        new = (count_of(name, STAGED), count_of(name, EXISTING, -1))
        held = max(table.estimated_rows, 0)
        if mode == "recreate":
            # at least RECREATE_MIN_ROWS new rows, and new >= (held + new) / RECREATE_MIN_SHARE
            share = (
                count_of(name, STAGED, RECREATE_MIN_SHARE - 1),
                count_of(name, EXISTING, -(RECREATE_MIN_SHARE - 1)),
            )
            return Condition(((new, RECREATE_MIN_ROWS), (share, held)))
        # auto: a restore or a first load brings more rows than the table held before
        # (held is at least the rows the archive matched)
        twice = (count_of(name, STAGED), count_of(name, EXISTING, -2))
        return Condition(((new, held + 1), (twice, 1)))

    def maybe_recreate(self, name: QualifiedName) -> None:
        condition = self.recreate_condition(name)
        if condition is None:
            return
        table = self.table(name)
        fks = self.droppable(name)
        indexes = list(table.plain_indexes)
        if not fks and not indexes and not self.unique_candidates(name):
            return
        locked = sorted({name, *(fk.ref_table for fk in fks)})
        # Taking ACCESS EXCLUSIVE mid-transaction can deadlock with readers of these
        # tables: the library then keeps this table's keys (per-row checks) and goes on.
        drop: list[Step] = [
            Execute("lock exclusive", None, sqlgen.lock_tables_exclusive(locked), optional=True)
        ]
        drop += [Execute("drop fk", name, sqlgen.drop_constraint(name, fk.name)) for fk in fks]
        drop += [Execute("drop index", name, sqlgen.drop_index(i.schema, i.name)) for i in indexes]
        drop.append(Record("recreating", name, sqlgen.one(), (RECREATING,)))
        why = f"{name} brings many new rows: its foreign keys are re-added with one join each"
        self.steps.append(When(condition, tuple(drop), why))
        rebuild: list[Step] = []
        for i in indexes:
            rebuild.append(
                Execute(f"create index {i.name}", name, sqlgen.create_from_definition(i.definition))
            )
            if i.comment is not None:
                rebuild.append(Execute("comment", name, sqlgen.comment_index(i.schema, i.name, i.comment)))
        # A key's validation is planned from the statistics the target had before the
        # load: in a near-empty target a tree's parent column is NULL in every row, and the
        # server probed the primary key once per row (1M documents: documents.parent_id
        # 0.63-0.80 s, where hashing the ids takes 0.40 s). The key columns are analyzed
        # first (0.02 s a table), so each plan fits the rows loaded: on 18 the seven keys'
        # validations took 1.35-1.45 s, against 2.0 s before (docs/performance.md).
        own = sorted({c for fk in fks if fk.validated for c in fk.columns})
        if own:
            analyze = sqlgen.analyze(sqlgen.table_ident(name), own)
            rebuild.append(Execute("analyze key columns", name, analyze))
        for fk in fks:
            rebuild.append(
                Execute(
                    f"re-add fk {fk.name}",
                    name,
                    sqlgen.add_constraint(name, fk.name, fk.definition),
                    refusal=f"{name}: foreign key {fk.name} does not hold after loading",
                )
            )
            if fk.comment is not None:
                rebuild.append(Execute("comment", name, sqlgen.comment_constraint(name, fk.name, fk.comment)))
        if rebuild:
            self.rebuild_steps.append(When(at_least(1, count_of(name, RECREATING)), tuple(rebuild), why))
        self.recreated[name] = tuple(fk.name for fk in fks)

    # -- unique indexes --------------------------------------------------------------
    def drop_unique_indexes(self) -> None:
        """A unique index costs a B-tree insert per new row; built again after the load,
        one sort (1M documents, PostgreSQL 15: the three INSERTs with their primary and
        natural keys 12.4-14.7 s, without them and the six built after 6.7-7.6 s;
        docs/performance.md). Dropped where its table's foreign keys are (a big load),
        after every foreign key is, and only where every key referencing it is dropped
        too: those are re-added after it. Not where any imported table has a user
        trigger or rule: one could write to the table, or rely on its key, meanwhile.
        A duplicate among the new rows then fails the index's build, not the INSERT, and
        is named the same way."""
        for name in self.tables:
            for index in self.unique_candidates(name):
                kept = [t for t, fk in index.referenced_by if fk not in self.recreated.get(t, ())]
                if name in self.recreated and not kept:
                    self.drop_unique(name, index)

    def unique_candidates(self, name: QualifiedName) -> list[UniqueIndexDef]:
        """The table's unique indexes that only keys the import may drop reference (keys
        of imported tables, ``droppable``), where no imported table has a user trigger or
        rule."""
        if any(self.table(n).triggers or self.table(n).has_rules for n in self.tables):
            return []

        def may_drop(table: QualifiedName, fk: str) -> bool:
            return table in self.tables and fk in {f.name for f in self.droppable(table)}

        return [
            index
            for index in self.table(name).rebuildable_unique
            if all(may_drop(t, fk) for t, fk in index.referenced_by)
        ]

    def drop_unique(self, name: QualifiedName, index: UniqueIndexDef) -> None:
        """Under the condition that every table involved recreates, and that this one
        brings at least RECREATE_MIN_ROWS new rows: on a small load the drop and the build
        cost more than the B-tree inserts they save (a first import of 200 documents:
        0.21-0.26 s without, 0.23-0.31 s with)."""
        tables = sorted({name, *(t for t, _ in index.referenced_by)})
        new = (count_of(name, STAGED), count_of(name, EXISTING, -1))
        condition = Condition(
            (*(((count_of(t, RECREATING),), 1) for t in tables), (new, RECREATE_MIN_ROWS))
        )
        why = f"{name} brings many new rows, and so do the tables whose keys reference {index.name}"
        if index.constraint is not None:
            drop = sqlgen.drop_constraint(name, index.constraint)
        else:
            drop = sqlgen.drop_index(index.schema, index.name)
        self.steps.append(When(condition, (Execute("drop unique", name, drop),), why))
        explain = (self.archive_duplicates(name),) if self.enforced(name) else ()
        build = Execute(
            f"re-add unique {index.name}",
            name,
            sqlgen.create_from_definition(index.definition),
            on_unique_violation=explain,
        )
        rebuild: list[Step] = [build]
        if index.constraint is not None:
            # over the index just built, which keeps its storage options (fillfactor...)
            primary = index.constraint_type == "p"
            using = sqlgen.add_constraint_using_index(name, index.constraint, primary)
            rebuild.append(Execute("constraint using index", name, using))
        if index.comment is not None:
            comment = sqlgen.comment_index(index.schema, index.name, index.comment)
            rebuild.append(Execute("comment", name, comment))
        if index.constraint is not None and index.constraint_comment is not None:
            comment = sqlgen.comment_constraint(name, index.constraint, index.constraint_comment)
            rebuild.append(Execute("comment", name, comment))
        self.unique_rebuild_steps.append(When(condition, tuple(rebuild), why))
