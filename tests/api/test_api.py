"""The library as the CLI's twin: options validated in the library, typed results, and
the archive that history records is the one imported. Real PostgreSQL, no mocks."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from edms_pgdump import (
    ArchiveError,
    ExportResult,
    ImportOptions,
    ImportResult,
    InspectResult,
    PlanError,
    UsageError,
    VerifyResult,
    api,
    export_archive,
    import_archive,
    inspect_archive,
    load_mapping,
    load_mapping_text,
    read_history,
    verify_archive,
)
from edms_pgdump.archive.package import ArchiveReader
from edms_pgdump.cli import app
from edms_pgdump.demo.resources import sample_mapping_path
from edms_pgdump.load.history import HistoryHooks


def _count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0


@pytest.mark.parametrize(
    ("options", "names"),
    [
        ({"on_conflict": "bogus"}, ["on_conflict='bogus'", "update", "skip", "error"]),
        ({"constraints": "sometimes"}, ["constraints='sometimes'", "keep", "recreate"]),
        ({"sample_size": 0}, ["sample_size=0"]),
    ],
)
def test_import_refuses_invalid_options_before_touching_anything(
    sample_dbs: tuple[str, str], tmp_path: Path, options: dict[str, Any], names: list[str]
) -> None:
    src, dst = sample_dbs
    archive = tmp_path / "a.edms"
    export_archive(src, load_mapping(sample_mapping_path()), archive, audit_log=False)
    before = _count(dst, "public.users")
    with pytest.raises(UsageError) as err:
        import_archive(dst, archive, options=ImportOptions(**options), audit_log=False)
    for name in names:
        assert name in str(err.value)
    assert _count(dst, "public.users") == before  # once silently "never update" and a passing balance


def test_export_refuses_invalid_options_naming_them() -> None:
    m = load_mapping(sample_mapping_path())
    nowhere = "postgresql://nobody@127.0.0.1:1/none"  # never reached: refused first
    cases: list[tuple[dict[str, Any], str]] = [
        ({"jobs": 0}, "jobs=0 (--jobs)"),
        ({"compression": "gzip"}, "compression='gzip' (--compression): use one of zstd, none"),
        ({"level": 40}, "level=40 (--level)"),
    ]
    for kw, message in cases:
        with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
            export_archive(nowhere, m, "x.edms", audit_log=False, **kw)


def test_cli_passes_options_to_the_library_which_names_the_allowed_values(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["import", str(tmp_path / "absent.edms"), "--dsn", "postgresql://x@127.0.0.1:1/x", "--on-conflict", "maybe"]
    )
    assert res.exit_code == 2
    assert "on_conflict='maybe' (--on-conflict): use one of update, skip, error" in res.output


def test_allow_warnings_false_refuses_a_plan_with_warnings(new_db: Any, tmp_path: Path) -> None:
    dsn = new_db()
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE public.tag (id serial PRIMARY KEY, code text UNIQUE)")  # nullable key
        c.execute("INSERT INTO public.tag (code) VALUES ('a'), ('b')")
    m = load_mapping_text("version: 1\ntables:\n  public.tag: {natural_key: [code]}\n")
    out = tmp_path / "t.edms"
    with pytest.raises(PlanError, match=r"nullable.*allow_warnings=False"):
        export_archive(dsn, m, out, allow_warnings=False, audit_log=False)
    assert not out.exists()
    result = export_archive(dsn, m, out, audit_log=False)  # the default allows them
    assert result.rows == 2 and any("nullable" in w for w in result.warnings)


def test_every_command_returns_a_typed_result(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, dst = sample_dbs
    log = tmp_path / "audit.jsonl"
    archive = tmp_path / "a.edms"
    exported = export_archive(src, sample_mapping_path(), archive, audit_log=log)
    assert isinstance(exported, ExportResult)
    assert exported.audit_log == str(log)
    with ArchiveReader(archive) as reader:
        assert exported.manifest == reader.manifest  # export returns what it published
        assert exported.manifest_sha256 == reader.manifest.sha256
    info = inspect_archive(archive)
    assert isinstance(info, InspectResult) and info.manifest.archive_id == exported.archive_id
    assert info.to_dict()["tables"][0]["table"] == exported.tables[0].table

    verified = verify_archive(archive, dst)
    assert isinstance(verified, VerifyResult) and verified.database is not None
    assert verified.database.missing == exported.rows and not verified.ok  # target still empty

    imported = import_archive(dst, archive, audit_log=log)
    assert isinstance(imported, ImportResult)
    assert (imported.history, imported.audit_log, imported.inserted) == ("recorded", str(log), exported.rows)
    assert json.loads(json.dumps(imported.to_dict(), default=str))["history"] == "recorded"
    assert verify_archive(archive, dst).ok

    off = import_archive(dst, archive, history=False, audit_log=False)
    assert (off.history, off.audit_log) == ("off", None)

    assert api.check_mapping(archive).ok
    with pytest.raises(UsageError, match="drop --dsn and --mapping"):
        api.check_mapping(archive, dsn=src)
    plan = api.plan_mapping(src, sample_mapping_path())
    assert plan.load_order[0] == "public.users"
    runbook = api.sql_runbook("import", dst, sample_mapping_path())
    assert runbook.script is not None and "COMMIT" in runbook.script
    with pytest.raises(UsageError, match="sql 'both': use one of export, import"):
        api.sql_runbook("both", dst, sample_mapping_path())
    first = api.init_mapping(src, output=tmp_path / "m.yaml")
    assert first.output == str(tmp_path / "m.yaml") and first.tables["public.users"] == ("username",)
    with pytest.raises(UsageError, match="exists; pass --force"):
        api.init_mapping(src, output=tmp_path / "m.yaml")


def test_history_records_the_archive_that_was_imported(
    sample_dbs: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replace the archive file right after import_archive opened it (before the load
    runs): the history row must name the archive whose rows went in, or nothing at all."""
    src, dst = sample_dbs
    m = load_mapping(sample_mapping_path())
    a = tmp_path / "a.edms"
    first = export_archive(src, m, a, audit_log=False)
    with psycopg.connect(src, autocommit=True) as c:
        c.execute("INSERT INTO public.users (username, full_name) VALUES ('late', 'Late Comer')")
    b = tmp_path / "b.edms"
    second = export_archive(src, m, b, audit_log=False)
    assert first.archive_id != second.archive_id

    class SwapOnStart(HistoryHooks):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            os.replace(b, a)  # another export published over the path meanwhile

    monkeypatch.setattr(api, "HistoryHooks", SwapOnStart)
    before = _count(dst, "public.users")
    try:
        result = import_archive(dst, a, audit_log=False)
    except ArchiveError as exc:  # the archive was read twice: refused, nothing written
        assert "was replaced" in str(exc)
        with psycopg.connect(dst, autocommit=True) as c:
            assert read_history(c) == []
        assert _count(dst, "public.users") == before
        with ArchiveReader(a) as now:
            assert now.manifest.archive_id == second.archive_id
        return
    with psycopg.connect(dst, autocommit=True) as c:  # read once: the opened archive went in
        assert [r["archive_id"] for r in read_history(c)] == [first.archive_id]
    assert result.archive_id == first.archive_id
    assert _count(dst, "public.users") == before + first.manifest.table("public.users").rows
