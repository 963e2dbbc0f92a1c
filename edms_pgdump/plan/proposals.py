"""A first mapping for a database nobody has mapped yet (``edms-pgdump init``).

Natural keys are taken from what the database already promises, the way a person would
choose them: a NOT NULL unique key of plain (non-id) columns first, then composite unique
keys (whose FK columns travel as the referenced rows' keys), nullable ones last. A key
that would carry raw ids (an integer ``*_id`` with no FK, or an FK to a table that gets
no key) is proposed only when nothing else exists, and then with a YAML comment saying
so. Keys that would loop through each other (A keyed by B's id, B by A's) are avoided.
Tables with no candidate but their own surrogate id go under ``exclude:`` with a comment,
so the file is valid at once and ``check`` points at what is left to decide.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import yaml

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import Catalog, ForeignKey, Table
from edms_pgdump.sqlgen.fixes import yaml_flow

_ID_NAME = re.compile(r"(_id|id)$", re.IGNORECASE)
_ID_TYPE = re.compile(r"^(smallint|integer|bigint|uuid)$")


@dataclass(frozen=True)
class KeyProposal:
    key: tuple[str, ...] | None
    note: str | None = None  # a YAML comment a person must read before trusting the key


def _surrogates(table: Table) -> set[str]:
    pk = table.primary_key or ()
    return {c.name for c in table.columns if c.name in pk and (c.has_default or c.is_generated)}


def _candidates(table: Table) -> list[tuple[str, ...]]:
    surrogate = _surrogates(table)
    keys = [k for k in table.unique_keys if not set(k) & surrogate]
    pk = table.primary_key
    if pk and not set(pk) & surrogate and pk not in keys:
        keys.append(pk)
    return keys


def _fk_of(table: Table, column: str) -> ForeignKey | None:
    return next((fk for fk in table.foreign_keys if column in fk.columns), None)


def _raw_ids(table: Table, key: tuple[str, ...], keyed: set[QualifiedName]) -> list[str]:
    """Why each raw-id column of ``key`` would travel as a database id, not a value."""
    out: list[str] = []
    for name in key:
        col = table.column(name)
        fk = _fk_of(table, name)
        if fk is not None:
            if fk.ref_table != table.name and fk.ref_table not in keyed:
                out.append(f"{name} references {fk.ref_table}, which has no natural key")
        elif col is not None and _ID_NAME.search(name) and _ID_TYPE.match(col.base_type or col.type):
            out.append(f"{name} is named like an id and has no foreign key")
    return out


def _rank(table: Table, key: tuple[str, ...], keyed: set[QualifiedName]) -> tuple[int, int, int, int]:
    nullable = sum(1 for c in key if (col := table.column(c)) is not None and not col.not_null)
    fks = sum(1 for c in key if _fk_of(table, c) is not None)
    return len(_raw_ids(table, key, keyed)), nullable, fks > 0, len(key)


def guess_natural_key(table: Table, keyed: set[QualifiedName] | None = None) -> tuple[str, ...] | None:
    """The unique key most likely to identify a row across databases, or None.

    ``keyed``: the tables that will have a natural key (FKs to others carry raw ids);
    None: assume every referenced table will.
    """
    return propose_key(table, keyed).key


def propose_key(
    table: Table, keyed: set[QualifiedName] | None = None, banned: frozenset[tuple[str, ...]] = frozenset()
) -> KeyProposal:
    everyone = keyed if keyed is not None else {fk.ref_table for fk in table.foreign_keys}
    keys = [k for k in _candidates(table) if k not in banned]
    if not keys:
        return KeyProposal(None)
    best = min(keys, key=lambda k: _rank(table, k, everyone))
    raw = _raw_ids(table, best, everyone)
    note = None
    if raw:
        note = (
            f"natural_key {list(best)} carries raw ids ({'; '.join(raw)}): ids differ between "
            "databases; replace it with columns that identify the row, or keep it knowingly"
        )
    return KeyProposal(best, note)


def _key_edges(
    catalog: Catalog, proposals: dict[QualifiedName, KeyProposal]
) -> dict[QualifiedName, set[QualifiedName]]:
    edges: dict[QualifiedName, set[QualifiedName]] = {}
    for name, p in proposals.items():
        if p.key is None:
            continue
        table = catalog.tables[name]
        edges[name] = {
            fk.ref_table
            for fk in table.foreign_keys
            if set(fk.columns) <= set(p.key) and fk.ref_table != name and fk.ref_table in proposals
        }
    return edges


def _key_loop(edges: dict[QualifiedName, set[QualifiedName]]) -> list[QualifiedName] | None:
    """Tables whose natural keys contain each other's references, in a loop, if any."""
    state: dict[QualifiedName, int] = {}
    path: list[QualifiedName] = []

    def visit(n: QualifiedName) -> list[QualifiedName] | None:
        state[n] = 1
        path.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                return path[path.index(m) :]
            if m not in state and (loop := visit(m)) is not None:
                return loop
        state[n] = 2
        path.pop()
        return None

    for n in sorted(edges):
        if n not in state and (loop := visit(n)) is not None:
            return loop
    return None


