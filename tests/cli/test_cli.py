"""The command line as users and scripts see it: help, examples, --json.

Every registered command must have help text with an ``Example:`` line and accept
``--json`` printing one parseable document with the keys docs/json.md documents. That
every command is documented (docs/commands.md, the README's table) is tests/project/test_docs.py.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
import typer
from typer.testing import CliRunner

from edms_pgdump import read_audit_log
from edms_pgdump.cli import app
from edms_pgdump.demo.resources import sample_mapping_path
from edms_pgdump.load.audit import ENV_VAR

runner = CliRunner()

# The documented --json schemas (docs/json.md): top-level keys each
# command's document always has.
EXPORT_KEYS = {
    "ok",
    "archive",
    "archive_id",
    "manifest_sha256",
    "tables",
    "rows",
    "seconds",
    "warnings",
    "audit_log",
}
EXPORT_TABLE_KEYS = {"table", "rows", "bytes", "member"}
IMPORT_KEYS = {
    "ok",
    "phases",
    "archive",
    "archive_id",
    "target",
    "dry_run",
    "committed",
    "already_applied",
    "unchanged_since",
    "inserted",
    "updated",
    "tables",
    "problems",
    "warnings",
    "seconds",
    "history",
    "audit_log",
}
IMPORT_TABLE_KEYS = {"table", "expected", "staged", "inserted", "updated", "unchanged", "present_after", "ok"}
VERIFY_KEYS = {"ok", "archive", "archive_id", "tables", "damages"}
VERIFY_DB_KEYS = {"target", "missing", "different", "matches", "tables"}
INSPECT_KEYS = {
    "ok",
    "archive",
    "archive_id",
    "created_at",
    "tool_version",
    "format_version",
    "source",
    "mapping_sha256",
    "manifest_sha256",
    "load_order",
    "tables",
    "lookups",
}
ERROR_KEYS = {"ok", "error", "kind"}


def _commands() -> dict[str, Any]:
    """name -> click command (typer may vendor its own click, so no isinstance checks)."""
    group = typer.main.get_command(app)
    return dict(group.commands)  # type: ignore[attr-defined]


COMMANDS = sorted(_commands())


@pytest.fixture(autouse=True)
def _audit_to_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv(ENV_VAR, str(log))
    return log


def _json(args: list[str], code: int = 0) -> dict[str, Any]:
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def test_the_expected_commands_are_registered() -> None:
    assert {"export", "import", "verify", "inspect", "check", "plan", "sql", "demo"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_an_example(name: str) -> None:
    cmd = _commands()[name]
    assert cmd.help and cmd.help.strip(), f"{name}: no help text; add a docstring to the command"
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert re.search(rf"Example: edms-pgdump {name}\b", result.output), (
        f"{name}: --help has no 'Example: edms-pgdump {name} ...' line; add one to its docstring"
    )


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_accepts_json(name: str) -> None:
    params = {p.name for p in _commands()[name].params}
    assert "json_out" in params or "json" in params, f"{name}: no --json option"


def test_json_documents_of_export_import_verify_inspect(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, dst = sample_dbs
    archive = tmp_path / "prod.edmsdump"
    mapping = str(sample_mapping_path())
    own_log = tmp_path / "own.jsonl"

    exp = _json(
        ["export", "--dsn", src, "-m", mapping, "-o", str(archive), "--json", "--audit-log", str(own_log)]
    )
    assert set(exp) >= EXPORT_KEYS and exp["ok"] is True
    assert all(set(t) >= EXPORT_TABLE_KEYS for t in exp["tables"])
    assert exp["rows"] == 810 and exp["audit_log"] == str(own_log)
    assert read_audit_log(own_log)[0]["archive_id"] == exp["archive_id"]

    ins = _json(["inspect", str(archive), "--json"])
    assert set(ins) >= INSPECT_KEYS and ins["archive_id"] == exp["archive_id"]
    assert ins["manifest_sha256"] == exp["manifest_sha256"]

    ver = _json(["verify", str(archive), "--json"])
    assert set(ver) >= VERIFY_KEYS and ver["ok"] is True and ver["damages"] == []

    dry = _json(["import", str(archive), "--dsn", dst, "--dry-run", "--json"])
    assert set(dry) >= IMPORT_KEYS
    assert dry["committed"] is False and dry["inserted"] == 810
    assert dry["history"] == "not recorded (rolled back)"
    assert all(set(t) >= IMPORT_TABLE_KEYS for t in dry["tables"])

    imp = _json(["import", str(archive), "--dsn", dst, "--json"])
    assert imp["ok"] and imp["committed"] and imp["history"] == "recorded"
    assert imp["already_applied"] is False

    # the same archive again: proven in place by the certificate the import left
    again = _json(["import", str(archive), "--dsn", dst, "--json"])
    assert again["already_applied"] is True and again["inserted"] == 0
    assert again["unchanged_since"]["import"] >= 1
    phases = [p["phase"] for p in again["phases"]]
    assert phases == ["verify archive", "unchanged rows", "commit", "other", "untimed"], phases

    # a row the target changed since: the import runs in full and puts it back
    with psycopg.connect(dst, autocommit=True) as conn:
        conn.execute("UPDATE public.users SET full_name = 'edited' WHERE username = 'user000001'")
    full = _json(["import", str(archive), "--dsn", dst, "--json"])
    assert full["unchanged_since"] is None and full["updated"] == 1 and full["inserted"] == 0
    # the time of each phase, in run order: the other rows are set aside as unchanged
    phases = [p["phase"] for p in full["phases"]]
    assert phases[0] == "verify archive" and phases[-1] == "untimed"
    assert {"staging copy", "unchanged rows", "proof", "commit"} <= set(phases)
    resolved = [p for p in full["profile"] if p["step"] in ("insert", "keyed", "keyed+final")]
    assert resolved and sum(p.get("rows", 0) for p in resolved) == 1  # only the edited user's row
    total = sum(p["seconds"] for p in full["phases"])
    assert abs(total - full["seconds"]) < 0.01 + 0.001 * len(phases)
    text = runner.invoke(app, ["import", str(archive), "--dsn", dst, "--verbose"])
    assert text.exit_code == 0, text.output
    assert re.search(r"time by phase: verify archive \d+\.\d\ds, unchanged rows \d+\.\d\ds, commit", text.output)
    assert "nothing staged: no row was written in these tables since an import of this archive" in text.output

    ver_db = _json(["verify", str(archive), "--dsn", dst, "--json"])
    assert set(ver_db["database"]) >= VERIFY_DB_KEYS and ver_db["database"]["matches"] is True

    # the default log (env var) got export? no: export went to --audit-log; imports to the env one
    env_log = Path(os.environ[ENV_VAR])
    assert [line["operation"] for line in read_audit_log(env_log)] == ["import"] * 5


def test_json_error_document_and_exit_code(tmp_path: Path) -> None:
    missing = tmp_path / "nope.edmsdump"
    doc = _json(["inspect", str(missing), "--json"], code=1)
    assert set(doc) >= ERROR_KEYS and doc["ok"] is False and str(missing) in doc["error"]


def test_human_import_says_already_applied_and_history(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, dst = sample_dbs
    archive = tmp_path / "prod.edmsdump"
    first = runner.invoke(app, ["export", "--dsn", src, "-m", str(sample_mapping_path()), "-o", str(archive)])
    assert first.exit_code == 0, first.output
    assert "manifest sha256" in first.stdout and "audit:" in first.stdout
    one = runner.invoke(app, ["import", str(archive), "--dsn", dst])
    assert one.exit_code == 0, one.output
    assert "history: recorded" in one.stdout and "already applied" not in one.stdout
    two = runner.invoke(app, ["import", str(archive), "--dsn", dst])
    assert two.exit_code == 0, two.output
    assert "already applied: archive" in two.stderr  # a warning: stderr, stdout holds the result
    three = runner.invoke(app, ["import", str(archive), "--dsn", dst, "--no-history"])
    assert three.exit_code == 0 and "history: off" in three.stdout


def test_progress_counts_rows_and_bytes_per_table_and_overall() -> None:
    from io import StringIO

    from rich.console import Console
    from rich.progress import Progress

    from edms_pgdump.cli.app import RichProgress, progress_bars

    with Progress(console=Console(file=StringIO(), force_terminal=True)) as p:
        bars = RichProgress(p)
        bars.start("public.users", 10)
        bars.start("public.documents", -1)  # unknown estimate (never analysed)
        bars.advance("public.users", 4, 100)
        bars.advance("public.users", 6, 50)
        bars.advance("public.documents", 3, 30)
        tasks = {t.description: t for t in p.tasks}
        assert tasks["all tables"].total is None  # one total unknown
        bars.finish("public.documents")
        bars.finish("public.users")
        tasks = {t.description: t for t in p.tasks}
        assert (tasks["public.users"].completed, tasks["public.users"].fields["nbytes"]) == (10, 150)
        assert tasks["public.documents"].total == 3
        overall = tasks["all tables"]
        assert (overall.completed, overall.total, overall.fields["nbytes"]) == (13, 13, 180)
    # CliRunner's stderr is not a terminal: no bars, whatever the flags say
    with progress_bars(True) as none:
        assert none is None


def test_unwritable_audit_log_is_reported_not_claimed(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, _ = sample_dbs
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    bad = blocker / "audit.jsonl"
    args = ["export", "--dsn", src, "-m", str(sample_mapping_path()), "-o", str(tmp_path / "x.edmsdump")]
    doc = _json([*args, "--json", "--audit-log", str(bad)])
    assert doc["ok"] is True and doc["audit_log"] is None
    assert any(w.startswith(f"audit log {bad} not written") and "--audit-log" in w for w in doc["warnings"])
    text = runner.invoke(app, [*args, "--force", "--audit-log", str(bad)])
    assert text.exit_code == 0 and "audit:" not in text.stdout and "warning: audit log" in text.stderr
