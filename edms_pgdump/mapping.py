"""The YAML mapping: which natural key identifies the rows of each table.

Parsed with the safe loader only, into frozen dataclasses. Every validation error
names the YAML path (``tables."public.documents".natural_key[1]``) and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from .errors import MappingError
from .names import QualifiedName, parse_qualified_name

ConflictPolicy = Literal["update", "skip", "error"]
CONFLICT_POLICIES: tuple[ConflictPolicy, ...] = ("update", "skip", "error")
MAX_MAPPING_BYTES = 5 * 1024 * 1024

_TABLE_KEYS = {"natural_key", "export", "on_conflict", "references", "raw_columns"}
_TOP_KEYS = {"version", "tables", "exclude"}
_REFERENCE_KEYS = {"columns", "table", "target_columns"}


@dataclass(frozen=True)
class DeclaredReference:
    """A reference the database does not enforce (no FK constraint), declared in YAML."""

    columns: tuple[str, ...]
    table: QualifiedName
    target_columns: tuple[str, ...] | None  # None: the referenced table's primary key


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


@dataclass(frozen=True)
class Mapping:
    version: int
    tables: dict[QualifiedName, TableMapping]
    exclude: frozenset[QualifiedName] = field(default_factory=frozenset)
    source_text: str = ""

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
            tables[str(name)] = entry
        return {
            "version": self.version,
            "tables": tables,
            "exclude": sorted(str(n) for n in self.exclude),
        }


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
    return TableMapping(name, nk, export, cast(ConflictPolicy, policy), refs, raw)


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
    return Mapping(1, tables, frozenset(exclude), source_text)


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
