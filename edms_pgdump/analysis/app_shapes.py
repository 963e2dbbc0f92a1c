"""``check`` findings about what an application keeps where the plan cannot see it.

Why: a Django CMS (Wagtail) stores data the mapping does not describe, and every
command would say OK while it goes wrong:

- tables under ``exclude:`` that hold rows (tags, page history, links left out of
  ``init --django``'s mapping): their rows are in no archive;
- tree positions (django-treebeard's ``path``/``depth``/``numchild``, django-mptt's
  ``lft``/``rght``/``tree_id``/``level``): they travel as the source's values, so a node
  lands at the source's position in the target, under whatever node holds it there, and
  the ancestors' counters are not recomputed;
- ids inside JSON or text (StreamField chooser blocks, rich-text links and embeds,
  revision content): they travel raw and name other rows after a re-initialisation.

Each is a warning naming the table, the column and what the user can do. A column the
mapping lists under ``raw_columns:`` was acknowledged, and one declared under
``embedded_references:`` travels by natural key: neither is reported again.
"""

from __future__ import annotations

import psycopg

from edms_pgdump.catalog.read import Catalog, Table
from edms_pgdump.db import Connection
from edms_pgdump.errors import sample_keys
from edms_pgdump.mapping import Mapping
from edms_pgdump.plan.model import EmbeddedPlan, Plan, Problem, TablePlan
from edms_pgdump.sqlgen.export import embedded_dangling
from edms_pgdump.sqlgen.shapes import can_select, embedded_ids, row_count

# (library, the columns that store a node's position, the mapping's tree: declaration for
# it, or how to repair the tree afterwards when there is none)
TREES = (
    (
        "django-treebeard (materialized path)",
        ("path", "depth", "numchild"),
        "declare tree: {kind: materialized_path} (the importer then places new nodes and counts)",
    ),
    (
        "django-treebeard (nested sets)",
        ("lft", "rgt", "tree_id", "depth"),
        "repair it with a rebuild of the tree",
    ),
    (
        "django-mptt",
        ("lft", "rght", "tree_id", "level"),
        "declare tree: {kind: nested_set} (the importer then renumbers the trees it touches)",
    ),
)
_TEXT_TYPES = ("json", "jsonb", "text")


def excluded_with_rows(conn: Connection, mapping: Mapping, catalog: Catalog) -> list[Problem]:
    """A warning, with its row count, for every excluded table that holds rows."""
    out: list[Problem] = []
    for name in sorted(mapping.exclude):
        if catalog.get(name) is None:
            continue
        if not conn.execute(can_select(name)).fetchone()[0]:  # type: ignore[index]
            out.append(uncounted_problem(str(name)))
            continue
        count = int(conn.execute(row_count(name)).fetchone()[0])  # type: ignore[index]
        if count:
            out.append(excluded_problem(str(name), count))
    return out


def excluded_problem(table: str, count: int) -> Problem:
    return Problem(
        "warning",
        "excluded-has-rows",
        table,
        f"{count} row(s) are left out of every export: the table is listed under exclude:",
        "if they are content, map the table under tables: with a natural_key; keep it under "
        "exclude: only for state the target rebuilds or never needs (sessions, a search index)",
    )


def uncounted_problem(table: str) -> Problem:
    return Problem(
        "warning",
        "excluded-uncounted",
        table,
        "this role may not read the excluded table, so whether it holds rows left out of every "
        "export is not known",
        f"check it as a role that may: SELECT count(*) FROM {table};",
    )


def tree_kind(table: Table) -> tuple[str, tuple[str, ...], str] | None:
    names = {c.name for c in table.columns}
    return next((t for t in TREES if set(t[1]) <= names), None)


def _exported_columns(tp: TablePlan) -> set[str]:
    return {f.column for f in tp.fields if f.role == "column" and f.column is not None} - set(tp.raw_columns)


def tree_position_problems(plan: Plan, catalog: Catalog) -> list[Problem]:
    out: list[Problem] = []
    for tp in plan.exported:
        table = catalog.get(tp.table)
        kind = tree_kind(table) if table is not None else None
        if kind is None or tp.tree is not None:
            continue
        library, positions, repair = kind
        carried = [c for c in positions if c in _exported_columns(tp)]
        if not carried:
            continue
        out.append(
            Problem(
                "warning",
                "tree-position",
                str(tp.table),
                f"{', '.join(carried)} store each node's position in a {library} tree: they travel as "
                "the source's values, so an inserted node takes the source's position in the target "
                "(under whatever node holds its parent's position there, or refused by a unique "
                "index when the target's own nodes are there) and ancestors' counters are not "
                "recomputed (a materialized path left inconsistent is refused by the import)",
                f"{repair}; or import such a tree only into a target whose own nodes are at other "
                f"positions and list {', '.join(carried)} under raw_columns: to acknowledge",
                carried[0],
            )
        )
    return out


