"""What a plan is made of: problems, natural-key fields, expansions, table plans.

Kept apart from the planner (``plan``, ``plan_keys``, ``plan_order``) so every stage that
reads a plan (sqlgen, load, runbook, check) imports plain data, not the algorithm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import Column, ForeignKey
from edms_pgdump.errors import PlanError
from edms_pgdump.mapping import ConflictPolicy, OnDangling, TreeDeclaration, TypeTable
from edms_pgdump.sqlgen.embedded_syntax import EmbeddedReference, Step

Severity = Literal["error", "warning"]
# How the import satisfies one reference:
#   ordered      the referenced table is loaded first
#   self         a self-reference: one INSERT, checked at statement end
#   lookup       the referenced table is not exported (export: false): resolved in the target
#   deferred     a forward edge of a cycle on a DEFERRABLE constraint: checked at the end
#   unenforced   a forward edge the database does not check (a declared reference): the
#                pre-allocated id is inserted at once, no NULL, no second pass
#   second_pass  a forward edge on a nullable, immediate FK: inserted as NULL, then UPDATEd
#   blocked      a forward edge no order can satisfy (NOT NULL, immediate): the plan refuses it
EdgeKind = Literal["ordered", "self", "lookup", "deferred", "unenforced", "second_pass", "blocked"]


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
    # the schema of the type's own "=" (pg_catalog, or citext's extension schema): key
    # equality is written OPERATOR(schema.=), whatever the session's search_path
    equality: str = "pg_catalog"
    # the key column's collation when it is not its type's default (staged with it, so
    # duplicates and matches follow the target's rules)
    collation: str | None = None

    @property
    def name(self) -> str:
        return ".".join(self.path)

    def under(self, label: str, nullable: bool) -> KeyField:
        return KeyField(
            (label, *self.path),
            self.type,
            self.nullable or nullable,
            self.tree,
            self.equality,
            self.collation,
        )


TREE_PATH = "#path"
ARRAY_KEYS = "#keys"  # the field of an array reference: [[key...] | null, ...]
# archive format 2: whether a reference is present (``<label>.#present``, boolean), and
# the columns of a partly NULL composite reference carried as values (``<label>.#value.<column>``)
PRESENT = "#present"
CARRIED = "#value"


def present_field(label: str) -> str:
    return f"{label}.{PRESENT}"


def carried_field(label: str, column: str) -> str:
    return f"{label}.{CARRIED}.{column}"


@dataclass(frozen=True)
class Expansion:
    """A foreign key whose ids travel as the referenced row's natural key."""

    fk: ForeignKey
    label: str
    fields: tuple[KeyField, ...]
    nullable: bool  # every FK column nullable: the reference may be absent
    edge: EdgeKind = "ordered"
    tree: bool = False  # the self-reference inside a tree key: travels as a path
    # FK columns whose value another reference or a plain natural-key column writes
    # (two FKs sharing tenant_id; a partition key inside a composite FK): joined on at
    # export and resolved with the rest, but never written from this reference
    shared: tuple[str, ...] = ()
    # a declared reference on an array column (tag_ids integer[]): its type; the array
    # travels as one jsonb array of the referenced rows' keys, element by element, in
    # order, a NULL element as JSON null
    array_type: str = ""
    # archive format 2: the reference carries whether it is present (``present_field``),
    # where its key fields alone cannot say: the referenced key can be NULL in every
    # field, or the FK has two or more columns, some nullable (MATCH SIMPLE)
    present: bool = False
    # columns this reference writes that travel as values too (``carried_field``), for
    # a partly NULL row: the referenced column is a plain value there, never an id
    carried: tuple[str, ...] = ()

    @property
    def present_field(self) -> str:
        return present_field(self.label)

    @property
    def array(self) -> bool:
        return bool(self.array_type)

    @property
    def ref_table(self) -> QualifiedName:
        return self.fk.ref_table

    @property
    def written(self) -> tuple[str, ...]:
        """The FK columns this reference writes on import (all but the shared ones)."""
        return tuple(c for c in self.fk.columns if c not in self.shared)

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
            **({"shared": list(self.shared)} if self.shared else {}),
            **({"array": True} if self.array else {}),
            **({"present": self.present_field} if self.present else {}),
            **({"carried": [carried_field(self.label, c) for c in self.carried]} if self.carried else {}),
        }

    @property
    def columns(self) -> tuple[str, ...]:
        return self.fk.columns


GENERIC_KEY = "#key"


@dataclass(frozen=True)
class GenericTarget:
    """A table a generic reference may name, addressed by its one-column primary key."""

    table: QualifiedName
    id_column: str


