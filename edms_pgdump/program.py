"""The import algorithm, written once: ``(Plan, Catalog, options) -> [typed steps]``.

Two interpreters read the same list: ``run_program`` executes it with psycopg, and the
psql runbook renderer writes it as a script. Neither adds a statement of its own
beyond plumbing (streaming COPY data, keeping counts), so what a DBA reviews is what
the library runs.

Decisions that depend on the data (is anything new to insert, did this table bring
enough new rows to recreate its foreign keys) are ``When`` steps over counts the
program itself records; the Python interpreter evaluates them in memory, the psql
renderer with ``\\gset`` and ``\\if``.
"""

from __future__ import annotations

from psycopg import sql

from . import sqlgen
from .catalog import Catalog, ForeignKey, SequenceInfo, Table
from .import_options import ImportOptions
from .mapping import ConflictPolicy
from .names import QualifiedName
from .plan import Plan, TablePlan
from .program_steps import (
    EXISTING,
    EXPECTED,
    INSERTED,
    INTEGER_LIMITS,
    KEYED,
    PRESENT,
    RECREATE_MIN_ROWS,
    RECREATE_MIN_SHARE,
    SKIPPED,
    STAGED,
    UNCHANGED,
    UPDATED,
    Balance,
    Check,
    CompareCounts,
    Condition,
    CopyIn,
    Derive,
    Execute,
    Message,
    Program,
    ProgramRefused,
    Record,
    Refuse,
    Step,
    When,
    at_least,
    count_of,
)


