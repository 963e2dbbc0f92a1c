"""Pure planning: ``(Mapping, Catalog) -> Plan``. No I/O, unit-testable.

The plan decides, for every mapped table, which columns travel in the archive, how
each foreign key is replaced by the referenced row's natural key (recursively, since a
natural key may itself contain a foreign key), which surrogate columns are dropped and
re-allocated on import, the load order (strongly connected components for cycles) and
how each cycle edge is satisfied without superuser rights.

One rule is hard: a column covered by a foreign key (declared on the table, on its
partitioned parent or on any partition) never travels as a raw id. It travels as the
referenced row's natural key, or the plan has an error naming the column and the fix.
The data model is in ``plan_model``, key expansion in ``plan_keys``, ordering in
``plan_order``.
"""

from __future__ import annotations

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import Catalog, Column, ForeignKey, Table
from edms_pgdump.mapping import Mapping, TableMapping
from edms_pgdump.plan.embedded import embedded_targets, plan_embedded
from edms_pgdump.plan.generic import GenericTargets, generic_candidates, plan_generic
from edms_pgdump.plan.keys import KeyBroken, KeyCycle, KeyResolver, column_of
from edms_pgdump.plan.model import (
    ARRAY_KEYS,
    TREE_PATH,
    EdgeKind,
    Expansion,
    Field,
    GenericPlan,
    KeyField,
    Plan,
    Problem,
    Severity,
    TablePlan,
    carried_field,
    fk_label,
)
from edms_pgdump.plan.order import assign_edges, blocked_problems, order_component, strongly_connected
from edms_pgdump.plan.proposals import guess_natural_key
from edms_pgdump.plan.tree import check_tree, tree_fields
from edms_pgdump.sqlgen import fixes

__all__ = [
    "TREE_PATH",
    "EdgeKind",
    "Expansion",
    "Field",
    "GenericPlan",
    "KeyField",
    "Plan",
    "Problem",
    "Severity",
    "TablePlan",
    "build_plan",
    "fk_label",
    "unmapped_tables",
]


