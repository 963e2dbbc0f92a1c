"""Part of the import program's builder: trees that store their positions (``tree:``).

Before the writes, each staged node's position is decided in staging (existing nodes keep
the target's, new ones are placed under their parent, after its existing children), so
the INSERT never takes a position the target's own nodes use, and the UPDATE of changed
rows never sees a position as a change. After the inserts the counters of the parents of
new nodes (materialized path) or the touched trees' numbers (nested sets) are recomputed;
those updates are counted as planned, so the observation of the transaction still proves
every write, and the staged rows take the written positions for the comparison after."""

from __future__ import annotations

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.plan.tree import parent_field_name
from edms_pgdump.program.base import BuilderBase
from edms_pgdump.program.steps import (
    DELETED,
    INSERTED,
    Check,
    Execute,
    Message,
    When,
    at_least,
    count_of,
)
from edms_pgdump.sqlgen import tree as q

TREE_UPDATED = "tree positions updated"  # target rows the renumbering or recount changed
TREE_RECOUNTED = "tree counters after deletes"  # parents recounted after --delete-missing


class TreeSteps(BuilderBase):
    def tree_kind(self, name: QualifiedName) -> str | None:
        """The table's declared tree kind, when the archive carries what it needs."""
        tree = self.plan.tables[name].tree
        if tree is None:
            return None
        if tree.kind == "materialized_path" and parent_field_name(tree) not in self.loaded(name):
            return None  # an archive written without the declaration: positions as values
        return tree.kind

    def tree_positions(self, name: QualifiedName) -> None:
        """Before the writes: every staged node's position, in staging."""
        kind = self.tree_kind(name)
        tp = self.plan.tables[name]
        names = self.staging[name]
        if kind == "materialized_path":
            assert tp.tree is not None
            self.steps.append(
                Check(
                    "tree parents",
                    name,
                    q.mp_unplaced(self.plan, tp, names, self.opts.sample_size),
                    ("node", "parent", "problem"),
                    Message(
                        f"{name}: ",
                        "; the parent is neither in the archive nor in the target (export the parent "
                        "too), or its children already use every step of "
                        f"{tp.tree.get('steplen')} characters; nothing was written",
                        f" node(s) of the {tp.tree.get('path')} tree cannot be placed (node key, "
                        "parent key, problem): ",
                    ),
                )
            )
            self.steps.append(Execute("tree positions", name, q.mp_positions(self.plan, tp, names)))
        elif kind == "nested_set":
            self.steps.append(Execute("tree positions", name, q.ns_keep_positions(tp, names)))

    def tree_counters(self, name: QualifiedName) -> None:
        """After the inserts: counters of target nodes outside the archive, or the
        touched trees renumbered."""
        kind = self.tree_kind(name)
        tp = self.plan.tables[name]
        names = self.staging[name]
        inserted = at_least(1, count_of(name, INSERTED))
        if kind == "materialized_path":
            recount = Execute("tree counters", name, q.mp_recount_parents(tp, names), count=TREE_UPDATED)
            sync = Execute("tree counters", name, q.sync_staged(tp, names))
            self.steps.append(When(inserted, (recount, sync), "nodes were inserted"))
        elif kind == "nested_set":
            renumber = Execute("tree counters", name, q.ns_renumber(tp, names), count=TREE_UPDATED)
            sync = Execute("tree counters", name, q.sync_staged(tp, names))
            self.steps.append(When(inserted, (renumber, sync), "nodes were inserted"))

    def tree_after_deletes(self, name: QualifiedName) -> None:
        """After ``--delete-missing``: a materialized path's parents that lost children
        are recounted (counted as planned updates, like the recount after inserts)."""
        if self.tree_kind(name) != "materialized_path":
            return
        tp = self.plan.tables[name]
        recount = Execute("tree counters", name, q.mp_recount_all(tp), count=TREE_RECOUNTED)
        self.steps.append(When(at_least(1, count_of(name, DELETED)), (recount,), "nodes were deleted"))
