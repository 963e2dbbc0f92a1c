"""Pure planning: ``(Mapping, Catalog) -> Plan``. No I/O, unit-testable.

The plan decides, for every mapped table, which columns travel in the archive, how
each foreign key is replaced by the referenced row's natural key (recursively, since a
natural key may itself contain a foreign key), which surrogate columns are dropped and
re-allocated on import, the load order (strongly connected components for cycles) and
how each cycle edge is satisfied without superuser rights.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from .catalog import Catalog, Column, ForeignKey, Table
from .errors import PlanError
from .mapping import ConflictPolicy, Mapping
from .names import QualifiedName

Severity = Literal["error", "warning"]
EdgeKind = Literal["ordered", "self", "deferred", "second_pass", "lookup"]


@dataclass(frozen=True)
class Problem:
    severity: Severity
    code: str
    table: str
    message: str
    fix: str
    column: str | None = None

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        return f"{self.severity}: {where}: {self.message}; fix: {self.fix}"

    def to_dict(self) -> dict[str, str | None]:
        return {
            "severity": self.severity,
            "code": self.code,
            "table": self.table,
            "column": self.column,
            "message": self.message,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class KeyField:
    """One leaf value of a natural key, named by its path through foreign keys."""

    path: tuple[str, ...]
    type: str
    nullable: bool
    # A tree key: the table's natural key contains its own parent (parent_id, label).
    # The parent is then identified by its path from the root, a jsonb array of the
    # other key columns' values, root first (NULL for a root).
    tree: bool = False

    @property
    def name(self) -> str:
        return ".".join(self.path)

    def under(self, label: str, nullable: bool) -> KeyField:
        return KeyField((label, *self.path), self.type, self.nullable or nullable, self.tree)


TREE_PATH = "#path"


@dataclass(frozen=True)
class Expansion:
    """A foreign key whose ids travel as the referenced row's natural key."""

    fk: ForeignKey
    label: str
    fields: tuple[KeyField, ...]
    nullable: bool  # every FK column nullable: the reference may be absent
    edge: EdgeKind = "ordered"
    tree: bool = False  # the self-reference inside a tree key: travels as a path

    @property
    def ref_table(self) -> QualifiedName:
        return self.fk.ref_table

    def to_dict(self) -> dict[str, object]:
        """How this foreign key travels; shown by ``plan`` and stored in manifests."""
        return {
            "label": self.label,
            "constraint": self.fk.name,
            "columns": list(self.columns),
            "ref_table": str(self.ref_table),
            "ref_columns": list(self.fk.ref_columns),
            "fields": [kf.name for kf in self.fields],
            "edge": self.edge,
            "nullable": self.nullable,
            "deferrable": self.fk.deferrable,
            "declared": self.fk.declared,
        }

    @property
    def columns(self) -> tuple[str, ...]:
        return self.fk.columns


@dataclass(frozen=True)
class Field:
    """One column of an archive member, in COPY order."""

    name: str
    type: str
    role: Literal["column", "reference"]
    column: str | None = None  # the table column for role 'column'
    reference: str | None = None  # the expansion label for role 'reference'
    nullable: bool = True


@dataclass(frozen=True)
class TablePlan:
    table: QualifiedName
    export: bool
    natural_key: tuple[str, ...]
    key_fields: tuple[KeyField, ...]
    key_parts: tuple[tuple[str, str], ...]  # ('column', name) | ('reference', label), in key order
    fields: tuple[Field, ...]
    plain_columns: tuple[str, ...]
    expansions: tuple[Expansion, ...]
    surrogate: tuple[Column, ...]  # dropped on export, re-allocated on import
    ref_columns: tuple[str, ...]  # columns the import needs from existing rows
    row_identity: tuple[str, ...]  # how an existing target row is addressed for UPDATE
    identity_is_pk: bool
    identity_always: bool
    on_conflict: ConflictPolicy
    key_is_unique: bool  # backed by a unique constraint or index
    tree_steps: tuple[str, ...] = ()  # tree key: the columns making one step of the path
    # Names of the import's bookkeeping columns in staging, chosen not to collide with
    # any column or field of this table (a user column may well be called "#new").
    new_marker: str = "#new"
    hit_marker: str = "#hit"
    path_marker: str = TREE_PATH
    component: int = 0

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def tree_expansion(self) -> Expansion | None:
        return next((e for e in self.expansions if e.tree), None)

    def expansion(self, label: str) -> Expansion:
        for e in self.expansions:
            if e.label == label:
                return e
        raise KeyError(label)


