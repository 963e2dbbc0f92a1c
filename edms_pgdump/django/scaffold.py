"""``init --django``: a mapping written from a Django project's models.

Django users already wrote their natural keys, in Python: ``natural_key()`` methods. A
method is opaque, so its fields are found by calling it on up to ``SAMPLE_ROWS`` stored
rows and matching the tuple it returns against the model's fields, following foreign
keys into the referenced model's own natural key (``self.document.natural_key() +
(self.workflow_type,)``). With no rows, the manager's ``get_by_natural_key`` parameter
names are the hint. Models without one fall back to what the database promises
(``unique=True``, ``unique_together``, ``UniqueConstraint``). Generic foreign keys become
``generic_references:`` with ``types:`` entries taken from the registry's real
``db_table`` names. Needs ``pip install 'edms-pgdump[django]'``.
"""

from __future__ import annotations

import inspect
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from edms_pgdump.errors import UsageError
from edms_pgdump.results import InitResult
from edms_pgdump.sqlgen.fixes import yaml_flow

SAMPLE_ROWS = 100
# apps whose tables hold sessions, the admin's log and the migration ledger: state of one
# installation, not data to carry to another (unless --include-app names them)
DEFAULT_EXCLUDED_APPS = ("sessions", "admin")
# tables an application rebuilds from the others (a search index, Wagtail's reference
# index: ``rebuild_references_index``): carrying them would copy one installation's
# derived state; ``check`` still names them with their row counts
REBUILDABLE_TABLES = ("wagtailsearch_indexentry", "modelsearch_indexentry", "wagtailcore_referenceindex")
CONTENT_TYPE = "contenttypes.contenttype"
# columns a tree library computes from a node's place in the tree: they differ between
# databases for the same node, so they never identify one (django-treebeard, django-mptt)
TREE_POSITIONS = {
    "MP_Node": ("path", "depth", "numchild"),
    "NS_Node": ("lft", "rgt", "tree_id", "depth"),
    "MPTTModel": ("lft", "rght", "tree_id", "level"),
}
# what names a node among its siblings, when the tree has no key of its own
NAME_FIELDS = ("slug", "name", "title", "label")


@dataclass
class DjangoInitResult(InitResult):
    """``init --django``: the mapping, and what ``check`` found wrong with it (empty: passes)."""

    problems: list[str] = field(default_factory=list)
    settings: str = ""

    def to_dict(self) -> dict[str, Any]:
        base = super().to_dict()
        return {**base, "ok": not self.problems, "settings": self.settings, "problems": self.problems}


@dataclass
class _Entry:
    table: str  # schema.table
    label: str
    key: list[str] | None = None
    how: str = ""  # where the key came from, for the YAML comment
    export: bool = True
    generic: list[dict[str, str]] = field(default_factory=list)
    excluded: str = ""  # why the table is left out
    # ForeignKey(db_constraint=False): a reference the database does not enforce
    references: list[dict[str, Any]] = field(default_factory=list)
    empty: bool = False
    targets: list[str] = field(default_factory=list)  # tables its foreign keys reference
    tree: dict[str, Any] | None = None  # tree: the declaration of a tree that stores positions


def setup_django(settings: str, dsn: str | None) -> Any:
    """``django.setup()`` with ``settings``, importable from the current directory; with
    ``dsn``, the default database is pointed there first. Returns the app registry."""
    try:
        import django
        from django.conf import settings as django_settings
    except ImportError:
        raise UsageError("init --django needs Django: pip install 'edms-pgdump[django]'") from None
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    os.environ["DJANGO_SETTINGS_MODULE"] = settings
    try:
        db = django_settings.DATABASES["default"]
    except ImportError as exc:
        raise UsageError(
            f"--django {settings}: cannot import the settings ({exc}); run from the project's folder "
            "or put it on PYTHONPATH"
        ) from None
    except KeyError:
        raise UsageError(f"--django {settings}: DATABASES has no 'default' entry; pass --dsn") from None
    if dsn:
        parts = conninfo_to_dict(dsn)
        db.update(
            NAME=parts.get("dbname", db.get("NAME")),
            USER=parts.get("user", ""),
            PASSWORD=parts.get("password", ""),
            HOST=parts.get("host", ""),
            PORT=parts.get("port", ""),
        )
    try:
        django.setup()
    except Exception as exc:
        raise UsageError(f"--django {settings}: django.setup() failed: {exc}") from None
    from django.apps import apps

    return apps


