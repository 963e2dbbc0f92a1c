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
CONTENT_TYPE = "contenttypes.contenttype"


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


def natural_key_fields(model: Any, stack: tuple[Any, ...] = ()) -> tuple[list[str] | None, str]:
    """(field names, how found) of ``model``'s natural key, or (None, why not)."""
    if model in _KEY_CACHE:
        return _KEY_CACHE[model]
    fields = [f for f in model._meta.concrete_fields if not f.primary_key or not f.auto_created]
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
    if result[0] is None:
        result = _unique_fields(model, fields)
    _KEY_CACHE[model] = result
    return result


def _unique_fields(model: Any, fields: list[Any]) -> tuple[list[str] | None, str]:
    from django.db.models import UniqueConstraint

    for f in fields:
        if f.unique and not f.primary_key and not f.null:
            return [f.name], f"unique=True field {f.name}"
    for together in model._meta.unique_together:
        return list(together), "unique_together"
    for c in model._meta.constraints:
        if isinstance(c, UniqueConstraint) and c.fields and c.condition is None and not c.expressions:
            return list(c.fields), f"UniqueConstraint {c.name}"
    for f in fields:
        if f.unique and not f.primary_key:
            return [f.name], f"unique=True field {f.name} (nullable)"
    if any(f.primary_key and not f.auto_created and not _is_auto(f) for f in model._meta.concrete_fields):
        pk = model._meta.pk
        return [pk.name], "primary key (not generated)"
    return None, "no natural_key() and no unique field"


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
        if meta.app_label in DEFAULT_EXCLUDED_APPS and meta.app_label not in include_apps:
            entry.excluded = (
                f"{meta.app_label}: installation state (pass --include-app {meta.app_label} to map it)"
            )
            continue
        if meta.auto_created:  # an M2M's through table: keyed by its two foreign keys
            fks = [f for f in meta.concrete_fields if f.is_relation]
            entry.key, entry.how = [f.column for f in fks], "many-to-many through table"
        else:
            names, how = natural_key_fields(model)
            if names is None:
                entry.excluded = f"{how}: choose a natural key (natural_key() or a unique constraint)"
                continue
            entry.key = [meta.get_field(n).column for n in names]
            entry.how = how
        if label == CONTENT_TYPE:
            entry.export = False  # created by migrate in every database: looked up, not copied
        for gfk in meta.private_fields:
            if type(gfk).__name__ == "GenericForeignKey":
                entry.generic.append(
                    {"type": meta.get_field(gfk.ct_field).column, "id": meta.get_field(gfk.fk_field).column}
                )
    return entries, types


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
