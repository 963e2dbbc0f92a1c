"""Natural keys expanded to leaf values, and the references a table has.

A natural key may contain foreign keys (``(party, number)``), so each key is expanded
recursively into the referenced tables' keys; a key that contains its own parent is a
tree, whose parent travels as a path. The references of a table are its FKs (those
declared on it, on its partitioned parent or on its partitions, merged by the catalog)
plus the ``references:`` declared in the mapping, which the database does not enforce.
"""

from __future__ import annotations

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import Catalog, Column, ForeignKey, Table
from edms_pgdump.errors import PlanError
from edms_pgdump.mapping import Mapping
from edms_pgdump.plan.model import GENERIC_KEY, TREE_PATH, KeyField, Problem, Severity, fk_label
from edms_pgdump.sqlgen import fixes


class KeyCycle(Exception):
    """A natural key that loops through other tables (or holds nothing but its parent)."""


class KeyBroken(Exception):
    """A referenced table's natural key names a missing column (reported on that table)."""


class KeyResolver:
    """Expands natural keys and collects references; records problems, raises none."""

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
            fk = self.declared(table, ref.columns, ref.table, ref.target_columns)
            if fk is not None:
                fks.append(fk)
        self.fks[table.name] = tuple(fks)
        return self.fks[table.name]

    def declared(
        self,
        table: Table,
        columns: tuple[str, ...],
        ref_table: QualifiedName,
        target_columns: tuple[str, ...] | None,
    ) -> ForeignKey | None:
        missing = [c for c in columns if table.column(c) is None]
        if missing:
            self.problem(
                "error",
                "reference-column-missing",
                table.name,
                f"declared reference column {missing[0]!r} does not exist",
                "fix the columns list under references:",
                missing[0],
            )
            return None
        target = self.catalog.get(ref_table)
        if target is None:
            self.problem(
                "error",
                "reference-table-missing",
                table.name,
                f"declared reference to {ref_table}, which does not exist",
                "fix the table under references:",
                columns[0],
            )
            return None
        cols = target_columns or target.primary_key
        absent = [c for c in cols or () if target.column(c) is None]
        array = self.array_type(table, columns)
        if array and (len(columns) != 1 or columns[0] in self.mapping.tables[table.name].natural_key):
            self.problem(
                "error",
                "reference-array",
                table.name,
                f"declared reference ({', '.join(columns)}) includes the array column {columns[0]!r}: an "
                "array of ids travels only as a reference of its own, outside the natural key",
                "declare it alone (columns: [" + columns[0] + "]), and key the table by other columns",
                columns[0],
            )
            return None
        if not cols or len(cols) != len(columns) or absent:
            have = ", ".join(c.name for c in target.columns)
            self.problem(
                "error",
                "reference-target",
                table.name,
                f"declared reference to {ref_table} needs target_columns naming "
                f"{len(columns)} of its columns"
                + (f" ({absent[0]!r} does not exist)" if absent else " (it has no matching primary key)"),
                f"add target_columns: [...] to the reference, from: {have}",
                columns[0],
            )
            return None
        if not self.unique_target(target, cols):
            keys = [k for k in (target.primary_key, *target.unique_keys) if k]
            self.problem(
                "error",
                "reference-target-not-unique",
                table.name,
                f"declared reference ({', '.join(columns)}) -> {ref_table} ({', '.join(cols)}): "
                f"those columns are not unique in {ref_table}, so one value may name several rows "
                "(the export would write a row once per match)",
                "point target_columns at a unique key of "
                + str(ref_table)
                + (f" ({'; '.join(', '.join(k) for k in keys)})" if keys else "")
                + ", or make them unique: "
                + fixes.unique_index(ref_table, cols, [], self.catalog.server_version),
                columns[0],
            )
            return None
        return ForeignKey(
            f"declared:{','.join(columns)}", columns, ref_table, cols, False, False, declared=True
        )

    def array_type(self, table: Table, fk: ForeignKey | tuple[str, ...]) -> str:
        """The type of a declared reference's one-level array column (``integer[]``), else ''."""
        columns = fk if isinstance(fk, tuple) else fk.columns
        if isinstance(fk, ForeignKey) and not fk.declared:
            return ""
        arrays = [c.type for name in columns if (c := table.column(name)) is not None and _is_array(c)]
        return arrays[0] if arrays else ""

    def unique_target(self, target: Table, cols: tuple[str, ...]) -> bool:
        """A declared reference's target columns name one row each: a unique key of the
        table, or its natural key (proven unique on the data at export and import)."""
        tm = self.mapping.tables.get(target.name)
        return target.has_unique(cols) or (tm is not None and set(tm.natural_key) == set(cols))

    def key_fk(self, table: Table, nk: tuple[str, ...], column: str) -> ForeignKey | None:
        """The FK to a keyed table that a natural-key column belongs to, if any."""
        found = [
            fk
            for fk in self.foreign_keys(table)
            if column in fk.columns
            and set(fk.columns) <= set(nk)
            and fk.ref_table in self.mapping.tables
            and self.catalog.get(fk.ref_table)
        ]
        # the narrowest one: two key FKs sharing a column agree with the planner's claim order
        return min(found, key=lambda fk: len(fk.columns), default=None)

    def generic_id_columns(self, name: QualifiedName) -> set[str]:
        tm = self.mapping.tables.get(name)
        return {g.id_column for g in tm.generic_references} if tm else set()

    # -- natural keys, expanded to leaf values -----------------------------------
    def key_fields(self, name: QualifiedName, stack: tuple[QualifiedName, ...] = ()) -> tuple[KeyField, ...]:
        if name in self._key_cache:
            return self._key_cache[name]
        if name in stack:
            raise KeyCycle(" -> ".join(str(n) for n in (*stack, name)))
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
                nullable = any(not column_of(table, c).not_null for c in fk.columns)
                for kf in self.key_fields(fk.ref_table, (*stack, name)):
                    out.append(kf.under(fk_label(fk), nullable))
                continue
            done.add(col)
            column = table.column(col)
            if column is None:
                raise KeyBroken(f"{name}.{col}")
            if col in self.generic_id_columns(name):
                out.append(KeyField((col, GENERIC_KEY), "jsonb", not column.not_null))
                continue
            out.append(
                KeyField(
                    (col,),
                    column.type,
                    not column.not_null,
                    equality=column.equality,
                    collation=column.collation,
                )
            )
        result = tuple(out)
        self._key_cache[name] = result
        return result

    def check_tree_key(self, table: Table, nk: tuple[str, ...], fk: ForeignKey) -> None:
        others = [c for c in nk if c not in fk.columns]
        if not others:
            raise KeyCycle(f"{table.name} is keyed only by its parent")
        for c in others:
            other = self.key_fk(table, nk, c)
            if other is not None:
                raise KeyCycle(
                    f"{table.name}: a tree key may combine its parent only with plain columns, "
                    f"not with the reference {fk_label(other)}"
                )

    def tree_steps(self, name: QualifiedName) -> tuple[str, ...]:
        nk = self.mapping.tables[name].natural_key
        table = self.catalog.tables[name]
        fk = next(f for f in self.foreign_keys(table) if f.ref_table == name and set(f.columns) <= set(nk))
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
            elif col in self.generic_id_columns(table.name):
                done.add(col)
                parts.append(("generic", col))
            else:
                done.add(col)
                parts.append(("column", col))
        return tuple(parts)


def _is_array(column: Column) -> bool:
    t = (column.base_type or column.type).strip()
    return t.endswith("[]") and not t.endswith("[][]")


def column_of(table: Table, name: str) -> Column:
    c = table.column(name)
    if c is None:  # pragma: no cover - guarded by callers
        raise PlanError(f"{table.name}: column {name!r} does not exist")
    return c
