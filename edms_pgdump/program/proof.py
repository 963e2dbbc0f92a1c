"""The steps that prove, before COMMIT, what the transaction really did.

A count the program adds up from its own statements cannot fail when the target's
machinery changes a write behind its back (a trigger that swallows an UPDATE, a rule
``DO INSTEAD NOTHING``, an ON DELETE CASCADE from a table the archive does not hold, an
AFTER INSERT trigger that writes a second row). So the import reads what happened:

* observed: the tuples this transaction inserted, updated and deleted per table
  (``pg_stat_xact_user_tables``), compared with what the program planned before writing;
  other tables that lost or changed rows stop the import unless allowed by name, and
  their inserts (an audit log) are reported as side effects;
* counted: "present after" and "unchanged" are queries against the target, and a
  table whose key the target does not keep unique is searched for duplicate keys;
* compared: where the target can change values (user triggers, rules, row-level
  security, inheritance children, a nondeterministic collation in the key; every table
  with ``--prove``), the written rows are compared with the staged rows.

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
from edms_pgdump.sqlgen import proof as q

DIFFERING = "differing"  # existing rows that differ from the archive, before any write
SECOND_PASS = "second pass"
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
        if t.triggers or t.has_rules or t.rls_enabled or t.inheritance_children:
            return True
        cols = [t.column(c) for c in self.plan.tables[name].natural_key]
        return any(c is not None and not c.collation_deterministic for c in cols)

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

    def before_writes(self) -> None:
        """Compare the rows that exist with the archive before writing: "unchanged" is
        the count that compared equal, and the updates the program plans are the rest."""
        for name in self.tables:
            tp = self.plan.tables[name]
            query = sqlgen.count_changed(tp, self.staging[name], self.loaded(name))
            record = Record("compare existing", name, query, (DIFFERING,))
            self.steps.append(When(at_least(1, count_of(name, EXISTING)), (record,), "rows already exist"))
        if self.opts.delete_missing and not self.opts.allow_cascade and not getattr(self, "scopes", None):
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
            if self.policy(tp) != "skip" and sqlgen.update_existing(
                tp, self.staging[name], self.loaded(name)
            ):
                updates.append(count_of(name, DIFFERING))
            add(Derive(name, PLANNED[1], tuple(updates)))
            deletes = (count_of(name, ABSENT),) if self.opts.delete_missing else ()
            add(Derive(name, PLANNED[2], deletes))
            cause = self.cause(name)
            for observed, planned, verb in zip(OBSERVED, PLANNED, ("inserted", "updated", "deleted")):
                add(
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
        self.unplanned()

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
                "side effects",
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
        """Present after and unchanged, counted; duplicate keys searched where the target
        does not keep the key unique; values compared where the target can change them."""
        tp = self.plan.tables[name]
        names = self.staging[name]
        keys = self.key_names(tp)
        steps: list[Step] = [
            Record("present", name, sqlgen.count_present(self.plan, tp, names), (PRESENT,)),
            Derive(name, UNCHANGED, (count_of(name, EXISTING), count_of(name, DIFFERING, -1))),
        ]
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
        if self.changeable(name):
            new_only = self.policy(tp) == "skip"
            steps.append(
                Check(
                    "compare written",
                    name,
                    q.written_differs(tp, names, self.loaded(name), new_only, self.opts.sample_size),
                    (*keys, "problem"),
                    Message(
                        f"{name}: ",
                        f"; the target changed what the import wrote ({self.cause(name)}); "
                        "nothing was committed",
                        " written row(s) do not read back as the archive holds them: ",
                    ),
                )
            )
        return steps


__all__ = ["DIFFERING", "SIDE_EFFECTS", "ProofSteps"]
