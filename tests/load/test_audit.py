"""Audit trail and history table, against a real PostgreSQL (no mocks).

The audit log is a local JSON-lines file written for every export and import,
including failed ones; the history table lives in the target and exists if and only
if an import committed.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import conninfo

from edms_pgdump import (
    ImportOptions,
    ImportRejected,
    __version__,
    export_archive,
    import_archive,
    load_mapping,
    read_audit_log,
    read_history,
)
from edms_pgdump.archive.package import ArchiveReader
from edms_pgdump.db import describe_dsn
from edms_pgdump.demo.resources import sample_mapping_path
from edms_pgdump.demo.servers import Server
from edms_pgdump.load.audit import ENV_VAR, default_audit_path, resolve_audit_path

SOURCE_COUNTS = {
    "public.users": 10,
    "public.documents": 200,
    "public.document_versions": 400,
    "public.document_workflows": 200,
}
LINE_KEYS = {
    "ts",
    "operation",
    "result",
    "error",
    "error_kind",
    "os_user",
    "client_host",
    "db_role",
    "database",
    "archive",
    "archive_id",
    "manifest_sha256",
    "tables",
    "rows",
    "seconds",
    "tool_version",
}


@pytest.fixture(autouse=True)
def _no_default_audit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never write to the developer's real audit log from a test."""
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env-default-audit.jsonl"))


def _dsn_with(dsn: str, **changes: str) -> str:
    params = {**conninfo.conninfo_to_dict(dsn), **changes}
    return conninfo.make_conninfo(**{k: v for k, v in params.items() if v is not None})  # type: ignore[arg-type]


def _with_password(dsn: str) -> str:
    """The same DSN with a password (ignored by trust auth) that must never be logged."""
    return _dsn_with(dsn, password="s3cret-Pa55")


def _scalar(dsn: str, query: str) -> Any:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(query.encode()).fetchone()
        return row[0] if row else None


def _history(dsn: str) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return read_history(conn)


def _export(src: str, tmp_path: Path, log: Path) -> Path:
    archive = tmp_path / "prod.edmsdump"
    export_archive(_with_password(src), load_mapping(sample_mapping_path()), archive, audit_log=log)
    return archive