def embedded_id_problems(conn: Connection, plan: Plan, catalog: Catalog) -> list[Problem]:
    """Exported JSON and text columns whose values hold integers under keys like ``id``,
    ``image``, ``page``, ``document``, or rich-text ``linktype``/``embedtype`` ids."""
    out: list[Problem] = []
    for tp in plan.exported:
        table = catalog.get(tp.table)
        if table is None:
            continue
        declared = {ep.column for ep in tp.embedded}
        for name in sorted(_exported_columns(tp) - declared):
            col = table.column(name)
            base = (col.base_type or col.type) if col is not None else ""
            if base not in _TEXT_TYPES and not base.startswith("character varying"):
                continue
            read, hits, example = conn.execute(embedded_ids(tp.table, name)).fetchone()  # type: ignore[misc]
            if hits:
                out.append(embedded_problem(str(tp.table), name, int(hits), int(read), str(example)))
    return out


def embedded_problem(table: str, column: str, hits: int, read: int, example: str) -> Problem:
    return Problem(
        "warning",
        "embedded-ids",
        table,
        f"{hits} of {read} row(s) read hold ids inside {column} (such as {example[:80]!r}): ids in "
        "JSON or text travel as they are and name other rows (or none) after a re-initialisation",
        f"declare them under embedded_references: of {table} (for each kind of id: column: {column}, "
        "json: a path to the ids such as '$[*] ? (@.type == \"image\").value', or pattern: a regular "
        'expression with one group such as \'<a linktype="page" id="(\\d+)"\', and table: the table '
        f"they name; see docs/mapping.md), or list {column} under raw_columns: to acknowledge that they "
        "travel as they are",
        column,
    )


EMBEDDED_DANGLING = "embedded-dangling"


def embedded_dangling_problem(tp: TablePlan, ep: EmbeddedPlan, count: object, samples: str) -> Problem:
    """Ids inside a declared column that name no row of the table they are declared to name
    (refused at export; ``check`` says so first)."""
    return Problem(
        "error",
        EMBEDDED_DANGLING,
        str(tp.table),
        f"{count} id(s) inside {ep.column} ({ep.ref.label}) name no row of {ep.ref_table}: "
        f"{samples}; they would travel as they are and name another row, or none, in the target",
        f"fix or remove those ids in the rows named (or restore the {ep.ref_table} rows they name)",
        ep.column,
    )


def embedded_not_json(tp: TablePlan, ep: EmbeddedPlan) -> tuple[str, str]:
    """(what, fix) when a value the path must parse is not JSON."""
    return (
        f"a value is not JSON, so the ids declared inside {ep.column} (embedded_references: "
        f"{ep.ref.label}) cannot be read",
        f"fix the value, or correct the json: path of {tp.table}",
    )


def embedded_sample_names(tp: TablePlan) -> list[str]:
    return [*(kf.name for kf in tp.key_fields), "id"]


def embedded_dangling_problems(conn: Connection, plan: Plan, samples: int = 5) -> list[Problem]:
    """What the export would refuse about declared ids inside JSON or text: ids naming no
    row, and values that are not JSON (each probe in a savepoint, so one such value does
    not end the check)."""
    out: list[Problem] = []
    for tp in plan.exported:
        for ep in tp.embedded:
            conn.execute("SAVEPOINT edms_embedded")
            try:
                rows = conn.execute(embedded_dangling(plan, tp, ep, samples)).fetchall()
            except psycopg.DataError:
                conn.execute("ROLLBACK TO SAVEPOINT edms_embedded")
                what, fix = embedded_not_json(tp, ep)
                out.append(Problem("error", EMBEDDED_DANGLING, str(tp.table), what, fix, ep.column))
                continue
            conn.execute("RELEASE SAVEPOINT edms_embedded")
            if rows:
                keys = sample_keys((r[1:] for r in rows), embedded_sample_names(tp))
                out.append(embedded_dangling_problem(tp, ep, rows[0][0], keys))
    return out
