"""Round trips on real-shaped schemas (issues 10 and 16): compare two databases through
natural values, push a target's ids far away from the source's, and read the server's
counters that say whether a command wrote anything.

"Identical through natural values": every mapped table read with the export's own query
(surrogate ids dropped, references replaced by the referenced row's natural key), sorted.
Two databases whose rows differ only in their ids give the same lists.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from edms_pgdump import export_archive, import_archive, load_mapping_text
from edms_pgdump.catalog.read import read_catalog
from edms_pgdump.options import ImportOptions
from edms_pgdump.plan.build import TablePlan, build_plan
from edms_pgdump.results import ImportReport, TableResult
from edms_pgdump.sqlgen import export_query

NewDb = Callable[..., str]
Rows = list[tuple[Any, ...]]
Keyed = dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]  # table -> natural key -> row

# Target sequences start here, far from the source's ids, so an id carried raw points
# at nothing (or at an unrelated row) and the comparison by natural values catches it.
FAR = 100_000


def make_db(new_db: NewDb, *statements: str) -> str:
    dsn: str = new_db()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for stmt in statements:
            conn.execute(stmt.encode())
    return dsn


def run(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for stmt in statements:
            conn.execute(stmt.encode())


def fetch(dsn: str, query: str) -> Rows:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return list(conn.execute(query.encode()).fetchall())


def push_sequences(dsn: str, value: int = FAR) -> None:
    """Every sequence of the database to ``value``: new rows get ids the source never had."""
    run(
        dsn,
        "SELECT setval(format('%I.%I', schemaname, sequencename), " + str(int(value)) + ") FROM pg_sequences",
    )


def _hashable(value: Any) -> Any:
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def _field_names(tp: TablePlan) -> list[str]:
    """The export query's output columns, in its order (as ``sqlgen.export_query`` names them)."""
    names: list[str] = []
    seen: set[str] = set()
    for f in tp.fields:
        if f.role == "column":
            names.append(f.name)
        elif f.reference is not None and f.reference not in seen:
            seen.add(f.reference)
            exp = tp.expansion(f.reference)
            names.extend(kf.name for kf in exp.fields)
            names.extend(n.name for n in tp.fields if n.reference == f.reference and n.name not in names)
    return names


def natural_rows(dsn: str, mapping_text: str) -> dict[str, Rows]:
    """Every exported table of the mapping, read with the export's query on ``dsn``'s
    own catalog, rows sorted: equal for databases that differ only in their ids."""
    return {t: sorted(rows.values(), key=repr) for t, rows in keyed_rows(dsn, mapping_text).items()}


def keyed_rows(dsn: str, mapping_text: str) -> Keyed:
    """Like ``natural_rows``, each row under its natural key (asserted unique)."""
    mapping = load_mapping_text(mapping_text)
    out: Keyed = {}
    with psycopg.connect(dsn) as conn:
        conn.execute("SET DateStyle = ISO; SET TimeZone = 'UTC'; SET extra_float_digits = 3")
        plan = build_plan(mapping, read_catalog(conn))
        for tp in plan.exported:
            if not tp.export:
                continue
            names = _field_names(tp)
            at = [names.index(kf.name) for kf in tp.key_fields if kf.name in names]
            assert at, f"{tp.table}: no key field among {names}"
            rows = [tuple(_hashable(v) for v in r) for r in conn.execute(export_query(plan, tp)).fetchall()]
            keyed = {tuple(r[i] for i in at): r for r in rows}
            assert len(keyed) == len(rows), f"{tp.table}: natural key not unique in {dsn}"
            out[str(tp.table)] = keyed
    return out


def assert_union(before: dict[str, Rows], source: dict[str, Rows], after: dict[str, Rows]) -> None:
    """The target after the import holds exactly the source's rows plus the rows it held
    before that the source does not have (same natural values; nothing lost, nothing
    doubled). Rows are compared whole: pass ``keyed_rows`` results when the source
    updates rows the target held (``assert_keyed_union``)."""
    assert sorted(after) == sorted(source)
    for table, rows in source.items():
        expected = Counter(rows) | Counter(before.get(table, []))
        got = Counter(after[table])
        missing = expected - got
        extra = got - expected
        assert not missing and not extra, (
            f"{table}: missing {sorted(missing, key=repr)[:5]}, unexpected {sorted(extra, key=repr)[:5]}"
        )