def test_export_appends_one_line_with_the_facts(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, _ = sample_dbs
    log = tmp_path / "audit.jsonl"
    archive = _export(src, tmp_path, log)
    text = log.read_text()
    assert "s3cret" not in text
    [line] = read_audit_log(log)
    assert set(line) >= LINE_KEYS
    with ArchiveReader(archive) as reader:
        assert line["archive_id"] == reader.manifest.archive_id
        assert line["manifest_sha256"] == reader.manifest.sha256
    assert line["operation"] == "export" and line["result"] == "ok" and line["error"] is None
    assert {t["table"]: t["rows"] for t in line["tables"]} == SOURCE_COUNTS
    assert line["rows"] == sum(SOURCE_COUNTS.values())
    assert line["database"] == describe_dsn(src)
    assert line["db_role"] == _scalar(src, "SELECT current_user")
    assert line["os_user"] and line["client_host"]
    assert line["tool_version"] == __version__
    assert line["seconds"] >= 0
    assert not (tmp_path / "env-default-audit.jsonl").exists()


def test_committed_import_is_audited_and_recorded_in_history(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    src, dst = sample_dbs
    log = tmp_path / "audit.jsonl"
    archive = _export(src, tmp_path, log)
    assert _history(dst) == []

    report = import_archive(_with_password(dst), archive, audit_log=log)
    assert report.committed and not report.already_applied
    [row] = _history(dst)
    with ArchiveReader(archive) as reader:
        assert row["archive_id"] == reader.manifest.archive_id
        assert row["manifest_sha256"] == reader.manifest.sha256
    assert row["inserted"] == sum(SOURCE_COUNTS.values()) == report.inserted
    assert row["db_role"] == _scalar(dst, "SELECT current_user")
    assert {t["table"]: t["inserted"] for t in row["tables"]} == SOURCE_COUNTS

    export_line, import_line = read_audit_log(log)
    assert export_line["operation"] == "export"
    assert import_line["operation"] == "import" and import_line["result"] == "ok"
    assert import_line["committed"] is True and import_line["already_applied"] is False
    assert import_line["database"] == describe_dsn(dst)
    assert {t["table"]: t["inserted"] for t in import_line["tables"]} == SOURCE_COUNTS
    assert "s3cret" not in log.read_text()

    again = import_archive(dst, archive, audit_log=log)
    assert again.already_applied and again.committed
    assert again.inserted == 0 and again.updated == 0
    assert any(w.startswith("already applied: archive " + report.archive_id) for w in again.warnings)
    assert len(_history(dst)) == 2
    assert read_audit_log(log)[-1]["already_applied"] is True


def test_rolled_back_import_leaves_a_failed_audit_line_and_no_history(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    src, dst = sample_dbs
    log = tmp_path / "audit.jsonl"
    archive = _export(src, tmp_path, log)
    # An existing user that differs from the archive: with on_conflict=error the import
    # is rejected inside its transaction, after the history table would have been created.
    with psycopg.connect(dst, autocommit=True) as conn:
        conn.execute("INSERT INTO public.users (username, email) VALUES ('user000001', 'other@example.org')")
    docs_before = _scalar(dst, "SELECT count(*) FROM public.documents")

    with pytest.raises(ImportRejected) as excinfo:
        import_archive(dst, archive, options=ImportOptions(on_conflict="error"), audit_log=log)
    assert "public.users" in str(excinfo.value)

    line = read_audit_log(log)[-1]
    assert line["operation"] == "import" and line["result"] == "failed"
    assert line["error_kind"] == "ImportRejected"
    assert "public.users" in line["error"] and "--on-conflict" in line["error"]
    assert line["committed"] is False
    assert line["archive_id"] == excinfo.value.report.archive_id  # type: ignore[attr-defined]
    # Nothing was written: no history table at all (it was created in the rolled-back
    # transaction), and the data is as before.
    assert _scalar(dst, "SELECT to_regclass('edms_pgdump.history')") is None
    assert _scalar(dst, "SELECT count(*) FROM public.documents") == docs_before


def test_dry_run_and_no_history_write_no_history_row(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, dst = sample_dbs
    log = tmp_path / "audit.jsonl"
    archive = _export(src, tmp_path, log)

    dry = import_archive(dst, archive, options=ImportOptions(dry_run=True), audit_log=log)
    assert not dry.committed and dry.inserted == sum(SOURCE_COUNTS.values())
    assert _scalar(dst, "SELECT to_regclass('edms_pgdump.history')") is None
    line = read_audit_log(log)[-1]
    assert line["result"] == "ok" and line["dry_run"] is True and line["committed"] is False
    assert line["history"] is False

    off = import_archive(dst, archive, history=False, audit_log=log)
    assert off.committed and off.inserted == sum(SOURCE_COUNTS.values())
    assert _scalar(dst, "SELECT to_regclass('edms_pgdump.history')") is None
    assert read_audit_log(log)[-1]["history"] is False

    # history switched off also means "already applied" cannot be known
    on = import_archive(dst, archive, audit_log=log)
    assert on.committed and not on.already_applied and len(_history(dst)) == 1
    assert read_audit_log(log)[-1]["history"] is True


def test_role_without_create_on_database_imports_without_history(
    sample_dbs: tuple[str, str], tmp_path: Path, pg_server: Server, admin: psycopg.Connection
) -> None:
    src, dst = sample_dbs
    log = tmp_path / "audit.jsonl"
    archive = _export(src, tmp_path, log)
    role = f"edms_nocreate_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE ROLE "{role}" LOGIN'.encode())
    try:
        with psycopg.connect(dst, autocommit=True) as conn:
            conn.execute(f'REVOKE CREATE ON DATABASE "{conn.info.dbname}" FROM PUBLIC'.encode())
            conn.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"'.encode())
            conn.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{role}"'.encode())
            conn.execute(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "{role}"'.encode())
        role_dsn = _dsn_with(dst, user=role)

        report = import_archive(role_dsn, archive, audit_log=log)
        assert report.committed and report.inserted == sum(SOURCE_COUNTS.values())
        [warning] = [w for w in report.warnings if w.startswith("import history skipped")]
        assert role in warning and "--no-history" in warning and "README" not in warning
        # valid SQL to paste: the database and role named, the statement ended
        dbname = psycopg.conninfo.conninfo_to_dict(dst)["dbname"]
        assert f"run GRANT CREATE ON DATABASE {dbname} TO {role}; once" in warning
        assert _scalar(dst, "SELECT to_regclass('edms_pgdump.history')") is None
        line = read_audit_log(log)[-1]
        assert line["result"] == "ok" and line["history"] is False and line["db_role"] == role
    finally:
        with psycopg.connect(dst, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"'.encode())
        admin.execute(f'DROP ROLE IF EXISTS "{role}"'.encode())


def test_audit_path_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    explicit = tmp_path / "explicit.jsonl"
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env.jsonl"))
    assert resolve_audit_path(explicit) == explicit
    assert resolve_audit_path(None) == tmp_path / "env.jsonl"
    assert resolve_audit_path(False) is None
    monkeypatch.setenv(ENV_VAR, "off")
    assert resolve_audit_path(None) is None
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert resolve_audit_path(None) == tmp_path / "state" / "edms-pgdump" / "audit.jsonl"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_audit_path() == Path.home() / ".local" / "state" / "edms-pgdump" / "audit.jsonl"


def test_unwritable_audit_log_is_a_warning_not_a_failure(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, dst = sample_dbs
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    archive = _export(src, tmp_path, tmp_path / "audit.jsonl")
    report = import_archive(dst, archive, audit_log=blocker / "audit.jsonl")
    assert report.committed
    [warning] = [w for w in report.warnings if w.startswith("audit log")]
    assert str(blocker / "audit.jsonl") in warning and "--audit-log" in warning
