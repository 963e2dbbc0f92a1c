"""Natural keys that are a path of ancestors' names, found in the fixture's own tree.

Wagtail's ``Collection.natural_key()`` is the names of the collection and its ancestors,
root first (``["Root", "Photos"]``), so a ``--natural-foreign`` dump holds keys of
every length, while the mapping keys the table by a fixed list of columns (``[name]``).
The fixture holds what resolves them: a django-treebeard (materialized path) model's
objects carry ``path`` and ``depth``, and each ancestor's path is a prefix of its
descendants' (``depth`` steps of equal length). Each path of names is looked up among
the fixture's objects of that model, by the first of ``name``, ``title``, ``slug``,
``label`` that the objects have and that names exactly one object; that object's own
natural key (the mapping's) is what the reference travels as. A path the fixture does
not hold is looked up the same way among the target's nodes (``TargetTree``), as
loaddata's ``get_by_natural_key()`` walks the target's tree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edms_pgdump.catalog.names import QualifiedName

NAME_FIELDS = ("name", "title", "slug", "label")
KEY = "#key"  # a target node's natural key (the mapping's), as text values

# the target's nodes of a table (path, depth, name fields, KEY), or None when it has no
# tree position to follow: a path the fixture cannot resolve is looked up there, as
# loaddata's get_by_natural_key() walks the target's tree
TargetTree = Callable[[QualifiedName], list[dict[str, Any]] | None]


class TreePaths:
    """The fixture's objects of materialized-path trees, by ``path``."""

    def __init__(self) -> None:
        self.nodes: dict[QualifiedName, dict[str, dict[str, Any]]] = {}
        self._by_names: dict[tuple[QualifiedName, str], dict[tuple[Any, ...], list[dict[str, Any]]]] = {}

    def add(self, table: QualifiedName, fields: dict[str, Any]) -> None:
        """Remember an object when it has a tree position (a text ``path``, an integer ``depth``)."""
        path, depth = fields.get("path"), fields.get("depth")
        if isinstance(path, str) and isinstance(depth, int) and not isinstance(depth, bool) and depth > 0:
            self.nodes.setdefault(table, {})[path] = fields

    def is_tree(self, table: QualifiedName) -> bool:
        return bool(self.nodes.get(table))

    def _index(self, table: QualifiedName, name_field: str) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
        key = (table, name_field)
        if key not in self._by_names:
            nodes = self.nodes.get(table, {})
            index: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
            for path, node in nodes.items():
                depth = node["depth"]
                if len(path) % depth:
                    continue
                step = len(path) // depth
                chain = [nodes.get(path[: i * step]) for i in range(1, depth + 1)]
                if any(a is None for a in chain):
                    continue  # an ancestor is not in the fixture: this node is not found by path
                index.setdefault(tuple(a[name_field] for a in chain if a is not None), []).append(node)
            self._by_names[key] = index
        return self._by_names[key]

    def find(self, table: QualifiedName, names: list[Any]) -> tuple[dict[str, Any] | None, str]:
        """The one object whose ancestors' names (itself last) are ``names``, or None and why not."""
        nodes = self.nodes.get(table, {})
        fields = [f for f in NAME_FIELDS if any(f in n for n in nodes.values())]
        if not fields:
            return None, f"its objects have none of the fields {', '.join(NAME_FIELDS)} to follow the path by"
        ambiguous = ""
        for name_field in fields:
            found = self._index(table, name_field).get(tuple(names), [])
            if len(found) == 1:
                return found[0], ""
            if len(found) > 1 and not ambiguous:
                ambiguous = f"{len(found)} of its objects have that path of {name_field}s"
        return None, ambiguous or (
            f"no object in the fixture has that path of {'/'.join(fields)} values from its tree's root "
            "(its ancestors are missing from the fixture, or the path names no object)"
        )
