"""The import algorithm, written once: ``(Plan, Catalog, options) -> [typed steps]``.

Two interpreters read the same list: ``program.run`` executes it with psycopg, and the
psql runbook renderer writes it as a script. Neither adds a statement of its own
beyond plumbing (streaming COPY data, keeping counts), so what a DBA reviews is what
the library runs.

Decisions that depend on the data (is anything new to insert, did this table bring
enough new rows to recreate its foreign keys) are ``When`` steps over counts the
program itself records; the Python interpreter evaluates them in memory, the psql
renderer with ``\\gset`` and ``\\if``.
"""

from __future__ import annotations

from collections.abc import Mapping as AbcMapping
from dataclasses import replace

from psycopg import sql

from edms_pgdump import sqlgen
from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import Catalog, Table
from edms_pgdump.export.subset import TableScope
from edms_pgdump.load.subset_scope import target_scope
from edms_pgdump.options import ImportOptions
from edms_pgdump.plan.build import Plan
from edms_pgdump.program.constraints import ConstraintSteps
from edms_pgdump.program.embedded import embedded_steps
from edms_pgdump.program.ids import IdSteps
from edms_pgdump.program.steps import (
    ABSENT,
    CREATE_RAW,
    DELETED,
    EXISTING,
    EXPECTED,
    INSERTED,
    KEYED,
    PRESENT,
    SKIPPED,
    STAGED,
    UNCHANGED,
    UPDATED,
    Balance,
    Check,
    CompareCounts,
    CopyIn,
    Derive,
    End,
    Execute,
    Message,
    Program,
    Record,
    Setting,
    Step,
    When,
    at_least,
    count_of,
)
from edms_pgdump.program.tree import TreeSteps
from edms_pgdump.program.unchanged import SAME, TO_RESOLVE, UnchangedSteps
from edms_pgdump.sqlgen.shapes import materialized_path_counts


