"""The export program: the export written once, as typed steps, with two interpreters.

Why: the library's export (``export.run``) and ``edms-pgdump sql export`` (the psql
runbook, ``runbook.export_render``) must open the same snapshot, refuse the same data
with the same words, keep the same subset and copy the same rows. Written twice, they
drifted (a refusal message was copied between them). Here each step is pure data built
by one pure function, ``export_program(plan, catalog, mapping, options, subset)``; the
interpreters only decide how to run it (psycopg, or a psql script).

Messages: a refusal's message is the library's ``Problem`` built once, here, with
"holes" where the data goes (counts, sample keys). The library fills the holes in
Python from the query's rows; export.sql fills them in a DO block from the same query.

Steps, in order: pin the session, open the snapshot, the export's settings, the
refusals of the data (generic types not mapped, generic ids naming nothing, plan
warnings when none are allowed, looping trees, then every unsafe-data probe gathered
into one message), a subset's closure, one COPY per table, the counts, COMMIT.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, replace
from typing import Union

from psycopg import sql

from edms_pgdump import sqlgen as g
from edms_pgdump.analysis.app_shapes import (
    EMBEDDED_DANGLING,
    embedded_dangling_problem,
    embedded_not_json,
    embedded_sample_names,
)
from edms_pgdump.analysis.generic_probe import (
    NO_SUCH_TABLE,
    dangling_problem,
    dangling_sample_names,
    unmapped_type_problem,
    why_not_a_target,
)
from edms_pgdump.analysis.likely_refs import Candidate, likely_reference_candidates
from edms_pgdump.analysis.probes import (
    UNSAFE_DATA_HEADS,
    duplicate_keys_query,
    key_not_unique_problem,
    likely_reference_problem,
    match_counts_query,
    missing_reference_problem,
    needs_uniqueness_proof,
    null_key_reference_problem,
    null_key_sample_names,
    partly_null_problem,
    partly_null_sample_names,
    partly_nullable_references,
    unchecked_references,
    unsafe_data_place,
)
from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import Catalog
from edms_pgdump.export.subset import MAX_ROUNDS, SubsetSteps, TableScope, closure_overflow, filter_failed
from edms_pgdump.mapping import Mapping
from edms_pgdump.options import ExportOptions
from edms_pgdump.plan.build import GenericPlan, Plan, Problem, TablePlan
from edms_pgdump.plan.generic import target_of
from edms_pgdump.plan.model import EmbeddedPlan
from edms_pgdump.sqlgen import subset as q
from edms_pgdump.sqlgen.export import (
    embedded_dangling,
    generic_dangling,
    missing_references,
    null_key_ambiguous,
    null_key_references,
    partly_null_references,
    tree_rows_off_path,
)
from edms_pgdump.sqlgen.generic import discover_types
from edms_pgdump.sqlgen.tree import mp_orphans
from edms_pgdump.sqlgen.where import RowFilter

# The natural-key joins of the export queries are hash joins over whole tables; with
# the default 4MB work_mem they spill to disk in many batches.
EXPORT_WORK_MEM = "256MB"
# The export's own transaction settings (as pg_dump's): the joins' memory (at the
# default 4MB a skewed join, half the keys NULL, can grow past any limit in batches),
# and no timeout of the role or database cuts a long COPY short, or the snapshot a
# parallel export's first connection holds, idle, while the others copy.
EXPORT_SETTINGS: tuple[tuple[str, str], ...] = (
    ("work_mem", EXPORT_WORK_MEM),
    ("statement_timeout", "0"),
    ("idle_in_transaction_session_timeout", "0"),
)
ISOLATION = "REPEATABLE READ"
NOTHING_EXPORTED = "; nothing was exported"

# -- holes: where a message takes the data ------------------------------------------------

_HOLE = "\x1eedms-hole:{}\x1e"
HOLES = re.compile("\x1eedms-hole:([a-z_]+)\x1e")


def hole(name: str) -> str:
    """A placeholder in a message, filled by each interpreter from the query's row."""
    return _HOLE.format(name)


def fill(text: str, values: AbcMapping[str, str]) -> str:
    """``text`` with each hole replaced by ``values[name]`` (the library's interpreter)."""
    return HOLES.sub(lambda m: values[m.group(1)], text)