def assert_keyed_union(before: Keyed, source: Keyed, after: Keyed) -> None:
    """The target after the import: its rows from before, each replaced by the source's
    row with the same natural key, plus the source's new rows; nothing else."""
    assert sorted(after) == sorted(source)
    for table, rows in source.items():
        expected = {**before.get(table, {}), **rows}
        got = after[table]
        missing = {k: v for k, v in expected.items() if got.get(k) != v}
        extra = [k for k in got if k not in expected]
        assert not missing and not extra, (
            f"{table}: expected but not found {sorted(missing.items(), key=repr)[:5]}, "
            f"unexpected keys {sorted(extra, key=repr)[:5]}"
        )


def export_and_import(
    src: str,
    dst: str,
    mapping_text: str,
    workdir: Path,
    options: ImportOptions | None = None,
    name: str = "a.edmsdump",
) -> tuple[ImportReport, float]:
    """Export ``src``, import into ``dst``; the report and the import's wall time."""
    archive = workdir / name
    export_archive(src, load_mapping_text(mapping_text), archive, audit_log=False)
    started = time.monotonic()
    report = import_archive(dst, archive, options=options, audit_log=False)
    return report, time.monotonic() - started


def table_result(report: ImportReport, table: str) -> TableResult:
    found = [t for t in report.tables if t.table == table]
    assert found, f"{table} not in the report: {[t.table for t in report.tables]}"
    return found[0]


def counts(report: ImportReport, table: str) -> tuple[int, int, int, int]:
    """(expected, inserted, updated, unchanged) of one table."""
    t = table_result(report, table)
    assert t.balanced, t.to_dict()
    return t.expected, t.inserted, t.updated, t.unchanged


def sequence_values(dsn: str) -> dict[str, Any]:
    """last_value of every sequence of the user's schemas (not the tool's history)."""
    return {
        f"{r[0]}.{r[1]}": r[2]
        for r in fetch(
            dsn,
            "SELECT schemaname, sequencename, last_value FROM pg_sequences"
            " WHERE schemaname <> 'edms_pgdump' ORDER BY 1, 2",
        )
    }


def table_snapshot(dsn: str, *tables: str) -> dict[str, Rows]:
    """Every row of each table, ids included, sorted: equal means nothing was written."""
    return {t: sorted(fetch(dsn, f"SELECT * FROM {t}"), key=repr) for t in tables}


def inserted_tuples(dsn: str) -> dict[str, int]:
    """n_tup_ins of every user table (rolled-back inserts count too), from a fresh
    statistics snapshot."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        got = conn.execute(
            "SELECT schemaname || '.' || relname, n_tup_ins FROM pg_stat_user_tables"
            " WHERE schemaname NOT LIKE 'pg\\_temp%' AND schemaname <> 'edms_pgdump' ORDER BY 1"
        ).fetchall()
    return {str(r[0]): int(r[1]) for r in got}


def settled_inserted_tuples(dsn: str, seconds: float = 2.5) -> dict[str, int]:
    """n_tup_ins once the other sessions' counters have been flushed: a backend reports
    them at most once a second, and at exit shortly after its client has gone."""
    time.sleep(seconds)
    return inserted_tuples(dsn)


def wait_for_inserted(dsn: str, table: str, above: int, timeout: float = 15.0) -> int:
    """Poll until ``table``'s n_tup_ins exceeds ``above`` (proves the counter moves)."""
    deadline = time.monotonic() + timeout
    value = inserted_tuples(dsn).get(table, 0)
    while value <= above and time.monotonic() < deadline:
        time.sleep(0.3)
        value = inserted_tuples(dsn).get(table, 0)
    return value


def error_text(exc: BaseException) -> str:
    """The message of an error plus the problems and report lines it carries."""
    parts = [str(exc)]
    parts.extend(str(p) for p in getattr(exc, "problems", None) or [])
    report = getattr(exc, "report", None)
    if report is not None:
        parts.extend(str(p) for p in getattr(report, "problems", None) or [])
    return "\n".join(parts)