class _Builder(IdSteps, ConstraintSteps, UnchangedSteps, TreeSteps):
    # -- checks ------------------------------------------------------------------------
    def target_duplicates(self, name: QualifiedName) -> Check:
        tp = self.plan.tables[name]
        keys = self.key_names(tp)
        return Check(
            "target duplicate keys",
            name,
            sqlgen.target_duplicate_keys(self.plan, tp, self.opts.sample_size),
            keys,
            Message(
                f"{name}: the target holds duplicate natural keys ({', '.join(keys)}): ",
                "; deduplicate the target or add a unique constraint",
            ),
            shape="count_last",
        )

    # -- the program -----------------------------------------------------------------
    def build(self) -> Program:
        add = self.steps.append
        if self.tables and not self.compare:
            add(Execute("lock", None, sqlgen.lock_tables(list(self.tables))))
        self.observe_start()
        components = [[n for n in comp if n in self.fields] for comp in self.plan.components]
        components = [c for c in components if c]
        # Every table is staged and every reference resolved (new ids drawn or computed)
        # before the first write to a real table: a problem found anywhere stops the
        # import before it has changed anything.
        for name in self.tables:
            self.stage(name)
        self.set_aside_unchanged(list(self.tables))
        for name in self.tables:
            self.forecast_ids(name)
        self.without_merge_joins(True)
        for members in components:
            self.resolve_component(members)
        self.without_merge_joins(False)
        for name in self.tables:
            self.tree_positions(name)
        for name in self.tables:  # ids inside JSON or text, once every id is known
            tp, samples = self.plan.tables[name], self.opts.sample_size
            self.steps += embedded_steps(self.plan, tp, self.staging, self.loaded(name), samples)
        if self.compare:
            # verify: the staging tables exist (empty) before the transaction turns read
            # only; they are filled and compared, and nothing else is written
            fill = self.steps
            self.steps = [*self.creates, Execute("read only", None, sqlgen.read_only()), *fill]
            for name in self.tables:
                self.compare_table(name)
            return Program(
                self.tables, self.staging, self.fields, tuple(self.steps), {}, self.opts, plan=self.plan
            )
        if self.opts.delete_missing:
            self.deletions_allowed()
        self.before_writes()
        # the writes see the application's TimeZone (triggers); the checks after them
        # compare keys built in UTC, as the archive's were
        add(Execute("session", None, sqlgen.application_time_zone()))
        # every table's foreign keys (and plain indexes) go before the first write, so
        # that a unique index they reference may go too (constraints.py)
        for members in components:
            for n in members:
                self.maybe_recreate(n)
        self.drop_unique_indexes()
        for members in components:
            self.write_component(members)
        for name in self.tables:
            self.tree_counters(name)
        if self.opts.delete_missing:
            self.delete_missing()
            for name in self.tables:
                self.tree_after_deletes(name)
        # indexes built again where they were: the database's default tablespace, not the
        # role's default_tablespace
        add(Execute("session", None, sqlgen.set_local("default_tablespace", "")))
        self.steps.extend(self.unique_rebuild_steps)
        self.steps.extend(self.rebuild_steps)
        add(Execute("session", None, sqlgen.reset_local("default_tablespace")))
        add(Execute("session", None, sqlgen.set_local("TimeZone", "UTC")))
        views = self.views()
        if views and self.opts.refresh_materialized_views:
            self.steps += [Execute("refresh view", None, sqlgen.refresh_view(v)) for v in views]
        # the target's deferred constraint triggers fire now, not at COMMIT: what they
        # write is then observed and compared like any other write
        add(Execute("deferred checks", None, sqlgen.set_all_constraints("IMMEDIATE")))
        self.observe()
        for name in self.tables:
            self.verify(name)
            self.tree_consistent(name)
        return Program(
            self.tables,
            self.staging,
            self.fields,
            tuple(self.steps),
            self.recreated,
            self.opts,
            views,
            self.plan,
        )

    def views(self) -> tuple[QualifiedName, ...]:
        found: set[QualifiedName] = set()
        for name in self.tables:
            found.update(self.table(name).matviews)
        return tuple(sorted(found))

    def resolve_component(self, members: list[QualifiedName]) -> None:
        # Every member's ids must exist (keyed) before a reference to it is resolved. A
        # member that refers to no merged member (itself included), and that no merged
        # member refers to, goes from raw to final in one statement (``merged_members``):
        # its references resolve against the others' keyed rows, and theirs, resolved
        # after it, against its final rows.
        merged = self.merged_members(members)
        for n in members:
            if n in merged and len(members) > 1:
                self.joins_keyed[n] = tuple(members)
            if n not in merged:
                self.key(n)
        for n in [*(m for m in members if m in merged), *(m for m in members if m not in merged)]:
            self.resolve(n, n in merged)
            self.range_checks(n)

    def merged_members(self, members: list[QualifiedName]) -> set[QualifiedName]:
        """The members keyed and resolved in one statement: chosen from the last member
        back (a cycle's children, which hold most rows: 1M documents, each version keyed
        and resolved in one pass saved 2.3 s), none referring to another chosen one or
        to itself (docs/performance.md)."""
        refers = {n: {t for t, _ in self.references(n)} for n in members}
        merged: set[QualifiedName] = set()
        for n in reversed(members):
            if n in refers[n] or refers[n] & merged or any(n in refers[m] for m in merged):
                continue
            if len(members) > 1 and not self.resolves_on_keyed(n, members):
                continue
            merged.add(n)
        return merged

    def references(self, name: QualifiedName) -> list[tuple[QualifiedName, tuple[str, ...]]]:
        """The tables ``name`` refers to, each with the columns its rows are found by:
        through foreign keys and generic references."""
        tp = self.plan.tables[name]
        found = [(e.ref_table, e.fk.ref_columns) for e in tp.expansions]
        return found + [(t.table, (t.id_column,)) for g in tp.generic for t in g.targets]

    def resolves_on_keyed(self, name: QualifiedName, members: list[QualifiedName]) -> bool:
        """Whether every reference ``name`` makes to another member resolves against that
        member's keyed rows: not when it targets a column the member fills only in its
        final rows (one of its own references)."""
        return not any(
            table in members and self.plan.tables[table].resolved_columns & set(columns)
            for table, columns in self.references(name)
        )

    def write_component(self, members: list[QualifiedName]) -> None:
        deferred = any(
            e.edge == "deferred" and not e.fk.declared
            for n in members
            for e in self.plan.tables[n].expansions
        )
        if deferred:
            self.steps.append(Execute("defer constraints", None, sqlgen.set_all_constraints("DEFERRED")))
        for n in members:
            self.insert(n, members)
        for n in members:
            self.second_pass(n)
        for n in members:
            self.update(n)
        for n in members:
            self.advance_sequences(n)
        if deferred:
            self.steps.append(Execute("deferred checks", None, sqlgen.set_all_constraints("IMMEDIATE")))

    def stage(self, name: QualifiedName) -> None:
        tp = self.plan.tables[name]
        names = self.staging[name]
        fields = list(self.fields[name])
        add = self.steps.append
        extra = self.archive_types.get(name)
        create = Execute(CREATE_RAW, name, sqlgen.create_raw(tp, names, fields, extra))
        if self.compare:
            self.creates.append(create)
        else:
            add(create)
        add(CopyIn(name, sqlgen.copy_in_frozen(names, fields), tuple(fields)))
        add(
            CompareCounts(
                name,
                STAGED,
                EXPECTED,
                Message(
                    f"{name}: staged ",
                    "; the archive is inconsistent, re-export it",
                    " rows but the manifest says ",
                ),
            )
        )
        if not self.enforced(name):
            # statistics for the GROUP BY (otherwise the raw rows are only scanned once,
            # joined to the target's rows, which have statistics of their own)
            add(Execute("analyze raw", name, sqlgen.analyze(names.raw, self.join_columns(name, "raw"))))
            add(self.archive_duplicates(name))
        if not self.unique_in_target(name, immediate=False):
            add(self.target_duplicates(name))

    def matched(self, name: QualifiedName, count: str) -> CompareCounts:
        return CompareCounts(
            name,
            count,
            self.resolved_count(name),
            Message(f"{name}: natural keys matched ", "; the target has duplicate keys", " target rows for "),
            explain=self.duplicates_upstream(name),
        )

    def table_from(
        self,
        step: str,
        name: QualifiedName,
        relation: sql.Composable,
        select: sql.Composed,
        count: str | None,
    ) -> None:
        """A staging table from a query: CREATE … AS, or for a comparison an empty
        table created up front and filled here (a read-only transaction cannot CREATE)."""
        if self.compare:
            self.creates.append(Execute(step, name, sqlgen.create_as(relation, select, empty=True)))
            self.steps.append(Execute(step, name, sqlgen.insert_select(relation, select), count=count))
        elif self.staging[name].same is not None:
            # every row set aside as unchanged: the table is made empty, its joins not run
            self.steps += [
                When(
                    at_least(1, count_of(name, TO_RESOLVE)),
                    (Execute(step, name, sqlgen.create_as(relation, select), count=count),),
                    "rows to resolve",
                ),
                When(
                    at_least(0, count_of(name, TO_RESOLVE, -1)),
                    (Execute(step, name, sqlgen.create_as(relation, select, empty=True), count=count),),
                    "no row to resolve",
                ),
            ]
        else:
            self.steps.append(Execute(step, name, sqlgen.create_as(relation, select), count=count))

    def compare_table(self, name: QualifiedName) -> None:
        """verify: rows missing from the target count as inserted, rows that differ as
        updated, so the report reads like a dry run's; nothing is written."""
        tp = self.plan.tables[name]
        query = sqlgen.count_changed(tp, self.staging[name], self.loaded(name))
        self.steps.append(Record("compare", name, query, (UPDATED,)))
        self.steps.append(Derive(name, INSERTED, (count_of(name, STAGED), count_of(name, EXISTING, -1))))
        self.steps.append(Derive(name, UNCHANGED, (count_of(name, EXISTING), count_of(name, UPDATED, -1))))
        self.steps.append(Derive(name, PRESENT, (count_of(name, STAGED),)))
        # target rows the archive lacks are diff's to count (load/diff.py), with their
        # samples in the same query: verify does not report them
        self.steps.append(Balance(name))

    # -- --delete-missing -------------------------------------------------------------
    def deletions_allowed(self) -> None:
        """Count, before any write, the target rows the archive does not hold; over
        --max-deletes the import stops, naming counts and samples per table. A subset
        archive's scope is judged on the written rows, so it is counted (and guarded,
        the refusal rolling every write back) in ``delete_missing``."""
        if not self.scopes:
            self.count_deletions({}, frozenset())

    def count_deletions(
        self, within: dict[QualifiedName, sql.Composed], no_deletes: frozenset[QualifiedName]
    ) -> None:
        names = [n for n in self.tables if n not in no_deletes]
        for name in names:
            tp = self.plan.tables[name]
            query = sqlgen.count_absent(self.plan, tp, self.staging[name], within.get(name))
            self.steps.append(Record("rows to delete", name, query, (ABSENT,)))
        limit = self.opts.max_deletes
        if limit is None:
            self.guard_share(names, within)
            return
        samples: list[Step] = []
        for name in names:
            scope = " in the subset's scope" if name in within else ""
            check = self.rows_to_delete(
                name,
                within,
                f"; the tables named together are over --max-deletes {limit}, so nothing was written "
                "(raise --max-deletes, give --max-deletes all, or import without --delete-missing)",
                f" row(s){scope} the archive does not hold would be deleted: ",
            )
            samples.append(When(at_least(1, count_of(name, ABSENT)), (check,), "rows to delete"))
        total = tuple(count_of(n, ABSENT) for n in names)
        self.steps.append(When(at_least(limit + 1, *total), tuple(samples), "over --max-deletes"))

    def rows_to_delete(
        self, name: QualifiedName, within: dict[QualifiedName, sql.Composed], why: str, what: str
    ) -> Check:
        """Samples of the target rows --delete-missing would delete from ``name``, gathered
        into the refusal of a deletion guard (``why`` says which guard, ``what`` the rows)."""
        tp = self.plan.tables[name]
        return Check(
            "rows to delete",
            name,
            sqlgen.absent_rows(self.plan, tp, self.staging[name], self.opts.sample_size, within.get(name)),
            self.key_names(tp),
            Message(f"{name}: ", why, what),
            gather=True,
        )

    def guard_share(self, names: list[QualifiedName], within: dict[QualifiedName, sql.Composed]) -> None:
        """No --max-deletes: with a share set (the CLI's default guard), a table that would
        lose more than that percent of its target rows (absent / (absent + existing)) stops
        the import, all such tables named together, before anything is written."""
        share = self.opts.max_deletes_percent
        if share is None:
            return
        for name in names:
            check = self.rows_to_delete(
                name,
                within,
                f"; that is more than {share}% of the table's rows in the target (the default guard "
                "of --delete-missing), so nothing was written (check the target, then give "
                "--max-deletes N, or --max-deletes all)",
                " row(s) the archive does not hold would be deleted: ",
            )
            over = at_least(1, count_of(name, ABSENT, 100 - share), count_of(name, EXISTING, -share))
            self.steps.append(When(over, (check,), f"over {share}% of the table"))

    def delete_missing(self) -> None:
        """Children before parents (reverse load order), after every insert and update
        (so a re-parented child points at its new parent first). A row to delete that a
        remaining row still references stops the import, naming both sides.

        A subset archive speaks only for the rows in its scope: those its filters match
        and those owned by them, found here on the written target; rows it holds only
        because a kept row needs them (rule needed) are never deleted."""
        within: dict[QualifiedName, sql.Composed] = {}
        no_deletes: frozenset[QualifiedName] = frozenset()
        if self.scopes:
            scope = target_scope(self.plan, self.catalog, self.scopes)
            self.steps.extend(scope.fill)
            within, no_deletes = scope.conditions, scope.no_deletes
            self.count_deletions(within, no_deletes)
        # a cycle's deferrable keys (documents <-> their current version) are checked
        # once every delete is done
        self.steps.append(Execute("defer constraints", None, sqlgen.set_all_constraints("DEFERRED")))
        for name in reversed(self.tables):
            if name in no_deletes:
                continue
            tp = self.plan.tables[name]
            delete = Execute(
                "delete missing",
                name,
                sqlgen.delete_absent(self.plan, tp, self.staging[name], within.get(name)),
                count=DELETED,
                refusal=f"{name}: a row the archive does not hold is still referenced by a row that stays "
                "(never deleted in cascade)",
            )
            self.steps.append(When(at_least(1, count_of(name, ABSENT)), (delete,), "rows the archive lacks"))
        self.steps.append(
            Execute(
                "deferred checks",
                None,
                sqlgen.set_all_constraints("IMMEDIATE"),
                refusal="a row the archive does not hold is still referenced by a row that stays "
                "(never deleted in cascade)",
            )
        )

    def join_columns(self, name: QualifiedName, stage: str) -> list[str]:
        """The staging columns later statements join or group on: the natural-key fields
        (and the tree path), plus, once ids are known, the ids others resolve to and the
        columns that address existing rows."""
        tp = self.plan.tables[name]
        cols = [kf.name for kf in tp.key_fields]
        if tp.tree_expansion is not None and stage != "raw":
            cols.append(tp.path_marker)
        if stage == "final":
            cols += [c for c in (*tp.ref_columns, *tp.row_identity) if c not in cols]
            cols.append(tp.new_marker)
        if stage != "raw":
            # a referenced column that is itself a reference (a child keyed by its parent
            # link) is resolved into the final table only: the keyed one lacks it
            later = tp.resolved_columns if stage == "keyed" else frozenset()
            cols += [c for c in tp.ref_columns if c not in cols and c not in later]
        return list(dict.fromkeys(cols))

    def duplicates_upstream(self, name: QualifiedName) -> tuple[Check, ...]:
        """When a table's rows multiply in its joins, the cause is a repeated key in it,
        or in a table it joins whose up-front check was skipped (``enforced``): one
        staged before it, or another member of its cycle (a merged member joins their
        keyed rows); name those keys first."""
        joined = [*self.tables[: self.tables.index(name)], *self.joins_keyed.get(name, ())]
        upstream = [n for n in dict.fromkeys(joined) if n != name and self.enforced(n)]
        return tuple(self.archive_duplicates(n) for n in [*upstream, name])

    def key(self, name: QualifiedName) -> None:
        tp = self.plan.tables[name]
        names = self.staging[name]
        add = self.steps.append
        select = sqlgen.keyed_select(self.plan, tp, names, self.new_ids(name), name in self.keep_existing())
        self.table_from("keyed", name, names.keyed, select, KEYED)
        add(self.matched(name, KEYED))
        # other members' references resolve against this table: without statistics the
        # planner guesses wildly and sorts for merge joins instead of hashing
        add(Execute("analyze keyed", name, sqlgen.analyze(names.keyed, self.join_columns(name, "keyed"))))

    def resolve(self, name: QualifiedName, merged: bool) -> None:
        tp = self.plan.tables[name]
        names = self.staging[name]
        loaded = self.loaded(name)
        add = self.steps.append
        if merged:
            select = sqlgen.merged_final_select(
                self.plan,
                tp,
                names,
                self.staging,
                loaded,
                self.finalized,
                self.new_ids(name),
                self.keep_existing(),
            )
            self.table_from("keyed+final", name, names.final, select, KEYED)
            add(self.matched(name, KEYED))
        else:
            select = sqlgen.final_select(
                self.plan, tp, names, self.staging, loaded, self.finalized, self.keep_existing()
            )
            self.table_from("final", name, names.final, select, None)
        self.finalized.add(name)
        exps = sqlgen.active_expansions(tp, loaded)
        labels = tuple(f"unresolved:{e.label}" for e in exps)
        generic = sqlgen.active_generic(tp, loaded)
        generic_labels = tuple(f"unresolved:{g.field}" for g in generic)
        presence = [(e, p) for e in exps if (p := sqlgen.loaded_presence(e, loaded)) is not None]
        mismatch_labels = tuple(f"presence:{e.label}" for e, _ in presence)
        summary = sqlgen.final_summary(tp, names, exps, generic, loaded)
        add(Record("summary", name, summary, (EXISTING, *labels, *generic_labels, *mismatch_labels)))
        if names.same is not None:
            add(Derive(name, EXISTING, (count_of(name, EXISTING), count_of(name, SAME))))
        # Statistics matter only where the final rows are joined: other tables resolve
        # their references against them, existing rows are compared and updated, the
        # second pass, or the after-load key lookup. A plain INSERT just scans them.
        analyze = Execute(
            "analyze final", name, sqlgen.analyze(names.final, self.join_columns(name, "final"))
        )
        if (
            self.referenced_by_others(name)
            or not self.derivable(name)
            or any(e.edge == "second_pass" for e in exps)
        ):
            add(analyze)
        else:
            add(When(at_least(1, count_of(name, EXISTING)), (analyze,), "rows already in the target"))
        if self.enforced(name):
            repeated = Check(
                "repeated ids",
                name,
                sqlgen.repeated_identity(tp, names),
                (),
                Message(
                    f"{name}: one target row is matched by two archive rows; ", "the archive repeats a key"
                ),
                shape="exists",
                explain=(self.archive_duplicates(name),),
            )
            add(When(at_least(2, count_of(name, EXISTING)), (repeated,), "two or more rows already exist"))
        for (exp, present), label in zip(presence, mismatch_labels):
            check = Check(
                "presence",
                name,
                sqlgen.presence_mismatch(exp, names, present, self.opts.sample_size),
                (*(f.name for f in exp.fields), present),
                Message(
                    f"{name}: ",
                    f"; {present} must be true where the reference is present and false only where "
                    "every key field is NULL: the member was edited or not written by edms-pgdump, "
                    "re-export it",
                    f" row(s) whose {present} contradicts the key fields of the reference through "
                    f"{exp.fk.name} ({', '.join(exp.columns)} -> {exp.ref_table}): ",
                ),
                gather=True,
            )
            add(
                When(at_least(1, count_of(name, label)), (check,), "presence fields contradicting their keys")
            )
        for exp, label in zip(exps, labels):
            check = Check(
                "unresolved",
                name,
                sqlgen.unresolved(tp, names, exp, self.opts.sample_size, sqlgen.loaded_presence(exp, loaded)),
                tuple(f.name for f in exp.fields),
                Message(
                    f"{name}: ",
                    f"; those rows of {exp.ref_table} are neither in the archive nor in the target",
                    f" unresolved reference(s) through {exp.fk.name} "
                    f"({', '.join(exp.columns)} -> {exp.ref_table}): ",
                ),
                gather=True,
            )
            add(When(at_least(1, count_of(name, label)), (check,), "references left unresolved"))
        for gp, label in zip(generic, generic_labels):
            targets = ", ".join(str(t.table) for t in gp.targets) or "no table"
            check = Check(
                "unresolved",
                name,
                sqlgen.generic_unresolved(tp, names, gp, self.opts.sample_size),
                (*(gp.type_field(c) for c in gp.type_key), gp.field),
                Message(
                    f"{name}: ",
                    f"; the rows they name ({targets}) are neither in the archive nor in the target, "
                    f"or the target's {gp.type_table} names no such table",
                    f" unresolved generic reference(s) through ({gp.type_column}, {gp.id_column}): ",
                ),
                gather=True,
            )
            add(When(at_least(1, count_of(name, label)), (check,), "generic references left unresolved"))

    # -- writes ------------------------------------------------------------------------
    def insert(self, name: QualifiedName, members: list[QualifiedName]) -> None:
        tp = self.plan.tables[name]
        names = self.staging[name]
        keys = self.key_names(tp)
        add = self.steps.append
        if self.policy(tp) == "error":
            changed = Check(
                "changed rows",
                name,
                sqlgen.changed_rows(tp, names, self.loaded(name), self.opts.sample_size),
                keys,
                Message(
                    f"{name}: ",
                    "; use --on-conflict update or skip to proceed",
                    " existing row(s) differ from the archive and on_conflict is error: ",
                ),
            )
            add(When(at_least(1, count_of(name, EXISTING)), (changed,), "rows already in the target"))
        # Duplicate archive keys were not checked up front where a unique index enforces
        # the key (see ``enforced``): if the INSERT trips over it, name the keys.
        explain = tuple(self.archive_duplicates(n) for n in members if self.enforced(n))
        stmt = sqlgen.insert_new(tp, names, self.loaded(name))
        insert = Execute("insert", name, stmt, count=INSERTED, on_unique_violation=explain)
        add(
            When(
                at_least(1, count_of(name, STAGED), count_of(name, EXISTING, -1)),
                (insert,),
                "new rows to insert",
            )
        )

    def second_pass(self, name: QualifiedName) -> None:
        tp = self.plan.tables[name]
        passes = tuple(
            Execute("second pass", name, sqlgen.second_pass(tp, self.staging[name], e))
            for e in sqlgen.active_expansions(tp, self.loaded(name))
            if e.edge == "second_pass"
        )
        if passes:
            self.steps.append(When(at_least(1, count_of(name, INSERTED)), passes, "rows were inserted"))

    def update(self, name: QualifiedName) -> None:
        tp = self.plan.tables[name]
        names = self.staging[name]
        loaded = self.loaded(name)
        policy = self.policy(tp)
        existing = at_least(1, count_of(name, EXISTING))
        if policy in ("update", "error"):
            stmt = sqlgen.update_existing(tp, names, loaded)
            if stmt is not None:
                self.steps += self.by_index(
                    name, existing, (Execute("update", name, stmt, count=UPDATED),), "rows exist"
                )
        else:
            skipped = Check(
                "skipped rows",
                name,
                sqlgen.changed_rows(tp, names, loaded, self.opts.sample_size),
                self.key_names(tp),
                Message(
                    f"{name}: ",
                    "",
                    " existing row(s) differ from the archive and were left as they are (on_conflict skip): ",
                ),
                warn=True,
                count=SKIPPED,
            )
            self.steps.append(When(existing, (skipped,), "rows exist"))
        self.steps.append(
            Derive(
                name,
                UNCHANGED,
                (count_of(name, EXISTING), count_of(name, UPDATED, -1), count_of(name, SKIPPED, -1)),
            )
        )

    def tree_consistent(self, name: QualifiedName) -> None:
        """A materialized-path tree (treebeard) whose positions travelled as the source's
        values: observe after the writes that every node's numchild counts its children
        and every parent path holds a node, or roll back (issue 24: a shared ancestor's
        numchild overwritten with the source's count, or a node under no parent)."""
        if not is_materialized_path(self.table(name)):
            return
        self.steps.append(
            Check(
                "tree positions",
                name,
                materialized_path_counts(name, self.opts.sample_size),
                ("path", "numchild", "children"),
                Message(
                    f"{name}: after the writes its materialized-path tree is inconsistent (a node's "
                    "numchild is not its number of children, or its parent's path holds no node; "
                    "children NULL): ",
                    "; path, depth and numchild travel as the source's positions: import such a tree "
                    "only into a target whose own nodes are at other positions, or repair the "
                    "target's tree first (treebeard: fix_tree()); nothing was written",
                ),
            )
        )

    def verify(self, name: QualifiedName) -> None:
        # present after and unchanged: observed, or counted and compared on the target (proof.py)
        self.steps.extend(self.proof(name))
        self.steps.append(Balance(name))


