"""Progress after the bars reach 100%: the import (and verify --dsn, diff --dsn, which run
the same program read only) reports every step it runs, so a long resolve, write, re-add of
keys or verification is never silent; the terminal shows it as one line that keeps ticking,
and nothing is drawn when stderr is not a terminal."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from typer.testing import CliRunner

from edms_pgdump import api
from edms_pgdump.cli import app
from edms_pgdump.cli.app import RichProgress
from edms_pgdump.demo.resources import sample_mapping_path
from edms_pgdump.options import PHASE

runner = CliRunner()


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


def _archive(src: str, tmp_path: Path) -> Path:
    archive = tmp_path / "a.edms"
    api.export_archive(src, sample_mapping_path(), archive, audit_log=False)
    return archive


def test_import_reports_every_phase_after_staging(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, dst = sample_dbs
    archive = _archive(src, tmp_path)
    rec = Recorder()
    api.import_archive(dst, archive, progress=rec, audit_log=False)
    phases = rec.phases()
    last_copy = max(i for i, p in enumerate(phases) if p.startswith("copy "))
    after = phases[last_copy + 1 :]
    # resolving, writing, re-adding keys and verifying all show up after the last table is staged
    for phase in ("keyed public.documents", "insert public.documents", "re-add fk ", "summary"):
        assert any(p.startswith(phase) for p in after), (phase, after)
    # every phase started is finished, one at a time
    started = [t for e, t in rec.events if e == "start" and t.startswith(PHASE)]
    finished = [t for e, t in rec.events if e == "finish" and t.startswith(PHASE)]
    assert started == finished


def test_verify_and_diff_against_a_database_report_their_phases(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    src, dst = sample_dbs
    archive = _archive(src, tmp_path)
    for call in (
        lambda rec: api.verify_archive(archive, dst, progress=rec),
        lambda rec: api.diff(archive, dsn=dst, progress=rec),
    ):
        rec = Recorder()
        call(rec)
        assert any(p.startswith("compare ") for p in rec.phases()), rec.phases()


def test_the_terminal_shows_one_phase_line_that_moves_on() -> None:
    with Progress(console=Console(file=StringIO(), force_terminal=True)) as p:
        bars = RichProgress(p)
        bars.start("public.users", 10)
        bars.finish("public.users")
        for step in ("insert public.users", "add fk public.documents", "present public.users"):
            bars.start(PHASE + step, None)
            bars.finish(PHASE + step)
        descriptions = [t.description for t in p.tasks]
        assert descriptions == ["all tables", "public.users", "present public.users"]
        phase = p.tasks[-1]
        assert phase.completed == 2 and phase.fields["kind"] == "phase"


def test_no_progress_is_drawn_when_stderr_is_not_a_terminal(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    src, dst = sample_dbs
    archive = _archive(src, tmp_path)
    res = runner.invoke(app, ["import", str(archive), "-d", dst])
    assert res.exit_code == 0, res.output
    assert res.stderr == ""
    res = runner.invoke(app, ["verify", str(archive), "-d", dst])
    assert res.exit_code == 0 and res.stderr == ""