@dataclass(frozen=True)
class GenericPlan:
    """A generic reference (type column + id column): the id travels as a jsonb array of
    the named row's natural key (or ``{"raw": id}`` for an ignored type), resolved per
    type, set-based, against the tables the data names (``targets``)."""

    table: QualifiedName
    type_column: str  # travels as the type table's natural key, like any FK
    id_column: str
    id_type: str
    nullable: bool
    type_table: QualifiedName
    type_key: tuple[str, ...]  # the type table's natural-key columns
    naming: TypeTable
    on_dangling: OnDangling
    ignore_types: tuple[str, ...]
    targets: tuple[GenericTarget, ...] = ()

    @property
    def field(self) -> str:
        return f"{self.id_column}.{GENERIC_KEY}"

    def type_field(self, column: str) -> str:
        """The archive field holding one of the type row's key columns."""
        return f"{self.type_column}.{column}"

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": "generic",
            "label": self.id_column,
            "ref_table": ", ".join(str(t.table) for t in self.targets) or "(no target named by the data)",
            "type_column": self.type_column,
            "id_column": self.id_column,
            "type_table": str(self.type_table),
            "field": self.field,
            "on_dangling": self.on_dangling,
            "ignore_types": list(self.ignore_types),
            "targets": [str(t.table) for t in self.targets],
        }


@dataclass(frozen=True)
class EmbeddedPlan:
    """Ids inside a JSON or text column (``embedded_references:``), travelling as the
    named rows' natural keys in place (``sqlgen/embedded.py``)."""

    ref: EmbeddedReference
    kind: Literal["jsonb", "json", "text"]  # how the column's value is read and written back
    column_type: str
    target_column: str  # the referenced table's column the ids are values of
    # the path walked from the column's value: a text column's JSON is parsed first
    steps: tuple[Step, ...]

    @property
    def column(self) -> str:
        return self.ref.column

    @property
    def ref_table(self) -> QualifiedName:
        return self.ref.table

    def to_dict(self) -> dict[str, object]:
        """How these ids travel; shown by ``plan``."""
        return {"kind": "embedded", **self.ref.to_dict(), "target_column": self.target_column}


@dataclass(frozen=True)
class Field:
    """One column of an archive member, in COPY order."""

    name: str
    type: str
    # parent: a materialized-path node's parent's natural key (``tree:``), never a column
    role: Literal["column", "reference", "generic", "parent"]
    column: str | None = None  # the table column for role 'column'
    reference: str | None = None  # the expansion label for role 'reference'
    nullable: bool = True
    collation: str | None = None  # the target column's, when not its type's default


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
    # columns the mapping carries as they are, knowingly (raw_columns:): never references
    raw_columns: tuple[str, ...] = ()
    generic: tuple[GenericPlan, ...] = ()
    # columns whose collation is nondeterministic: "changed" is decided on their bytes
    byte_compared: tuple[str, ...] = ()
    # Names of the import's bookkeeping columns in staging, chosen not to collide with
    # any column or field of this table (a user column may well be called "#new").
    new_marker: str = "#new"
    hit_marker: str = "#hit"
    path_marker: str = TREE_PATH
    component: int = 0
    # the target's primary key (deletes address rows by it, read from the target itself)
    primary_key: tuple[str, ...] = ()
    # some table INHERITS from this one: every statement names it with ONLY, so its
    # children's rows are neither exported, compared, updated nor deleted as its own
    only: bool = False
    # primary-key columns that travel as values (outside the natural key, no default):
    # rows are addressed by natural key and these columns are updated like any other
    moving_key: tuple[str, ...] = ()
    # columns an UPDATE may not set (GENERATED ALWAYS AS IDENTITY): inserted with
    # OVERRIDING SYSTEM VALUE, never updated
    not_updatable: tuple[str, ...] = ()
    # (column, schema of its type's "=") where that is not pg_catalog (citext)
    equality: tuple[tuple[str, str], ...] = ()
    # (column, format_type()) of every column: how "changed" is decided for each
    column_types: tuple[tuple[str, str], ...] = ()
    # a tree that stores positions (tree:): the importer computes them (sqlgen/tree.py)
    tree: TreeDeclaration | None = None
    embedded: tuple[EmbeddedPlan, ...] = ()

    def eq(self, column: str) -> str:
        """The schema of ``column``'s equality operator."""
        return dict(self.equality).get(column, "pg_catalog")

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def tree_expansion(self) -> Expansion | None:
        return next((e for e in self.expansions if e.tree), None)

    @property
    def resolved_columns(self) -> frozenset[str]:
        """The columns its references fill: known once they are resolved (its final
        staging rows), not before (its keyed ones)."""
        return frozenset(c for e in self.expansions for c in e.fk.columns)

    def generic_for(self, id_column: str) -> GenericPlan:
        return next(g for g in self.generic if g.id_column == id_column)

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
