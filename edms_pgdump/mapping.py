"""The YAML mapping: which natural key identifies the rows of each table.

Parsed with the safe loader only, into frozen dataclasses. Every validation error
names the YAML path (``tables."public.documents".natural_key[1]``) and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from edms_pgdump.catalog.names import QualifiedName, parse_qualified_name
from edms_pgdump.errors import MappingError
from edms_pgdump.sqlgen.embedded_syntax import (
    EmbeddedReference,
    Step,
    SyntaxProblem,
    TextPattern,
    parse_path,
    split_pattern,
)
from edms_pgdump.sqlgen.where import parse_where

ConflictPolicy = Literal["update", "skip", "error"]
CONFLICT_POLICIES: tuple[ConflictPolicy, ...] = ("update", "skip", "error")
OnDangling = Literal["error", "null", "skip"]
ON_DANGLING: tuple[OnDangling, ...] = ("error", "null", "skip")
MAX_MAPPING_BYTES = 5 * 1024 * 1024

_TABLE_KEYS = {
    "natural_key", "export", "on_conflict", "references", "raw_columns", "generic_references", "where",
    "tree",
    "embedded_references",
}  # fmt: skip
_TOP_KEYS = {"version", "tables", "exclude", "types"}
_REFERENCE_KEYS = {"columns", "table", "target_columns"}
_GENERIC_KEYS = {"type", "id", "on_dangling", "ignore_types"}
_EMBEDDED_KEYS = {"column", "table", "json", "pattern", "target_column"}
_TYPE_KEYS = {"table_name", "schema", "tables"}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class DeclaredReference:
    """A reference the database does not enforce (no FK constraint), declared in YAML."""

    columns: tuple[str, ...]
    table: QualifiedName
    target_columns: tuple[str, ...] | None  # None: the referenced table's primary key


@dataclass(frozen=True)
class GenericReference:
    """An id whose table is chosen per row by a type column (Django's content_type +
    object_id): no FK can describe it, so the mapping does."""

    type_column: str  # an FK (or declared reference) to a table listed under types:
    id_column: str
    on_dangling: OnDangling = "error"
    # types ("app_label.model": the type row's natural key joined by '.') whose ids
    # travel as they are, knowingly, instead of as the named row's natural key
    ignore_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class TypeTable:
    """A table whose rows name other tables: ``table_name`` is a template over its own
    natural-key columns, ``tables`` explicit entries keyed by the key values joined by '.'."""

    table: QualifiedName
    table_name: str
    schema: str = "public"
    tables: tuple[tuple[str, QualifiedName], ...] = ()

    @property
    def template_columns(self) -> tuple[str, ...]:
        return tuple(_PLACEHOLDER.findall(self.table_name))


TreeKind = Literal["materialized_path", "nested_set"]
TREE_KINDS: tuple[TreeKind, ...] = ("materialized_path", "nested_set")
# each kind's settings and their defaults (django-treebeard's MP_Node, django-mptt's MPTTModel)
TREE_DEFAULTS: dict[str, dict[str, Any]] = {
    "materialized_path": {
        "path": "path", "depth": "depth", "numchild": "numchild",
        "steplen": 4, "alphabet": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    },
    "nested_set": {
        "left": "lft", "right": "rght", "tree_id": "tree_id", "level": "level", "parent": "parent_id",
    },
}  # fmt: skip


@dataclass(frozen=True)
class TreeDeclaration:
    """A tree that stores each node's position (``tree:``): positions are never carried
    as values; the importer places inserted nodes under their parent and recomputes the
    counters. ``settings`` holds the column names (and steplen, alphabet) of the kind."""

    kind: TreeKind
    settings: tuple[tuple[str, Any], ...]

    def get(self, name: str) -> Any:
        return dict(self.settings)[name]

    @property
    def position_columns(self) -> tuple[str, ...]:
        """The columns the importer computes (never taken from the archive)."""
        if self.kind == "materialized_path":
            return (self.get("path"), self.get("depth"), self.get("numchild"))
        return (self.get("left"), self.get("right"), self.get("tree_id"), self.get("level"))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dict(self.settings)}


@dataclass(frozen=True)
class TableMapping:
    table: QualifiedName
    natural_key: tuple[str, ...]
    export: bool = True
    on_conflict: ConflictPolicy = "update"
    references: tuple[DeclaredReference, ...] = ()
    # columns carried as they are, knowingly: they look like references (or are
    # suspected of being one) but their values are not ids of rows that get new ids
    raw_columns: tuple[str, ...] = ()
    generic_references: tuple[GenericReference, ...] = ()
    # a subset export keeps the rows matching this SQL condition (checked by where.py)
    where: str | None = None
    tree: TreeDeclaration | None = None
    # ids inside JSON or text columns (sqlgen/embedded_syntax.py: the syntax)
    embedded_references: tuple[EmbeddedReference, ...] = ()


@dataclass(frozen=True)
class Mapping:
    version: int
    tables: dict[QualifiedName, TableMapping]
    exclude: frozenset[QualifiedName] = field(default_factory=frozenset)
    source_text: str = ""
    types: dict[QualifiedName, TypeTable] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source_text.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """A canonical plain-data form (stored in manifests)."""
        tables: dict[str, Any] = {}
        for name, tm in sorted(self.tables.items()):
            entry: dict[str, Any] = {"natural_key": list(tm.natural_key)}
            if not tm.export:
                entry["export"] = False
            if tm.on_conflict != "update":
                entry["on_conflict"] = tm.on_conflict
            if tm.references:
                entry["references"] = [
                    {
                        "columns": list(r.columns),
                        "table": str(r.table),
                        **({"target_columns": list(r.target_columns)} if r.target_columns else {}),
                    }
                    for r in tm.references
                ]
            if tm.raw_columns:
                entry["raw_columns"] = list(tm.raw_columns)
            if tm.generic_references:
                entry["generic_references"] = [
                    {
                        "type": g.type_column,
                        "id": g.id_column,
                        **({"on_dangling": g.on_dangling} if g.on_dangling != "error" else {}),
                        **({"ignore_types": list(g.ignore_types)} if g.ignore_types else {}),
                    }
                    for g in tm.generic_references
                ]
            if tm.where is not None:
                entry["where"] = tm.where
            if tm.tree is not None:
                entry["tree"] = tm.tree.to_dict()
            if tm.embedded_references:
                entry["embedded_references"] = [e.to_dict() for e in tm.embedded_references]
            tables[str(name)] = entry
        out: dict[str, Any] = {
            "version": self.version,
            "tables": tables,
            "exclude": sorted(str(n) for n in self.exclude),
        }
        if self.types:
            out["types"] = {
                str(n): {
                    "table_name": t.table_name,
                    "schema": t.schema,
                    **({"tables": {k: str(v) for k, v in t.tables}} if t.tables else {}),
                }
                for n, t in sorted(self.types.items())
            }
        return out


def _path_key(key: str) -> str:
    return json.dumps(key) if not key.isidentifier() else key


def _str_list(value: Any, where: str, *, allow_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or (not value and not allow_empty):
        raise MappingError(f"{where}: expected a non-empty list of column names, e.g. [username]")
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise MappingError(f"{where}[{i}]: expected a column name (string), got {item!r}")
        if item in out:
            raise MappingError(f"{where}[{i}]: column {item!r} is listed twice")
        out.append(item)
    return tuple(out)


def _table_name(text: Any, where: str) -> QualifiedName:
    if not isinstance(text, str):
        raise MappingError(f"{where}: expected schema.table as a string, got {text!r}")
    try:
        return parse_qualified_name(text)
    except ValueError as exc:
        raise MappingError(f"{where}: {exc}") from None


def _parse_references(value: Any, where: str) -> tuple[DeclaredReference, ...]:
    if not isinstance(value, list):
        raise MappingError(f"{where}: expected a list like [{{columns: [object_id], table: public.items}}]")
    refs: list[DeclaredReference] = []
    for i, item in enumerate(value):
        here = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise MappingError(f"{here}: expected a mapping with columns and table")
        unknown = set(item) - _REFERENCE_KEYS
        if unknown:
            raise MappingError(
                f"{here}: unknown key {sorted(unknown)[0]!r}; allowed: " + ", ".join(sorted(_REFERENCE_KEYS))
            )
        if "columns" not in item or "table" not in item:
            raise MappingError(f"{here}: both 'columns' and 'table' are required")
        columns = _str_list(item["columns"], f"{here}.columns")
        target = (
            _str_list(item["target_columns"], f"{here}.target_columns") if "target_columns" in item else None
        )
        if target is not None and len(target) != len(columns):
            raise MappingError(f"{here}: columns and target_columns must have the same length")
        refs.append(DeclaredReference(columns, _table_name(item["table"], f"{here}.table"), target))
    return tuple(refs)


def _parse_generic(value: Any, where: str) -> tuple[GenericReference, ...]:
    if not isinstance(value, list):
        raise MappingError(f"{where}: expected a list like [{{type: content_type_id, id: object_id}}]")
    refs: list[GenericReference] = []
    for i, item in enumerate(value):
        here = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise MappingError(f"{here}: expected a mapping with type and id")
        unknown = set(item) - _GENERIC_KEYS
        if unknown:
            raise MappingError(
                f"{here}: unknown key {sorted(map(str, unknown))[0]!r}; allowed: "
                + ", ".join(sorted(_GENERIC_KEYS))
            )
        for key in ("type", "id"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise MappingError(f"{here}.{key}: required, a column name")
        policy = item.get("on_dangling", "error")
        if policy is None:  # YAML reads a bare null as None
            policy = "null"
        if policy not in ON_DANGLING:
            raise MappingError(
                f"{here}.on_dangling: {policy!r} is not allowed; use one of " + ", ".join(ON_DANGLING)
            )
        ignore = _str_list(item.get("ignore_types", []), f"{here}.ignore_types", allow_empty=True)
        if item["type"] == item["id"] or any(r.id_column == item["id"] for r in refs):
            raise MappingError(f"{here}: column {item['id']!r} is used by two generic references")
        refs.append(GenericReference(item["type"], item["id"], cast(OnDangling, policy), ignore))
    return tuple(refs)


def _parse_embedded(value: Any, where: str) -> tuple[EmbeddedReference, ...]:
    if not isinstance(value, list):
        raise MappingError(
            f"{where}: expected a list like [{{column: body, json: '$[*] ? (@.type == \"image\").value', "
            "table: public.images}]"
        )
    out: list[EmbeddedReference] = []
    for i, item in enumerate(value):
        here = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise MappingError(f"{here}: expected a mapping with column, table and json or pattern")
        unknown = set(item) - _EMBEDDED_KEYS
        if unknown:
            raise MappingError(
                f"{here}: unknown key {sorted(map(str, unknown))[0]!r}; allowed: "
                + ", ".join(sorted(_EMBEDDED_KEYS))
            )
        for key in ("column", "table"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise MappingError(
                    f"{here}.{key}: required, a {'column' if key == 'column' else 'schema.table'} name"
                )
        if "json" not in item and "pattern" not in item:
            raise MappingError(
                f"{here}: give json: (a path to the ids) or pattern: (a regular expression with one "
                "capturing group around the id), or both (a pattern inside the strings the path selects)"
            )
        path: str | None = None
        steps: tuple[Step, ...] = ()
        pattern: TextPattern | None = None
        try:
            if "json" in item:
                if not isinstance(item["json"], str):
                    raise SyntaxProblem(f"expected a path as a string, got {item['json']!r}")
                path, steps = item["json"], parse_path(item["json"])
            if "pattern" in item:
                if not isinstance(item["pattern"], str):
                    raise SyntaxProblem(f"expected a regular expression as a string, got {item['pattern']!r}")
                pattern = split_pattern(item["pattern"])
        except SyntaxProblem as exc:
            key = "pattern" if "json" not in item or path is not None else "json"
            raise MappingError(f"{here}.{key}: {exc}") from None
        target = item.get("target_column")
        if target is not None and (not isinstance(target, str) or not target):
            raise MappingError(f"{here}.target_column: expected a column name")
        out.append(
            EmbeddedReference(
                item["column"], _table_name(item["table"], f"{here}.table"), path, steps, pattern, target
            )
        )
    return tuple(out)


def _parse_types(value: Any) -> dict[QualifiedName, TypeTable]:
    if not isinstance(value, dict):
        raise MappingError(
            'types: expected a mapping like {public.django_content_type: {table_name: "{app_label}_{model}"}}'
        )
    out: dict[QualifiedName, TypeTable] = {}
    for key, item in value.items():
        where = f"types.{_path_key(str(key))}"
        name = _table_name(key, where)
        if not isinstance(item, dict):
            raise MappingError(f"{where}: expected a mapping with table_name")
        unknown = set(item) - _TYPE_KEYS
        if unknown:
            raise MappingError(
                f"{where}: unknown key {sorted(map(str, unknown))[0]!r}; allowed: "
                + ", ".join(sorted(_TYPE_KEYS))
            )
        template = item.get("table_name")
        if not isinstance(template, str) or not _PLACEHOLDER.search(template):
            raise MappingError(
                f"{where}.table_name: required, a template over the type table's natural-key "
                'columns such as "{app_label}_{model}"'
            )
        if any(not p for p in _PLACEHOLDER.findall(template)) or "{" in _PLACEHOLDER.sub("", template):
            raise MappingError(
                f"{where}.table_name: {template!r} is not a template of {{column}} placeholders"
            )
        schema = item.get("schema", "public")
        if not isinstance(schema, str) or not schema:
            raise MappingError(f"{where}.schema: expected a schema name")
        explicit = item.get("tables", {})
        if not isinstance(explicit, dict):
            raise MappingError(f'{where}.tables: expected a mapping like {{"auth.user": public.auth_user}}')
        entries = tuple(
            (str(k), _table_name(v, f"{where}.tables.{_path_key(str(k))}"))
            for k, v in sorted(explicit.items())
        )
        out[name] = TypeTable(name, template, schema, entries)
    return out


def _parse_tree(value: Any, where: str) -> TreeDeclaration:
    if not isinstance(value, dict) or value.get("kind") not in TREE_KINDS:
        raise MappingError(
            f"{where}.kind: required, one of "
            + ", ".join(TREE_KINDS)
            + " (e.g. tree: {kind: materialized_path})"
        )
    defaults = TREE_DEFAULTS[value["kind"]]
    unknown = set(value) - set(defaults) - {"kind"}
    if unknown:
        raise MappingError(
            f"{where}: unknown key {sorted(map(str, unknown))[0]!r} for kind {value['kind']}; allowed: "
            + ", ".join(["kind", *defaults])
        )
    settings: list[tuple[str, Any]] = []
    for key, default in defaults.items():
        item = value.get(key, default)
        if key == "steplen":
            if not isinstance(item, int) or isinstance(item, bool) or not 1 <= item <= 12:
                raise MappingError(f"{where}.steplen: expected an integer from 1 to 12, got {item!r}")
        elif key == "alphabet":
            if not isinstance(item, str) or len(item) < 2 or len(set(item)) != len(item):
                raise MappingError(f"{where}.alphabet: expected at least 2 distinct characters, got {item!r}")
            if list(item) != sorted(item):
                raise MappingError(
                    f"{where}.alphabet: its characters must be in ascending (C collation) order"
                )
        elif not isinstance(item, str) or not item:
            raise MappingError(f"{where}.{key}: expected a column name, got {item!r}")
        settings.append((key, item))
    return TreeDeclaration(cast(TreeKind, value["kind"]), tuple(settings))


def _parse_table(name: QualifiedName, value: Any, where: str) -> TableMapping:
    if not isinstance(value, dict):
        raise MappingError(f"{where}: expected a mapping like {{natural_key: [col]}}")
    unknown = set(value) - _TABLE_KEYS
    if unknown:
        raise MappingError(
            f"{where}: unknown key {sorted(map(str, unknown))[0]!r}; allowed: "
            + ", ".join(sorted(_TABLE_KEYS))
        )
    if "natural_key" not in value:
        raise MappingError(f"{where}.natural_key: required (the columns that identify a row)")
    nk = _str_list(value["natural_key"], f"{where}.natural_key")
    export = value.get("export", True)
    if not isinstance(export, bool):
        raise MappingError(f"{where}.export: expected true or false, got {export!r}")
    policy = value.get("on_conflict", "update")
    if policy not in CONFLICT_POLICIES:
        raise MappingError(
            f"{where}.on_conflict: {policy!r} is not allowed; use one of " + ", ".join(CONFLICT_POLICIES)
        )
    refs = _parse_references(value.get("references", []), f"{where}.references")
    raw = _str_list(value.get("raw_columns", []), f"{where}.raw_columns", allow_empty=True)
    generic = _parse_generic(value.get("generic_references", []), f"{where}.generic_references")
    embedded = _parse_embedded(value.get("embedded_references", []), f"{where}.embedded_references")
    row_filter = value.get("where")
    if row_filter is not None:
        if not isinstance(row_filter, str):
            raise MappingError(f"{where}.where: expected an SQL condition as a string, got {row_filter!r}")
        if not export:
            raise MappingError(f"{where}.where: the table is not exported (export: false); drop where")
        parse_where(name, row_filter, f"{where}.where", from_mapping=True)
    tree = _parse_tree(value["tree"], f"{where}.tree") if "tree" in value else None
    return TableMapping(
        name, nk, export, cast(ConflictPolicy, policy), refs, raw, generic, row_filter, tree, embedded
    )


def parse_mapping(data: Any, source_text: str = "") -> Mapping:
    """Validate already-loaded YAML data."""
    if not isinstance(data, dict):
        raise MappingError("mapping: the top level must be a mapping with version and tables")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise MappingError(
            f"{sorted(map(str, unknown))[0]}: unknown top-level key; allowed: " + ", ".join(sorted(_TOP_KEYS))
        )
    version = data.get("version")
    if version != 1:
        raise MappingError(f"version: expected 1, got {version!r}")
    raw_tables = data.get("tables")
    if not isinstance(raw_tables, dict) or not raw_tables:
        raise MappingError("tables: expected a mapping of schema.table -> {natural_key: [...]}")
    tables: dict[QualifiedName, TableMapping] = {}
    for key, value in raw_tables.items():
        where = f"tables.{_path_key(str(key))}"
        name = _table_name(key, where)
        if name in tables:
            raise MappingError(f"{where}: table {name} is listed twice")
        tables[name] = _parse_table(name, value, where)
    raw_exclude = data.get("exclude", [])
    if not isinstance(raw_exclude, list):
        raise MappingError("exclude: expected a list of schema.table names")
    exclude: set[QualifiedName] = set()
    for i, item in enumerate(raw_exclude):
        name = _table_name(item, f"exclude[{i}]")
        if name in tables:
            raise MappingError(f"exclude[{i}]: {name} is also mapped under tables; keep one")
        exclude.add(name)
    types = _parse_types(data.get("types", {}))
    return Mapping(1, tables, frozenset(exclude), source_text, types)


class _StrictLoader(yaml.SafeLoader):
    """The safe loader, refusing duplicate keys (PyYAML would keep the last one silently)."""


def _construct_unique_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:
            continue  # unhashable: the base constructor reports it
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first at line {first + 1}); each key may appear once",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def load_mapping_text(text: str, origin: str = "<mapping>") -> Mapping:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_MAPPING_BYTES:
        raise MappingError(
            f"{origin}: mapping is {size} bytes, larger than the {MAX_MAPPING_BYTES} byte limit"
        )
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: no arbitrary tags
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{origin}:{mark.line + 1}" if mark is not None else origin
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise MappingError(f"{where}: invalid YAML ({problem}); only plain YAML is allowed") from None
    try:
        return parse_mapping(data, text)
    except MappingError as exc:
        raise MappingError(f"{origin}: {exc}") from None


def load_mapping(path: str | Path) -> Mapping:
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise MappingError(f"{p}: cannot read the mapping ({exc.strerror}); check the path") from None
    if size > MAX_MAPPING_BYTES:
        raise MappingError(f"{p}: mapping is {size} bytes, larger than the {MAX_MAPPING_BYTES} byte limit")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise MappingError(f"{p}: mapping is not UTF-8 text") from None
    return load_mapping_text(text, str(p))


def mapping_from_dict(data: AbcMapping[str, Any]) -> Mapping:
    """Rebuild a mapping stored in a manifest."""
    text = yaml.safe_dump(dict(data), sort_keys=True)
    return parse_mapping(yaml.safe_load(text), text)