def is_materialized_path(table: Table) -> bool:
    """treebeard's MP_Node columns: a text ``path``, integer ``depth`` and ``numchild``."""
    cols = {c.name: (c.base_type or c.type) for c in table.columns}
    ints = ("integer", "smallint", "bigint")
    path = cols.get("path", "")
    return (
        cols.get("depth") in ints
        and cols.get("numchild") in ints
        and (path == "text" or path.startswith("character varying"))
    )


def import_program(
    plan: Plan,
    catalog: Catalog,
    options: ImportOptions | None = None,
    loaded: dict[QualifiedName, tuple[str, ...]] | None = None,
    archive_types: dict[QualifiedName, dict[str, str]] | None = None,
    staging_schema: str | None = None,
    scopes: AbcMapping[QualifiedName, TableScope] | None = None,
) -> Program:
    """The import as typed steps. ``loaded`` is each table's COPY field order (the
    archive's); by default the plan's own fields for every exported table.
    ``staging_schema``: stage in UNLOGGED tables of this (private, existing) schema
    instead of temporary tables."""
    opts = options or ImportOptions()
    if loaded is None:
        loaded = {tp.table: tp.field_names for tp in plan.exported}
    builder = _Builder(plan, catalog, opts, loaded, staging_schema, archive_types, scopes)
    program = builder.build()
    return replace(program, opening=transaction_opening(opts), closing=transaction_closing(opts))


def transaction_opening(opts: ImportOptions) -> tuple[Step, ...]:
    """The pinned session, BEGIN and the transaction's settings. They depend on the
    options alone, so the library runs them before it reads the target's catalog (in
    the same transaction as the import) and then builds the rest of the program."""
    return (
        *(Execute("session", None, s) for s in sqlgen.session_statements()),
        # a comparison reads one consistent snapshot, and turns read only once its
        # staging tables exist (the program's "read only" step)
        Execute("begin", None, sqlgen.begin("REPEATABLE READ" if opts.compare_only else None)),
        Setting(sqlgen.set_local("temp_buffers", opts.temp_buffers), best_effort=True),
        *(
            Setting(s)
            for s in sqlgen.import_settings(opts.lock_timeout, opts.statement_timeout, opts.work_mem)
        ),
    )


def transaction_closing(opts: ImportOptions) -> tuple[Step, ...]:
    """COMMIT, or ROLLBACK for a dry run (a comparison is one)."""
    return (End(commit=not opts.dry_run),)