def fill_problem(p: Problem, values: AbcMapping[str, str]) -> Problem:
    return replace(p, message=fill(p.message, values), fix=fill(p.fix, values))


# Holes of a sampled check: its first count as it is (n) or with thousands separators
# (values), its second count with separators (rows), and the sample keys (s).
SAMPLED_HOLES = ("n", "values", "rows", "s")


# -- the steps --------------------------------------------------------------------------


@dataclass(frozen=True)
class PinSession:
    """The session settings every statement the tool writes relies on (db.pin_session)."""

    statements: tuple[sql.Composed, ...]


@dataclass(frozen=True)
class Snapshot:
    """``BEGIN ISOLATION LEVEL REPEATABLE READ``: every later step reads one instant. Not
    READ ONLY yet when a subset's kept-key temp tables must be created first."""

    read_only: bool

    @property
    def statement(self) -> sql.Composed:
        return g.begin(ISOLATION, read_only=self.read_only)


@dataclass(frozen=True)
class Settings:
    """``SET LOCAL`` of the export's transaction settings."""

    values: tuple[tuple[str, str], ...]

    @property
    def statements(self) -> tuple[sql.Composed, ...]:
        return tuple(g.set_local(n, v) for n, v in self.values)


@dataclass(frozen=True)
class TypeCheck:
    """One generic reference's type rows that name a table the archive cannot carry.
    The query returns (count, label, named table, status, why); status ``stale`` is a
    table that only a newer type row names (export.sql was generated before it)."""

    table: QualifiedName
    type_column: str
    id_column: str
    query: sql.Composed
    unmapped: str  # message, holes: count, label, named, why
    stale: str  # message, same holes


@dataclass(frozen=True)
class RefuseUnmappedTypes:
    """Generic ids whose type names a table that is not mapped: all gathered, the first
    shown, "(and N more)"."""

    checks: tuple[TypeCheck, ...]


@dataclass(frozen=True)
class Sampled:
    """A query returning offending rows: ``lead`` count columns, then the sample fields
    ``names`` (then, with ``times``, how often the row repeats). ``problem`` is the
    message with holes (SAMPLED_HOLES)."""

    code: str
    table: QualifiedName
    about: str  # what is asked, as a reader's comment
    query: sql.Composed
    lead: int
    names: tuple[str, ...]
    problem: Problem
    times: bool = False
    place: str = ""  # how the unsafe-data refusal's head names it
    warn: bool = False  # a warning, not a refusal (on_dangling: null or skip)
    # the refusal when the query fails on the data (a value declared JSON is not JSON)
    failed: str = ""


@dataclass(frozen=True)
class RefuseDangling:
    """Generic ids naming no row: refused under ``on_dangling: error`` (all gathered, the
    first shown), else a warning each."""

    checks: tuple[Sampled, ...]


@dataclass(frozen=True)
class RefusePlanWarnings:
    """``allow_warnings=False``: the plan's warnings refuse the export."""

    problems: tuple[str, ...]

    @property
    def message(self) -> str:
        return (
            f"{self.problems[0]}; the export was asked to allow no warnings (allow_warnings=False): "
            "fix them or allow warnings, nothing was exported"
        )


@dataclass(frozen=True)
class RefuseLoopingTrees:
    """Tree keys whose parent chain loops: the first such table refuses the export."""

    checks: tuple[Sampled, ...]


@dataclass(frozen=True)
class LikelyCandidate:
    """One table a column may hold ids of; ``query`` counts (non-NULL values, ids of it)."""

    target: QualifiedName
    query: sql.Composed
    alone: Problem  # holes: n (the count, with separators)
    more: Problem  # holes: n, also (the other tables it also matches)


@dataclass(frozen=True)
class LikelyColumn:
    """A column with no foreign key and no mapping decision whose values may all be ids of
    a table it is named after: the first candidate matched in full names the problem."""

    table: QualifiedName
    column: str
    candidates: tuple[LikelyCandidate, ...]
    place: str
    code: str = "likely-reference"


@dataclass(frozen=True)
class RefuseUnsafeData:
    """Every probe of every kind gathered, then one message: each kind's head with its
    places, ``nothing was exported``, the first problem in full, "(and N more)"."""

    checks: tuple[Sampled | LikelyColumn, ...]  # kind by kind, in ``heads`` order
    heads: tuple[tuple[str, str], ...]  # (problem code, words heading its places)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.code for c in self.checks))