class _Planner(KeyResolver):
    def __init__(self, mapping: Mapping, catalog: Catalog, generic_targets: GenericTargets) -> None:
        super().__init__(mapping, catalog)
        self.generic_targets = generic_targets

    # -- one table, step by step ---------------------------------------------------
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
        if not self.check_key_columns(table, tm):
            return None
        key_fields = self.expand_key(name)
        if key_fields is None:
            return None
        unique = self.check_key_unique(table, tm)
        self.check_ids_kept(table, tm)
        self.check_partition_fks(table, tm)
        self.check_inheritance(table, tm)
        expansions, fk_columns = self.expansions(table, tm)
        self.check_raw_columns(table, tm)
        generic = plan_generic(self, table, tm, expansions, self.generic_targets)
        generic_candidates(self, table, tm, expansions)
        surrogate = self.surrogates(table, tm, fk_columns)
        surrogate_names = {c.name for c in surrogate}
        fields, plain = self.fields(table, expansions, fk_columns, surrogate_names, generic)
        if not check_tree(table, tm, lambda *p: self.problem("error", p[0], name, p[1], p[2], p[3])):
            return None
        fields += tree_fields(tm.tree)
        if not self.check_field_names(table, fields):
            return None
        embedded = plan_embedded(self, table, tm, plain)
        pk = table.primary_key or ()
        self.check_identity_values(table, tm, surrogate_names)
        # a primary-key column that travels as a value (PRIMARY KEY (id, region) keyed by
        # [ref], a renamed text key) can change: rows are then addressed by natural key,
        # and the primary key is updated like any other column
        moving = tuple(c for c in pk if c not in tm.natural_key and c not in surrogate_names)
        markers = _markers({c.name for c in table.columns} | {f.name for f in fields})
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
            ref_columns=self.ref_columns(name, pk, surrogate),
            row_identity=tuple(pk if pk and not moving else tm.natural_key),
            identity_is_pk=bool(pk) and not moving,
            # an ALWAYS identity column written with explicit values (new ids drawn in
            # staging, or the source's ids kept) needs OVERRIDING SYSTEM VALUE
            identity_always=any(c.identity == "a" for c in table.columns),
            on_conflict=tm.on_conflict,
            key_is_unique=unique,
            tree_steps=self.tree_steps(name) if any(e.tree for e in expansions) else (),
            raw_columns=tm.raw_columns,
            byte_compared=tuple(c.name for c in table.columns if not c.collation_deterministic),
            generic=tuple(generic),
            new_marker=markers["new_marker"],
            hit_marker=markers["hit_marker"],
            path_marker=markers["path_marker"],
            primary_key=pk,
            only=table.has_children,
            moving_key=moving,
            # PostgreSQL refuses UPDATE ... SET of an ALWAYS identity column
            not_updatable=tuple(c.name for c in table.columns if c.identity == "a"),
            equality=tuple((c.name, c.equality) for c in table.columns if c.equality != "pg_catalog"),
            column_types=tuple((c.name, c.base_type or c.type) for c in table.columns),
            tree=tm.tree,
            embedded=embedded,
        )

    def check_key_columns(self, table: Table, tm: TableMapping) -> bool:
        """Every natural-key column exists; generated and nullable ones are worth a word."""
        ok = True
        for i, col in enumerate(tm.natural_key):
            c = table.column(col)
            if c is None:
                self.problem(
                    "error",
                    "key-column-missing",
                    table.name,
                    f"natural_key[{i}] names column {col!r}, which does not exist",
                    "use existing column names: " + ", ".join(x.name for x in table.columns),
                    col,
                )
                ok = False
            elif c.is_generated:
                self.problem(
                    "warning",
                    "key-column-generated",
                    table.name,
                    f"natural-key column {col!r} is generated; it is compared but never loaded",
                    "prefer the columns it is computed from",
                    col,
                )
            elif not c.not_null and not self.key_fk(table, tm.natural_key, col):
                self.problem(
                    "warning",
                    "key-column-nullable",
                    table.name,
                    f"natural-key column {col!r} is nullable; NULLs are matched as equal",
                    "declare it NOT NULL if rows always have it: "
                    f"ALTER TABLE {table.name} ALTER COLUMN {fixes.ident(col)} SET NOT NULL;",
                    col,
                )
        return ok

    def expand_key(self, name: QualifiedName) -> tuple[KeyField, ...] | None:
        try:
            return self.key_fields(name)
        except KeyBroken:
            return None  # reported on the referenced table
        except KeyCycle as exc:
            self.problem(
                "error",
                "key-cycle",
                name,
                f"the natural key cannot be expanded ({exc})",
                "a natural key may contain its own parent together with plain columns (a tree), "
                "but not a loop through other tables; choose other key columns",
            )
            return None

    def check_ids_kept(self, table: Table, tm: TableMapping) -> None:
        """A table keyed by its own serial or identity id keeps the source's ids."""
        for name in tm.natural_key:
            col = table.column(name)
            if col is None or not (col.identity or col.sequence is not None):
                continue
            always = (
                f" ({name} is GENERATED ALWAYS AS IDENTITY: the import inserts it with OVERRIDING "
                "SYSTEM VALUE)"
                if col.identity == "a"
                else ""
            )
            self.problem(
                "warning",
                "ids-kept",
                table.name,
                f"natural key column {name!r} is the table's own generated id: the source's ids are kept "
                f"as they are{always}; a target row that already has the same {name} for another record is "
                "updated with the archive's values (it is the same key), and the column's sequence is "
                "advanced past the largest imported id",
                "keep it if the ids are the same records in every database; otherwise choose columns "
                "that identify the row",
                name,
            )

    def check_identity_values(self, table: Table, tm: TableMapping, surrogate: set[str]) -> None:
        """An ALWAYS identity column that travels as a value outside the natural key: new
        rows get the archive's value (OVERRIDING SYSTEM VALUE); PostgreSQL refuses to
        UPDATE it, so an existing row keeps its own, and says so."""
        for c in table.columns:
            if c.identity != "a" or c.name in tm.natural_key or c.name in surrogate:
                continue
            self.problem(
                "warning",
                "identity-not-updated",
                table.name,
                f"column {c.name!r} is GENERATED ALWAYS AS IDENTITY outside the natural key: new rows "
                "are inserted with the archive's value (OVERRIDING SYSTEM VALUE), existing rows keep "
                "their own (PostgreSQL allows no UPDATE of it) and it is not compared",
                f"add {c.name} to the natural key if its values identify the row, or make it "
                f"GENERATED BY DEFAULT: ALTER TABLE {table.name} ALTER COLUMN {fixes.ident(c.name)} "
                "SET GENERATED BY DEFAULT;",
                c.name,
            )

    def check_key_unique(self, table: Table, tm: TableMapping) -> bool:
        if table.has_unique(tm.natural_key):
            return True
        nullable = [c for c in tm.natural_key if not column_of(table, c).not_null]
        self.problem(
            "warning",
            "key-not-unique",
            table.name,
            "natural key (" + ", ".join(tm.natural_key) + ") has no unique constraint or "
            "index; uniqueness is proven on the data at export and import",
            fixes.unique_index(table.name, tm.natural_key, nullable, self.catalog.server_version),
        )
        return False

    def check_inheritance(self, table: Table, tm: TableMapping) -> None:
        """A parent's member holds its own rows only (every statement says ONLY): a child
        neither mapped nor excluded would silently stay behind."""
        if not tm.export or not table.has_children:
            return
        for child in table.children:
            if child in self.mapping.tables or child in self.mapping.exclude:
                continue
            self.problem(
                "warning",
                "inheritance-child-unmapped",
                table.name,
                f"{child} INHERITS from {table.name}: its rows are not part of {table.name}'s member "
                "(every statement reads the parent with ONLY), and it is not mapped",
                f"map {child} with a natural_key to carry its rows, or list it under exclude:",
            )

    def check_partition_fks(self, table: Table, tm: TableMapping) -> None:
        """An FK some partitions have and others lack applies to the whole table; the
        partitions without it are named, since the database does not check their rows."""
        if not tm.export:
            return
        for fk in table.foreign_keys:
            for part in fk.missing_on:
                self.problem(
                    "warning",
                    "fk-missing-on-partition",
                    table.name,
                    f"foreign key {fk.name} ({', '.join(fk.columns)}) -> {fk.ref_table} is declared "
                    f"on other partitions of {table.name} but not on partition {part}: the database "
                    f"does not check the rows of {part}; the reference still applies to the whole "
                    f"table and travels as {fk.ref_table}'s natural key",
                    fixes.add_foreign_key(part, fk),
                    fk.columns[0],
                )

    def expansions(self, table: Table, tm: TableMapping) -> tuple[list[Expansion], dict[str, ForeignKey]]:
        """How each reference travels; every FK column ends up written by exactly one
        of them, or by the natural key as a plain column.

        FKs sharing a column (``tenant_id`` in ``tenant_id -> tenant`` and in
        ``(tenant_id, parent_id) -> parent``) each travel as their own reference: the
        column is written by the one the natural key uses (else the one with fewest
        columns), and the others join on it but write only their remaining columns. A
        plain natural-key column inside a composite FK (a partition key ``region`` in
        ``(customer_id, region) -> customer``) travels as itself the same way."""
        name = table.name
        plain_key = {c for kind, c in self.key_parts(table, tm.natural_key) if kind == "column"}
        fk_columns: dict[str, ForeignKey] = {}
        claimed: dict[ForeignKey, Expansion] = {}
        for fk in self.claim_order(table, tm.natural_key):
            ref = self.catalog.get(fk.ref_table)
            if fk.period:
                if tm.export:
                    self.temporal_fk(table, fk)
                continue
            if fk.ref_table not in self.mapping.tables or ref is None:
                if tm.export:
                    self.fk_to_unmapped(table, fk)
                continue
            shared = tuple(c for c in fk.columns if c in fk_columns or c in plain_key)
            written = [c for c in fk.columns if c not in shared]
            if not written:
                continue  # every column is written by another reference or the key
            try:
                ref_fields = self.key_fields(fk.ref_table)
            except (KeyCycle, KeyBroken):
                continue  # reported on the referenced table
            nullable = all(not column_of(table, c).not_null for c in written)
            label = fk_label(fk)
            tree = fk.ref_table == name and any(kf.tree and kf.path[0] == label for kf in ref_fields)
            array_type = self.array_type(table, fk)
            if array_type:
                exp_fields: tuple[KeyField, ...] = (KeyField((label, ARRAY_KEYS), "jsonb", nullable),)
            elif tree:
                exp_fields = (KeyField((label, TREE_PATH), "jsonb", True, tree=True),)
            else:
                exp_fields = tuple(kf.under(label, nullable) for kf in ref_fields)
            edge: EdgeKind = "self" if fk.ref_table == name else "ordered"
            if self.mapping.tables[fk.ref_table].export is False:
                edge = "lookup"
            tree = tree and not array_type
            present, carried = False, tuple[str, ...]()
            if not tree and not array_type:
                present, carried = self.presence(table, fk, written, ref_fields)
            claimed[fk] = Expansion(
                fk, label, exp_fields, nullable, edge, tree, shared, array_type, present, carried
            )
            for fk_col in written:
                fk_columns[fk_col] = fk
        # in the database's order, so unchanged schemas plan (and render) as before
        expansions = [claimed[fk] for fk in self.foreign_keys(table) if fk in claimed]
        return expansions, fk_columns

    def presence(
        self, table: Table, fk: ForeignKey, written: list[str], ref_fields: tuple[KeyField, ...]
    ) -> tuple[bool, tuple[str, ...]]:
        """Archive format 2: whether the reference carries its presence apart from its key
        fields, and which written columns also travel as values.

        Presence is needed where the key fields cannot say it: the referenced key can be
        NULL in every field (a contact with no e-mail), or the FK has two or more columns,
        some nullable, so MATCH SIMPLE lets a row set some and leave others NULL. Such a
        partly NULL row has no referenced row; its set columns travel as values when the
        referenced column is a plain value there (a region, a tenant number), never an id
        the target re-allocates or a reference of the referenced table's own."""
        partial = len(fk.columns) > 1 and any(not column_of(table, c).not_null for c in fk.columns)
        present = partial or all(kf.nullable for kf in ref_fields)
        if not partial:
            return present, ()
        ref = self.catalog.get(fk.ref_table)
        assert ref is not None
        ref_nk = set(self.mapping.tables[fk.ref_table].natural_key)
        ref_pk = set(ref.primary_key or ())
        ref_fk_columns = {c for other in self.foreign_keys(ref) for c in other.columns}
        carried: list[str] = []
        for c, rc in zip(fk.columns, fk.ref_columns):
            col = ref.column(rc)
            if c not in written or col is None or rc in ref_fk_columns or col.is_generated:
                continue
            if rc in ref_pk and rc not in ref_nk and col.has_default:
                continue  # a surrogate id: re-allocated on import, never carried raw
            carried.append(c)
        return present, tuple(carried)

    def temporal_fk(self, table: Table, fk: ForeignKey) -> None:
        """A temporal FK (PostgreSQL 18, ``PERIOD``) matches its range by containment over
        possibly several referenced rows; the export's equality join cannot carry that."""
        period = fk.columns[-1]
        self.problem(
            "error",
            "fk-temporal",
            table.name,
            f"foreign key {fk.name} ({', '.join(fk.columns)}) -> {fk.ref_table} is temporal "
            f"(PERIOD {period}): it references the {fk.ref_table} rows whose "
            f"{fk.ref_columns[-1]} contains each {period}, which cannot travel as one natural key yet",
            f"leave {table.name} out (under exclude:, or export: false) and copy it another way, or replace "
            f"the temporal constraint by a plain FK to a table keyed without a period: "
            f"ALTER TABLE {table.name} DROP CONSTRAINT {fixes.ident(fk.name)};",
            fk.columns[0],
        )

    def claim_order(self, table: Table, nk: tuple[str, ...]) -> list[ForeignKey]:
        """FKs in the order they claim shared columns: those inside the natural key
        first (the key names them, ``key_fk``), then by number of columns."""
        fks = self.foreign_keys(table)
        return sorted(fks, key=lambda fk: (not set(fk.columns) <= set(nk), len(fk.columns)))

    def fk_to_unmapped(self, table: Table, fk: ForeignKey) -> None:
        ref = self.catalog.get(fk.ref_table)
        where = f" (found on partition {', '.join(map(str, fk.on_partitions))})" if fk.on_partitions else ""
        if fk.ref_table in self.mapping.exclude:
            why = "is under exclude:, so it has no natural key"
        elif ref is None:
            why = "does not exist in this database"
        else:
            why = "has no natural key"
        key = guess_natural_key(ref) if ref is not None else None
        self.problem(
            "error",
            "fk-to-unmapped",
            table.name,
            f"foreign key {fk.name} ({', '.join(fk.columns)}){where} references {fk.ref_table}, which "
            f"{why}: its ids would travel raw and point at the wrong rows after a re-initialisation",
            f"map {fk.ref_table} with a natural_key (export: false if its rows are managed elsewhere): "
            + fixes.mapped_table(fk.ref_table, key)
            + (", and remove it from exclude:" if fk.ref_table in self.mapping.exclude else ""),
            fk.columns[0],
        )

    def check_raw_columns(self, table: Table, tm: TableMapping) -> None:
        """``raw_columns`` may name any column except one a reference covers."""
        covered = {c: fk for fk in self.foreign_keys(table) for c in fk.columns}
        for col in tm.raw_columns:
            if table.column(col) is None:
                self.problem(
                    "error",
                    "raw-column-missing",
                    table.name,
                    f"raw_columns names column {col!r}, which does not exist",
                    "use existing column names: " + ", ".join(x.name for x in table.columns),
                    col,
                )
            elif col in covered:
                fk = covered[col]
                what = "a declared reference" if fk.declared else f"foreign key {fk.name}"
                self.problem(
                    "error",
                    "raw-column-fk",
                    table.name,
                    f"column {col!r} is listed in raw_columns but is covered by {what} to "
                    f"{fk.ref_table}: a reference never travels as a raw id",
                    f"remove {col} from raw_columns (it travels as {fk.ref_table}'s natural key)",
                    col,
                )

    def surrogates(
        self, table: Table, tm: TableMapping, fk_columns: dict[str, ForeignKey]
    ) -> tuple[Column, ...]:
        """Primary-key columns outside the natural key: dropped on export, re-allocated."""
        nk = set(tm.natural_key)
        pk = table.primary_key or ()
        for c in table.columns:
            if c.name in pk and c.name not in nk and not c.has_default and not c.is_generated:
                if c.name not in fk_columns:
                    self.problem(
                        "warning",
                        "pk-without-default",
                        table.name,
                        f"primary key column {c.name!r} is not in the natural key and has no "
                        "default: its values travel as they are",
                        "give it a default (identity or sequence) so the target allocates ids",
                        c.name,
                    )
        return tuple(
            c
            for c in table.columns
            if c.name in pk and c.name not in nk and c.has_default and c.name not in fk_columns
        )

    def fields(
        self,
        table: Table,
        expansions: list[Expansion],
        fk_columns: dict[str, ForeignKey],
        surrogate_names: set[str],
        generic: list[GenericPlan],
    ) -> tuple[list[Field], list[str]]:
        """Archive fields in column order: an FK's columns replaced by the key it points at,
        a generic reference's id by the named row's key (jsonb)."""
        fields: list[Field] = []
        plain: list[str] = []
        emitted: set[str] = set()
        by_id = {g.id_column: g for g in generic}
        key = set(self.mapping.tables[table.name].natural_key)
        for c in table.columns:
            if c.is_generated and c.name in key and c.name not in fk_columns:
                # a generated key column travels as a key field, for matching, and is
                # never written: the target computes it from the columns that travel
                fields.append(Field(c.name, c.type, "column", column=c.name, nullable=not c.not_null))
                continue
            if c.is_generated or c.name in surrogate_names:
                continue
            if c.name in by_id:
                g = by_id[c.name]
                fields.append(Field(g.field, "jsonb", "generic", column=c.name, nullable=g.nullable))
                continue
            if c.name in fk_columns:
                label = fk_label(fk_columns[c.name])
                if label in emitted:
                    continue
                emitted.add(label)
                exp = next(e for e in expansions if e.label == label)
                fields.extend(
                    Field(
                        kf.name,
                        kf.type,
                        "reference",
                        reference=label,
                        nullable=kf.nullable,
                        collation=kf.collation,
                    )
                    for kf in exp.fields
                )
                fields.extend(reference_extras(table, exp))
                continue
            plain.append(c.name)
            fields.append(
                Field(c.name, c.type, "column", column=c.name, nullable=not c.not_null, collation=c.collation)
            )
        return fields, plain

    def check_field_names(self, table: Table, fields: list[Field]) -> bool:
        names = [f.name for f in fields]
        clash = {n for n in names if names.count(n) > 1} | (
            {n for n in names if "." in n} & {c.name for c in table.columns}
        )
        if clash:
            self.problem(
                "error",
                "field-name-clash",
                table.name,
                f"exported field name {sorted(clash)[0]!r} is ambiguous",
                "rename the column",
            )
        return not clash

    def ref_columns(
        self, name: QualifiedName, pk: tuple[str, ...], surrogate: tuple[Column, ...]
    ) -> tuple[str, ...]:
        """Columns the import reads from existing rows: the key others reference by."""
        referenced: list[str] = list(pk)
        for other in self.catalog.tables.values():
            for fk in self.foreign_keys(other) if other.name in self.mapping.tables else ():
                if fk.ref_table == name:
                    referenced.extend(c for c in fk.ref_columns if c not in referenced)
        embedded = embedded_targets(self.mapping, self.catalog, name)  # ids inside JSON or text
        referenced.extend(c for c in embedded if c not in referenced)
        for s in surrogate:
            if s.name not in referenced:
                referenced.append(s.name)
        return tuple(referenced)

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
        # a generic reference's targets load first too (the database enforces nothing,
        # so such an edge never blocks an order inside a cycle)
        deps: dict[QualifiedName, list[QualifiedName]] = {
            n: sorted(
                {e.ref_table for e in plans[n].expansions if e.ref_table in exported}
                | {t.table for g in plans[n].generic for t in g.targets if t.table in exported} - {n}
            )
            for n in exported
        }
        order: list[QualifiedName] = []
        comps: list[tuple[QualifiedName, ...]] = []
        for idx, comp in enumerate(strongly_connected(exported, deps)):
            ordered = order_component(comp, plans)
            assign_edges(ordered, plans, idx)
            self.problems += blocked_problems(ordered, plans, self.catalog)
            comps.append(tuple(ordered))
            order.extend(ordered)
        return Plan(plans, tuple(order), tuple(comps), tuple(self.problems))


def reference_extras(table: Table, exp: Expansion) -> list[Field]:
    """The format-2 fields after a reference's key fields: its presence, then the
    columns it carries as values, in FK order."""
    out: list[Field] = []
    if exp.present:
        out.append(Field(exp.present_field, "boolean", "reference", reference=exp.label, nullable=False))
    for c in exp.carried:
        col = column_of(table, c)
        out.append(
            Field(
                carried_field(exp.label, c),
                col.type,
                "reference",
                reference=exp.label,
                collation=col.collation,
            )
        )
    return out


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


def build_plan(mapping: Mapping, catalog: Catalog, generic_targets: GenericTargets | None = None) -> Plan:
    """Plan an export or import; problems are recorded, not raised.

    ``generic_targets``: per (table, id column) of a generic reference, the tables its
    data names (found at export on the snapshot, stored in the manifest for import).
    """
    return _Planner(mapping, catalog, generic_targets or {}).run()


def unmapped_tables(mapping: Mapping, catalog: Catalog) -> list[QualifiedName]:
    """Tables in the database that are neither mapped nor excluded."""
    return [n for n in sorted(catalog.tables) if n not in mapping.tables and n not in mapping.exclude]