class _Builder:
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

    # -- checks ------------------------------------------------------------------------
    def archive_duplicates(self, name: QualifiedName) -> Check:
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
        components = [[n for n in comp if n in self.fields] for comp in self.plan.components]
        components = [c for c in components if c]
        # Every table is staged and every reference resolved (new ids drawn or computed)
        # before the first write to a real table: a problem found anywhere stops the
        # import before it has changed anything.
        for name in self.tables:
            self.stage(name)
        for name in self.tables:
            self.forecast_ids(name)
        for members in components:
            self.resolve_component(members)
        if self.compare:
            # verify: the staging tables exist (empty) before the transaction turns read
            # only; they are filled and compared, and nothing else is written
            fill = self.steps
            self.steps = [*self.creates, Execute("read only", None, sqlgen.read_only()), *fill]
            for name in self.tables:
                self.compare_table(name)
            return Program(self.tables, self.staging, self.fields, tuple(self.steps), {}, self.opts)
        for members in components:
            self.write_component(members)
        self.steps.extend(self.rebuild_steps)
        views = self.views()
        if views and self.opts.refresh_materialized_views:
            self.steps += [Execute("refresh view", None, sqlgen.refresh_view(v)) for v in views]
        for name in self.tables:
            self.verify(name)
        return Program(
            self.tables, self.staging, self.fields, tuple(self.steps), self.recreated, self.opts, views
        )

    def views(self) -> tuple[QualifiedName, ...]:
        found: set[QualifiedName] = set()
        for name in self.tables:
            found.update(self.table(name).matviews)
        return tuple(sorted(found))

    def resolve_component(self, members: list[QualifiedName]) -> None:
        # A table that nothing in its component refers to (itself included) goes from raw
        # to final in one statement; otherwise every member's ids must exist (keyed)
        # before any member's references are resolved.
        only = self.plan.tables[members[0]]
        merged = len(members) == 1 and not any(e.ref_table == only.table for e in only.expansions)
        merged = merged and not any(t.table == only.table for g in only.generic for t in g.targets)
        if not merged:
            for n in members:
                self.key(n)
        for n in members:
            self.resolve(n, merged)
            self.range_checks(n)

    def write_component(self, members: list[QualifiedName]) -> None:
        for n in members:
            self.maybe_recreate(n)
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
        create = Execute("create raw", name, sqlgen.create_raw(tp, names, fields))
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
            add(Execute("analyze raw", name, sqlgen.analyze(names.raw)))
            add(self.archive_duplicates(name))
        if not tp.key_is_unique or any(kf.nullable for kf in tp.key_fields):
            add(self.target_duplicates(name))

    def matched(self, name: QualifiedName, count: str) -> CompareCounts:
        return CompareCounts(
            name,
            count,
            STAGED,
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
        self.steps.append(Balance(name))

    def duplicates_upstream(self, name: QualifiedName) -> tuple[Check, ...]:
        """When a table's rows multiply in its joins, the cause is a repeated key in it,
        or in a table staged before it whose up-front check was skipped (``enforced``):
        name those keys first."""
        upstream = [n for n in self.tables[: self.tables.index(name)] if self.enforced(n)]
        return tuple(self.archive_duplicates(n) for n in [*upstream, name])

    def key(self, name: QualifiedName) -> None:
        tp = self.plan.tables[name]
        names = self.staging[name]
        add = self.steps.append
        select = sqlgen.keyed_select(self.plan, tp, names, self.new_ids(name))
        self.table_from("keyed", name, names.keyed, select, KEYED)
        add(self.matched(name, KEYED))
        # other members' references resolve against this table: without statistics the
        # planner guesses wildly and sorts for merge joins instead of hashing
        add(Execute("analyze keyed", name, sqlgen.analyze(names.keyed)))

    def resolve(self, name: QualifiedName, merged: bool) -> None:
        tp = self.plan.tables[name]
        names = self.staging[name]
        loaded = self.loaded(name)
        add = self.steps.append
        if merged:
            select = sqlgen.merged_final_select(
                self.plan, tp, names, self.staging, loaded, self.finalized, self.new_ids(name)
            )
            self.table_from("keyed+final", name, names.final, select, KEYED)
            add(self.matched(name, KEYED))
        else:
            select = sqlgen.final_select(self.plan, tp, names, self.staging, loaded, self.finalized)
            self.table_from("final", name, names.final, select, None)
        self.finalized.add(name)
        exps = sqlgen.active_expansions(tp, loaded)
        labels = tuple(f"unresolved:{e.label}" for e in exps)
        generic = sqlgen.active_generic(tp, loaded)
        generic_labels = tuple(f"unresolved:{g.field}" for g in generic)
        summary = sqlgen.final_summary(tp, names, exps, generic)
        add(Record("summary", name, summary, (EXISTING, *labels, *generic_labels)))
        # Statistics matter only where the final rows are joined: other tables resolve
        # their references against them, existing rows are compared and updated, the
        # second pass, or the after-load key lookup. A plain INSERT just scans them.
        analyze = Execute("analyze final", name, sqlgen.analyze(names.final))
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
        for exp, label in zip(exps, labels):
            check = Check(
                "unresolved",
                name,
                sqlgen.unresolved(tp, names, exp, self.opts.sample_size),
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

    # -- ids ---------------------------------------------------------------------------
    def sequence_of(self, name: QualifiedName, column: str) -> SequenceInfo | None:
        col = self.table(name).column(column)
        if col is None or col.sequence is None:
            return None
        return self.catalog.sequences.get(col.sequence)

    def new_ids(self, name: QualifiedName) -> dict[str, sql.Composable]:
        """A dry run draws no value from a sequence: new ids are computed from its last
        value instead (the real import uses the column's own default)."""
        if not (self.opts.dry_run or self.compare):
            return {}
        ids: dict[str, sql.Composable] = {}
        for col in self.plan.tables[name].surrogate:
            seq = self.sequence_of(name, col.name)
            if seq is not None and seq.increment > 0:
                ids[col.name] = sqlgen.computed_id(seq.name, seq.min_value, seq.increment)
            elif col.default is not None and "nextval(" in col.default:
                raise ProgramRefused(
                    f"{name}.{col.name}: its default draws from a sequence the column does not own "
                    f"({col.default}), so a dry run cannot compute new ids without moving it; "
                    "run the import without --dry-run in a copy of the database, or make the column "
                    "own its sequence (ALTER SEQUENCE ... OWNED BY)"
                )
        return ids

    def id_holders(self, name: QualifiedName, column: str) -> list[tuple[str, str, int]]:
        """(table.column, type, limit) of every integer column that will hold new ids of
        ``name.column``: the column itself and the references to it in the archive."""
        out: list[tuple[str, str, int]] = []
        cols = [(name, column)]
        for other in self.tables:
            for e in self.plan.tables[other].expansions:
                if e.ref_table == name and column in e.fk.ref_columns:
                    cols.append((other, e.fk.columns[e.fk.ref_columns.index(column)]))
        for table, c in cols:
            col = self.table(table).column(c)
            base = (col.base_type or col.type) if col is not None else ""
            if base in INTEGER_LIMITS:
                out.append((f"{table}.{c}", base, INTEGER_LIMITS[base]))
        return out

    def forecast_ids(self, name: QualifiedName) -> None:
        """Before any id is drawn: when new ids might not fit a column that will hold them
        (the sequence is near the limit of its narrowest holder), compute them exactly
        without nextval and refuse, so a refused import moves no sequence."""
        if self.opts.dry_run or self.compare:
            return  # ids are computed anyway; range_checks sees them
        tp = self.plan.tables[name]
        names = self.staging[name]
        for col in tp.surrogate:
            seq = self.sequence_of(name, col.name)
            holders = self.id_holders(name, col.name)
            if seq is None or seq.increment <= 0 or not holders:
                continue
            holder, type_, limit = min(holders, key=lambda h: h[2])
            position = f"sequence:{col.name}"
            forecast = f"forecast:{col.name}"
            self.steps.append(
                Record(
                    "sequence position",
                    name,
                    sqlgen.sequence_position(seq.name, seq.min_value, seq.increment),
                    (position,),
                )
            )
            table = sqlgen.ident(names.label + "_forecast")
            ids = {col.name: sqlgen.computed_id(seq.name, seq.min_value, seq.increment)}
            select = sqlgen.keyed_select(self.plan, tp, names, ids)
            refuse = Refuse(
                name,
                Message(
                    f"{name}: new ids from {seq.name} would reach ",
                    f", more than {holder} ({type_}, at most {limit}) can hold; nothing was written and "
                    f"no sequence moved. Fix: widen {holder} to bigint, or lower {seq.name} with setval "
                    "if its ids are far ahead",
                ),
                count_of(name, forecast),
            )
            exact: tuple[Step, ...] = (
                Execute("forecast ids", name, sqlgen.create_as(table, select)),
                Record("forecast ids", name, sqlgen.column_maxima(table, [col.name]), (forecast,)),
                When(at_least(limit + 1, count_of(name, forecast)), (refuse,), "new ids overflow"),
            )
            near = at_least(limit + 1, count_of(name, position), count_of(name, STAGED, seq.increment))
            self.steps.append(When(near, exact, "new ids may not fit"))

    def id_columns(self, name: QualifiedName) -> list[tuple[str, str]]:
        """(column, integer type) of every column the import writes ids into: new
        surrogate ids and resolved references."""
        tp = self.plan.tables[name]
        table = self.table(name)
        out: list[tuple[str, str]] = []
        wanted = [c.name for c in tp.surrogate]
        wanted += [c for e in sqlgen.active_expansions(tp, self.loaded(name)) for c in e.fk.columns]
        for c in dict.fromkeys(wanted):
            col = table.column(c)
            base = (col.base_type or col.type) if col is not None else ""
            if base in INTEGER_LIMITS:
                out.append((c, base))
        return out

    def range_checks(self, name: QualifiedName) -> None:
        """Ids the target allocates, or that references resolve to, must fit the column
        that holds them (a smallint reference to an integer id): refuse before writing."""
        columns = self.id_columns(name)
        if not columns:
            return
        labels = tuple(f"max:{c}" for c, _ in columns)
        query = sqlgen.column_maxima(self.staging[name].final, [c for c, _ in columns])
        self.steps.append(Record("id range", name, query, labels))
        for (column, type_), label in zip(columns, labels):
            limit = INTEGER_LIMITS[type_]
            column_sql = sqlgen.render(sqlgen.ident(column))
            refuse = Refuse(
                name,
                Message(
                    f"{name}.{column} is {type_} (at most {limit}) but the import would write id ",
                    f" into it; nothing was written. Fix: widen the column (ALTER TABLE {name} ALTER "
                    f"COLUMN {column_sql} TYPE bigint), or lower the referenced table's sequence "
                    "with setval if its ids are far ahead",
                ),
                count_of(name, label),
            )
            overflow = at_least(limit + 1, count_of(name, label))
            self.steps.append(When(overflow, (refuse,), f"{column} overflows"))

    def advance_sequences(self, name: QualifiedName) -> None:
        """Explicit values written into a serial or identity column (a table keyed by its
        own id): move its sequence to at least the largest value, never backwards, so
        the application's next ordinary INSERT does not collide."""
        if self.opts.dry_run:
            return
        tp = self.plan.tables[name]
        surrogate = {c.name for c in tp.surrogate}
        written = set(sqlgen.insert_columns(tp, self.loaded(name))) - surrogate
        for column in sorted(written):
            seq = self.sequence_of(name, column)
            if seq is None or seq.increment <= 0:
                continue
            stmt = sqlgen.advance_sequence(name, column, seq.name, seq.min_value)
            step = Execute("advance sequence", name, stmt)
            self.steps.append(When(at_least(1, count_of(name, INSERTED)), (step,), "ids kept"))

    # -- constraints=auto|recreate ------------------------------------------------------
    def droppable(self, name: QualifiedName) -> list[ForeignKey]:
        """Foreign keys declared on this table itself (not inherited from a partitioned
        parent), which the import may drop and re-add."""
        return [fk for fk in self.table(name).foreign_keys if not fk.declared and not fk.inherited]

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
        if not fks and not indexes:
            return
        locked = sorted({name, *(fk.ref_table for fk in fks)})
        drop: list[Step] = [Execute("lock exclusive", None, sqlgen.lock_tables_exclusive(locked))]
        drop += [Execute("drop fk", name, sqlgen.drop_constraint(name, fk.name)) for fk in fks]
        drop += [Execute("drop index", name, sqlgen.drop_index(i.schema, i.name)) for i in indexes]
        why = f"{name} brings many new rows: its foreign keys are re-added with one join each"
        self.steps.append(When(condition, tuple(drop), why))
        rebuild: list[Step] = []
        for i in indexes:
            rebuild.append(
                Execute(f"create index {i.name}", name, sqlgen.create_from_definition(i.definition))
            )
            if i.comment is not None:
                rebuild.append(Execute("comment", name, sqlgen.comment_index(i.schema, i.name, i.comment)))
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
        self.rebuild_steps.append(When(condition, tuple(rebuild), why))
        self.recreated[name] = tuple(fk.name for fk in fks)

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
                self.steps.append(
                    When(existing, (Execute("update", name, stmt, count=UPDATED),), "rows exist")
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

    def verify(self, name: QualifiedName) -> None:
        tp = self.plan.tables[name]
        if self.derivable(name):
            self.steps.append(Derive(name, PRESENT, (count_of(name, INSERTED), count_of(name, EXISTING))))
        else:
            query = sqlgen.count_present(self.plan, tp, self.staging[name])
            self.steps.append(Record("present", name, query, (PRESENT,)))
        self.steps.append(Balance(name))


def import_program(
    plan: Plan,
    catalog: Catalog,
    options: ImportOptions | None = None,
    loaded: dict[QualifiedName, tuple[str, ...]] | None = None,
) -> Program:
    """The import as typed steps. ``loaded`` is each table's COPY field order (the
    archive's); by default the plan's own fields for every exported table."""
    opts = options or ImportOptions()
    opts.validate()
    if loaded is None:
        loaded = {tp.table: tp.field_names for tp in plan.exported}
    return _Builder(plan, catalog, opts, loaded).build()
