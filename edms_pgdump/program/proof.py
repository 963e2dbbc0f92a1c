"""The steps that prove, before COMMIT, what the transaction really did.

A count the program adds up from its own statements cannot fail when the target's
machinery changes a write behind its back (a trigger that swallows an UPDATE, a rule
``DO INSTEAD NOTHING``, an ON DELETE CASCADE from a table the archive does not hold, an
AFTER INSERT trigger that writes a second row). So the import reads what happened:

* observed: the tuples this transaction inserted, updated and deleted per table
  (``pg_stat_xact_user_tables``), compared with what the program planned before writing;
  other tables that lost or changed rows stop the import unless allowed by name, and
  their inserts (an audit log) are reported as side effects;
* compared: where the target can change what a statement wrote (user triggers, rules,
  row-level security, inheritance children, a nondeterministic collation in the key, a
  generated key column; every table with ``--prove``), "present after" and "unchanged"
  are queries against the target, keys the target does not keep unique are searched for
  duplicates, and the written rows are compared with the staged rows;
* elsewhere only the import's statements can write the (locked) table, and every other
  write would show in the counters: "present after" is the rows found before the writes
  (a query) plus the inserts observed, and "unchanged" is what the UPDATE's own
  comparison left alone, its count confirmed by the observation. Counting every table
  row by row cost 18% of the benchmark's import; the observation costs well under 1%.

Each check is an ordinary step (``Record``, ``CompareCounts``, ``Check``), so the psql
runbook proves the same things as the library.
"""

from __future__ import annotations

from edms_pgdump import sqlgen
from edms_pgdump.catalog.names import QualifiedName, parse_qualified_name
from edms_pgdump.program.base import BuilderBase
from edms_pgdump.program.steps import (
    ABSENT,
    EXISTING,
    INSERTED,
    PRESENT,
    STAGED,
    UNCHANGED,
    UPDATED,
    Check,
    CompareCounts,
    Derive,
    Execute,
    Message,
    ProgramRefused,
    Record,
    Step,
    When,
    at_least,
    count_of,
)
from edms_pgdump.program.tree import TREE_RECOUNTED, TREE_UPDATED
from edms_pgdump.sqlgen import proof as q

DIFFERING = "differing"  # existing rows that differ from the archive, before any write
SECOND_PASS = "second pass"
WRITTEN_DIFFERING = "written differing"  # staged rows the target does not hold as staged
OBSERVED = ("observed inserted", "observed updated", "observed deleted")
PLANNED = ("planned inserted", "planned updated", "planned deleted")
SIDE_EFFECTS = "side effects"  # Check.step of the report of other tables' inserts

