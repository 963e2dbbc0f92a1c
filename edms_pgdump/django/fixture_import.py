"""``import-fixture``: a Django JSON fixture through the same import program as an archive.

The fixture is read and turned into per-table COPY spools inside the import's
transaction (the plan needs the target's catalog); then ``load.import_transaction``
stages, resolves, upserts and verifies exactly as ``import`` does, so the guarantees are
the same: one transaction, counts proven, unresolved references named, history recorded
in the same transaction.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edms_pgdump.catalog.names import QualifiedName, parse_qualified_name
from edms_pgdump.catalog.read import Catalog
from edms_pgdump.db import Connection, describe_dsn
from edms_pgdump.django.fixture_paths import KEY, NAME_FIELDS
from edms_pgdump.django.fixture_plan import FixtureReader, FixtureSpool, KeptIds
from edms_pgdump.django.fixture_read import FixtureError
from edms_pgdump.errors import UsageError
from edms_pgdump.load.transaction import ImportHooks, ImportInput, import_transaction
from edms_pgdump.mapping import Mapping
from edms_pgdump.options import ImportOptions, Progress
from edms_pgdump.plan.build import build_plan
from edms_pgdump.plan.generic import target_of
from edms_pgdump.plan.model import Plan
from edms_pgdump.program.steps import Program, Step
from edms_pgdump.results import ImportReport
from edms_pgdump.sqlgen.fixture import kept_ids_elsewhere, kept_ids_missing, kept_ids_named, tree_nodes


def parse_table_overrides(items: list[str] | tuple[str, ...] | None) -> dict[str, QualifiedName]:
    """``--table app.model=schema.table`` (or ``app.model.field=schema.table`` for an M2M's
    through table), for tables that do not follow Django's ``app_model`` naming."""
    out: dict[str, QualifiedName] = {}
    for item in items or ():
        label, sep, table = item.partition("=")
        if not sep or "." not in label or not table:
            raise UsageError(
                f"--table {item!r}: expected app.model=schema.table, e.g. auth.user=public.auth_user"
            )
        try:
            out[label.lower()] = parse_qualified_name(table)
        except ValueError as exc:
            raise UsageError(f"--table {item!r}: {exc}") from None
    return out


class _FixtureSource(ImportHooks):
    """A fixture as the transaction reads it: surveyed and spooled as COPY text once the
    target's catalog is known (the plan needs it); after the program, its kept generic
    ids are checked."""

    area_key = None

    def __init__(self, path: Path, mapping: Mapping, tables: dict[str, QualifiedName] | None) -> None:
        self.path = path
        self.mapping = mapping
        self.tables = tables
        self.what = f"import of {path}"
        self.spool: FixtureSpool | None = None
        self.checked: tuple[FixtureReader, Catalog, Mapping] | None = None

    def prepare(
        self, conn: Connection, catalog: Catalog, options: ImportOptions, report: ImportReport
    ) -> ImportInput:
        t0 = time.perf_counter()
        mapping = self.mapping
        types = tuple(mapping.types.values())
        first = build_plan(mapping, catalog)
        reader = FixtureReader(self.path, first, catalog, mapping.exclude, self.tables, types)
        reader.survey()
        reader.keep_ids()
        run_mapping = reader.mapping_keeping_ids(mapping)
        plan = build_plan(run_mapping, catalog, reader.generic_targets())
        plan.raise_for_errors()
        reader.rebind(plan)
        reader.target_tree = lambda table: target_tree(conn, catalog, reader.plan, table)
        reader.shape_all()
        report.profile.append({"step": "read fixture", "seconds": round(time.perf_counter() - t0, 4)})
        report.archive_id = f"fixture:{reader.sha256}"
        t0 = time.perf_counter()
        self.spool = spool = reader.spool()
        report.profile.append({"step": "spool fixture", "seconds": round(time.perf_counter() - t0, 4)})
        report.warnings.extend(reader.warnings)
        report.warnings.extend(str(p) for p in plan.warnings)
        self.checked = (reader, catalog, run_mapping)
        return ImportInput(catalog, plan, spool.loaded, spool, report.archive_id, reader.sha256)

    def after_program(self, conn: Connection, program: Program, report: ImportReport) -> Sequence[Step]:
        assert self.checked is not None
        reader, catalog, run_mapping = self.checked
        assert program.plan is not None
        check_kept_ids(conn, reader, catalog, run_mapping, program.plan, report, program.options.sample_size)
        return ()


def import_fixture_file(
    dsn: str,
    fixture: str | Path,
    mapping: Mapping,
    *,
    options: ImportOptions | None = None,
    tables: dict[str, QualifiedName] | None = None,
    progress: Progress | None = None,
    hooks: Sequence[ImportHooks] = (),
) -> ImportReport:
    """Restore ``fixture`` into ``dsn`` in one transaction (``load.import_transaction``);
    raise on any problem, having written nothing."""
    opts = options or ImportOptions()
    path = Path(fixture)
    if not path.is_file():
        raise FixtureError(f"{path}: no such fixture file; check the path")
    started = time.monotonic()
    report = ImportReport(str(path), "", describe_dsn(dsn), opts.dry_run)
    source = _FixtureSource(path, mapping, tables)
    try:
        import_transaction(dsn, source, report, opts, progress, (source, *hooks))
    finally:
        if source.spool is not None:
            source.spool.close()
        report.seconds = time.monotonic() - started
    return report


