"""Trees that store each node's position (``tree:`` in the mapping): django-treebeard's
materialized path (``path``/``depth``/``numchild``) and django-mptt's nested sets
(``lft``/``rght``/``tree_id``/``level`` beside a real ``parent_id``).

A position differs between two databases holding the same node, so it never travels as
one: a materialized-path node carries its parent's natural key in one more archive field
(``path#parent``, found at export by the path-prefix join), a nested-set node its
``parent_id`` like any reference. The importer gives inserted nodes new positions under
their parent (``sqlgen/tree.py``)."""

from __future__ import annotations

from collections.abc import Callable

from edms_pgdump.catalog.read import Table
from edms_pgdump.mapping import TableMapping, TreeDeclaration
from edms_pgdump.plan.model import Field

PARENT = "#parent"
_INTS = ("integer", "smallint", "bigint")

Report = Callable[[str, str, str, str], None]  # (code, message, fix, column)


def parent_field_name(tree: TreeDeclaration) -> str:
    """The archive field holding a materialized-path node's parent's natural key (jsonb)."""
    return f"{tree.get('path')}{PARENT}"


def tree_fields(tree: TreeDeclaration | None) -> list[Field]:
    """The archive fields a tree declaration adds: the parent's key of a materialized path
    (a nested set's parent is a foreign key, carried like any other)."""
    if tree is None or tree.kind != "materialized_path":
        return []
    return [Field(parent_field_name(tree), "jsonb", "parent", nullable=True)]


def check_tree(table: Table, tm: TableMapping, report: Report) -> bool:
    """The declared columns exist with fitting types, none is part of the natural key,
    and the table has a one-column primary key to address nodes by. False: not planned."""
    tree = tm.tree
    if tree is None:
        return True
    ok = True
    where = f"tree ({tree.kind})"
    for col in tree.position_columns:
        c = table.column(col)
        if c is None:
            report(
                "tree-column-missing",
                f"{where} names column {col!r}, which does not exist",
                "name the table's position columns: " + ", ".join(x.name for x in table.columns),
                col,
            )
            ok = False
            continue
        kind = (c.base_type or c.type).strip()
        text = kind == "text" or kind.startswith("character")
        wants_text = tree.kind == "materialized_path" and col == tree.get("path")
        if (wants_text and not text) or (not wants_text and kind not in _INTS):
            report(
                "tree-column-type",
                f"{where}: column {col!r} is {kind}, not a {'text' if wants_text else 'integer'} position",
                "name the right column in tree:",
                col,
            )
            ok = False
        if col in tm.natural_key:
            report(
                "tree-position-key",
                f"{where}: the natural key contains position column {col!r}, which differs between "
                "databases for the same node",
                "key the tree by its parent plus a name or slug (or a unique column of its own)",
                col,
            )
            ok = False
    if tree.kind == "nested_set":
        parent = tree.get("parent")
        fk = [f for f in table.foreign_keys if f.columns == (parent,) and f.ref_table == table.name]
        declared = [r for r in tm.references if r.columns == (parent,) and r.table == table.name]
        if not fk and not declared:
            report(
                "tree-parent",
                f"{where}: {parent!r} is not a reference of the table to itself",
                "name the parent column (parent: parent_id), or declare it under references:",
                parent,
            )
            ok = False
    if not table.primary_key or len(table.primary_key) != 1:
        report(
            "tree-primary-key",
            f"{where}: the table needs a one-column primary key to address its nodes",
            "add one, or leave tree: out and carry the positions as raw_columns",
            tree.position_columns[0],
        )
        ok = False
    return ok
