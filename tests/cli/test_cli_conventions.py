"""What a psql user expects of the command line: -d/-h/-p/-U over the libpq environment,
labels naming the real server, warnings on stderr, --debug anywhere, readable help, one-line
usage errors (exit 2, JSON under --json), no silent overwrite, bad settings refused as usage
errors, tables that fit 80 columns, and a --version that imports no database driver."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo
from typer.testing import CliRunner

from edms_pgdump.cli import app
from edms_pgdump.cli.app import out
from edms_pgdump.db import describe_dsn
from edms_pgdump.demo.resources import sample_mapping_path
from edms_pgdump.demo.servers import Server
from edms_pgdump.errors import DatabaseError
from tests.support.db import subprocess_env
from tests.support.real_schemas import make_db

runner = CliRunner()


def _server_env(monkeypatch: pytest.MonkeyPatch, server: Server) -> dict[str, str]:
    """The test server as libpq's environment (PGHOST, PGPORT, PGUSER, PGPASSWORD)."""
    params = conninfo.conninfo_to_dict(server.admin_dsn)
    env: dict[str, str] = {}
    for key, var in (("host", "PGHOST"), ("port", "PGPORT"), ("user", "PGUSER"), ("password", "PGPASSWORD")):
        if params.get(key):
            env[var] = str(params[key])
            monkeypatch.setenv(var, env[var])
        else:
            monkeypatch.delenv(var, raising=False)
    for var in ("PGDATABASE", "PGSERVICE"):
        monkeypatch.delenv(var, raising=False)
    return env


def _label(env: dict[str, str], db: str) -> str:
    host = env.get("PGHOST", "")
    host = "[local]" if not host or host.startswith("/") else host
    return f"{host}:{env.get('PGPORT', '5432')}/{db}"


def _dbname(dsn: str) -> str:
    return str(conninfo.conninfo_to_dict(dsn)["dbname"])