def settings_dsn() -> str:
    """The default database of the loaded settings, as a libpq connection string."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if "postgresql" not in str(db.get("ENGINE", "")):
        raise UsageError(f"DATABASES['default'] uses {db.get('ENGINE')}; edms-pgdump needs PostgreSQL")
    parts = {
        "dbname": db.get("NAME"),
        "user": db.get("USER"),
        "password": db.get("PASSWORD"),
        "host": db.get("HOST"),
        "port": str(db.get("PORT") or ""),
    }
    return make_conninfo(**{k: v for k, v in parts.items() if v})


# -- natural keys ------------------------------------------------------------------------
def _leaves(f: Any, stack: tuple[Any, ...] = ()) -> list[str] | None:
    """The natural-key leaves an FK field stands for (its target's key), or [name]."""
    if not f.is_relation or not f.many_to_one:
        return [f.name]
    target = f.related_model
    if target in stack:
        return None
    key = natural_key_fields(target, stack)[0]
    if key is None:
        return None
    out: list[str] = []
    for name in key:
        sub = _leaves(target._meta.get_field(name), (*stack, target))
        if sub is None:
            return None
        out.extend(sub)
    return out


def _flat(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flat(v)]
    return [value]


def _field_values(obj: Any, f: Any) -> list[Any]:
    if f.is_relation and f.many_to_one:
        target = getattr(obj, f.name)
        return [None] if target is None else _flat(target.natural_key())
    return [f.value_from_object(obj)]


def _match(rows: list[tuple[Any, list[Any]]], fields: list[Any]) -> list[str] | None:
    """The fields whose values, concatenated, are every sampled row's natural key."""

    def extend(pos: int, chosen: list[Any]) -> list[str] | None:
        if all(pos == len(key) for _, key in rows):
            return [f.name for f in chosen]
        for f in fields:
            if f in chosen:
                continue
            try:
                parts = [(_field_values(obj, f), key) for obj, key in rows]
            except Exception:
                continue
            if all(vals == key[pos : pos + len(vals)] for vals, key in parts):
                n = len(parts[0][0])
                if all(len(v) == n for v, _ in parts):
                    found = extend(pos + n, [*chosen, f])
                    if found is not None:
                        return found
        return None

    return extend(0, [])


def _from_signature(model: Any, fields: list[Any]) -> list[str] | None:
    """The manager's ``get_by_natural_key`` parameters as fields (FKs consume their target's leaves)."""
    method = getattr(model._default_manager, "get_by_natural_key", None)
    if method is None:
        return None
    try:
        signature = inspect.signature(method)
        params = [p for p in signature.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
    except (TypeError, ValueError):
        return None
    names = [p.name for p in params]
    by_name = {f.name: f for f in fields}
    out: list[str] = []
    i = 0
    while i < len(names):
        f = by_name.get(names[i]) or by_name.get(names[i].removesuffix("_id"))
        if f is not None and not (f.is_relation and f.many_to_one):
            out.append(f.name)
            i += 1
            continue
        for cand in fields:
            leaves = _leaves(cand) if cand.is_relation and cand.many_to_one else None
            if leaves and names[i : i + len(leaves)] in (leaves, [f"{cand.name}__{x}" for x in leaves]):
                out.append(cand.name)
                i += len(leaves)
                break
            if f is not None and cand.name == f.name:  # the FK itself is a parameter
                out.append(f.name)
                i += 1
                break
        else:
            return None
    return out or None


_KEY_CACHE: dict[Any, tuple[list[str] | None, str]] = {}


def tree_kind(model: Any) -> str | None:
    """``MP_Node``, ``NS_Node`` or ``MPTTModel`` when the model stores its tree position."""
    for base in model.__mro__:
        if base.__name__ in TREE_POSITIONS and base.__module__.split(".")[0] in ("treebeard", "mptt"):
            return str(base.__name__)
    return None


def positional_fields(model: Any) -> set[str]:
    """The field names holding ``model``'s tree position (empty: not such a tree)."""
    kind = tree_kind(model)
    if kind is None:
        return set()
    names = set(TREE_POSITIONS[kind])
    mptt = getattr(model, "_mptt_meta", None)
    if mptt is not None:
        names |= {str(getattr(mptt, a)) for a in ("left_attr", "right_attr", "tree_id_attr", "level_attr")}
    return names


def tree_declaration(model: Any) -> dict[str, Any] | None:
    """The mapping's ``tree:`` for a model whose own table stores its tree position
    (treebeard's ``MP_Node``, django-mptt's ``MPTTModel``); None for other models, for a
    multi-table child (its parent's table holds the tree) and for treebeard's nested sets
    (no parent column to carry a node by)."""
    kind = tree_kind(model)
    if kind is None or parent_link(model) is not None:
        return None
    meta = model._meta

    def column(name: str) -> str:
        return str(meta.get_field(name).column)

    if kind == "MP_Node":
        out: dict[str, Any] = {"kind": "materialized_path"}
        for key in ("path", "depth", "numchild"):
            if column(key) != key:
                out[key] = column(key)
        if int(model.steplen) != 4:
            out["steplen"] = int(model.steplen)
        if str(model.alphabet) != "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ":
            out["alphabet"] = str(model.alphabet)
        return out
    mptt = getattr(model, "_mptt_meta", None)
    if kind != "MPTTModel" or mptt is None:
        return None
    found = {
        "left": column(mptt.left_attr),
        "right": column(mptt.right_attr),
        "tree_id": column(mptt.tree_id_attr),
        "level": column(mptt.level_attr),
        "parent": column(mptt.parent_attr),
    }
    defaults = {"left": "lft", "right": "rght", "tree_id": "tree_id", "level": "level", "parent": "parent_id"}
    return {"kind": "nested_set", **{k: v for k, v in found.items() if defaults[k] != v}}


def parent_link(model: Any) -> Any | None:
    """The one-to-one field to a concrete parent model whose primary key this model
    shares (multi-table inheritance), or None."""
    pk = model._meta.pk
    if pk is not None and getattr(pk.remote_field, "parent_link", False) and model._meta.parents:
        return pk
    return None


def _unique_sets(model: Any) -> list[set[str]]:
    """The field-name sets the database keeps unique (unconditional constraints)."""
    from django.db.models import UniqueConstraint

    meta = model._meta
    sets = [{f.name} for f in meta.concrete_fields if f.unique and not f.primary_key]
    sets += [set(t) for t in meta.unique_together]
    sets += [
        set(c.fields)
        for c in meta.constraints
        if isinstance(c, UniqueConstraint) and c.fields and c.condition is None and not c.expressions
    ]
    return sets


def natural_key_fields(model: Any, stack: tuple[Any, ...] = ()) -> tuple[list[str] | None, str]:
    """(field names, how found) of ``model``'s natural key, or (None, why not)."""
    if model in _KEY_CACHE:
        return _KEY_CACHE[model]
    result = _natural_key_fields(model)
    _KEY_CACHE[model] = result
    return result


def _natural_key_fields(model: Any) -> tuple[list[str] | None, str]:
    link = parent_link(model)
    if link is not None:  # the inherited natural_key() reads the parent's columns
        parent = link.related_model._meta.label_lower
        return [link.name], f"multi-table inheritance: keyed by its parent link to {parent}"
    positions = positional_fields(model)
    fields = [
        f
        for f in model._meta.concrete_fields
        if (not f.primary_key or not f.auto_created) and f.name not in positions
    ]
    result = _declared_key(model, fields)
    if result[0] is not None and positions & set(result[0]):
        result = (None, "")
    if result[0] is not None and not any(u <= set(result[0]) for u in _unique_sets(model)):
        # natural_key() names part of a unique constraint (taggit's object_id of
        # (content_type, object_id, tag)): the whole constraint identifies a row. Columns
        # outside every constraint (Wagtail's url_path) stay, proven unique on the data.
        allowed = {f.name for f in fields}
        wider = sorted(
            (u for u in _unique_sets(model) if set(result[0]) < u and u <= allowed), key=len
        )
        if wider:
            ordered = [f.name for f in model._meta.concrete_fields if f.name in wider[0]]
            result = (
                ordered,
                f"unique constraint on {', '.join(ordered)} (natural_key() gives {result[0]}, "
                "part of it, which the database does not keep unique)",
            )
    if result[0] is None:
        result = _unique_fields(model, fields)
    if result[0] is None and positions:
        result = _tree_key(model, fields, positions)
    return result


def _tree_key(model: Any, fields: list[Any], positions: set[str]) -> tuple[list[str] | None, str]:
    """A tree without a key of its own: its parent plus what names a node, never its position."""
    by_name = {f.name: f for f in fields}
    name = next((n for n in NAME_FIELDS if n in by_name), None)
    if name is None:
        return None, f"a tree ({', '.join(sorted(positions))} are positions): no name or slug to key it by"
    mptt = getattr(model, "_mptt_meta", None)
    parent = str(getattr(mptt, "parent_attr", "parent")) if mptt is not None else None
    if parent is not None and parent in by_name:
        return [parent, name], f"tree: its parent plus {name} (proven unique on the data)"
    return [name], (
        f"tree: {name} (the tree stores no parent column; proven unique on the data; "
        f"{', '.join(sorted(positions))} are positions, never keys)"
    )


def _declared_key(model: Any, fields: list[Any]) -> tuple[list[str] | None, str]:
    """What the model's ``natural_key()`` returns, matched on stored rows or named by
    the manager's ``get_by_natural_key()``."""
    result: tuple[list[str] | None, str] = (None, "")
    if callable(getattr(model, "natural_key", None)):
        rows: list[tuple[Any, list[Any]]] = []
        try:
            for obj in model._base_manager.all()[:SAMPLE_ROWS]:
                rows.append((obj, _flat(obj.natural_key())))
        except Exception:
            rows = []
        if rows:
            ordered = sorted(fields, key=lambda f: (not f.unique, f.null))
            key = _match(rows, ordered)
            if key:
                result = (key, f"natural_key(), matched on {len(rows)} stored row(s)")
        if result[0] is None:
            key = _from_signature(model, fields)
            if key:
                result = (key, "get_by_natural_key() parameters (no stored row to match)")
    return result


def _unique_fields(model: Any, fields: list[Any]) -> tuple[list[str] | None, str]:
    """A key the database keeps unique, from ``fields`` only (a tree's positions are not there)."""
    from django.db.models import UniqueConstraint

    allowed = {f.name for f in fields}
    for f in fields:
        if f.unique and not f.primary_key and not f.null:
            return [f.name], f"unique=True field {f.name}"
    for together in model._meta.unique_together:
        if set(together) <= allowed:
            return list(together), "unique_together"
    for c in model._meta.constraints:
        if isinstance(c, UniqueConstraint) and c.fields and c.condition is None and not c.expressions:
            if set(c.fields) <= allowed:
                return list(c.fields), f"UniqueConstraint {c.name}"
    for f in fields:
        if f.unique and not f.primary_key:
            return [f.name], f"unique=True field {f.name} (nullable)"
    if any(f.primary_key and not f.auto_created and not _is_auto(f) for f in model._meta.concrete_fields):
        pk = model._meta.pk
        return [pk.name], "primary key (not generated)"
    return None, "no natural_key() and no unique field"


def _holds_rows(model: Any) -> bool:
    try:
        return bool(model._base_manager.exists())
    except Exception:
        return True  # unreadable: never assume empty (that would leave its rows out)


# types a key of every column leaves out: no equality (json), or too big to compare
_NOT_KEY_TYPES = ("JSONField", "BinaryField", "FileField", "ImageField")


def _value_key(model: Any, why: str) -> tuple[list[str] | None, str]:
    """A table with rows and nothing that identifies one: keyed by all its values (the
    references as the referenced rows' keys), so its rows travel instead of being left
    out; duplicates are refused at export with the keys, not merged."""
    positions = positional_fields(model)
    names = [
        f.name
        for f in model._meta.concrete_fields
        if not (f.primary_key and (f.auto_created or _is_auto(f)))
        and f.name not in positions
        and f.get_internal_type() not in _NOT_KEY_TYPES
    ]
    if not names:
        return None, why
    return names, f"{why}: keyed by all its values (proven unique on the data at export); choose fewer"


def _is_auto(f: Any) -> bool:
    return f.get_internal_type() in ("AutoField", "BigAutoField", "SmallAutoField")


# -- the mapping -------------------------------------------------------------------------
def _table(model: Any, schemas: dict[str, str]) -> str:
    name = model._meta.db_table
    return f"{schemas.get(name, 'public')}.{name}"


def build_entries(
    apps: Any, table_schemas: dict[str, str], include_apps: tuple[str, ...] = ()
) -> tuple[list[_Entry], dict[str, str]]:
    """One entry per concrete model with a table, and the ``types:`` entries."""
    entries: list[_Entry] = []
    types: dict[str, str] = {}
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or meta.swapped:
            continue
        label = f"{meta.app_label}.{meta.model_name}"
        table = _table(model, table_schemas)
        if meta.db_table not in table_schemas:
            continue  # not migrated in this database
        if not meta.auto_created:  # an auto-created through model has no content type
            types[label] = table
        entry = _Entry(table, label)
        entries.append(entry)
        entry.empty = not _holds_rows(model)
        for f in meta.concrete_fields:
            if not (f.is_relation and (f.many_to_one or f.one_to_one)) or f.related_model is None:
                continue
            target = _table(f.related_model, table_schemas)
            entry.targets.append(target)
            if not f.db_constraint:
                entry.references.append({"columns": [f.column], "table": target})
        if meta.app_label in DEFAULT_EXCLUDED_APPS and meta.app_label not in include_apps:
            entry.excluded = (
                f"{meta.app_label}: installation state (pass --include-app {meta.app_label} to map it)"
            )
            continue
        if meta.db_table in REBUILDABLE_TABLES:
            entry.excluded = "rebuilt by the application from the other tables (an index)"
            continue
        if meta.auto_created:  # an M2M's through table: keyed by its two foreign keys
            fks = [f for f in meta.concrete_fields if f.is_relation]
            entry.key, entry.how = [f.column for f in fks], "many-to-many through table"
        else:
            names, how = natural_key_fields(model)
            if names is None and not entry.empty:
                names, how = _value_key(model, how)
            if names is None:
                entry.excluded = f"{how}; it holds no rows: choose a natural key before it does"
                continue
            entry.key = [meta.get_field(n).column for n in names]
            entry.how = how
            entry.tree = tree_declaration(model)
        if label == CONTENT_TYPE:
            entry.export = False  # created by migrate in every database: looked up, not copied
        for gfk in meta.private_fields:
            if type(gfk).__name__ == "GenericForeignKey":
                entry.generic.append(
                    {"type": meta.get_field(gfk.ct_field).column, "id": meta.get_field(gfk.fk_field).column}
                )
    _exclude_empty_dependents(entries)
    return entries, types


def _exclude_empty_dependents(entries: list[_Entry]) -> None:
    """An empty table whose foreign key names an excluded table is excluded too (a view
    restriction's groups when the restrictions are): mapped, its key could not travel.
    A table with rows stays, and ``check`` names the reference to fix."""
    excluded = {e.table: e for e in entries if e.excluded}
    changed = True
    while changed:
        changed = False
        for e in entries:
            if e.excluded or not e.empty:
                continue
            gone = next((t for t in e.targets if t in excluded and t != e.table), None)
            if gone is not None:
                e.excluded = f"references {gone}, which is excluded; it holds no rows"
                excluded[e.table] = e
                changed = True


def render_mapping(
    entries: list[_Entry], types: dict[str, str], settings: str, unmodelled: list[str]
) -> str:
    lines = [
        f"# written by edms-pgdump init --django {settings}: review the keys, then run check",
        "version: 1",
    ]
    ct = next((e for e in entries if e.label == CONTENT_TYPE and e.key), None)
    if ct is not None and any(e.generic and not e.excluded for e in entries):
        lines += ["types:", f"  {ct.table}:", '    table_name: "{app_label}_{model}"', "    tables:"]
        lines += [f"      {yaml_flow({k: v})[1:-1]}" for k, v in sorted(types.items())]
    lines.append("tables:")
    for e in sorted(entries, key=lambda e: e.table):
        if e.excluded or e.key is None:
            continue
        body: dict[str, Any] = {"natural_key": e.key}
        if not e.export:
            body["export"] = False
        if e.generic:
            body["generic_references"] = e.generic
        if e.references:
            body["references"] = e.references
        if e.tree is not None:
            body["tree"] = e.tree
        lines.append(f"  # {e.label}: {e.how}")
        lines.append(f"  {yaml_flow({e.table: body})[1:-1]}")
    excluded = sorted([e for e in entries if e.excluded], key=lambda e: e.table)
    if excluded or unmodelled:
        lines.append("exclude:")
        for e in excluded:
            lines.append(f"  # {e.label}: {e.excluded}")
            lines.append(f"  - {e.table}")
        for t in unmodelled:
            lines.append("  # no Django model has this table (django_migrations: one database's ledger)")
            lines.append(f"  - {t}")
    return "\n".join(lines) + "\n"


def init_from_django(
    settings: str, dsn: str | None = None, include_apps: tuple[str, ...] = ()
) -> DjangoInitResult:
    """The mapping for the project ``settings`` against ``dsn`` (default: the project's
    own database), checked with ``check`` on that database."""
    from edms_pgdump.analysis.check import check_database
    from edms_pgdump.catalog.read import read_catalog
    from edms_pgdump.db import connect
    from edms_pgdump.mapping import load_mapping_text

    apps = setup_django(settings, dsn)
    target = settings_dsn() if dsn is None else dsn  # an empty --dsn is refused by connect()
    with connect(target) as conn:
        catalog = read_catalog(conn)
    schemas: dict[str, str] = {}
    for name in sorted(catalog.tables, key=lambda n: (n.schema != "public", n.schema)):
        schemas.setdefault(name.name, name.schema)
    entries, types = build_entries(apps, schemas, include_apps)
    modelled = {e.table for e in entries}
    unmodelled = sorted(
        f"{n.schema}.{n.name}" for n in catalog.tables if f"{n.schema}.{n.name}" not in modelled
    )
    text = render_mapping(entries, types, settings, unmodelled)
    problems: list[str] = []
    report = check_database(target, load_mapping_text(text, "init --django mapping"))
    problems = [str(p) for p in report.problems if p.severity == "error"]
    keys = {e.table: (tuple(e.key) if e.key and not e.excluded else None) for e in entries}
    return DjangoInitResult(text, keys, None, problems, settings)
