"""The demo when pg_dump/pg_restore cannot be found: it says the id-based side did not run
and never reports an id-based dump it did not make (issue 9).

Only the lookup of the client binaries is replaced; the databases are real.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from edms_pgdump.cli import app
from edms_pgdump.demo import story as demo
from edms_pgdump.demo.servers import Server
from edms_pgdump.load.audit import ENV_VAR
from edms_pgdump.results import DemoResult

runner = CliRunner()


@pytest.fixture(autouse=True)
def _audit_to_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "audit.jsonl"))


@pytest.fixture
def no_pg_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "client_bin_dir_for", lambda _major: None)


def _drop_kept(admin: psycopg.Connection, kept: dict[str, str]) -> None:
    for name in (k for k in kept if k.startswith("edms_demo_")):
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
    if "archive" in kept:
        shutil.rmtree(Path(kept["archive"]).parent, ignore_errors=True)


def test_json_says_the_id_side_did_not_run(no_pg_dump: None, pg_server: Server) -> None:
    res = runner.invoke(app, ["demo", "--dsn", pg_server.admin_dsn, "--scale", "10", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["id_based"] == {"ran": False, "skipped_because": "pg_dump/pg_restore not found"}
    assert [r["method"] for r in doc["restores"]] == ["edms-pgdump"]
    assert doc["restores"][0]["verified"] is True
    assert any("no id-based dump was made" in n for n in doc["notes"])


def test_text_says_so_before_the_table(no_pg_dump: None, pg_server: Server) -> None:
    res = runner.invoke(app, ["demo", "--dsn", pg_server.admin_dsn, "--scale", "10", "--quiet"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[1] == (
        "id-based side not run (pg_dump/pg_restore not found): no pg_dump was made, only the "
        "edms-pgdump import is shown"
    )
    assert "pg_restore" not in "\n".join(lines[2:6])  # no id-based column in the table
    assert "edms-pgdump import: exit 0, 0 rows lost, 0 wrong - VERIFIED" in res.stdout


def test_keep_lists_only_files_that_exist(no_pg_dump: None, pg_server: Server, admin: psycopg.Connection) -> None:
    result = demo.run_demo(scale=10, dsn=pg_server.admin_dsn, keep=True)
    try:
        assert result.ok and result.id_based_skipped == "pg_dump/pg_restore not found"
        assert "id_dump" not in result.kept
        assert sorted(k for k in result.kept if k.startswith("edms_demo_")) == [
            f"{result.source.rsplit('_', 1)[0]}_import",
            result.source,
        ]  # production and the import target: no id-based targets either
        for key in ("archive", "audit_log"):
            assert Path(result.kept[key]).is_file(), key
        assert not (Path(result.workdir) / "production.dump").exists()
    finally:
        _drop_kept(admin, result.kept)


def test_keep_with_pg_dump_keeps_the_dump_it_made(kept_demo: DemoResult) -> None:
    result = kept_demo  # the session's kept run with pg_dump (tests/support/demo_runs.py)
    assert result.id_based_skipped is None and result.to_dict()["id_based"]["ran"] is True
    dump = Path(result.kept["id_dump"])
    assert dump.is_file() and dump.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format
