"""The command line's small promises: ``--version``, one ``error:`` prefix per message,
``--dsn`` taking a bare database name like psql, and an empty ``--dsn`` refused."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo
from typer.testing import CliRunner

from edms_pgdump.cli import app
from edms_pgdump.db import EMPTY_DSN, connect, conninfo_for, describe_dsn
from edms_pgdump.demo.servers import Server
from edms_pgdump.errors import UsageError
from tests.support.db import subprocess_env
from tests.support.reg_schema import REG_MAPPING, REG_SCHEMA, REG_SOURCE_DATA

runner = CliRunner()


def test_version_prints_the_installed_version_and_exits_0() -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0, res.output
    assert res.stdout == f"edms-pgdump {metadata.version('edms-pgdump')}\n"
    # the real entry point too, as a shell sees it
    proc = subprocess.run(
        [sys.executable, "-m", "edms_pgdump", "--version"], capture_output=True, text=True, env=subprocess_env()
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, res.stdout, "")


@pytest.fixture
def reg_with_unmapped_fk(new_db, tmp_path: Path) -> tuple[str, Path]:
    """reg plus a mapped table whose FK points at an unmapped one: an error in every command."""
    dsn = new_db()
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(REG_SCHEMA.encode())
        c.execute(REG_SOURCE_DATA.encode())
        c.execute(
            "CREATE TABLE reg.note (id serial PRIMARY KEY, ref text UNIQUE NOT NULL,"
            " log_id integer REFERENCES reg.audit_log (id))"
        )
    mapping = tmp_path / "m.yaml"
    mapping.write_text(REG_MAPPING + "  reg.note: {natural_key: [ref]}\n")
    return dsn, mapping


@pytest.mark.parametrize(
    "command",
    [["plan", "--no-sql"], ["sql", "export"], ["export", "-o", "{tmp}/a.edms"], ["check"]],
    ids=["plan", "sql", "export", "check"],
)
def test_every_error_line_has_one_prefix(
    reg_with_unmapped_fk: tuple[str, Path], tmp_path: Path, command: list[str]
) -> None:
    dsn, mapping = reg_with_unmapped_fk
    args = [a.replace("{tmp}", str(tmp_path)) for a in command] + ["--dsn", dsn, "-m", str(mapping)]
    res = runner.invoke(app, args)
    assert res.exit_code == 1, res.output
    assert "error: error:" not in res.output and "warning: warning:" not in res.output, res.output
    lines = res.output.splitlines()
    fk = [ln for ln in lines if "reg.note.log_id" in ln and "note_log_id_fkey" in ln]
    assert len(fk) == 1, res.output
    assert fk[0].startswith("error: reg.note.log_id"), fk[0]


def test_json_error_has_no_prefix_inside(reg_with_unmapped_fk: tuple[str, Path]) -> None:
    dsn, mapping = reg_with_unmapped_fk
    res = runner.invoke(app, ["plan", "--dsn", dsn, "-m", str(mapping), "--json"])
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["ok"] is False and doc["error"].startswith("reg.note.log_id: foreign key note_log_id_fkey")


def _libpq_env(monkeypatch: pytest.MonkeyPatch, server: Server) -> None:
    """Point libpq's defaults (PGHOST, ...) at the test server, as a psql user would."""
    params = conninfo.conninfo_to_dict(server.admin_dsn)
    for key, var in (("host", "PGHOST"), ("port", "PGPORT"), ("user", "PGUSER"), ("password", "PGPASSWORD")):
        if params.get(key):
            monkeypatch.setenv(var, str(params[key]))
        else:
            monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("PGDATABASE", raising=False)


def test_a_bare_database_name_works_like_psql(
    new_db, sample_template: str, pg_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = str(conninfo.conninfo_to_dict(new_db(sample_template))["dbname"])
    _libpq_env(monkeypatch, pg_server)
    assert conninfo_for(name) == f"dbname={name}"
    assert describe_dsn(name).endswith(f"/{name}")
    res = runner.invoke(app, ["init", "--dsn", name])
    assert res.exit_code == 0, res.output
    assert "public.users:" in res.stdout and "natural_key" in res.stdout
    with connect(name) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (name,)


def test_connection_errors_are_one_line_naming_the_database(
    pg_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    _libpq_env(monkeypatch, pg_server)
    res = runner.invoke(app, ["init", "--dsn", "edms_no_such_db"])
    assert res.exit_code == 1
    assert res.stdout == ""
    (line,) = res.stderr.splitlines()
    assert line.startswith("error: cannot connect to ") and "/edms_no_such_db: " in line
    assert 'database "edms_no_such_db" does not exist' in line and line.endswith("may log in")
    res = runner.invoke(app, ["init", "--dsn", "dbname=x bogus=1"])
    assert res.exit_code == 2
    (line,) = res.stderr.splitlines()
    assert line.startswith('error: invalid -d/--dbname (invalid connection option "bogus")')


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_dsn_is_refused_wherever_a_database_is_needed(empty: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as exc:
        connect(empty)
    assert str(exc.value) == EMPTY_DSN == "-d/--dbname is empty: give a connection string or a database name"
    mapping = tmp_path / "m.yaml"
    mapping.write_text(REG_MAPPING)
    for args in (
        ["init", "--dsn", empty],
        ["plan", "--dsn", empty, "-m", str(mapping)],
        ["export", "--dsn", empty, "-m", str(mapping), "-o", str(tmp_path / "a.edms")],
        ["demo", "--dsn", empty],
    ):
        res = runner.invoke(app, args)
        assert (res.exit_code, res.stderr) == (2, f"error: {EMPTY_DSN}\n"), (args, res.output)
    assert not (tmp_path / "a.edms").exists()