@dataclass(frozen=True)
class SubsetStart:
    """The kept-key temp tables, then READ ONLY: only after that does user SQL run.
    ``rules``: each exported table's rule (the manifest's ``scope``)."""

    kept: tuple[q.KeptTable, ...]
    rules: tuple[TableScope, ...]


@dataclass(frozen=True)
class SubsetFilter:
    """One ``where`` filter, run once; a failure names the filter."""

    filter: RowFilter
    statement: sql.Composed

    @property
    def failed(self) -> str:
        return filter_failed(self.filter)


@dataclass(frozen=True)
class SubsetClosure:
    """Run every statement, ANALYZE the kept tables, again until none added a row (at
    most MAX_ROUNDS rounds, then ``overflow`` refuses)."""

    phase: str
    statements: tuple[tuple[sql.Composed, str], ...]  # (statement, what it does)
    kept: tuple[q.KeptTable, ...]
    rounds: int = MAX_ROUNDS

    @property
    def overflow(self) -> str:
        return closure_overflow(self.phase, self.statements) + NOTHING_EXPORTED


@dataclass(frozen=True)
class SubsetNeeded:
    """Rows a table exported whole needs from a kept table: once."""

    statement: sql.Composed
    what: str


@dataclass(frozen=True)
class SubsetCounts:
    """ANALYZE one kept table and count its rows (kept, in scope) for the manifest."""

    table: QualifiedName
    index: int
    kept: q.KeptTable


@dataclass(frozen=True)
class CopyOut:
    """One table's ``COPY (SELECT … JOIN …) TO STDOUT`` into its member (data file
    ``index``). ``on_snapshot_connection``: it reads a subset's temp tables, which only
    the connection that made them sees."""

    index: int
    table: QualifiedName
    statement: sql.Composed
    fields: tuple[str, ...]
    on_snapshot_connection: bool = False


@dataclass(frozen=True)
class CountEntry:
    index: int
    table: QualifiedName
    fields: tuple[str, ...]
    scope: TableScope
    kept: bool  # a subset's kept table: its rows in scope were counted (SubsetCounts)


@dataclass(frozen=True)
class Counts:
    """Each table's row count, fields and scope, written inside the snapshot: the library
    into the manifest (the rows counted from each member's text), export.sql into
    counts.copy and scope.copy."""

    entries: tuple[CountEntry, ...]


@dataclass(frozen=True)
class Commit:
    """The snapshot ends; the library publishes the archive only after it."""

    @property
    def statement(self) -> sql.Composed:
        return g.commit()


Step = Union[  # noqa: UP007 (a runtime alias)
    PinSession,
    Snapshot,
    Settings,
    RefuseUnmappedTypes,
    RefuseDangling,
    RefusePlanWarnings,
    RefuseLoopingTrees,
    RefuseUnsafeData,
    SubsetStart,
    SubsetFilter,
    SubsetClosure,
    SubsetNeeded,
    SubsetCounts,
    CopyOut,
    Counts,
    Commit,
]
REFUSALS = (RefuseUnmappedTypes, RefuseDangling, RefusePlanWarnings, RefuseLoopingTrees, RefuseUnsafeData)


@dataclass(frozen=True)
class ExportProgram:
    """``opening`` runs before the catalog is read (the plan is made on the snapshot);
    ``body`` is everything after it."""

    opening: tuple[Step, ...]
    body: tuple[Step, ...]

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.opening + self.body

    def copies(self) -> list[CopyOut]:
        return [s for s in self.body if isinstance(s, CopyOut)]

    def refusals(self) -> Iterator[Step]:
        return (s for s in self.body if isinstance(s, REFUSALS))


# -- the builder ------------------------------------------------------------------------


def export_opening(read_only: bool) -> tuple[Step, ...]:
    """The session, the snapshot and the settings: the library runs these before it reads
    the catalog; a subset export's snapshot turns READ ONLY only after its temp tables."""
    return (PinSession(tuple(g.session_statements())), Snapshot(read_only), Settings(EXPORT_SETTINGS))


