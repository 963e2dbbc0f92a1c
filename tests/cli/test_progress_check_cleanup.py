"""Progress for ``check`` and ``cleanup``, which ran silent: every phase (reading the
catalog, each table's key and reference probes, each candidate column, each table dropped)
is reported as it starts, with how far the command is ("(3/5)"); on stderr only, only when
stderr is a terminal, and never on stdout."""

from __future__ import annotations

import re
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from edms_pgdump import api
from edms_pgdump.archive.manifest import MANIFEST_NAME, SIGNATURE_NAME
from edms_pgdump.archive.package import ArchiveReader
from edms_pgdump.cli import app
from edms_pgdump.demo.resources import sample_mapping_path
from edms_pgdump.demo.sample import SAMPLE_TABLES
from edms_pgdump.load.staging_area import drop_leftovers
from edms_pgdump.options import PHASE
from edms_pgdump.sqlgen.staging_area import staging_schema_name
from tests.support.real_schemas import NewDb, fetch, run

runner = CliRunner()
APP = sys.modules["edms_pgdump.cli.app"]  # the module (edms_pgdump.cli.app is the typer app)


class Recorder:
    """A Progress that keeps what it was told, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def start(self, task: str, total: int | None) -> None:
        self.events.append(("start", task))

    def advance(self, task: str, rows: int, nbytes: int) -> None:
        pass

    def finish(self, task: str) -> None:
        self.events.append(("finish", task))

    def phases(self) -> list[str]:
        return [t[len(PHASE) :] for e, t in self.events if e == "start" and t.startswith(PHASE)]

    def balanced(self) -> bool:
        """Every phase finished, before the next one started (a table's rows, staged
        during a phase, are a task of their own)."""
        open_: str | None = None
        for event, task in ((e, t) for e, t in self.events if t.startswith(PHASE)):
            if event == "start":
                if open_ is not None:
                    return False
                open_ = task
            elif task != open_:
                return False
            else:
                open_ = None
        return open_ is None


def _leftovers(dsn: str, tables: dict[str, int]) -> list[str]:
    """Staging schemas as killed imports leave them: ``tables`` per schema, with rows."""
    names = sorted(staging_schema_name(str(uuid.uuid4())) for _ in tables)
    for schema, n in zip(names, tables.values()):
        run(dsn, f'CREATE SCHEMA "{schema}"')
        for i in range(n):
            run(dsn, f'CREATE UNLOGGED TABLE "{schema}".t{i} AS SELECT g AS x FROM generate_series(1, 1000) g')
    return names


def test_check_reports_each_phase_and_table_with_how_far(sample_dbs: tuple[str, str]) -> None:
    src, _ = sample_dbs
    rec = Recorder()
    report = api.check_mapping(dsn=src, mapping=sample_mapping_path(), progress=rec)
    phases = rec.phases()
    assert phases[:3] == ["read catalog", "plan", "generic references"], phases
    per_table = [p for p in phases if p.startswith("keys and references ")]
    n = len(per_table)
    assert n >= len(SAMPLE_TABLES)
    assert {p.split()[3] for p in per_table} >= set(SAMPLE_TABLES)
    # numbered 1..n in order: the user sees how far the probes are
    assert [re.search(r"\((\d+)/(\d+)\)$", p).groups() for p in per_table] == [  # type: ignore[union-attr]
        (str(i), str(n)) for i in range(1, n + 1)
    ]
    assert phases[-2:] == ["excluded tables with rows", "ids inside JSON and text"]
    assert rec.balanced()
    # the same findings as without a display
    plain = api.check_mapping(dsn=src, mapping=sample_mapping_path())
    assert report.to_dict() == plain.to_dict()


def test_check_probes_each_likely_reference_column_as_a_step(sample_dbs: tuple[str, str]) -> None:
    src, _ = sample_dbs
    # an integer column named after a mapped table, with no foreign key: a candidate to probe
    run(src, "ALTER TABLE public.documents ADD COLUMN user_id bigint")
    rec = Recorder()
    report = api.check_mapping(dsn=src, mapping=sample_mapping_path(), progress=rec)
    probed = [p for p in rec.phases() if p.startswith("likely reference ")]
    assert "likely reference public.documents.user_id (1/1)" in probed, rec.phases()
    assert any(p.column == "user_id" for p in report.problems)
    assert rec.balanced()


def test_cleanup_reports_each_table_dropped(new_db: NewDb) -> None:
    dsn = new_db()
    first, second = _leftovers(dsn, {"a": 2, "b": 3})
    rec = Recorder()
    found = api.cleanup_staging(dsn, progress=rec)
    assert found.dropped == [first, second]
    assert rec.phases() == [
        "find staging schemas",
        f"lock {first} (1/2)",
        f"drop {first}.t0 (1/2)",
        f"drop {first}.t1 (2/2)",
        f"drop schema {first} (1/2)",
        f"lock {second} (2/2)",
        f"drop {second}.t0 (1/3)",
        f"drop {second}.t1 (2/3)",
        f"drop {second}.t2 (3/3)",
        f"drop schema {second} (2/2)",
    ]
    assert rec.balanced()
    assert fetch(dsn, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'edms_pgdump_stage_%'") == [(0,)]
    # and without a display, the same drops (the import's own sweep)
    (third,) = _leftovers(dsn, {"c": 2})
    assert drop_leftovers_of(dsn) == [third]


def drop_leftovers_of(dsn: str) -> list[str]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        return drop_leftovers(conn).dropped


def test_cli_check_and_cleanup_keep_stderr_empty_when_it_is_not_a_terminal(
    sample_dbs: tuple[str, str],
) -> None:
    src, _ = sample_dbs
    res = runner.invoke(app, ["check", "-d", src, "-m", str(sample_mapping_path())])
    assert res.exit_code == 0, res.output
    assert res.stderr == ""
    assert res.stdout.rstrip().splitlines()[-1].endswith("- OK")
    (schema,) = _leftovers(src, {"a": 2})
    res = runner.invoke(app, ["cleanup", "-d", src])
    assert res.exit_code == 0, res.output
    assert (res.stdout, res.stderr) == (f"dropped {schema}\n", "")


@pytest.mark.parametrize("command", ["check", "cleanup"])
def test_cli_on_a_terminal_draws_on_stderr_only(
    sample_dbs: tuple[str, str], monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    src, _ = sample_dbs
    args = ["check", "-d", src, "-m", str(sample_mapping_path())] if command == "check" else ["cleanup", "-d", src]
    if command == "cleanup":
        _leftovers(src, {"a": 2})
    plain = runner.invoke(app, args)
    if command == "cleanup":
        (schema,) = _leftovers(src, {"b": 40})
    terminal = StringIO()
    monkeypatch.setattr(APP, "err", Console(file=terminal, force_terminal=True, width=100))
    shown = runner.invoke(app, args)
    assert shown.exit_code == plain.exit_code == 0, shown.output
    # stdout holds the result alone, as when nothing is drawn
    if command == "check":
        assert shown.stdout == plain.stdout
    else:
        assert shown.stdout == f"dropped {schema}\n"
    assert shown.stderr == ""
    assert terminal.getvalue() != ""  # the display went to the (terminal) stderr console
    # --quiet draws nothing
    quiet = StringIO()
    monkeypatch.setattr(APP, "err", Console(file=quiet, force_terminal=True, width=100))
    res = runner.invoke(app, [*args, "--quiet"])
    assert res.exit_code == 0 and quiet.getvalue() == ""


def test_verify_and_diff_read_each_member_once_as_a_phase(
    sample_dbs: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading a large archive's members takes a while: a phase per member, and verify
    --dsn reads them once to check them (not once to verify and again before comparing).
    diff, like import, checks each member while it stages it: one read, no phase of its
    own (its staging bars are that check)."""
    src, dst = sample_dbs
    archive = tmp_path / "a.edms"
    api.export_archive(src, sample_mapping_path(), archive, audit_log=False)
    opened: list[str] = []
    real = ArchiveReader.open_stored

    def counted(self: ArchiveReader, name: str) -> Any:
        opened.append(name)
        return real(self, name)

    monkeypatch.setattr(ArchiveReader, "open_stored", counted)
    calls: list[Callable[[Recorder], object]] = [
        lambda rec: api.verify_archive(archive, dst, progress=rec),
        lambda rec: api.diff(archive, dsn=dst, progress=rec),
        lambda rec: api.verify_archive(archive, progress=rec),
    ]
    for last, call in zip((False, False, True), calls):
        opened.clear()
        rec = Recorder()
        call(rec)
        members = manifest_tables(archive)
        checked = [p for p in rec.phases() if p.startswith("verify archive ")]
        n = len(members)
        if call is calls[1]:
            assert checked == []
        else:
            assert checked == [f"verify archive {t} ({i}/{n})" for i, t in enumerate(members, 1)]
        # diff reads its samples (and counts the target rows the archive lacks) per table
        sampled = [p for p in rec.phases() if p.startswith("samples ")]
        if call is calls[1]:
            assert sorted(p.split()[1] for p in sampled) == sorted(members)
            assert [p.rsplit(" ", 1)[1] for p in sampled] == [f"({i}/{n})" for i in range(1, n + 1)]
        else:
            assert sampled == []
        assert rec.balanced()
        # each member's stored bytes read once to check it, and once more to stage it
        # when verify compares a database; diff reads each once, to stage and check it
        members_read = Counter(m for m in opened if m != MANIFEST_NAME and m != SIGNATURE_NAME)
        once = last or call is calls[1]
        assert len(members_read) == n and set(members_read.values()) == {1 if once else 2}, opened


def manifest_tables(archive: Path) -> list[str]:
    with ArchiveReader(archive) as r:
        return [t.table for t in r.manifest.tables]