def test_pgdatabase_alone_is_enough_and_labels_name_the_real_server(
    sample_dbs: tuple[str, str], pg_server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    src, _ = sample_dbs
    env = _server_env(monkeypatch, pg_server)
    monkeypatch.setenv("PGDATABASE", _dbname(src))
    log = tmp_path / "audit.jsonl"
    archive = tmp_path / "a.edms"
    res = runner.invoke(
        app, ["export", "-m", str(sample_mapping_path()), "-o", str(archive), "--audit-log", str(log)]
    )
    assert res.exit_code == 0, res.output
    line = json.loads(log.read_text().splitlines()[-1])
    # a bare name is labelled with PGHOST/PGPORT, not localhost
    assert line["database"] == _label(env, _dbname(src))
    assert describe_dsn(_dbname(src)) == _label(env, _dbname(src))


def test_dash_h_p_U_override_the_environment(
    sample_dbs: tuple[str, str], pg_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, _ = sample_dbs
    env = _server_env(monkeypatch, pg_server)
    monkeypatch.setenv("PGHOST", "127.0.0.9")
    monkeypatch.setenv("PGPORT", "1")
    monkeypatch.setenv("PGUSER", "nobody_here")
    name = _dbname(src)
    # with the environment pointing nowhere, the connection fails, labelled with that server
    res = runner.invoke(app, ["init", "-d", name])
    assert res.exit_code == 1 and res.stdout == ""
    (line,) = res.stderr.splitlines()
    assert line.startswith(f"error: cannot connect to 127.0.0.9:1/{name}: "), line
    # -h/-p/-U put it right, as with psql
    args = ["init", "-d", name, "-h", env.get("PGHOST", "/tmp"), "-p", env.get("PGPORT", "5432")]
    args += ["-U", env.get("PGUSER", "postgres")]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "public.users:" in res.stdout
    # --dsn is the same option as -d/--dbname
    res = runner.invoke(app, [*args[:1], "--dbname", name, *args[3:]])
    assert res.exit_code == 0, res.output


def test_nothing_given_and_no_pgdatabase_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PGDATABASE", "PGSERVICE"):
        monkeypatch.delenv(var, raising=False)
    res = runner.invoke(app, ["cleanup"])
    assert res.exit_code == 2
    assert res.stderr == (
        "error: no database given: use -d/--dbname NAME or a connection string (--dsn is the same), "
        "or set PGDATABASE (or PGSERVICE)\n"
    )
    res = runner.invoke(app, ["cleanup", "--json"])
    assert res.exit_code == 2 and json.loads(res.stdout)["kind"] == "UsageError"


def test_warnings_go_to_stderr_and_stdout_holds_the_result(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    src, dst = sample_dbs
    archive = tmp_path / "a.edms"
    assert (
        runner.invoke(
            app, ["export", "-d", src, "-m", str(sample_mapping_path()), "-o", str(archive)]
        ).exit_code
        == 0
    )
    assert runner.invoke(app, ["import", str(archive), "-d", dst]).exit_code == 0
    again = runner.invoke(app, ["import", str(archive), "-d", dst])
    assert again.exit_code == 0, again.output
    assert "warning: already applied" in again.stderr
    assert "warning:" not in again.stdout and "inserted" in again.stdout


def test_debug_works_anywhere_on_the_line(tmp_path: Path, pg_server: Server) -> None:
    mapping = sample_mapping_path()
    nowhere = pg_server.dsn("edms_no_such_database")
    plain = runner.invoke(app, ["check", "-d", nowhere, "-m", str(mapping)])
    assert plain.exit_code == 1 and plain.stderr.startswith("error: cannot connect to ")
    assert "Traceback" not in plain.output
    after = runner.invoke(app, ["check", "-d", nowhere, "-m", str(mapping), "--debug"])
    assert isinstance(after.exception, DatabaseError)
    before = runner.invoke(app, ["--debug", "check", "-d", nowhere, "-m", str(mapping)])
    assert isinstance(before.exception, DatabaseError)
    # the next command without --debug is back to one line
    again = runner.invoke(app, ["check", "-d", nowhere, "-m", str(mapping)])
    assert again.exit_code == 1 and not isinstance(again.exception, DatabaseError)


def test_help_metavars_are_words_a_person_reads() -> None:
    from typer.main import get_command

    from edms_pgdump.cli.conventions import _humanize

    group = get_command(app)
    _humanize(group)  # type: ignore[arg-type]
    for name in group.commands:  # type: ignore[attr-defined]
        res = runner.invoke(app, [name, "--help"])
        assert res.exit_code == 0, (name, res.output)
        assert not re.search(r"<(str|int|path|float|bool|list\[|tuple\[)", res.stdout, re.I), (
            name,
            res.stdout,
        )
        assert "{" not in res.stdout.splitlines()[0], name
    assert "-o, --output FILE" in runner.invoke(app, ["export", "--help"]).stdout
    assert "-d, --dbname, --dsn DSN" in runner.invoke(app, ["import", "--help"]).stdout
    assert "--skip-table TABLE" in runner.invoke(app, ["import", "--help"]).stdout
    assert runner.invoke(app, ["diff", "--help"]).stdout.startswith(
        "Usage: edms-pgdump diff [OPTIONS] ARCHIVE [OTHER]"
    )


def test_usage_errors_are_one_line_exit_2_and_json_under_json() -> None:
    res = runner.invoke(app, ["import"])
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr == (
        "error: Missing argument 'ARCHIVE'. (edms-pgdump import --help lists the options)\n"
    )
    res = runner.invoke(app, ["import", "a.edms", "--bogus", "--json"])
    assert res.exit_code == 2
    doc = json.loads(res.stdout)
    assert doc["ok"] is False and doc["kind"] == "UsageError" and "--bogus" in doc["error"]
    assert len(res.stderr.splitlines()) == 1 and res.stderr.startswith("error: No such option: --bogus")


def test_export_refuses_to_overwrite_without_force(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, _ = sample_dbs
    archive = tmp_path / "a.edms"
    archive.write_text("precious")
    args = ["export", "-d", src, "-m", str(sample_mapping_path()), "-o", str(archive)]
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert res.stderr.startswith(f"error: Invalid value for -o/--output: {archive} exists; give --force")
    assert archive.read_text() == "precious"
    res = runner.invoke(app, [*args, "--force"])
    assert res.exit_code == 0, res.output
    assert archive.read_bytes()[:8] != b"precious"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--lock-timeout", "banana", "error: --lock-timeout banana: not a PostgreSQL duration"),
        (
            "--statement-timeout",
            "5 parsecs",
            "error: --statement-timeout 5 parsecs: not a PostgreSQL duration",
        ),
        ("--work-mem", "lots", "error: --work-mem lots: not a PostgreSQL amount of memory"),
        (
            "--max-deletes",
            "some",
            "error: max_deletes='some' (--max-deletes): use a whole number, 0 or more (or all: no limit)",
        ),
    ],
)
def test_bad_settings_are_usage_errors_before_any_connection(
    sample_dbs: tuple[str, str], tmp_path: Path, option: str, value: str, message: str
) -> None:
    src, dst = sample_dbs
    archive = tmp_path / "a.edms"
    assert (
        runner.invoke(
            app, ["export", "-d", src, "-m", str(sample_mapping_path()), "-o", str(archive)]
        ).exit_code
        == 0
    )
    extra = ["--delete-missing"] if option == "--max-deletes" else []
    count = "SELECT count(*) FROM public.documents"
    with psycopg.connect(dst) as c:
        before = c.execute(count).fetchone()
    res = runner.invoke(app, ["import", str(archive), "-d", dst, option, value, *extra])
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith(message), res.stderr
    with psycopg.connect(dst) as c:
        assert c.execute(count).fetchone() == before


def test_max_deletes_all_means_no_limit(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, dst = sample_dbs
    archive = tmp_path / "a.edms"
    assert (
        runner.invoke(
            app, ["export", "-d", src, "-m", str(sample_mapping_path()), "-o", str(archive)]
        ).exit_code
        == 0
    )
    res = runner.invoke(
        app, ["import", str(archive), "-d", dst, "--delete-missing", "--max-deletes", "all", "--dry-run"]
    )
    assert res.exit_code == 0, res.output


LONG = "inventory_management_area"


def test_tables_fit_80_columns_without_cutting_table_names(
    new_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ddl = (
        f"CREATE SCHEMA {LONG}; CREATE TABLE {LONG}.warehouse_stock_movements_by_day "
        "(id serial PRIMARY KEY, code text UNIQUE NOT NULL, qty int)"
    )
    src = make_db(
        new_db, ddl, f"INSERT INTO {LONG}.warehouse_stock_movements_by_day (code, qty) VALUES ('a', 1)"
    )
    dst = make_db(new_db, ddl)
    name = f"{LONG}.warehouse_stock_movements_by_day"
    mapping = tmp_path / "m.yaml"
    mapping.write_text(f"version: 1\ntables:\n  {name}: {{natural_key: [code]}}\n")
    archive = tmp_path / "a.edms"
    monkeypatch.setattr(out, "width", 80)
    runs = [
        ["export", "-d", src, "-m", str(mapping), "-o", str(archive)],
        ["import", str(archive), "-d", dst, "--dry-run"],
        ["inspect", str(archive)],
        ["diff", str(archive), "-d", dst],
    ]
    for args in runs:
        res = runner.invoke(app, args)
        assert res.exit_code in (0, 1), res.output
        table_lines = [ln for ln in res.stdout.splitlines() if ln.startswith("│")]
        assert table_lines, (args[0], res.stdout, res.stderr)
        boxes = [ln for ln in res.stdout.splitlines() if ln[:1] in "┏┃┡│└"]
        assert all(len(ln) <= 80 for ln in boxes), (args[0], res.stdout)
        assert any(name in ln for ln in table_lines), (args[0], res.stdout)


def test_version_imports_no_database_driver_nor_sql_parser() -> None:
    code = (
        "import sys\n"
        "from edms_pgdump.cli import main\n"
        "sys.argv = ['edms-pgdump', '--version']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('psycopg', 'sqlglot', 'yaml', 'edms_pgdump.api') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env())
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout, proc.stdout


def test_constants_spelled_in_the_cli_match_the_library() -> None:
    from edms_pgdump.cli.core import CONFLICT_POLICIES
    from edms_pgdump.cli.demo import DEFAULT_SCALE
    from edms_pgdump.demo.story import DEFAULT_SCALE as STORY_SCALE
    from edms_pgdump.mapping import CONFLICT_POLICIES as MAPPING_POLICIES

    assert CONFLICT_POLICIES == MAPPING_POLICIES and DEFAULT_SCALE == STORY_SCALE


def test_help_imports_no_package_metadata_reader() -> None:
    """importlib.metadata (and the email package it pulls in) is only read by --version:
    it was a third of the start-up of every command."""
    code = (
        "import sys\n"
        "from edms_pgdump.cli import main\n"
        "sys.argv = ['edms-pgdump', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('importlib.metadata', 'email.message', 'psycopg') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env())
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout, proc.stdout