def export_program(
    plan: Plan,
    catalog: Catalog,
    mapping: Mapping,
    options: ExportOptions | None = None,
    subset: SubsetSteps | None = None,
) -> ExportProgram:
    """Pure: the steps of one export of ``plan`` (generic targets known), with ``subset``
    (``subset.subset_steps``) when rows are filtered."""
    options = options or ExportOptions()
    body: list[Step] = []
    refusals: list[Step | None] = [
        unmapped_types_step(plan, catalog, mapping),
        _dangling(plan),
        RefusePlanWarnings(tuple(str(p) for p in plan.warnings))
        if not options.allow_warnings and plan.warnings
        else None,
        _looping_trees(plan),
        unsafe_data_step(plan, catalog),
    ]
    body += [r for r in refusals if r is not None]
    if subset is not None:
        body += _subset(plan, subset)
    entries: list[CountEntry] = []
    for i, tp in enumerate(plan.exported, start=1):
        keep = subset.keep(tp.table) if subset is not None else None
        statement = g.copy_out(plan, tp, options.sort_rows, keep)
        body.append(CopyOut(i, tp.table, statement, tuple(tp.field_names), keep is not None))
        scope = subset.rules[tp.table] if subset is not None else TableScope(tp.table, "whole")
        kept = subset is not None and tp.table in subset.kept
        entries.append(CountEntry(i, tp.table, tuple(tp.field_names), scope, kept))
    if entries:
        body.append(Counts(tuple(entries)))
    body.append(Commit())
    return ExportProgram(export_opening(read_only=subset is None), tuple(body))


def unmapped_types_step(plan: Plan, catalog: Catalog, mapping: Mapping) -> RefuseUnmappedTypes | None:
    """``generic_probe.discover_targets`` as a refusal: rows whose type names a table
    that is no target (unless ignored). The query knows, per table name, whether the
    plan resolves it (target), could have (stale: a table only a newer type row names,
    refused with its own advice) or cannot (refused, and why)."""
    known = set(mapping.exclude) | set(mapping.tables) | set(catalog.tables)
    checks = tuple(_type_check(gp, catalog, mapping, known) for tp in plan.exported for gp in tp.generic)
    return RefuseUnmappedTypes(checks) if checks else None


def _type_check(gp: GenericPlan, catalog: Catalog, mapping: Mapping, known: set[QualifiedName]) -> TypeCheck:
    targets = {t.table for t in gp.targets}
    facts: list[sql.Composable] = []
    for name in sorted(known, key=str):
        if name in targets:
            status, why = "target", ""
        elif target_of(catalog, mapping, name) is not None:
            status, why = "stale", ""
        else:
            status, why = "refused", why_not_a_target(catalog, mapping, name)
            if why == NO_SUCH_TABLE:
                continue  # what a name the query does not know gets
        values = (name.schema, name.name, str(name), status, why)
        facts.append(sql.SQL("({})").format(sql.SQL(", ").join(map(sql.Literal, values))))
    names: sql.Composable = (
        sql.SQL("VALUES {}").format(sql.SQL(", ").join(facts))
        if facts
        else sql.SQL("SELECT NULL::text, NULL::text, NULL::text, NULL::text, NULL::text WHERE false")
    )
    type_pk = (catalog.tables[gp.type_table].primary_key or ("id",))[0]
    query = sql.SQL(
        "SELECT q.n, q.label, coalesce(w.named, quote_ident(q.s) || '.' || quote_ident(q.t)) AS named, "
        "coalesce(w.status, 'refused') AS status, coalesce(w.why, {missing}) AS why "
        "FROM ({discover}) AS q(s, t, label, n) LEFT JOIN ({names}) AS w(s, t, named, status, why) "
        "ON w.s = q.s AND w.t = q.t "
        "WHERE NOT (q.label = ANY({ignored}::text[])) AND coalesce(w.status, 'refused') <> 'target' "
        "ORDER BY q.s, q.t, q.label"
    ).format(
        missing=sql.Literal(NO_SUCH_TABLE),
        discover=discover_types(gp, type_pk),
        names=names,
        ignored=sql.Literal(list(gp.ignore_types)),
    )
    p = unmapped_type_problem(gp, hole("count"), hole("label"), hole("named"), hole("why"))
    stale = (
        f"error: {gp.table}: {hole('count')} row(s) have a {gp.type_column} of type {hole('label')}, "
        f"which names {hole('named')}; no {gp.type_table} row named that table when this export.sql "
        f"was generated, so it cannot write their {gp.id_column}; fix: generate export.sql again "
        "(edms-pgdump sql export)"
    )
    return TypeCheck(
        gp.table, gp.type_column, gp.id_column, query, f"error: {p.table}: {p.message}; fix: {p.fix}", stale
    )