def target_tree(
    conn: Connection, catalog: Catalog, plan: Plan, table: QualifiedName
) -> list[dict[str, Any]] | None:
    """The target's nodes of ``table`` when it is a materialized-path tree (``path`` and
    ``depth`` columns, a one-column primary key), for paths of ancestors' names the fixture
    does not resolve (``FixtureReader.in_target_tree``); None otherwise."""
    t = catalog.tables.get(table)
    if t is None or table not in plan.tables or not t.primary_key or len(t.primary_key) != 1:
        return None
    if t.column("path") is None or t.column("depth") is None:
        return None
    names = tuple(n for n in NAME_FIELDS if t.column(n) is not None)
    if not names:
        return None
    key = len(plan.tables[table].key_fields)
    rows = conn.execute(tree_nodes(plan, table, t.primary_key[0], ("path", "depth"), names)).fetchall()
    return [
        {
            "path": r[0],
            "depth": r[1],
            **dict(zip(names, r[2 : 2 + len(names)])),
            KEY: r[2 + len(names) : 2 + len(names) + key],
        }
        for r in rows
    ]


def check_kept_ids(
    conn: Connection,
    reader: FixtureReader,
    catalog: Catalog,
    mapping: Mapping,
    plan: Plan,
    report: ImportReport,
    samples: int,
) -> None:
    """After the load, before COMMIT: the generic ids kept as they are (``KeptIds``). Ids
    that name no row of their table are refused, each group named (loaddata would write
    them, pointing at nothing), and so are ids that name a row whose natural key is none of
    the fixture's objects of that type (a row of the target's own: certainly not the one
    the id named in the source); the others are named in a warning with the row each one
    names now, since the file cannot show that it is the row it named in the source."""
    problems: list[str] = []
    refused: list[str] = []
    for kept in sorted(reader.kept.values(), key=lambda k: (str(k.table), k.id_column, k.type_name)):
        if not kept.ids:
            continue
        target = target_of(catalog, mapping, kept.target)
        if target is None:
            problems.append(
                f"{_what(kept)}: {kept.target} has no one-column primary key, so they cannot be checked"
            )
            refused.append(kept.type_name)
            continue
        params = {"ids": list(kept.ids), "samples": samples}
        missing = conn.execute(kept_ids_missing(kept.target, target.id_column), params).fetchall()
        if missing:
            shown = ", ".join(f"{r[1]} (in {kept.ids[r[1]]})" for r in missing)
            more = f" and {missing[0][0] - len(missing)} more" if missing[0][0] > len(missing) else ""
            problems.append(
                f"{missing[0][0]} of the {_what(kept)} name no row of {kept.target} after the "
                f"import: {shown}{more}"
            )
            refused.append(kept.type_name)
            continue
        keyed = {**params, "keys": reader.kept_keys.get(kept.target, [])}
        elsewhere = conn.execute(kept_ids_elsewhere(plan, kept.target, target.id_column), keyed).fetchall()
        if elsewhere:
            shown = ", ".join(f"{r[1]} (in {kept.ids[r[1]]}) names {r[2]}" for r in elsewhere)
            more = f" and {elsewhere[0][0] - len(elsewhere)} more" if elsewhere[0][0] > len(elsewhere) else ""
            problems.append(
                f"{elsewhere[0][0]} of the {_what(kept)} name a row of {kept.target} that is none of the "
                f"fixture's {kept.type_name} objects (the target's own) after the import: {shown}{more}"
            )
            refused.append(kept.type_name)
            continue
        key = tuple(kf.name for kf in plan.tables[kept.target].key_fields)
        named = conn.execute(kept_ids_named(plan, kept.target, target.id_column), params).fetchall()
        shown = ", ".join(f"{r[1]} -> {r[2] if len(key) == 1 else f'({r[2]})'}" for r in named)
        more = f" and {len(kept.ids) - len(named)} more" if len(kept.ids) > len(named) else ""
        report.warnings.append(
            f"{_what(kept)} are kept as they are, as loaddata keeps them: {_why(kept.type_name)}. "
            f"Each names the {kept.target} row with that id here (id -> {', '.join(key)}: {shown}{more}), "
            f"which is the row it named in the source only if every {kept.type_name} got the id it had "
            "there; dump with --natural-foreign alone to have them resolved by natural key"
        )
    if problems:
        why = _why(refused[0])
        message = (
            f"{reader.path}: {problems[0]}. {why[0].upper()}{why[1:]}; loaddata would write these ids "
            "as they are, pointing at nothing or at other rows. Dump with --natural-foreign alone "
            "(objects keep their pks and each id is resolved by natural key); nothing was imported"
        )
        raise FixtureError(message, [message, *(f"{reader.path}: {p}" for p in problems[1:])])


def _what(kept: KeptIds) -> str:
    return f"{len(kept.ids)} generic id(s) in {kept.table}.{kept.id_column} of type {kept.type_name}"


def _why(type_name: str) -> str:
    return (
        f"the fixture's {type_name} objects carry no pk (dumped with --natural-primary), so these "
        "are the source database's ids and the file does not say which object each one named"
    )