_ACTIONS = {"c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
_WHAT = {"c": "deleted", "n": "set to NULL", "d": "set to their default"}


class ProofSteps(BuilderBase):
    # -- facts ------------------------------------------------------------------------
    def relations(self, name: QualifiedName) -> tuple[QualifiedName, ...]:
        """Where a table's counters live: itself, or its partitions."""
        return (name, *self.table(name).partitions)

    def changeable(self, name: QualifiedName) -> bool:
        """The target may store something else than the statement wrote, so its values
        are compared after the writes."""
        if self.opts.prove:
            return True
        t = self.table(name)
        if t.triggers or t.has_rules or t.rls_enabled or t.inheritance_children or self.cascaded_into(name):
            return True
        cols = [t.column(c) for c in self.plan.tables[name].natural_key]
        return any(c is not None and not c.collation_deterministic for c in cols)

    def cascaded_into(self, name: QualifiedName) -> list[str]:
        """This table's foreign keys whose ON UPDATE action changes its rows when the import
        changes a referenced key in a table it writes (a primary key that travels as a
        value, a renamed unique code): updates the program cannot count in advance, so the
        table's written values are compared instead of its update count."""
        return [
            f"foreign key {fk.name} ON UPDATE {_ACTIONS[fk.on_update]} to {fk.ref_table}"
            for fk in self.table(name).foreign_keys
            if not fk.declared and fk.on_update in _ACTIONS and fk.ref_table in self.fields
        ]

    def cause(self, name: QualifiedName) -> str:
        """What in the target can write rows of ``name`` behind the program's back."""
        t = self.table(name)
        found = [f"trigger {g} on {name}" for g in t.triggers]
        found += [f"rule {r} on {name}" for r in t.rules]
        for fk in t.foreign_keys:
            for kind, action in (("DELETE", fk.on_delete), ("UPDATE", fk.on_update)):
                if action in _ACTIONS and fk.ref_table in self.fields:
                    found.append(f"foreign key {fk.name} ON {kind} {_ACTIONS[action]} to {fk.ref_table}")
        found += [
            f"trigger {g} on {other}"
            for other in self.tables
            if other != name
            for g in self.table(other).triggers
        ]
        if not found:
            return "no trigger, rule or foreign-key action in the catalog explains it"
        return "likely cause: " + "; ".join(found)

    # -- before the first write ---------------------------------------------------------
    def observe_start(self) -> None:
        if self.tables and not self.compare:
            self.steps.append(Execute("observe start", None, q.xact_baseline()))

    def compared(self, name: QualifiedName) -> bool:
        """Counted and compared row by row after the writes (else observed): the target
        can change what a statement wrote, or ``--prove`` asks for it."""
        return self.changeable(name) or not self.derivable(name)

    def before_writes(self) -> None:
        """On a compared table, compare the rows that exist with the archive before
        writing: "unchanged" is the count that compared equal, and the updates the
        program plans are the rest. (Elsewhere the UPDATE's own comparison decides, and
        the observation proves it changed exactly the rows it said.)"""
        for name in self.tables:
            if not self.compared(name):
                continue
            tp = self.plan.tables[name]
            query = sqlgen.count_changed(tp, self.staging[name], self.loaded(name))
            record = Record("compare existing", name, query, (DIFFERING,))
            self.steps.append(When(at_least(1, count_of(name, EXISTING)), (record,), "rows already exist"))
        if self.opts.delete_missing and not self.opts.allow_cascade and not self.scopes:
            self.cascades()

    def cascades(self) -> None:
        """--delete-missing deletes from the archive's tables; a table outside the
        archive whose foreign key cascades (or sets NULL or a default) would lose or
        change rows silently: refused, naming it and the rows, before any write."""
        for name in self.tables:
            tp = self.plan.tables[name]
            checks: list[Step] = []
            for other, table in sorted(self.catalog.tables.items()):
                if other in self.fields:
                    continue
                for fk in table.foreign_keys:
                    if fk.ref_table != name or fk.on_delete not in _ACTIONS or fk.declared:
                        continue
                    checks.append(
                        Check(
                            "cascade",
                            name,
                            q.cascaded_rows(
                                self.plan, tp, self.staging[name], other, fk, self.opts.sample_size
                            ),
                            fk.columns,
                            Message(
                                f"{name}: --delete-missing would delete rows that {other} references through "
                                f"{fk.name} ({', '.join(fk.columns)}) ON DELETE {_ACTIONS[fk.on_delete]}: ",
                                f"; {other} is not in the archive, so nothing was written (map {other}, "
                                "or import with --allow-cascade to accept it)",
                                f" row(s) of {other} would be {_WHAT[fk.on_delete]}: ",
                            ),
                            gather=True,
                        )
                    )
            if checks:
                self.steps.append(When(at_least(1, count_of(name, ABSENT)), tuple(checks), "rows to delete"))

    # -- after the last write -----------------------------------------------------------
    def observe(self) -> None:
        """Per table, what the transaction did against what the program planned; then
        the tables it did not plan to write."""
        if not self.tables:
            return
        add = self.steps.append
        for name in self.tables:
            tp = self.plan.tables[name]
            add(Record("observe", name, q.observed_writes(self.relations(name)), OBSERVED))
            add(Derive(name, PLANNED[0], (count_of(name, STAGED), count_of(name, EXISTING, -1))))
            passes = [e for e in sqlgen.active_expansions(tp, self.loaded(name)) if e.edge == "second_pass"]
            if passes:
                query = q.second_pass_rows(tp, self.staging[name], passes)
                add(
                    When(
                        at_least(1, count_of(name, INSERTED)),
                        (Record("planned", name, query, (SECOND_PASS,)),),
                    )
                )
            updates = [count_of(name, SECOND_PASS)]
            if tp.tree is not None:  # nodes outside the archive recounted, trees renumbered
                updates += [count_of(name, TREE_UPDATED), count_of(name, TREE_RECOUNTED)]
            if self.policy(tp) != "skip" and sqlgen.update_existing(
                tp, self.staging[name], self.loaded(name)
            ):
                updates.append(count_of(name, DIFFERING if self.compared(name) else UPDATED))
            add(Derive(name, PLANNED[1], tuple(updates)))
            deletes = (count_of(name, ABSENT),) if self.opts.delete_missing else ()
            add(Derive(name, PLANNED[2], deletes))
            self.compare_observed(name)
        self.unplanned()

    def compare_observed(self, name: QualifiedName) -> None:
        cause = self.cause(name)
        pairs = list(zip(OBSERVED, PLANNED, ("inserted", "updated", "deleted")))
        if self.table(name).is_partitioned:
            # an UPDATE that moves a row to another partition counts as a delete and an
            # insert there: compare inserted - deleted and updated + deleted instead
            c = count_of
            for side, names in (("observed", OBSERVED), ("planned", PLANNED)):
                ins, upd, dele = names
                self.steps.append(Derive(name, f"{side} net", (c(name, ins), c(name, dele, -1))))
                self.steps.append(Derive(name, f"{side} touched", (c(name, upd), c(name, dele))))
            pairs = [
                ("observed net", "planned net", "inserted minus deleted"),
                ("observed touched", "planned touched", "updated plus deleted"),
            ]
        if self.cascaded_into(name):
            # updated by the target's own ON UPDATE actions too: the count is not known
            # in advance, the values written are compared after the writes (changeable)
            pairs = [p for p in pairs if "updated" not in p[2]]
        for observed, planned, verb in pairs:
            self.steps.append(
                CompareCounts(
                    name,
                    observed,
                    planned,
                    Message(
                        f"{name}: the transaction {verb} ",
                        f" (observed in pg_stat_xact_user_tables); {cause}; nothing was committed",
                        " row(s) but the import planned ",
                    ),
                )
            )

    def unplanned(self) -> None:
        written = [r for n in self.tables for r in self.relations(n)]
        allowed: list[QualifiedName] = []
        for item in self.opts.allow_side_effects:
            table = parse_qualified_name(item)
            if table not in self.catalog.tables:
                raise ProgramRefused(f"--allow-side-effects {item}: the target has no such table")
            allowed += self.relations_of(table)
        if self.opts.delete_missing and self.opts.allow_cascade:
            # the cascades --allow-cascade accepted: reported, not refused
            allowed += [
                r
                for other, table in self.catalog.tables.items()
                if other not in self.fields
                and any(
                    fk.ref_table in self.fields and fk.on_delete in _ACTIONS and not fk.declared
                    for fk in table.foreign_keys
                )
                for r in self.relations_of(other)
            ]
        causes = self.unplanned_causes()
        default = (
            "a trigger of a written table, or a function it calls"
            if any(self.table(n).triggers or self.table(n).has_rules for n in self.tables)
            else "no trigger, rule or foreign-key action in the catalog explains it"
        )
        n = self.opts.sample_size
        fields = ("table", "inserted", "updated", "deleted", "cause")
        self.steps.append(
            Check(
                "unplanned writes",
                None,
                q.unplanned_writes(written, allowed, causes, default, refused=True, samples=n),
                fields,
                Message(
                    "the import changed or deleted rows of ",
                    "; those tables are not in the archive, so nothing was committed (map them, or accept "
                    "the changes with --allow-side-effects TABLE)",
                    " table(s) it does not write: ",
                ),
            )
        )
        self.steps.append(
            Check(
                SIDE_EFFECTS,
                None,
                q.unplanned_writes(written, allowed, causes, default, refused=False, samples=n),
                fields,
                Message(
                    "the import also wrote to ", " (side effects, allowed)", " table(s) not in the archive: "
                ),
                warn=True,
            )
        )

    def relations_of(self, name: QualifiedName) -> tuple[QualifiedName, ...]:
        return (name, *self.catalog.tables[name].partitions)

    def unplanned_causes(self) -> dict[QualifiedName, str]:
        """Per table outside the archive: its foreign keys whose action changes its rows
        when a written table's row goes or changes key."""
        causes: dict[QualifiedName, str] = {}
        for other, table in sorted(self.catalog.tables.items()):
            if other in self.fields:
                continue
            found = []
            for fk in table.foreign_keys:
                if fk.declared or fk.ref_table not in self.fields:
                    continue
                for kind, action in (("DELETE", fk.on_delete), ("UPDATE", fk.on_update)):
                    if action in _ACTIONS:
                        found.append(f"foreign key {fk.name} ON {kind} {_ACTIONS[action]} to {fk.ref_table}")
            triggers = [f"trigger {g} on {n}" for n in self.tables for g in self.table(n).triggers]
            if found or triggers:
                causes[other] = "; ".join(found + triggers)
                for part in table.partitions:
                    causes[part] = causes[other]
        return causes

    # -- the numbers the balance checks ---------------------------------------------------
    def proof(self, name: QualifiedName) -> list[Step]:
        """On a compared table: present after and unchanged counted, duplicate keys
        searched where the target does not keep the key unique, values compared.
        Elsewhere present after follows from the observation."""
        tp = self.plan.tables[name]
        names = self.staging[name]
        keys = self.key_names(tp)
        if not self.compared(name):
            # Only the import's statements write this table (no trigger, rule, RLS,
            # inheritance child or nondeterministic key; locked against other writers):
            # present = the rows found before the writes (counted) + the inserts the
            # transaction was observed to make, less any unplanned delete.
            observed = (
                count_of(name, EXISTING),
                count_of(name, OBSERVED[0]),
                count_of(name, PLANNED[2]),
                count_of(name, OBSERVED[2], -1),
            )
            return [Derive(name, PRESENT, observed)]
        new_only = self.policy(tp) == "skip"
        summary = q.written_summary(tp, names, self.loaded(name), new_only)
        steps: list[Step] = [
            # present: the staged rows the target holds under the id the program wrote;
            # with every compared value equal (the natural key's columns among them), that
            # is each archive key present
            Record("compare written", name, summary, (PRESENT, WRITTEN_DIFFERING)),
            Derive(name, UNCHANGED, (count_of(name, EXISTING), count_of(name, DIFFERING, -1))),
        ]
        samples = Check(
            "compare written",
            name,
            q.written_differs(tp, names, self.loaded(name), new_only, self.opts.sample_size),
            (*keys, "problem"),
            Message(
                f"{name}: ",
                f"; the target changed what the import wrote ({self.cause(name)}); nothing was committed",
                " written row(s) do not read back as the archive holds them: ",
            ),
        )
        steps.append(
            When(at_least(1, count_of(name, WRITTEN_DIFFERING)), (samples,), "rows read back differ")
        )
        if self.cascaded_into(name) and not new_only:
            # rows the target's ON UPDATE actions brought up to date before this table's
            # own UPDATE looked: every row that differed now reads back as the archive
            # holds it (compared just above), so they count as updated
            steps.append(Derive(name, UPDATED, (count_of(name, DIFFERING),)))
        if not self.unique_in_target(name, immediate=False):
            steps.append(
                Check(
                    "duplicates after",
                    name,
                    sqlgen.target_duplicate_keys(self.plan, tp, self.opts.sample_size),
                    keys,
                    Message(
                        f"{name}: after the writes the target holds natural keys more than once "
                        f"({', '.join(keys)}): ",
                        f"; {self.cause(name)}; nothing was committed",
                    ),
                    shape="count_last",
                )
            )
        return steps


__all__ = ["DIFFERING", "SIDE_EFFECTS", "ProofSteps"]