def propose_keys(catalog: Catalog) -> dict[QualifiedName, KeyProposal]:
    """A key for every table, chosen together: which tables get a key decides whether an
    FK column in another table's key carries a natural key or a raw id."""
    banned: dict[QualifiedName, frozenset[tuple[str, ...]]] = {n: frozenset() for n in catalog.tables}
    for _ in range(len(catalog.tables) * 4 + 1):
        keyed = set(catalog.tables)
        while True:  # tables without a key make FKs to them raw: settle which tables have one
            proposals = {n: propose_key(t, keyed, banned[n]) for n, t in catalog.tables.items()}
            now = {n for n, p in proposals.items() if p.key is not None}
            if now == keyed:
                break
            keyed = now
        loop = _key_loop(_key_edges(catalog, proposals))
        if loop is None:
            return proposals
        victim = min(loop, key=lambda n: (len(_candidates(catalog.tables[n])) - len(banned[n]) <= 1, n))
        key = proposals[victim].key
        assert key is not None
        banned[victim] = banned[victim] | {key}
    return proposals  # pragma: no cover - each round bans one key, so this is not reached


def _surrogate_note(table: Table) -> str | None:
    ids = sorted(_surrogates(table))
    if not ids:
        return None
    return (
        f"only its surrogate id ({', '.join(ids)}) identifies a row; to keep source ids as they "
        f"are, map it with natural_key: {yaml_flow(ids)}"
    )


def scaffold_mapping(catalog: Catalog) -> tuple[str, dict[str, tuple[str, ...] | None]]:
    """YAML text of a first mapping, and the guess for every table."""
    proposals = propose_keys(catalog)
    guesses = {str(n): p.key for n, p in sorted(proposals.items())}
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    lines = [
        f"# First mapping for database {catalog.database!r}, written by edms-pgdump init on {stamp}.",
        "# Each natural_key was taken from a unique constraint or index: check that it really",
        "# identifies a row in every environment, then run: edms-pgdump check --dsn ... -m THIS_FILE",
        "version: 1",
    ]
    keyed = [(n, p) for n, p in sorted(proposals.items()) if p.key is not None]
    generic = {n: _generic_pairs(catalog.tables[n]) for n, _ in keyed}
    type_tables = sorted({t for pairs in generic.values() for _, _, t in pairs})
    if type_tables:
        lines.append("# tables whose rows name other tables (generic references: content type + object id)")
        lines.append("types:")
        for t in type_tables:
            cols = {c.name for c in catalog.tables[t].columns}
            template = "{app_label}_{model}" if {"app_label", "model"} <= cols else "{CHOOSE_COLUMNS}"
            entry = yaml.safe_dump({str(t): {"table_name": template}}, default_flow_style=None)
            lines.extend("  " + line for line in entry.rstrip("\n").splitlines())
    lines.append("tables:" if keyed else "tables: {}")
    names = {n for n, _ in keyed}
    for name, p in keyed:
        generic_ids = {i for _, i, _ in generic[name]}
        raw = {why.split(" ")[0] for why in _raw_ids(catalog.tables[name], p.key or (), names)}
        if p.note and not (raw and raw <= generic_ids):  # a generic id travels by key now
            lines.append(f"  # {name}: {p.note}")
        body: dict[str, object] = {"natural_key": list(p.key or ())}
        if name in type_tables:
            body["export"] = False  # rows the application creates itself, in every database
        if generic[name]:
            body["generic_references"] = [{"type": t, "id": i} for t, i, _ in generic[name]]
        entry = yaml.safe_dump({str(name): body}, default_flow_style=None, sort_keys=False)
        lines.extend("  " + line for line in entry.rstrip("\n").splitlines())
    unkeyed = [n for n, p in sorted(proposals.items()) if p.key is None]
    if unkeyed:
        lines.append("exclude:")
        lines.append("  # no unique constraint to take a natural key from: pick its columns and move the")
        lines.append("  # table under tables:, or keep it here to leave its rows out of exports")
        for n in unkeyed:
            note = _surrogate_note(catalog.tables[n])
            if note:
                lines.append(f"  # {n}: {note}")
            lines.append("  - " + yaml.safe_dump(str(n), default_style=None).splitlines()[0])
    return "\n".join(lines) + "\n", guesses


def _generic_pairs(table: Table) -> list[tuple[str, str, QualifiedName]]:
    """(type column, id column, type table) of every ``object_id`` / ``*_object_id`` column
    beside a reference to a content-type table (Django's generic relations)."""
    types = {
        fk.columns[0]: fk.ref_table
        for fk in table.foreign_keys
        if len(fk.columns) == 1 and fk.ref_table.name.endswith("content_type")
    }
    pairs: list[tuple[str, str, QualifiedName]] = []
    for col in table.columns:
        if not types or not (col.name == "object_id" or col.name.endswith("_object_id")):
            continue
        prefix = col.name[: -len("object_id")]
        type_column = f"{prefix}content_type_id" if f"{prefix}content_type_id" in types else sorted(types)[0]
        pairs.append((type_column, col.name, types[type_column]))
    return pairs


def scaffold_from_database(dsn: str) -> tuple[str, dict[str, tuple[str, ...] | None]]:
    from edms_pgdump.catalog.read import read_catalog
    from edms_pgdump.db import connect  # here, not at the top: plan imports this module, and db imports plan

    with connect(dsn) as conn:
        return scaffold_mapping(read_catalog(conn))


def suggestion(table: Table, name: QualifiedName) -> str:
    """The mapping line ``check`` proposes for an unmapped table."""
    p = propose_key(table)
    if p.key is None:
        return f"list {name} under exclude:, or add it under tables: with the columns that identify a row"
    flow = yaml_flow({str(name): {"natural_key": list(p.key)}})
    note = f" ({p.note})" if p.note else ""
    return f"add under tables: {flow[1:-1]}{note} (or list {name} under exclude:)"