def _dangling(plan: Plan) -> RefuseDangling | None:
    checks = tuple(
        Sampled(
            "generic-dangling",
            tp.table,
            f"{tp.table} ({gp.type_column}, {gp.id_column}), on_dangling: {gp.on_dangling}",
            generic_dangling(plan, tp, gp),
            1,
            tuple(dangling_sample_names(gp)),
            dangling_problem(gp, hole("n"), hole("s")),
            warn=gp.on_dangling != "error",
        )
        for tp in plan.exported
        for gp in tp.generic
    )
    return RefuseDangling(checks) if checks else None


def looping_tree_problem(tp: TablePlan) -> Problem:
    exp = tp.tree_expansion
    assert exp is not None
    return Problem(
        "error",
        "tree-loop",
        str(tp.table),
        f"{tp.table}: {hole('n')} row(s) have a parent but no path from a root (the parent "
        f"chain loops), so their natural key cannot be written: {hole('s')}; break the loop "
        "in the data, nothing was exported",
        "break the loop in the data",
        exp.fk.columns[0],
    )


def _looping_trees(plan: Plan) -> RefuseLoopingTrees | None:
    checks: list[Sampled] = []
    for tp in plan.exported:
        query = tree_rows_off_path(tp)
        exp = tp.tree_expansion
        if query is None or exp is None:
            continue
        names = (*exp.fk.columns, *tp.tree_steps)
        p = looping_tree_problem(tp)
        checks.append(Sampled(p.code, tp.table, str(tp.table), query, 1, names, p))
    for tp in plan.exported:
        if tp.tree is not None and tp.tree.kind == "materialized_path":
            p = orphan_node_problem(tp)
            about = f"{tp.table}: every node's parent path holds a node?"
            checks.append(Sampled(p.code, tp.table, about, mp_orphans(tp), 1, (tp.tree.get("path"),), p))
    return RefuseLoopingTrees(tuple(checks)) if checks else None


def orphan_node_problem(tp: TablePlan) -> Problem:
    assert tp.tree is not None
    path = tp.tree.get("path")
    return Problem(
        "error",
        "tree-orphan",
        str(tp.table),
        f"{tp.table}: {hole('n')} node(s) of the {path} tree have no parent (no row holds their "
        f"path less its last step): {hole('s')}; their parent's key cannot be written, so they "
        "would arrive as roots; repair the tree (treebeard: Model.fix_tree()), nothing was exported",
        "repair the tree",
        path,
    )


def unsafe_data_step(plan: Plan, catalog: Catalog) -> RefuseUnsafeData | None:
    """The probes of analysis/probes.py (keys unique, likely references, references the
    archive would lose), as queries with their problems: one refusal step, run by
    ``export.run.refuse_unsafe_data`` and rendered in export.sql."""
    parts: dict[str, list[Sampled | LikelyColumn]] = {code: [] for code, _ in UNSAFE_DATA_HEADS}

    def sampled(code: str, tp: TablePlan, about: str, query: sql.Composed, lead: int, names: list[str],
                p: Problem, times: bool = False) -> None:  # fmt: skip
        parts[code].append(
            Sampled(code, tp.table, about, query, lead, tuple(names), p, times, unsafe_data_place(p, plan))
        )

    for tp in plan.exported:
        if not needs_uniqueness_proof(tp):
            continue
        p = key_not_unique_problem(tp, hole("s"), hole("values"), hole("rows"))
        names = [kf.name for kf in tp.key_fields]
        about = f"{tp.table}: natural key unique in the data?"
        sampled(p.code, tp, about, duplicate_keys_query(plan, tp), 2, names, p, times=True)
    parts["likely-reference"] += _likely_columns(plan, catalog)
    for tp in plan.exported:
        for exp in tp.expansions:
            if not null_key_ambiguous(plan, tp, exp):
                continue
            p = null_key_reference_problem(plan, tp, exp, hole("n"), hole("s"))
            about = f"{tp.table} ({', '.join(exp.columns)}): references to a NULL natural key?"
            query = null_key_references(plan, tp, exp)
            sampled(p.code, tp, about, query, 1, null_key_sample_names(tp, exp), p)
        for exp in unchecked_references(tp):
            p = missing_reference_problem(tp, exp, hole("n"), hole("s"))
            about = f"{tp.table} ({', '.join(exp.columns)}): references to rows that do not exist?"
            sampled(p.code, tp, about, missing_references(tp, exp), 1, list(exp.fk.columns), p)
        for exp in partly_nullable_references(tp, catalog):
            p = partly_null_problem(tp, exp, hole("n"), hole("s"))
            about = f"{tp.table} ({', '.join(exp.columns)}): references partly NULL?"
            query = partly_null_references(tp, exp)
            sampled(p.code, tp, about, query, 1, partly_null_sample_names(tp, exp), p)
        for ep in tp.embedded:
            parts[EMBEDDED_DANGLING].append(embedded_check(plan, tp, ep))
    checks = tuple(c for code, _ in UNSAFE_DATA_HEADS for c in parts[code])
    return RefuseUnsafeData(checks, UNSAFE_DATA_HEADS) if checks else None


