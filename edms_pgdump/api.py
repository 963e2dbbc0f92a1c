"""The public Python API: one function per CLI command, each returning a typed result.

The CLI calls exactly one of these per command and only prints what comes back, so a
script using the library gets the same validation, audit lines and history as a
shell user. Options are checked here or, for an import, once when ``ImportOptions`` is
made (``UsageError`` naming the option and what is allowed), never only by the CLI.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

import psycopg

from edms_pgdump import __version__
from edms_pgdump.analysis.check import check_archive, check_database
from edms_pgdump.archive.keys import resolve_recipients, trusted_key_paths
from edms_pgdump.archive.object_store import RemoteObject, is_s3
from edms_pgdump.archive.package import ArchiveReader
from edms_pgdump.archive.pipe import STDIN, is_stream, stdin_for_archive
from edms_pgdump.archive.signing import Signer, load_signer
from edms_pgdump.archive.stream_reader import StreamArchive
from edms_pgdump.db import connect, describe_dsn, server_error_message
from edms_pgdump.errors import DatabaseError, ImportRejected, UsageError
from edms_pgdump.export.subset import WhereArgs, describe_subset, resolve_filters, subset_rules
from edms_pgdump.export.write import export_to_archive
from edms_pgdump.load import audit
from edms_pgdump.load.audit import AuditRecord, AuditTarget
from edms_pgdump.load.copy_source import TO_OPTION, CopySource
from edms_pgdump.load.diff import diff_archives, diff_database
from edms_pgdump.load.history import HistoryHooks
from edms_pgdump.load.staging_area import drop_leftovers
from edms_pgdump.load.stream_staging import load_stream
from edms_pgdump.load.transaction import import_transaction, load_archive, verify_members
from edms_pgdump.mapping import Mapping, load_mapping
from edms_pgdump.options import ExportOptions, ImportOptions, Progress
from edms_pgdump.plan.proposals import scaffold_from_database
from edms_pgdump.results import (
    ArchivesDiffResult,
    CheckReport,
    CopyResult,
    DatabaseComparison,
    DiffResult,
    ExportResult,
    ImportReport,
    ImportResult,
    InitResult,
    InspectResult,
    Leftovers,
    PlanResult,
    RunbookResult,
    VerifyResult,
)
from edms_pgdump.runbook.scripts import (
    KINDS,
    Kind,
    describe_plan,
    explain_plan,
    plan_for,
    render_runbook,
    write_runbooks,
)
from edms_pgdump.sqlgen.where import check_columns

if TYPE_CHECKING:
    pass

MappingSource = Mapping | str | os.PathLike[str]
KeyFiles = Sequence[str | Path]


def _mapping(source: MappingSource) -> Mapping:
    """A mapping, or the path of its YAML file."""
    return source if isinstance(source, Mapping) else load_mapping(Path(source))


def _failed(record: AuditRecord, exc: BaseException) -> None:
    record.result = "failed"
    record.error = str(exc) or type(exc).__name__
    record.error_kind = type(exc).__name__


def _finish_audit(
    record: AuditRecord, target: AuditTarget, started: float, warnings: list[str]
) -> str | None:
    """Append the audit line; a file that cannot be written becomes a warning. Returns
    the file written, or None."""
    record.seconds = time.monotonic() - started
    path, warning = audit.write(target, record)
    if warning:
        warnings.append(warning)
    return str(path) if path else None


# -- export / import ----------------------------------------------------------------


def export_archive(
    dsn: str,
    mapping: MappingSource,
    output: str | Path,
    *,
    jobs: int = 1,
    compression: str = "zstd",
    level: int = 3,
    directory: bool = False,
    allow_warnings: bool = True,
    progress: Progress | None = None,
    audit_log: AuditTarget = None,
    sort_rows: bool = False,
    encrypt_to: Sequence[str] = (),
    recipients_file: KeyFiles = (),
    sign_key: str | Path | None = None,
    sign_password: str | None = None,
    where: WhereArgs = (),
    options: ExportOptions | None = None,
) -> ExportResult:
    """Export every mapped table on one snapshot, and append the outcome to the audit log.

    The options come as keywords, or as one ``ExportOptions`` (``options``, which then
    replaces them all; validated when it is made). ``allow_warnings=False`` refuses a
    plan that has warnings. ``audit_log``: a path, None for the default
    (``$EDMS_PGDUMP_AUDIT_LOG`` or the user's state directory), or False for no audit
    line. A failed export is audited too.

    ``encrypt_to`` (age1… recipients) and ``recipients_file`` encrypt the archive with age;
    ``sign_key`` (a minisign secret key; its password from ``sign_password``,
    ``$EDMS_PGDUMP_SIGN_PASSWORD`` or the terminal) signs its manifest. Keys are read
    before the database is touched.

    ``where``: (table, SQL condition) pairs, or a dict, making it a subset export (each
    replaces the mapping's ``where:`` for its table); the manifest records the filters
    and each table's ``scope``. Refused before connecting unless each is one condition.
    """
    if options is None:
        options = ExportOptions(
            jobs=jobs,
            compression=compression,
            level=level,
            directory=directory,
            allow_warnings=allow_warnings,
            sort_rows=sort_rows,
            where=where,  # type: ignore[arg-type]  # a dict or pairs, kept as pairs
            encrypt_to=tuple(encrypt_to),
            recipients_file=tuple(recipients_file),
            sign_key=sign_key,
            sign_password=sign_password,
        )
    recipients = resolve_recipients(options.encrypt_to, options.recipients_file)
    key_warnings: list[str] = []
    signer: Signer | None = None
    if options.sign_key is not None:
        signer = load_signer(options.sign_key, key_warnings, options.sign_password)
    m = _mapping(mapping)
    record = AuditRecord("export", dsn, str(output), __version__)
    started = time.monotonic()
    try:
        result = export_to_archive(
            dsn, m, output, options, progress=progress, recipients=recipients, signer=signer
        )
    except BaseException as exc:
        _failed(record, exc)
        _finish_audit(record, audit_log, started, [])
        raise
    manifest = result.manifest
    record.result = "ok"
    record.archive_id = manifest.archive_id
    record.manifest_sha256 = manifest.sha256
    record.tables = [{"table": t.table, "rows": t.rows, "bytes": t.bytes} for t in manifest.tables]
    record.db_role = manifest.source.role or None
    record.details = {"mapping_sha256": m.sha256, "snapshot": manifest.source.snapshot}
    if manifest.filters:
        record.details["filters"] = manifest.filters
    if recipients:  # public keys only: an audit line never holds a secret
        record.details["encrypted_to"] = [r.text for r in recipients]
    if signer is not None:
        record.details["signed_by"] = signer.key_id
    result.warnings[:0] = key_warnings
    result.audit_log = _finish_audit(record, audit_log, started, result.warnings)
    return result


def _history_status(hooks: HistoryHooks, report: ImportReport) -> str:
    if not hooks.enabled:
        return "off"
    if not hooks.available:
        return "skipped"
    return "recorded" if report.committed else "not recorded (rolled back)"


def import_archive(
    dsn: str,
    archive: str | Path,
    *,
    options: ImportOptions | None = None,
    progress: Progress | None = None,
    history: bool = True,
    audit_log: AuditTarget = None,
    identities: KeyFiles = (),
    trusted_keys: KeyFiles = (),
) -> ImportResult:
    """Import in one transaction, record it in ``edms_pgdump.history`` (same transaction)
    and append the outcome, committed or not, to the audit log.

    ``result.already_applied`` says the history already held this archive; ``result.history``
    what happened to the history row. With ``history=False`` the target is not touched
    beyond the mapped tables. Invalid options raise ``UsageError`` when ``ImportOptions`` is
    made, before anything is read.

    ``identities`` (age identity files) decrypt an encrypted archive while it streams.
    ``trusted_keys`` (minisign public key files, plus ``$EDMS_PGDUMP_TRUSTED_KEYS``):
    an archive that is unsigned, signed by another key or changed since is refused
    before anything is written.
    """
    opts = options or ImportOptions()
    record = AuditRecord("import", dsn, str(archive), __version__)
    record.details = {"dry_run": opts.dry_run, "committed": False, "already_applied": False}
    started = time.monotonic()
    hooks: HistoryHooks | None = None
    try:
        with _import_reader(archive, opts, identities, trusted_keys) as reader:
            manifest = reader.manifest
            record.archive_id = manifest.archive_id
            record.manifest_sha256 = manifest.sha256
            record.details["encrypted"] = reader.encrypted
            if reader.signature is not None:
                record.details["signed_by"] = reader.signature.key_id
                record.details["signature_verified"] = reader.signature.verified
            hooks = HistoryHooks(__version__, manifest.source.to_dict(), enabled=history)
            # the reader opened here is the one the import streams from: the history row
            # names the archive that was really imported
            if isinstance(reader, StreamArchive):
                report = load_stream(dsn, reader, options=opts, progress=progress, hooks=(hooks,))
            else:
                report = load_archive(dsn, reader=reader, options=opts, progress=progress, hooks=(hooks,))
            report.warnings[:0] = reader.warnings
    except BaseException as exc:
        _failed(record, exc)
        record.db_role = hooks.db_role if hooks else None
        failed_report = getattr(exc, "report", None)
        if isinstance(failed_report, ImportReport):
            record.tables = [t.to_dict() for t in failed_report.tables]
            record.details["already_applied"] = failed_report.already_applied
        _finish_audit(record, audit_log, started, [])
        raise
    _record_import(record, report, hooks)
    written = _finish_audit(record, audit_log, started, report.warnings)
    return ImportResult.of(report, _history_status(hooks, report), written)


def _record_import(record: AuditRecord, report: ImportReport, hooks: HistoryHooks) -> None:
    """An import's audit line once it ran (archive, fixture or copy): ok, with its counts."""
    record.result = "ok"
    record.db_role = hooks.db_role
    record.tables = [t.to_dict() for t in report.tables]
    record.details.update(
        committed=report.committed,
        already_applied=report.already_applied,
        inserted=report.inserted,
        updated=report.updated,
        history=hooks.available and report.committed,
    )


def _import_reader(
    archive: str | Path, opts: ImportOptions, identities: KeyFiles, trusted_keys: KeyFiles
) -> StreamArchive | ArchiveReader:
    """``-`` or ``s3://`` with one connection: read once, front to back, while it stages
    (load.stream_staging); otherwise (a file, a folder, ``-j N``) the reader."""
    keys = trusted_key_paths(trusted_keys)
    if opts.jobs <= 1 and is_stream(archive):
        return StreamArchive(stdin_for_archive(), STDIN, identities=list(identities), trusted_keys=keys)
    if opts.jobs <= 1 and isinstance(archive, str) and is_s3(archive):
        remote = RemoteObject(archive)  # one GET after another, windows growing to 4 MiB
        source = cast("IO[bytes]", remote)
        return StreamArchive(source, archive, identities=list(identities), trusted_keys=keys, owned=remote)
    return ArchiveReader(archive, identities=list(identities), trusted_keys=keys)


def copy_database(
    source: str,
    target: str,
    mapping: MappingSource,
    *,
    options: ImportOptions | None = None,
    where: WhereArgs = (),
    allow_warnings: bool = True,
    progress: Progress | None = None,
    history: bool = True,
    audit_log: AuditTarget = None,
) -> CopyResult:
    """``copy``: export ``source`` straight into ``target``'s import staging, with no archive.

    The source is read on one snapshot (the export's refusals and a ``where`` subset
    run there first); the target is written in one transaction with every check of an
    import (``options``, whose ``jobs`` also sets the source connections). Each table's
    count as the source sent it is the expected count the import proves. Two audit
    lines, an ``export`` (the source) and an ``import`` (the target), share the copy's
    id and result; the target records a history row as an import does.
    """
    opts = options or ImportOptions()
    export_opts = ExportOptions(jobs=opts.jobs, allow_warnings=allow_warnings, where=where)  # type: ignore[arg-type]
    m = _mapping(mapping)
    started = time.monotonic()
    sent = AuditRecord("export", source, f"copy to {describe_dsn(target)}", __version__)
    got = AuditRecord("import", target, f"copy from {describe_dsn(source)}", __version__)
    got.details = {"dry_run": opts.dry_run, "committed": False, "already_applied": False}
    streams = CopySource(source, m, export_opts)
    hooks: HistoryHooks | None = None
    report: ImportReport | None = None
    try:
        # the target first: refused before the source's snapshot is opened
        connect(target, option=TO_OPTION).close()
        streams.open()
        assert streams.record is not None
        for record in (sent, got):
            record.archive_id = streams.record.archive_id
            record.manifest_sha256 = streams.record.sha256
        sent.db_role = streams.record.source.role or None
        sent.details = {"mapping_sha256": m.sha256, "snapshot": streams.run.snapshot}
        if streams.record.filters:
            sent.details["filters"] = streams.record.filters
        hooks = HistoryHooks(__version__, {**streams.record.source.to_dict(), "copy": True}, enabled=history)
        report = ImportReport(streams.origin, streams.record.archive_id, describe_dsn(target), opts.dry_run)
        import_transaction(target, streams, report, opts, progress, (hooks,))
    except BaseException as exc:
        for record in (sent, got):
            _failed(record, exc)
        got.db_role = hooks.db_role if hooks else None
        failed_report = getattr(exc, "report", None)
        if isinstance(failed_report, ImportReport):
            got.tables = [t.to_dict() for t in failed_report.tables]
        sent.tables = _streamed(streams)
        _finish_audit(sent, audit_log, started, [])
        _finish_audit(got, audit_log, started, [])
        raise
    finally:
        streams.close()
    report.seconds = time.monotonic() - started
    for record in (sent, got):
        record.result = "ok"
    sent.tables = _streamed(streams)
    _record_import(got, report, hooks)
    _finish_audit(sent, audit_log, started, report.warnings)
    written = _finish_audit(got, audit_log, started, report.warnings)
    values = {f.name: getattr(report, f.name) for f in fields(ImportReport)}
    return CopyResult(
        **values,
        history=_history_status(hooks, report),
        audit_log=written,
        source=describe_dsn(source),
        snapshot=streams.run.snapshot,
        streamed=_streamed(streams),
        source_warnings=streams.warnings,
    )


def _streamed(streams: CopySource) -> list[dict[str, int | str]]:
    return [{"table": str(t), "rows": s.rows, "bytes": s.bytes} for t, s in streams.streamed.items()]


# -- archives -------------------------------------------------------------------------


def cleanup_staging(dsn: str, *, progress: Progress | None = None) -> Leftovers:
    """Drop the staging schemas (``edms_pgdump_stage_*``) that parallel imports killed
    during staging left behind; those of imports running now are left alone.
    ``progress`` hears of each table dropped."""
    conn = connect(dsn)
    try:
        return drop_leftovers(conn, progress)
    except psycopg.Error as exc:
        raise DatabaseError(f"cleanup of {describe_dsn(dsn)} failed: {server_error_message(exc)}") from None
    finally:
        conn.close()


def inspect_archive(
    archive: str | Path, *, identities: KeyFiles = (), trusted_keys: KeyFiles = ()
) -> InspectResult:
    """The manifest's facts without reading any member, and who signed it (checked when
    ``trusted_keys`` are given; ``$EDMS_PGDUMP_TRUSTED_KEYS`` is not read here)."""
    with ArchiveReader(archive, identities=list(identities), trusted_keys=list(trusted_keys)) as reader:
        return InspectResult(
            reader.origin, reader.manifest, reader.signature, reader.encrypted, list(reader.warnings)
        )


def verify_archive(
    archive: str | Path,
    dsn: str | None = None,
    *,
    identities: KeyFiles = (),
    trusted_keys: KeyFiles = (),
    progress: Progress | None = None,
) -> VerifyResult:
    """Integrity of every member; with ``dsn``, whether the database holds the same rows.

    The database comparison stages and resolves the archive like an import, then
    compares in a READ ONLY transaction: rows an import would insert are missing from
    the database, rows it would update differ. Nothing is written, no sequence moves.
    An empty ``dsn`` is an error, not a skipped comparison. ``identities`` and
    ``trusted_keys`` as for ``import_archive``: a signature that does not check out
    raises ArchiveError.
    """
    with ArchiveReader(
        archive, identities=list(identities), trusted_keys=trusted_key_paths(trusted_keys)
    ) as reader:
        integrity = verify_members(reader, progress)
        result = VerifyResult(reader.origin, integrity.archive_id, integrity.tables, integrity.damages)
        result.signature = reader.signature
        result.encrypted = reader.encrypted
        result.warnings = list(reader.warnings)
        if dsn is None or not integrity.ok:
            return result
        opts = ImportOptions(dry_run=True, on_conflict="update", constraints="keep", compare_only=True)
        try:
            # the members were just checked on this open reader: not read a second time
            imp = load_archive(dsn, reader=reader, options=opts, progress=progress, verified=integrity)
        except ImportRejected as exc:
            result.database = DatabaseComparison(describe_dsn(dsn), matches=False, error=str(exc))
            return result
    result.database = DatabaseComparison(
        target=imp.target,
        matches=imp.inserted == 0 and imp.updated == 0,
        missing=imp.inserted,
        different=imp.updated,
        tables=[t.to_dict() for t in imp.tables],
    )
    return result


# -- looking before exporting -----------------------------------------------------------


def check_mapping(
    archive: str | Path | None = None,
    *,
    dsn: str | None = None,
    mapping: MappingSource | None = None,
    identities: KeyFiles = (),
    progress: Progress | None = None,
) -> CheckReport:
    """``check``: foreign-key problems of ``mapping`` against a live database, or the same
    analysis from an archive's manifest (then give neither ``dsn`` nor ``mapping``;
    ``identities`` decrypt an encrypted archive). ``progress`` hears of each phase of the
    database analysis (the manifest's is instant)."""
    if archive is not None:
        if dsn or mapping:
            raise UsageError("check ARCHIVE reads the manifest; drop --dsn and --mapping")
        return check_archive(archive, identities=list(identities))
    if not dsn or mapping is None:
        raise UsageError("check needs --dsn and --mapping (or an ARCHIVE to check its manifest)")
    return check_database(dsn, _mapping(mapping), progress)


def plan_mapping(dsn: str, mapping: MappingSource, *, where: WhereArgs = ()) -> PlanResult:
    """``plan``: load order, expansions, cycles and the SQL of each step, against ``dsn``.

    With filters (``where`` pairs or the mapping's ``where:``), ``result.subset`` says
    which rule picks each table's rows (where, owned, needed or whole) and why."""
    m = _mapping(mapping)
    filters = resolve_filters(m, where)
    if not filters:
        return PlanResult.from_dict(explain_plan(dsn, m))
    plan, catalog = plan_for(dsn, m)
    info = describe_plan(plan, catalog)
    for f in filters.values():
        check_columns(f, {c.name: c.type for c in catalog.tables[f.table].columns})
    info["subset"] = describe_subset(subset_rules(plan, filters), plan.load_order)
    return PlanResult.from_dict(info)


def sql_runbook(
    kind: str,
    dsn: str,
    mapping: MappingSource,
    *,
    output: str | Path | None = None,
    options: ImportOptions | None = None,
) -> RunbookResult:
    """``sql``: the psql runbook ``kind`` (export or import) as text, or written into the
    folder ``output``."""
    if kind not in KINDS:
        raise UsageError(f"sql {kind!r}: use one of " + ", ".join(KINDS))
    which: Kind = "export" if kind == "export" else "import"
    m = _mapping(mapping)
    if output is None:
        return RunbookResult(which, script=render_runbook(dsn, m, which, options))
    paths = write_runbooks(dsn, m, [which], output, options)
    return RunbookResult(which, written=[str(p) for p in paths])


def init_mapping(
    dsn: str | None,
    *,
    output: str | Path | None = None,
    force: bool = False,
    django: str | None = None,
    include_apps: tuple[str, ...] = (),
) -> InitResult:
    """``init``: a first mapping from the database's unique keys, written to ``output``
    (refused if it exists, unless ``force``) or only returned.

    ``django``: a settings module; the mapping is then written from the project's models
    (``natural_key()``, generic foreign keys, M2M through tables; the database is the
    project's own unless ``dsn`` is given) and checked: ``result.problems`` says why
    ``check`` would refuse it (``django_init.DjangoInitResult``).
    """
    out = Path(output) if output is not None else None
    if out is not None and out.exists() and not force:
        raise UsageError(f"{out} exists; pass --force to overwrite it (or another --output)")
    result: InitResult | None = None
    if django:
        from edms_pgdump.django.scaffold import init_from_django

        result = init_from_django(django, dsn, tuple(include_apps))
        text, guesses = result.mapping, result.tables
    elif dsn is None:
        raise UsageError("init needs --dsn (or --django SETTINGS to read a Django project's models)")
    else:
        text, guesses = scaffold_from_database(dsn)
    if out is not None:
        try:
            out.write_text(text)
        except OSError as exc:
            raise UsageError(
                f"{out}: cannot write the mapping ({exc.strerror}); pick another --output"
            ) from None
    if result is not None:
        result.output = str(out) if out else None
        return result
    return InitResult(text, {str(n): k for n, k in guesses.items()}, str(out) if out else None)


# -- Django ---------------------------------------------------------------------------


def import_fixture(
    dsn: str,
    fixture: str | Path,
    mapping: MappingSource,
    *,
    options: ImportOptions | None = None,
    tables: dict[str, str] | None = None,
    progress: Progress | None = None,
    history: bool = True,
    audit_log: AuditTarget = None,
) -> ImportResult:
    """``import-fixture``: restore a Django JSON fixture (``dumpdata``, natural keys or
    pks, plain, .gz or .zst) through the same import program as ``import``: one
    transaction, counts proven, unresolved references named, history and audit recorded.

    ``tables``: ``{"app.model": "schema.table"}`` for models whose table is not Django's
    default ``app_model`` (``"app.model.field"`` names an M2M's through table).
    """
    from edms_pgdump.django.fixture_import import import_fixture_file, parse_table_overrides

    opts = options or ImportOptions()
    overrides = parse_table_overrides([f"{k}={v}" for k, v in (tables or {}).items()])
    m = _mapping(mapping)
    # its own operation, so an audit line tells a fixture restore from an archive import
    record = AuditRecord("import-fixture", dsn, str(fixture), __version__)
    record.details = {
        "source": "django-fixture",
        "dry_run": opts.dry_run,
        "committed": False,
        "already_applied": False,
    }
    started = time.monotonic()
    hooks = HistoryHooks(__version__, {"fixture": str(fixture)}, enabled=history)
    try:
        report = import_fixture_file(
            dsn, fixture, m, options=opts, tables=overrides, progress=progress, hooks=(hooks,)
        )
    except BaseException as exc:
        _failed(record, exc)
        record.db_role = hooks.db_role
        failed_report = getattr(exc, "report", None)
        if isinstance(failed_report, ImportReport):
            record.tables = [t.to_dict() for t in failed_report.tables]
        _finish_audit(record, audit_log, started, [])
        raise
    record.archive_id = report.archive_id
    _record_import(record, report, hooks)
    record.details["mapping_sha256"] = m.sha256
    written = _finish_audit(record, audit_log, started, report.warnings)
    return ImportResult.of(report, _history_status(hooks, report), written)


__all__ = [
    "check_mapping",
    "export_archive",
    "import_archive",
    "import_fixture",
    "init_mapping",
    "inspect_archive",
    "plan_mapping",
    "sql_runbook",
    "verify_archive",
]


def diff(
    archive: str | Path,
    other: str | Path | None = None,
    *,
    dsn: str | None = None,
    identities: KeyFiles = (),
    trusted_keys: KeyFiles = (),
    sample_size: int = 5,
    progress: Progress | None = None,
) -> DiffResult | ArchivesDiffResult:
    """``diff``: ``archive`` against the database at ``dsn`` (read only, by natural key,
    with sample keys), or against a second archive ``other`` (no database)."""
    if (dsn is None) == (other is None):
        raise UsageError(
            "diff compares an archive with a database (--dsn) or with a second archive: give one of them"
        )
    if other is not None:
        return diff_archives(archive, other, identities=identities, trusted_keys=trusted_keys)
    assert dsn is not None
    return diff_database(
        dsn,
        archive,
        identities=identities,
        trusted_keys=trusted_keys,
        sample_size=sample_size,
        progress=progress,
    )


def plan_archive(
    archive: str | Path,
    dsn: str,
    *,
    identities: KeyFiles = (),
    trusted_keys: KeyFiles = (),
    ignore_columns: Sequence[str] = (),
    skip_tables: Sequence[str] = (),
) -> PlanResult:
    """``plan ARCHIVE --dsn TARGET``: the archive's plan against the target's schema, with
    every schema drift shown before anything is written (raises SchemaDriftError naming
    all of them; what is allowed comes back as warnings)."""
    from edms_pgdump.catalog.read import read_catalog
    from edms_pgdump.db import connect
    from edms_pgdump.load.prepare import prepare_import

    with ArchiveReader(
        archive, identities=list(identities), trusted_keys=trusted_key_paths(trusted_keys)
    ) as reader:
        conn = connect(dsn)
        try:
            catalog = read_catalog(conn)
        finally:
            conn.close()
        prep = prepare_import(reader.manifest, catalog, str(archive), ignore_columns, skip_tables)
    info = describe_plan(prep.plan, catalog)
    info["problems"] = list(info["problems"]) + [
        {
            "severity": "warning",
            "code": "schema-drift",
            "table": w.split(": ", 1)[0],
            "column": None,
            "message": w.split(": ", 1)[-1],
            "fix": "",
        }
        for w in prep.warnings
        if not w.startswith("warning:")
    ]
    return PlanResult.from_dict(info)
