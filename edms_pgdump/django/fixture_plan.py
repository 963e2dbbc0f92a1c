"""A Django JSON fixture turned into the import program's COPY sources.

The fixture is read twice as a stream, never held whole. The first pass counts each
model's rows, learns its fields and remembers, for every object that carries a pk, the
raw values of its natural key: a plain-pk reference (``"owner": 3``) or a generic
``object_id`` is resolved through them, whatever the order of the file. A generic id
naming a model whose objects carry no pk (``--natural-primary``) cannot be resolved: it
is kept as it is, as loaddata keeps it, and checked after the load (``KeptIds``). The second
pass writes one COPY text spool per table, in the plan's field order, with every
reference as the referenced row's natural key (Django's natural foreign keys are
already that tuple). The import program then stages, resolves and upserts them exactly
as it does an archive's members.

Rules are Django's: a foreign key field ``owner`` is column ``owner_id``; a
many-to-many list goes to the auto-created through table ``<table>_<field>``; a model
``app.model`` is table ``app_model`` unless told otherwise.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import Catalog
from edms_pgdump.django.fixture_paths import KEY, TargetTree, TreePaths
from edms_pgdump.django.fixture_read import FixtureError, copy_value, iter_objects, jsonb_key_value
from edms_pgdump.errors import ArchiveError
from edms_pgdump.mapping import Mapping, TypeTable
from edms_pgdump.plan.model import Expansion, Field, GenericPlan, Plan, TablePlan

# Django's own models whose db_table is not app_model
DJANGO_TABLES = {
    "contenttypes.contenttype": "django_content_type",
    "sessions.session": "django_session",
    "admin.logentry": "django_admin_log",
    "sites.site": "django_site",
    "redirects.redirect": "django_redirect",
    "flatpages.flatpage": "django_flatpage",
}
SPOOL_IN_MEMORY = 8 << 20  # bytes per table kept in memory before the spool goes to a temp file
BLOCK = 1 << 20


@dataclass
class _M2M:
    through: TablePlan
    own: Expansion  # the through table's FK to the model's own table
    other: Expansion


@dataclass
class _Model:
    """How one Django model's objects fill its table's COPY rows."""

    label: str
    tp: TablePlan
    rows: int = 0
    seen: set[str] = field(default_factory=set)  # every field name any object had
    lists: set[str] = field(default_factory=set)  # fields holding a list (M2M candidates)
    columns: dict[str, Field] = field(default_factory=dict)  # Django field -> plan column
    refs: dict[str, Expansion] = field(default_factory=dict)  # Django FK field -> expansion
    generics: dict[str, GenericPlan] = field(default_factory=dict)  # id field -> generic reference
    m2m: dict[str, _M2M] = field(default_factory=dict)
    loaded: tuple[Field, ...] = ()


class FixtureSpool:
    """The program's member source: one COPY text spool per table (memory, then disk)."""

    def __init__(self) -> None:
        self.files: dict[QualifiedName, IO[bytes]] = {}
        self.counts: dict[QualifiedName, int] = {}
        self.fields: dict[QualifiedName, tuple[Field, ...]] = {}

    def open(self, table: QualifiedName, fields: tuple[Field, ...]) -> None:
        if table not in self.files:
            self.files[table] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
            self.counts[table] = 0
            self.fields[table] = fields

    def write(self, table: QualifiedName, values: dict[str, Any], where: str) -> None:
        line = "\t".join(
            copy_value(values.get(f.name), f.type, f"{where}: {f.name}") for f in self.fields[table]
        )
        self.files[table].write((line + "\n").encode("utf-8"))
        self.counts[table] += 1

    def rows(self, table: QualifiedName) -> int:
        return self.counts[table]

    def damage(self, table: QualifiedName) -> ArchiveError | None:
        return None  # written by this process from the fixture, not read from an archive

    def blocks(self, table: QualifiedName) -> Iterator[bytes]:
        f = self.files[table]
        f.seek(0)
        while block := f.read(BLOCK):
            yield block

    @property
    def loaded(self) -> dict[QualifiedName, tuple[str, ...]]:
        return {t: tuple(f.name for f in fs) for t, fs in self.fields.items()}

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def id_text(value: Any) -> str:
    """A pk or generic object id as the text both sides compare: the fixture may hold
    ``7``, ``7.0`` or ``"7"`` for the same row (a text ``object_id`` column is dumped as
    a string, an integer one as a number, a hand-written fixture either way), and the
    database side compares ``id::text``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass
class KeptIds:
    """Generic ids of one type that travel as they are (``{"raw": id}``), as loaddata
    writes them: the fixture's objects of the type they name carry no pk (dumped with
    ``--natural-primary``), so nothing in the file says which object an id named. After
    the load they are checked against the target (``fixture_import.check_kept_ids``)."""

    table: QualifiedName  # the table holding the generic reference
    id_column: str
    type_name: str  # app_label.model
    target: QualifiedName  # the table the type names
    ids: dict[str, str] = field(default_factory=dict)  # id as text -> first object holding it


def _flatten(value: Any) -> list[Any]:
    out: list[Any] = []
    for v in value:
        out.extend(_flatten(v) if isinstance(v, list) else [v])
    return out


class FixtureReader:
    """Both passes over one fixture against one plan."""

    def __init__(
        self,
        path: Path,
        plan: Plan,
        catalog: Catalog,
        excluded: frozenset[QualifiedName],
        tables: dict[str, QualifiedName] | None = None,
        types: tuple[TypeTable, ...] = (),
    ) -> None:
        self.path = path
        self.plan = plan
        self.catalog = catalog
        self.excluded = excluded
        self.explicit = dict(tables or {})
        self.types = types
        self.models: dict[str, _Model] = {}
        self.skipped: dict[str, int] = {}  # model -> rows left out (excluded tables)
        self.by_table: dict[QualifiedName, str] = {}
        # table -> pk (as text) -> the raw values of that object's natural-key fields
        self.index: dict[QualifiedName, dict[str, dict[str, Any]]] = {}
        self.resolved: dict[tuple[QualifiedName, str], tuple[Any, ...]] = {}
        # treebeard models' objects by position: keys that are a path of ancestors' names
        self.paths = TreePaths()
        self.by_path: dict[tuple[QualifiedName, tuple[Any, ...]], tuple[Any, ...]] = {}
        # the target's trees, read when a path is not in the fixture (set by import-fixture)
        self.target_tree: TargetTree | None = None
        self.target_paths: dict[QualifiedName, TreePaths | None] = {}
        # per generic reference, the raw type values its objects hold
        self.type_raws: dict[tuple[QualifiedName, str], set[Any]] = {}
        # per generic reference, the types whose ids are kept as they are (see KeptIds)
        self.kept: dict[tuple[QualifiedName, str, str], KeptIds] = {}
        # per table the kept ids name, its objects' natural keys (jsonb text), written in pass 2
        self.kept_keys: dict[QualifiedName, list[str]] = {}
        self.sha256 = ""
        self.warnings: list[str] = []

    # -- models and tables ---------------------------------------------------------
    def table_of(self, label: str) -> QualifiedName | None:
        """The table of ``app.model``: given (--table), else as the mapping's ``types:``
        entries name it (init --django writes the registry's db_table there), else Django's
        contrib tables, else Django's default ``app_model``."""
        label = label.lower()
        if label in self.explicit:
            return self.explicit[label]
        for type_table in self.types:
            for name, table in type_table.tables:
                if name.lower() == label:
                    return table
        app, _, model = label.partition(".")
        name = DJANGO_TABLES.get(label, f"{app}_{model}")
        found = [n for n in (*self.plan.tables, *self.excluded) if n.name == name]
        public = [n for n in found if n.schema == "public"]
        return (public or found)[0] if found else None

    def label_of(self, table: QualifiedName) -> str:
        """The ``app.model`` of ``table``, also when the fixture holds none of its objects
        (from --table and the mapping's ``types:`` entries), else the table's name."""
        if table in self.by_table:
            return self.by_table[table]
        for label, named in self.explicit.items():
            if named == table:
                return label
        for type_table in self.types:
            for label, named in type_table.tables:
                if named == table:
                    return label
        return str(table)

    def model(self, label: str, position: int) -> _Model | None:
        """The model's shape, or None when its table is excluded by the mapping."""
        m = self.models.get(label)
        if m is not None or label in self.skipped:
            return m
        table = self.table_of(label)
        if table is not None and table in self.excluded:
            self.skipped[label] = 0
            return None
        tp = self.plan.tables.get(table) if table is not None else None
        if tp is None:
            looked = str(table) if table is not None else f"public.{label.replace('.', '_').lower()}"
            raise FixtureError(
                f"{self.path}: object {position}: model {label!r} has no table in the mapping (looked for "
                f"{looked}); add the table to the mapping (edms-pgdump init --django writes every model), "
                f"or name its table with --table {label}=schema.table"
            )
        m = _Model(label, tp)
        self.models[label] = m
        self.by_table[tp.table] = label
        return m

    def column_field(self, m: _Model, column: str) -> str:
        """The Django field name that fills ``column`` ('pk' for a plain primary key)."""
        table = self.catalog.tables[m.tp.table]
        if table.primary_key == (column,) and column not in m.seen:
            return "pk"
        return column

    def ref_field(self, m: _Model, exp: Expansion) -> str:
        col = exp.columns[0]
        return col[:-3] if col.endswith("_id") and col not in m.seen else col

    def ref_value(self, m: _Model, exp: Expansion, fields: dict[str, Any]) -> Any:
        """The raw value of reference ``exp`` in an object's fields. A primary key that is
        a reference (a multi-table-inheritance child's parent link ``page_ptr``, a one-to-one
        primary key) is not a field of a ``--natural-foreign`` dump: the object's ``pk`` is
        the parent object's pk. With ``--natural-primary`` Django writes the parent link
        as a field (the parent's natural key) and leaves the pk out."""
        name = self.ref_field(m, exp)
        if name in fields:
            return fields[name]
        if self.catalog.tables[m.tp.table].primary_key == exp.columns:
            return fields.get("pk")
        return None

    # -- pass 1 --------------------------------------------------------------------
    def survey(self) -> None:
        digest: list[str] = []
        for position, obj in iter_objects(self.path, digest):
            m = self.model(obj["model"], position)
            if m is None:
                self.skipped[obj["model"]] += 1
                continue
            m.rows += 1
            fields = obj.get("fields", {})
            m.seen.update(fields)
            m.lists.update(k for k, v in fields.items() if isinstance(v, list))
            for g in m.tp.generic:
                raw_type = fields.get(g.type_column[:-3] if g.type_column.endswith("_id") else g.type_column)
                if raw_type is not None:
                    hashable = tuple(_flatten(raw_type)) if isinstance(raw_type, list) else raw_type
                    self.type_raws.setdefault((m.tp.table, g.id_column), set()).add(hashable)
            stored = {**fields, "pk": obj.get("pk")}  # one dict for both (a large fixture is held once)
            self.paths.add(m.tp.table, stored)
            if "pk" in obj and obj["pk"] is not None:
                self.index.setdefault(m.tp.table, {})[id_text(obj["pk"])] = stored
        self.sha256 = digest[0] if digest else ""
        for label, count in self.skipped.items():
            table = self.table_of(label)
            self.warnings.append(f"{label}: {count} object(s) left out: {table} is excluded by the mapping")

    def shape_all(self) -> None:
        for m in list(self.models.values()):
            self.shape(m)

    def shape(self, m: _Model) -> None:
        """Every field any object of ``m`` had, matched to a column, reference or through table."""
        tp = m.tp
        if not tp.export:
            return  # resolved in the target (export: false): its objects only serve pk lookups
        if tp.tree_expansion is not None:
            raise FixtureError(
                f"{self.path}: {m.label} ({tp.table}) has a tree natural key (it contains its own "
                "parent); import-fixture cannot restore such a table yet: export it from the database"
            )
        columns = {f.column: f for f in tp.fields if f.role == "column" and f.column}
        by_column = {e.columns[0]: e for e in tp.expansions if len(e.columns) == 1}
        generics = {g.id_column: g for g in tp.generic}
        table = self.catalog.tables[tp.table]
        for name in sorted(m.seen | ({"pk"} if tp.table in self.index else set())):
            if name == "pk":
                pk = table.primary_key[0] if table.primary_key and len(table.primary_key) == 1 else None
                if pk in columns:
                    m.columns["pk"] = columns[pk]
                elif pk in by_column and pk not in m.seen and pk.removesuffix("_id") not in m.seen:
                    # the pk is a reference (a multi-table-inheritance child's parent link, a
                    # one-to-one primary key): its value is the parent object's pk
                    m.refs["pk"] = by_column[pk]
                continue
            if name in columns:
                m.columns[name] = columns[name]
            elif name in generics:
                m.generics[name] = generics[name]
            elif name in by_column or f"{name}_id" in by_column:
                m.refs[name] = by_column.get(name) or by_column[f"{name}_id"]
            elif name in m.lists and (through := self.through(m, name)) is not None:
                m.m2m[name] = through
            else:
                through_name = QualifiedName(tp.table.schema, f"{tp.table.name}_{name}")
                raise FixtureError(
                    f"{self.path}: {m.label}.{name}: no column {name} or {name}_id in {tp.table}"
                    + (f" and no mapped through table {through_name}" if name in m.lists else "")
                    + "; migrate the target to the models the backup was made with, or map that table"
                )
        loaded = {f.name for f in m.columns.values()}
        for e in m.refs.values():
            loaded.update(kf.name for kf in e.fields)
            if e.present:  # Django says it too: [null] names the row whose key is NULL, null none
                loaded.add(e.present_field)
        for g in m.generics.values():
            loaded.add(g.field)
        m.loaded = tuple(f for f in tp.fields if f.name in loaded)
        for kf in tp.key_fields:
            if kf.name not in loaded:
                raise FixtureError(
                    f"{self.path}: natural-key field {kf.name!r} of {tp.table} is missing from the "
                    f"fixture's {m.label} objects; the fixture was dumped from other models, or the "
                    "mapping's natural_key is wrong"
                )
        self.check_missing(m.label, tp, loaded)

    def check_missing(self, label: str, tp: TablePlan, loaded: set[str]) -> None:
        table = self.catalog.tables[tp.table]
        for f in tp.fields:
            if f.name in loaded:
                continue
            if f.role == "column":
                col = table.column(f.column or "")
                if col is not None and col.not_null and not col.has_default:
                    raise FixtureError(
                        f"{self.path}: {label} has no field for column {tp.table}.{col.name}, which is "
                        "NOT NULL without a default; migrate the target to the models of the backup"
                    )
                self.warnings.append(
                    f"{label}: {tp.table}.{f.name} is not in the fixture; new rows get its default"
                )
            elif f.role == "reference":
                exp = tp.expansion(f.reference or "")
                if any((c := table.column(col)) is not None and c.not_null for col in exp.columns):
                    raise FixtureError(
                        f"{self.path}: {label} has no field for the NOT NULL reference "
                        f"{tp.table}.{exp.label}; migrate the target to the models of the backup"
                    )

    def through(self, m: _Model, name: str) -> _M2M | None:
        own_table = m.tp.table
        through_name = self.explicit.get(f"{m.label}.{name}") or QualifiedName(
            own_table.schema, f"{own_table.name}_{name}"
        )
        tp = self.plan.tables.get(through_name)
        if tp is None or len(tp.expansions) != 2:
            return None
        a, b = tp.expansions
        if a.ref_table == b.ref_table == own_table:  # a self M2M: from_<model>_id, to_<model>_id
            own, other = (a, b) if a.columns[0].startswith("from_") else (b, a)
        elif a.ref_table == own_table:
            own, other = a, b
        elif b.ref_table == own_table:
            own, other = b, a
        else:
            return None
        loaded = {kf.name for kf in (*own.fields, *other.fields)}
        self.check_missing(f"{m.label}.{name}", tp, loaded)
        return _M2M(tp, own, other)

    # -- resolving references --------------------------------------------------------
    def natural(
        self, table: QualifiedName, pk: Any, where: str, stack: tuple[Any, ...] = ()
    ) -> tuple[Any, ...]:
        """The natural key of the fixture's object ``pk`` of ``table``."""
        key = (table, id_text(pk))
        if key in self.resolved:
            return self.resolved[key]
        raw = self.index.get(table, {}).get(id_text(pk))
        label = self.by_table.get(table, str(table))
        if raw is None and label in self.models and table not in self.index:
            holder = where.split(" ", 1)[0]
            raise FixtureError(
                f"{self.path}: {where} holds pk {pk!r} of {label}, but the fixture's {label} objects "
                "carry no pk (dumped with --natural-primary), so the object cannot be identified; "
                "dump with --natural-foreign alone (pks are kept, references still travel as natural keys), "
                f"or leave {holder} out of this dump (dumpdata -e {holder}) when the target already has "
                "those rows"
            )
        if raw is None:
            raise FixtureError(
                f"{self.path}: {where} refers to {label} pk {pk!r}, which is not in the fixture; "
                "dump with --natural-foreign (references then travel as natural keys), or include "
                f"{label} in the dump"
            )
        if key in stack:
            raise FixtureError(
                f"{self.path}: {where}: the natural keys of {label} refer to each other in a loop"
            )
        values = self.key_values(self.models[label], raw, f"{label} pk {pk!r}", (*stack, key))
        result = tuple(values[kf.name] for kf in self.models[label].tp.key_fields)
        self.resolved[key] = result
        return result

    def key_values(
        self, m: _Model, fields: dict[str, Any], where: str, stack: tuple[Any, ...] = ()
    ) -> dict[str, Any]:
        """The natural-key field values of one object, by plan field name."""
        out: dict[str, Any] = {}
        for kind, part in m.tp.key_parts:
            if kind == "column":
                name = self.column_field(m, part)
                if name not in fields:
                    raise FixtureError(
                        f"{self.path}: {where}: natural-key field {part!r} of {m.tp.table} is missing; "
                        "the fixture was dumped from other models, or the mapping's natural_key is wrong"
                    )
                out[part] = fields[name]
            elif kind == "generic":
                g = m.tp.generic_for(part)
                out[g.field] = self.generic(m, g, fields, where, stack)
            else:
                exp = m.tp.expansion(part)
                raw = self.ref_value(m, exp, fields)
                out.update(self.reference(exp, raw, f"{where}.{exp.label}", stack))
        return out

    def reference(self, exp: Expansion, raw: Any, where: str, stack: tuple[Any, ...] = ()) -> dict[str, Any]:
        names = [kf.name for kf in exp.fields]
        if exp.present:  # archive format 2's presence field, read like Django's null vs [null]
            key = self.reference(replace(exp, present=False), raw, where, stack)
            return {**key, exp.present_field: raw is not None}
        if raw is None:
            return dict.fromkeys(names)
        if isinstance(raw, list):
            values = _flatten(raw)
            if len(values) != len(names):
                return dict(zip(names, self.by_tree_path(exp, values, where, stack)))
            return dict(zip(names, values))
        return dict(zip(names, self.natural(exp.ref_table, raw, where, stack)))

    def by_tree_path(
        self, exp: Expansion, values: list[Any], where: str, stack: tuple[Any, ...]
    ) -> tuple[Any, ...]:
        """The mapping's natural key of the object a natural key of another length names:
        a path of ancestors' names (Wagtail's ``Collection.natural_key()``), found in the
        fixture's own tree (``fixture_paths``), else in the target's (as loaddata's
        ``get_by_natural_key()`` finds it), else refused with what would work."""
        table = exp.ref_table
        cached = self.by_path.get((table, tuple(values)))
        if cached is not None:
            return cached
        label = self.label_of(table)
        why = ""
        if label in self.models and self.paths.is_tree(table):
            node, why = self.paths.find(table, values)
            if node is not None:
                m = self.models[label]
                key = self.key_values(m, node, f"{label} {'/'.join(map(str, values))}", stack)
                result = tuple(key[kf.name] for kf in m.tp.key_fields)
                self.by_path[(table, tuple(values))] = result
                return result
        target = self.in_target_tree(table, values)
        if target is not None:
            self.by_path[(table, tuple(values))] = target
            return target
        keyed = f"{table} is keyed by {len(exp.fields)} ({', '.join(kf.name for kf in exp.fields)})"
        head = f"{self.path}: {where}: natural key {values!r} has {len(values)} value(s) but {keyed}"
        nowhere = f"and no {table} row of the target has that path of names either"
        if label not in self.models:
            raise FixtureError(
                f"{head}; the fixture holds no {label} objects to find it among, {nowhere}. If {label}'s "
                "natural_key() is a path of ancestors' names (Wagtail's Collection), include "
                f"{label} in the dump (its objects' tree positions resolve each path); else make the "
                "mapping's natural_key follow the model's natural_key(). Or move these tables with "
                "edms-pgdump export and import, which carry the mapping's keys"
            )
        if not self.paths.is_tree(table):
            raise FixtureError(
                f"{head}; the fixture's {label} objects have no tree position (path, depth) to read it "
                f"as a path of ancestors' names, {nowhere}: make the mapping's natural_key follow the "
                "model's natural_key(), or move this table with edms-pgdump export and import"
            )
        raise FixtureError(
            f"{head}, read as a path of ancestors' names in the fixture's {label} tree: {why}, {nowhere}; "
            f"dump {label} whole with the data that refers to it, or move these tables with "
            "edms-pgdump export and import"
        )

    def in_target_tree(self, table: QualifiedName, values: list[Any]) -> tuple[Any, ...] | None:
        """The natural key of the target's node at that path of names, if it has one."""
        if self.target_tree is None:
            return None
        if table not in self.target_paths:
            nodes = self.target_tree(table)
            paths: TreePaths | None = None
            if nodes is not None:
                paths = TreePaths()
                for one in nodes:
                    paths.add(table, one)
            self.target_paths[table] = paths
        paths = self.target_paths[table]
        if paths is None or not paths.is_tree(table):
            return None
        found, _ = paths.find(table, [str(v) for v in values])
        return None if found is None else tuple(found[KEY])

    def type_values(self, m: _Model, g: GenericPlan, fields: dict[str, Any], where: str) -> dict[str, Any]:
        exp = next(e for e in m.tp.expansions if e.columns == (g.type_column,))
        return self.reference(exp, fields.get(self.ref_field(m, exp)), f"{where}.{exp.label}")

    def generic_table(self, g: GenericPlan, values: dict[str, Any]) -> tuple[str, QualifiedName]:
        """The type's name (its key joined by '.') and the table it names, by the mapping's
        types: entry (explicit tables first, then the template)."""
        key = {c: values.get(g.type_field(c)) for c in g.type_key}
        type_name = ".".join(str(v) for v in key.values())
        for name, table in g.naming.tables:
            if name == type_name:
                return type_name, table
        try:
            return type_name, QualifiedName(g.naming.schema, g.naming.table_name.format(**key))
        except (KeyError, IndexError, ValueError):
            raise FixtureError(
                f"{self.path}: type {type_name!r} cannot fill the template {g.naming.table_name!r} "
                f"of types.{g.type_table}; list it under that entry's tables:"
            ) from None

    def generic(
        self, m: _Model, g: GenericPlan, fields: dict[str, Any], where: str, stack: tuple[Any, ...] = ()
    ) -> Any:
        """The jsonb natural key of the object a (type, object id) pair names."""
        object_id = fields.get(g.id_column)
        values = self.type_values(m, g, fields, where)
        if object_id is None or any(v is None for v in values.values()):
            return None
        type_name, target = self.generic_table(g, values)
        kept = self.kept.get((m.tp.table, g.id_column, type_name))
        if kept is not None:
            kept.ids.setdefault(id_text(object_id), where)
        if kept is not None or type_name in g.ignore_types:
            # as text, as the target side writes it (jsonb_build_object('raw', id::text)):
            # {"raw": 7} and {"raw": "7"} are different keys
            return {"raw": id_text(object_id)}
        if target not in self.plan.tables:
            raise FixtureError(
                f"{self.path}: {where}.{g.id_column} names type {type_name!r}, whose table {target} is "
                f"not mapped; map it, or list {type_name!r} under ignore_types of that generic reference"
            )
        key = self.natural(target, object_id, f"{where}.{g.id_column} ({type_name})", stack)
        # as the target side builds it from typed columns (timestamps in UTC, numbers)
        return [jsonb_key_value(v, kf.type) for v, kf in zip(key, self.plan.tables[target].key_fields)]

    def named_types(self) -> Iterator[tuple[GenericPlan, str, QualifiedName]]:
        """(generic reference, type name, table it names) for every type the fixture's
        objects hold in a generic reference."""
        for (table, id_column), raws in self.type_raws.items():
            m = self.models[self.by_table[table]]
            g = m.tp.generic_for(id_column)
            exp = next(e for e in m.tp.expansions if e.columns == (g.type_column,))
            for raw in raws:
                raw_value = list(raw) if isinstance(raw, tuple) else raw
                values = self.reference(exp, raw_value, f"{m.label}.{exp.label}")
                if all(v is not None for v in values.values()):
                    name, target = self.generic_table(g, values)
                    yield g, name, target

    def keep_ids(self) -> None:
        """Decide, per generic reference and type, whether its ids are resolved (the
        fixture's objects of that type carry pks: each id is looked up among them) or
        kept as they are (they carry none: ``--natural-primary``; see KeptIds)."""
        for g, name, target in self.named_types():
            label = self.by_table.get(target)
            if (
                name not in g.ignore_types
                and target in self.plan.tables
                and label in self.models
                and target not in self.index
            ):
                kept = KeptIds(g.table, g.id_column, name, target)
                self.kept.setdefault((g.table, g.id_column, name), kept)
                self.kept_keys.setdefault(target, [])

    def mapping_keeping_ids(self, mapping: Mapping) -> Mapping:
        """``mapping`` with the kept types added to their generic reference's
        ``ignore_types``: staging and the target then both carry those ids as
        ``{"raw": id}``, so keys holding them still match on a second import."""
        if not self.kept:
            return mapping
        tables = dict(mapping.tables)
        for kept in self.kept.values():
            tm = tables[kept.table]
            tables[kept.table] = replace(
                tm,
                generic_references=tuple(
                    replace(gr, ignore_types=(*gr.ignore_types, kept.type_name))
                    if gr.id_column == kept.id_column and kept.type_name not in gr.ignore_types
                    else gr
                    for gr in tm.generic_references
                ),
            )
        return replace(mapping, tables=tables)

    def generic_targets(self) -> dict[tuple[QualifiedName, str], tuple[QualifiedName, ...]]:
        """Per generic reference, the tables the fixture's objects name (the plan loads them first)."""
        out: dict[tuple[QualifiedName, str], set[QualifiedName]] = {}
        for (table, id_column) in self.type_raws:
            out[(table, id_column)] = set()
        for g, name, target in self.named_types():
            kept = (g.table, g.id_column, name) in self.kept
            if not kept and name not in g.ignore_types and target in self.plan.tables:
                out[(g.table, g.id_column)].add(target)
        return {k: tuple(sorted(v, key=str)) for k, v in out.items()}

    def rebind(self, plan: Plan) -> None:
        """Use the plan built with the fixture's generic targets."""
        self.plan = plan
        for m in self.models.values():
            m.tp = plan.tables[m.tp.table]

    # -- pass 2 ----------------------------------------------------------------------
    def spool(self) -> FixtureSpool:
        spool = FixtureSpool()
        try:
            for m in self.models.values():
                if m.tp.export:
                    spool.open(m.tp.table, m.loaded)
                for name, mm in m.m2m.items():
                    fields = {kf.name for kf in (*mm.own.fields, *mm.other.fields)}
                    spool.open(mm.through.table, tuple(f for f in mm.through.fields if f.name in fields))
                    self.by_table.setdefault(mm.through.table, f"{m.label}.{name}")
            for position, obj in iter_objects(self.path):
                model = self.models.get(obj["model"])
                if model is not None and model.tp.export:
                    self.write_object(spool, model, position, obj)
        except BaseException:
            spool.close()
            raise
        return spool

    def write_object(self, spool: FixtureSpool, m: _Model, position: int, obj: dict[str, Any]) -> None:
        fields = obj.get("fields", {})
        if "pk" in obj:
            fields = {**fields, "pk": obj["pk"]}
        where = f"{m.label} (object {position})"
        missing = sorted(n for n in m.seen if n not in fields)
        if missing:
            raise FixtureError(
                f"{self.path}: {where} lacks field {missing[0]!r} that other {m.label} objects have; "
                "dump the fixture again with dumpdata"
            )
        values: dict[str, Any] = {}
        for name, f in m.columns.items():
            values[f.name] = fields.get(name)
        for name, exp in m.refs.items():
            if name == "pk" and fields.get("pk") is None:
                raise FixtureError(
                    f"{self.path}: {where} has no pk and no {self.ref_field(m, exp)!r} field, so its "
                    f"{exp.ref_table} row is not named; dump the fixture again with dumpdata"
                )
            values.update(self.reference(exp, fields[name], f"{where}.{name}"))
        for g in m.generics.values():
            values[g.field] = self.generic(m, g, fields, where)
        for kf in m.tp.key_fields:
            if values.get(kf.name) is None and not kf.nullable:
                raise FixtureError(
                    f"{self.path}: {where}: natural-key field {kf.name!r} of {m.tp.table} is missing or "
                    "null; every object needs its whole natural key"
                )
        spool.write(m.tp.table, values, where)
        own_key = [values[kf.name] for kf in m.tp.key_fields]
        if m.tp.table in self.kept_keys:
            self.kept_keys[m.tp.table].append(
                json.dumps([jsonb_key_value(v, kf.type) for v, kf in zip(own_key, m.tp.key_fields)])
            )
        for name, mm in m.m2m.items():
            base = {kf.name: v for kf, v in zip(mm.own.fields, own_key)}
            for item in fields[name]:
                row = {**base, **self.reference(mm.other, item, f"{where}.{name}")}
                spool.write(mm.through.table, row, f"{where}.{name}")