@dataclass(frozen=True)
class Plan:
    tables: dict[QualifiedName, TablePlan]
    load_order: tuple[QualifiedName, ...]
    components: tuple[tuple[QualifiedName, ...], ...]
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def exported(self) -> list[TablePlan]:
        return [self.tables[n] for n in self.load_order]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def raise_for_errors(self) -> None:
        errs = self.errors
        if errs:
            first = errs[0]
            more = f" (and {len(errs) - 1} more problems; run edms-pgdump check)" if len(errs) > 1 else ""
            raise PlanError(str(first) + more, [str(p) for p in errs])


def fk_label(fk: ForeignKey) -> str:
    if len(fk.columns) == 1:
        return fk.columns[0]
    return "(" + ",".join(fk.columns) + ")"


class _Planner:
    def __init__(self, mapping: Mapping, catalog: Catalog) -> None:
        self.mapping = mapping
        self.catalog = catalog
        self.problems: list[Problem] = []
        self._key_cache: dict[QualifiedName, tuple[KeyField, ...]] = {}
        self.fks: dict[QualifiedName, tuple[ForeignKey, ...]] = {}

    def problem(
        self,
        severity: Severity,
        code: str,
        table: QualifiedName | str,
        message: str,
        fix: str,
        column: str | None = None,
    ) -> None:
        self.problems.append(Problem(severity, code, str(table), message, fix, column))

    # -- foreign keys, including those declared in the mapping ---------------------
    def foreign_keys(self, table: Table) -> tuple[ForeignKey, ...]:
        if table.name in self.fks:
            return self.fks[table.name]
        fks = list(table.foreign_keys)
        tm = self.mapping.tables.get(table.name)
        for ref in tm.references if tm else ():
            target = self.catalog.get(ref.table)
            missing = [c for c in ref.columns if table.column(c) is None]
            if missing:
                self.problem(
                    "error",
                    "reference-column-missing",
                    table.name,
                    f"declared reference column {missing[0]!r} does not exist",
                    "fix the columns list under references:",
                    missing[0],
                )
                continue
            if target is None:
                self.problem(
                    "error",
                    "reference-table-missing",
                    table.name,
                    f"declared reference to {ref.table}, which does not exist",
                    "fix the table under references:",
                    ref.columns[0],
                )
                continue
            cols = ref.target_columns or target.primary_key
            if not cols or len(cols) != len(ref.columns):
                self.problem(
                    "error",
                    "reference-target",
                    table.name,
                    f"declared reference to {ref.table} needs target_columns "
                    "(the table has no matching primary key)",
                    "add target_columns: [...] to the reference",
                    ref.columns[0],
                )
                continue
            fks.append(
                ForeignKey(
                    f"declared:{','.join(ref.columns)}",
                    ref.columns,
                    ref.table,
                    cols,
                    False,
                    False,
                    declared=True,
                )
            )
        self.fks[table.name] = tuple(fks)
        return self.fks[table.name]

    def key_fk(self, table: Table, nk: tuple[str, ...], column: str) -> ForeignKey | None:
        """The FK to a keyed table that a natural-key column belongs to, if any."""
        for fk in self.foreign_keys(table):
            if column in fk.columns and set(fk.columns) <= set(nk):
                if fk.ref_table in self.mapping.tables and self.catalog.get(fk.ref_table):
                    return fk
        return None

    # -- natural keys, expanded to leaf values -----------------------------------
    def key_fields(self, name: QualifiedName, stack: tuple[QualifiedName, ...] = ()) -> tuple[KeyField, ...]:
        if name in self._key_cache:
            return self._key_cache[name]
        if name in stack:
            chain = " -> ".join(str(n) for n in (*stack, name))
            raise _KeyCycle(chain)
        table = self.catalog.tables[name]
        nk = self.mapping.tables[name].natural_key
        out: list[KeyField] = []
        done: set[str] = set()
        for col in nk:
            if col in done:
                continue
            fk = self.key_fk(table, nk, col)
            if fk is not None and fk.ref_table == name:
                done.update(fk.columns)
                self.check_tree_key(table, nk, fk)
                out.append(KeyField((fk_label(fk), TREE_PATH), "jsonb", True, tree=True))
                continue
            if fk is not None:
                done.update(fk.columns)
                nullable = any(not _col(table, c).not_null for c in fk.columns)
                for kf in self.key_fields(fk.ref_table, (*stack, name)):
                    out.append(kf.under(fk_label(fk), nullable))
                continue
            done.add(col)
            column = table.column(col)
            if column is None:
                raise _KeyBroken(f"{name}.{col}")
            out.append(KeyField((col,), column.type, not column.not_null))
        result = tuple(out)
        self._key_cache[name] = result
        return result

    def check_tree_key(self, table: Table, nk: tuple[str, ...], fk: ForeignKey) -> None:
        others = [c for c in nk if c not in fk.columns]
        if not others:
            raise _KeyCycle(f"{table.name} is keyed only by its parent")
        for c in others:
            other = self.key_fk(table, nk, c)
            if other is not None:
                raise _KeyCycle(
                    f"{table.name}: a tree key may combine its parent only with plain columns, "
                    f"not with the reference {fk_label(other)}"
                )

    def tree_steps(self, tp_name: QualifiedName) -> tuple[str, ...]:
        nk = self.mapping.tables[tp_name].natural_key
        table = self.catalog.tables[tp_name]
        fk = next(f for f in self.foreign_keys(table) if f.ref_table == tp_name and set(f.columns) <= set(nk))
        return tuple(c for c in nk if c not in fk.columns)

    def key_parts(self, table: Table, nk: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        parts: list[tuple[str, str]] = []
        done: set[str] = set()
        for col in nk:
            if col in done:
                continue
            fk = self.key_fk(table, nk, col)
            if fk is not None:
                done.update(fk.columns)
                parts.append(("reference", fk_label(fk)))
            else:
                done.add(col)
                parts.append(("column", col))
        return tuple(parts)

    # -- one table ---------------------------------------------------------------
    def plan_table(self, name: QualifiedName) -> TablePlan | None:
        tm = self.mapping.tables[name]
        table = self.catalog.get(name)
        if table is None:
            self.problem(
                "error",
                "table-missing",
                name,
                "mapped table does not exist in the database",
                "create it, or remove it from tables: in the mapping",
            )
            return None
        ok = True
        for i, col in enumerate(tm.natural_key):
            c = table.column(col)
            if c is None:
                self.problem(
                    "error",
                    "key-column-missing",
                    name,
                    f"natural_key[{i}] names column {col!r}, which does not exist",
                    "use existing column names: " + ", ".join(x.name for x in table.columns),
                    col,
                )
                ok = False
            elif c.is_generated:
                self.problem(
                    "warning",
                    "key-column-generated",
                    name,
                    f"natural-key column {col!r} is generated; it is compared but never loaded",
                    "prefer the columns it is computed from",
                    col,
                )
            elif not c.not_null and not self.key_fk(table, tm.natural_key, col):
                self.problem(
                    "warning",
                    "key-column-nullable",
                    name,
                    f"natural-key column {col!r} is nullable; NULLs are matched as equal",
                    "declare it NOT NULL if rows always have it",
                    col,
                )
        if not ok:
            return None
        try:
            key_fields = self.key_fields(name)
        except _KeyBroken:
            return None  # reported on the referenced table
        except _KeyCycle as exc:
            self.problem(
                "error",
                "key-cycle",
                name,
                f"the natural key cannot be expanded ({exc})",
                "a natural key may contain its own parent together with plain columns (a tree), "
                "but not a loop through other tables; choose other key columns",
            )
            return None
        unique = table.has_unique(tm.natural_key)
        if not unique:
            self.problem(
                "warning",
                "key-not-unique",
                name,
                "natural key (" + ", ".join(tm.natural_key) + ") has no unique constraint or "
                "index; uniqueness is proven on the data at export and import",
                "CREATE UNIQUE INDEX ON " + str(name) + " (" + ", ".join(tm.natural_key) + ")",
            )
        fks = self.foreign_keys(table)
        fk_columns: dict[str, ForeignKey] = {}
        expansions: list[Expansion] = []
        for fk in fks:
            ref = self.catalog.get(fk.ref_table)
            if fk.ref_table not in self.mapping.tables or ref is None:
                if tm.export:
                    self.problem(
                        "error",
                        "fk-to-unmapped",
                        name,
                        f"foreign key {fk.name} ({', '.join(fk.columns)}) references "
                        f"{fk.ref_table}, which has no natural key: its ids would travel raw "
                        "and point at the wrong rows after a re-initialisation",
                        f"map {fk.ref_table} with a natural_key (export: false if its rows "
                        "are managed elsewhere)",
                        fk.columns[0],
                    )
                continue
            if any(c in fk_columns for c in fk.columns):
                continue  # overlapping FKs: the first one defines the values
            try:
                ref_fields = self.key_fields(fk.ref_table)
            except (_KeyCycle, _KeyBroken):
                continue  # reported on the referenced table
            nullable = all(not _col(table, c).not_null for c in fk.columns)
            label = fk_label(fk)
            tree = fk.ref_table == name and any(kf.tree and kf.path[0] == label for kf in ref_fields)
            if tree:
                exp_fields: tuple[KeyField, ...] = (KeyField((label, TREE_PATH), "jsonb", True, tree=True),)
            else:
                exp_fields = tuple(kf.under(label, nullable) for kf in ref_fields)
            edge: EdgeKind = "self" if fk.ref_table == name else "ordered"
            if self.mapping.tables[fk.ref_table].export is False:
                edge = "lookup"
            expansions.append(Expansion(fk, label, exp_fields, nullable, edge, tree))
            for fk_col in fk.columns:
                fk_columns[fk_col] = fk
        nk_set = set(tm.natural_key)
        pk = table.primary_key or ()
        surrogate = tuple(
            c
            for c in table.columns
            if c.name in pk and c.name not in nk_set and c.has_default and c.name not in fk_columns
        )
        surrogate_names = {c.name for c in surrogate}
        for c in table.columns:
            if c.name in pk and c.name not in nk_set and not c.has_default and not c.is_generated:
                if c.name not in fk_columns:
                    self.problem(
                        "warning",
                        "pk-without-default",
                        name,
                        f"primary key column {c.name!r} is not in the natural key and has no "
                        "default: its values travel as they are",
                        "give it a default (identity or sequence) so the target allocates ids",
                        c.name,
                    )
        fields: list[Field] = []
        plain: list[str] = []
        emitted: set[str] = set()
        for c in table.columns:
            if c.is_generated or c.name in surrogate_names:
                continue
            if c.name in fk_columns:
                fk = fk_columns[c.name]
                label = fk_label(fk)
                if label in emitted:
                    continue
                emitted.add(label)
                exp = next(e for e in expansions if e.label == label)
                fields.extend(
                    Field(kf.name, kf.type, "reference", reference=label, nullable=kf.nullable)
                    for kf in exp.fields
                )
                continue
            plain.append(c.name)
            fields.append(Field(c.name, c.type, "column", column=c.name, nullable=not c.not_null))
        names = [f.name for f in fields]
        clash = {n for n in names if names.count(n) > 1} | (
            {n for n in names if "." in n} & {c.name for c in table.columns}
        )
        if clash:
            self.problem(
                "error",
                "field-name-clash",
                name,
                f"exported field name {sorted(clash)[0]!r} is ambiguous",
                "rename the column",
            )
            return None
        referenced: list[str] = list(pk)
        for other in self.catalog.tables.values():
            for fk in self.foreign_keys(other) if other.name in self.mapping.tables else ():
                if fk.ref_table == name:
                    referenced.extend(c for c in fk.ref_columns if c not in referenced)
        for s in surrogate:
            if s.name not in referenced:
                referenced.append(s.name)
        row_identity = pk if pk else tm.natural_key
        markers = _markers({c.name for c in table.columns} | {f.name for f in fields})
        steps = self.tree_steps(name) if any(e.tree for e in expansions) else ()
        return TablePlan(
            table=name,
            export=tm.export,
            natural_key=tm.natural_key,
            key_fields=key_fields,
            key_parts=self.key_parts(table, tm.natural_key),
            fields=tuple(fields),
            plain_columns=tuple(plain),
            expansions=tuple(expansions),
            surrogate=surrogate,
            ref_columns=tuple(referenced),
            row_identity=tuple(row_identity),
            identity_is_pk=bool(pk),
            identity_always=any(c.identity == "a" for c in table.columns if c.name in surrogate_names),
            on_conflict=tm.on_conflict,
            key_is_unique=unique,
            tree_steps=steps,
            new_marker=markers["new_marker"],
            hit_marker=markers["hit_marker"],
            path_marker=markers["path_marker"],
        )

    # -- the whole mapping ---------------------------------------------------------
    def run(self) -> Plan:
        plans: dict[QualifiedName, TablePlan] = {}
        for name in sorted(self.mapping.tables):
            tp = self.plan_table(name)
            if tp is not None:
                plans[name] = tp
        for name in sorted(self.mapping.exclude):
            if self.catalog.get(name) is None:
                self.problem(
                    "warning",
                    "excluded-missing",
                    name,
                    "excluded table does not exist in the database",
                    "remove it from exclude:",
                )
        exported = [n for n in sorted(plans) if plans[n].export]
        deps: dict[QualifiedName, list[QualifiedName]] = {
            n: sorted({e.ref_table for e in plans[n].expansions if e.ref_table in exported}) for n in exported
        }
        components = _strongly_connected(exported, deps)
        order: list[QualifiedName] = []
        comps: list[tuple[QualifiedName, ...]] = []
        for idx, comp in enumerate(components):
            ordered = self.order_component(comp, plans)
            comps.append(tuple(ordered))
            position = {n: i for i, n in enumerate(ordered)}
            for n in ordered:
                tp = plans[n]
                new_exps = []
                for e in tp.expansions:
                    if e.ref_table in position and e.ref_table != n:
                        if position[e.ref_table] > position[n]:
                            kind: EdgeKind = "deferred" if e.fk.deferrable else "second_pass"
                            e = Expansion(e.fk, e.label, e.fields, e.nullable, kind, e.tree)
                    new_exps.append(e)
                plans[n] = _replace(tp, expansions=tuple(new_exps), component=idx)
            order.extend(ordered)
        return Plan(plans, tuple(order), tuple(comps), tuple(self.problems))

    def order_component(
        self, comp: list[QualifiedName], plans: dict[QualifiedName, TablePlan]
    ) -> list[QualifiedName]:
        """Order a cycle's tables so every forward edge is deferrable or nullable."""
        if len(comp) == 1:
            return comp

        def cost(order: Iterable[QualifiedName]) -> tuple[int, int]:
            pos = {n: i for i, n in enumerate(order)}
            impossible = forward = 0
            for n in pos:
                for e in plans[n].expansions:
                    if e.ref_table in pos and e.ref_table != n and pos[e.ref_table] > pos[n]:
                        forward += 1
                        if not e.fk.deferrable and not e.nullable:
                            impossible += 1
            return impossible, forward

        best = sorted(comp)
        if len(comp) <= 7:
            import itertools

            best = list(min(itertools.permutations(sorted(comp)), key=cost))
        else:  # greedy: repeatedly take the table with the fewest blocking edges
            remaining, best = set(comp), []
            while remaining:
                pick = min(
                    sorted(remaining),
                    key=lambda n: sum(
                        1
                        for e in plans[n].expansions
                        if e.ref_table in remaining
                        and e.ref_table != n
                        and not e.fk.deferrable
                        and not e.nullable
                    ),
                )
                best.append(pick)
                remaining.remove(pick)
        best = list(best)
        pos = {n: i for i, n in enumerate(best)}
        for n in best:
            for e in plans[n].expansions:
                if (
                    e.ref_table in pos
                    and e.ref_table != n
                    and pos[e.ref_table] > pos[n]
                    and not e.fk.deferrable
                    and not e.nullable
                ):
                    self.problem(
                        "error",
                        "cycle-not-breakable",
                        n,
                        f"foreign key {e.fk.name} is part of a cycle ("
                        + " -> ".join(str(x) for x in best)
                        + ") and is NOT NULL and not deferrable, so no insert order can satisfy "
                        "it without disabling triggers",
                        f"ALTER TABLE {n} ALTER CONSTRAINT {e.fk.name} DEFERRABLE "
                        "(or make one column of the cycle nullable)",
                        e.columns[0],
                    )
        return best


def _markers(taken: set[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, base in (("new_marker", "#new"), ("hit_marker", "#hit"), ("path_marker", TREE_PATH)):
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}{n}"
        out[key] = name
        taken = taken | {name}
    return out


class _KeyCycle(Exception):
    pass


class _KeyBroken(Exception):
    """A referenced table's natural key names a missing column (reported on that table)."""


def _col(table: Table, name: str) -> Column:
    c = table.column(name)
    if c is None:  # pragma: no cover - guarded by callers
        raise PlanError(f"{table.name}: column {name!r} does not exist")
    return c


def _replace(tp: TablePlan, **changes: object) -> TablePlan:
    from dataclasses import replace

    return replace(tp, **changes)  # type: ignore[arg-type]


def _strongly_connected(
    nodes: list[QualifiedName], deps: dict[QualifiedName, list[QualifiedName]]
) -> list[list[QualifiedName]]:
    """Tarjan's algorithm; components come out dependencies first."""
    index: dict[QualifiedName, int] = {}
    low: dict[QualifiedName, int] = {}
    on_stack: set[QualifiedName] = set()
    stack: list[QualifiedName] = []
    result: list[list[QualifiedName]] = []
    counter = 0

    def visit(v: QualifiedName) -> None:
        nonlocal counter
        # iterative DFS to survive deep FK chains
        work = [(v, iter(deps.get(v, [])))]
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(deps.get(w, []))))
                    advanced = True
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp: list[QualifiedName] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                result.append(sorted(comp))

    for n in nodes:
        if n not in index:
            visit(n)
    return result


def build_plan(mapping: Mapping, catalog: Catalog) -> Plan:
    """Plan an export or import; problems are recorded, not raised."""
    return _Planner(mapping, catalog).run()


def unmapped_tables(mapping: Mapping, catalog: Catalog) -> list[QualifiedName]:
    """Tables in the database that are neither mapped nor excluded."""
    return [n for n in sorted(catalog.tables) if n not in mapping.tables and n not in mapping.exclude]
