"""Columns that look like references nobody declared, found by name.

Why: a ``productid`` with no FK travels as a raw id and, after a re-initialisation,
points at the wrong product, while every command says OK. Names are only half the
evidence; the other half (all non-NULL values exist as ids of the candidate table) is
checked set-based on the data by the caller (``probes``). This module is pure: plan and
catalog in, candidates out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import Catalog, Column, Table
from edms_pgdump.plan.model import Plan, TablePlan

_INTEGER = re.compile(r"^(smallint|integer|bigint|numeric\(\d+(,\s*0)?\))$")
_TEXT = re.compile(r"^(text|character varying(\(\d+\))?|character(\(\d+\))?|citext)$")


@dataclass(frozen=True)
class Candidate:
    """``table.column`` may hold ids of ``target.target_column`` (its single-column primary key)."""

    table: QualifiedName
    column: str
    target: QualifiedName
    target_column: str
    # 'primary-key-name' (productid = product.productid), 'table-name' (product_id, productid)
    # or 'app-table-name' (page_id = wagtailcore_page.id)
    rule: str
    array: bool = False  # an array of ids (tag_ids integer[]): each element is judged


def id_family(column: Column) -> str | None:
    """'integer', 'uuid' or 'text' when the column's (base) type can hold ids, else None."""
    return _family_of((column.base_type or column.type).strip())


def array_family(column: Column) -> str | None:
    """``id_family`` of the elements of a one-level array column (``integer[]``), else None."""
    t = (column.base_type or column.type).strip()
    if not t.endswith("[]") or t.endswith("[][]"):
        return None
    return _family_of(t[:-2])


def _family_of(t: str) -> str | None:
    if _INTEGER.match(t):
        return "integer"
    if t == "uuid":
        return "uuid"
    if _TEXT.match(t):
        return "text"
    return None


def table_forms(name: str) -> set[str]:
    """A table name and its likely singular: customers -> customer, categories -> category."""
    n = name.lower()
    forms = {n}
    if n.endswith("ies") and len(n) > 3:
        forms.add(n[:-3] + "y")
    if n.endswith("es") and len(n) > 2:
        forms.add(n[:-2])
    if n.endswith("s") and len(n) > 1:
        forms.add(n[:-1])
    return forms


def unprefixed_forms(name: str) -> set[str]:
    """A table name without its application prefix, in its likely forms: Django names a
    model's table ``<app_label>_<model>`` (``wagtailcore_page``), so a ``page_id`` column
    means that table. The model part is the last segment (model names have no
    underscore); an app label with underscores (``site_app_blogpage``) is covered too."""
    n = name.lower()
    if "_" not in n:
        return set()
    parts = {n.split("_", 1)[1], n.rsplit("_", 1)[1]}
    return {f for p in parts if p for f in table_forms(p)}


def _single_pk(table: Table) -> Column | None:
    pk = table.primary_key or ()
    return table.column(pk[0]) if len(pk) == 1 else None


def uncovered_columns(tp: TablePlan, table: Table) -> list[Column]:
    """Exported plain columns no FK, declared reference or raw_columns entry accounts for."""
    covered = {c for e in tp.expansions for c in e.columns}
    covered |= {c for fk in table.foreign_keys for c in fk.columns}
    covered |= set(tp.raw_columns)
    out: list[Column] = []
    for f in tp.fields:
        if f.role != "column" or f.column is None or f.column in covered:
            continue
        col = table.column(f.column)
        if col is not None:
            out.append(col)
    return out


def likely_reference_candidates(plan: Plan, catalog: Catalog) -> list[Candidate]:
    """Every (column, target) pair whose names say "reference", for exported mapped tables.

    A column matches a mapped table (never its own) when its name is that table's
    single-column primary key name (except the generic ``id``), or ``<table>_id`` /
    ``<table>id`` (singular or plural), or ``<model>_id`` of an app-prefixed table
    (``page_id``: ``wagtailcore_page``), and both hold the same kind of id (integer, uuid or
    text). An array column matches in the plural (``<table>_ids``, ``<pk>s``) when its
    elements hold that kind of id. A column may match several tables; same-schema targets
    come first.
    """
    targets: list[tuple[TablePlan, Table, Column, str]] = []
    for name, tp in sorted(plan.tables.items()):
        t = catalog.get(name)
        pk = _single_pk(t) if t is not None else None
        fam = id_family(pk) if pk is not None else None
        if t is not None and pk is not None and fam is not None:
            targets.append((tp, t, pk, fam))
    out: list[Candidate] = []
    for name, tp in sorted(plan.tables.items()):
        table = catalog.get(name)
        if table is None or not tp.export:
            continue
        for col in uncovered_columns(tp, table):
            array = array_family(col) is not None
            fam = array_family(col) or id_family(col)
            if fam is None:
                continue
            cname = col.name.lower()
            # an array of ids is named in the plural: tag_ids, tagids, productids
            suffixes = ("_ids", "ids") if array else ("_id", "id")
            found: list[Candidate] = []
            for ttp, target, pk, tfam in targets:
                if ttp.table == name or tfam != fam:
                    continue
                rule = None
                pk_name = pk.name.lower() + ("s" if array else "")
                if cname == pk_name and pk.name.lower() != "id":
                    rule = "primary-key-name"
                elif any(cname in (f + s for s in suffixes) for f in table_forms(target.name.name)):
                    rule = "table-name"
                elif any(cname == f + "_id" for f in unprefixed_forms(target.name.name)):
                    rule = "app-table-name"
                if rule is not None:
                    found.append(Candidate(name, col.name, target.name, pk.name, rule, array))
            found.sort(
                key=lambda c: (
                    c.target.schema != name.schema,
                    c.rule != "primary-key-name",
                    c.rule == "app-table-name",
                    c.target,
                )
            )
            out.extend(found)
    return out
