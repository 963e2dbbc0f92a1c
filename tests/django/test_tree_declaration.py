"""``init --django`` writes ``tree:`` from a model's tree library (issue 24): the columns
django-mptt's options name (a renamed ``lft``, a parent called ``parent_node``), and
treebeard's ``steplen``/``alphabet`` when a model changes them. The classes below stand in
for models whose library (django-mptt) is not a test dependency: ``tree_declaration``
reads only the class hierarchy, ``_meta.get_field(...).column`` and the library's options;
the Wagtail test covers real treebeard models end to end."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import yaml

from edms_pgdump.django.scaffold import tree_declaration
from edms_pgdump.mapping import load_mapping_text


def _meta(columns: dict[str, str]) -> Any:
    return SimpleNamespace(
        get_field=lambda name: SimpleNamespace(column=columns[name]), pk=SimpleNamespace(remote_field=None)
    )


def _library_base(name: str, module: str) -> type:
    return type(name, (), {"__module__": module})


def test_mptt_options_become_the_nested_set_declaration() -> None:
    base = _library_base("MPTTModel", "mptt.models")
    options = SimpleNamespace(
        left_attr="left_edge",
        right_attr="rght",
        tree_id_attr="tree_id",
        level_attr="level",
        parent_attr="parent_node",
    )
    columns = {"left_edge": "left_edge", "rght": "rght", "tree_id": "tree_id", "level": "level",
               "parent_node": "parent_node_id"}  # fmt: skip
    model = type("Category", (base,), {"_mptt_meta": options, "_meta": _meta(columns)})
    declared = tree_declaration(model)
    assert declared == {"kind": "nested_set", "left": "left_edge", "parent": "parent_node_id"}
    # what init writes is a valid mapping entry
    entry = {"natural_key": ["parent_node_id", "name"], "tree": declared}
    mapping = load_mapping_text(yaml.safe_dump({"version": 1, "tables": {"public.cat": entry}}))
    tree = next(iter(mapping.tables.values())).tree
    assert tree is not None and tree.get("left") == "left_edge" and tree.get("right") == "rght"
    assert tree.get("parent") == "parent_node_id" and tree.get("level") == "level"


def test_treebeard_steplen_and_alphabet_are_written_when_changed() -> None:
    base = _library_base("MP_Node", "treebeard.mp_tree")
    columns = {"path": "path", "depth": "depth", "numchild": "numchild"}
    default = type(
        "Page",
        (base,),
        {"_meta": _meta(columns), "steplen": 4, "alphabet": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
    )
    assert tree_declaration(default) == {"kind": "materialized_path"}
    changed = type("Node", (base,), {"_meta": _meta(columns), "steplen": 5, "alphabet": "0123456789"})
    assert tree_declaration(changed) == {"kind": "materialized_path", "steplen": 5, "alphabet": "0123456789"}


def test_treebeard_nested_sets_and_plain_models_get_none() -> None:
    ns = type("Node", (_library_base("NS_Node", "treebeard.ns_tree"),), {"_meta": _meta({})})
    assert tree_declaration(ns) is None
    plain = type("Thing", (), {"_meta": _meta({})})
    assert tree_declaration(plain) is None
