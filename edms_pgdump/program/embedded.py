"""Part of the builder: ids inside JSON or text (``embedded_references:``) resolved.

They run once every table is staged and every id is known (existing rows matched, new
rows given ids), before the first write: each natural key carried inside a column must
name a row of the archive (or, for a table the archive does not carry, of the target),
else the import stops naming the table, the column, the rows and the key; then the keys
are replaced by the target's ids in the final staging rows, which the writes read.
"""

from __future__ import annotations

from psycopg import sql

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.plan.model import Plan, TablePlan
from edms_pgdump.program.steps import Check, Execute, Message, Step
from edms_pgdump.sqlgen.common import ident
from edms_pgdump.sqlgen.embedded import by_column, import_rewrite, import_unresolved
from edms_pgdump.sqlgen.export import key_relation
from edms_pgdump.sqlgen.staging import StagingNames


def embedded_steps(
    plan: Plan,
    tp: TablePlan,
    staging: dict[QualifiedName, StagingNames],
    loaded: set[str],
    samples: int,
) -> list[Step]:
    """A key is looked up in the referenced table's staged rows (with the ids they get) and
    in the target's rows: a subset archive holds the rows its filters and references need,
    not every row named inside JSON or text. A key found in both names the same row (an
    existing row keeps its id)."""
    steps: list[Step] = []
    final = staging[tp.table].final
    for column, eps in by_column(tp).items():
        if column not in loaded:
            continue
        sources: list[sql.Composable] = []
        for ep in eps:
            ref = plan.tables[ep.ref_table]
            in_target = sql.SQL("({})").format(key_relation(plan, ref))
            source: sql.Composable = in_target
            if ep.ref_table in staging and ref.export:
                cols = sql.SQL(", ").join(
                    ident(c) for c in (*(kf.name for kf in ref.key_fields), ep.target_column)
                )
                source = sql.SQL("(SELECT {c} FROM {f} UNION ALL SELECT {c} FROM {t} AS k)").format(
                    c=cols, f=staging[ep.ref_table].final, t=in_target
                )
            sources.append(source)
            steps.append(
                Check(
                    "embedded unresolved",
                    tp.table,
                    import_unresolved(plan, tp, ep, final, source, samples),
                    (*(kf.name for kf in tp.key_fields), "key"),
                    Message(
                        f"{tp.table}: ",
                        f"; those rows of {ep.ref_table} are neither in the archive nor in the target: "
                        f"add them, or export {ep.ref_table} with the rows that name them",
                        f" natural key(s) inside {column} ({ep.ref.label}) name no row of {ep.ref_table}: ",
                    ),
                    gather=True,
                )
            )
        steps.append(Execute("embedded rewrite", tp.table, import_rewrite(plan, tp, column, final, sources)))
    return steps