def embedded_check(plan: Plan, tp: TablePlan, ep: EmbeddedPlan) -> Sampled:
    """Ids inside a JSON or text column that name no row of the table they are declared
    to name; a value the path cannot parse as JSON is refused by the column's name."""
    place = f"{tp.table}.{ep.column}"
    p = embedded_dangling_problem(tp, ep, hole("n"), hole("s"))
    what, fix = embedded_not_json(tp, ep)
    failed = f"{place}: {what}; {fix}, nothing was exported"
    names = tuple(embedded_sample_names(tp))
    about = f"{place}: ids inside naming no row of {ep.ref_table}?"
    query = embedded_dangling(plan, tp, ep)
    return Sampled(EMBEDDED_DANGLING, tp.table, about, query, 1, names, p, place=place, failed=failed)


def _likely_columns(plan: Plan, catalog: Catalog) -> list[LikelyColumn]:
    """``probes.find_likely_references``: a column whose non-NULL values are all ids of a
    table it is named after; the message names the first such table, the others after it."""
    columns: dict[tuple[QualifiedName, str], list[Candidate]] = {}
    for c in likely_reference_candidates(plan, catalog):
        columns.setdefault((c.table, c.column), []).append(c)
    out: list[LikelyColumn] = []
    for (table, column), candidates in columns.items():
        found = tuple(
            # the target's primary key is the candidate's column (likely_refs.Candidate)
            LikelyCandidate(
                c.target,
                match_counts_query(c),
                likely_reference_problem(c, hole("n"), hole("n"), (), c.target_column),
                likely_reference_problem(c, hole("n"), hole("n"), [hole("also")], c.target_column),
            )
            for c in candidates
        )
        place = unsafe_data_place(likely_reference_problem(candidates[0], 0, 0), plan)
        out.append(LikelyColumn(table, column, found, place))
    return out


def _subset(plan: Plan, subset: SubsetSteps) -> list[Step]:
    """``subset.subset_steps`` in the order the closure runs: the kept-key temp tables,
    READ ONLY, each filter once, the owned rows until nothing grows, the rows whole tables
    need, the rows kept rows need until nothing grows, then ANALYZE and the counts."""
    index = {tp.table: i for i, tp in enumerate(plan.exported, start=1)}
    kept = tuple(subset.kept.values())
    steps: list[Step] = [SubsetStart(kept, tuple(subset.rules.values()))]
    steps += [SubsetFilter(f, statement) for f, statement in subset.filters]
    if subset.owned:
        steps.append(SubsetClosure("owned rows", subset.owned, kept))
    steps += [SubsetNeeded(statement, what) for statement, what in subset.needed_from_whole]
    if subset.needed:
        steps.append(SubsetClosure("needed rows", subset.needed, kept))
    steps += [SubsetCounts(t, index[t], k) for t, k in subset.kept.items()]
    return steps


def more(n: int) -> str:
    """`` (and N more)`` after the first of ``n`` messages."""
    return f" (and {n - 1} more)" if n > 1 else ""


__all__ = [
    "EXPORT_SETTINGS",
    "EXPORT_WORK_MEM",
    "NOTHING_EXPORTED",
    "ExportProgram",
    "Step",
    "export_opening",
    "export_program",
    "fill",
    "hole",
]
