"""The typer application and what every command shares: output, progress, errors.

Commands live in sibling modules (one per group) and call exactly one library
function each; this module maps library exceptions to exit codes and one-line
messages (tracebacks only with --debug).
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from rich import filesize
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from edms_pgdump.cli.conventions import SETTINGS, EdmsGroup
from edms_pgdump.errors import EdmsPgdumpError

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2

app = typer.Typer(
    name="edms-pgdump",
    help="Natural-key logical export/import for PostgreSQL at COPY speed.\n\n"
    "Exit codes: 0 ok, 1 data or validation problem reported, 2 usage error "
    "(verify: 3 when the database lacks the archive's data; interrupted: 130).\n\n"
    "Connecting commands take -d/--dbname (or --dsn), -h, -p, -U and the libpq environment "
    "(PGHOST, PGPORT, PGUSER, PGDATABASE, PGSERVICE, PGPASSWORD, .pgpass), as psql does.",
    no_args_is_help=True,
    cls=EdmsGroup,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


out = Console(highlight=False, soft_wrap=True, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)
if not out.is_terminal:  # logs and pipes: keep table names whole rather than 80 columns
    out.width = max(out.width, 160)


def installed_version() -> str:
    """The installed distribution's version (what pip shows), else the package's own.
    importlib.metadata is imported here: with the email package it pulls in, it was a
    third of the start-up of every command, --help included."""
    from importlib import metadata

    try:
        return metadata.version("edms-pgdump")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        from edms_pgdump import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        out.print(f"edms-pgdump {installed_version()}", markup=False)
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors (anywhere on the line)."),
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the version and exit.",
        callback=_print_version,
        is_eager=True,
    ),
) -> None:
    SETTINGS.debug = SETTINGS.debug or debug  # EdmsGroup takes --debug from anywhere on the line


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def prefixed(severity: str, message: str) -> str:
    """``severity: message`` with exactly one prefix.

    Some messages already carry theirs (a ``Problem`` prints as ``error: table: ...``),
    and printing ``error: error: ...`` reads as two errors.
    """
    return f"{severity}: {unprefixed(severity, message)}"


def unprefixed(severity: str, message: str) -> str:
    """The message without a leading ``severity: `` (for lines that say it another way)."""
    head = f"{severity}: "
    return message[len(head) :] if message.startswith(head) else message


SHOWN_WARNINGS = 3


def print_warnings(warnings: list[str], verbose: bool) -> None:
    """Warnings once per run, each with one prefix, on stderr (stdout holds only the result);
    beyond a few, a count and how to see them all (the same plan warnings come back on every
    export and import)."""
    unique = list(dict.fromkeys(warnings))
    shown = unique if verbose else unique[:SHOWN_WARNINGS]
    for w in shown:
        err.print(prefixed("warning", one_line(w)), markup=False)
    if len(unique) > len(shown):
        err.print(
            f"({len(unique) - len(shown)} more warnings; --verbose lists them all, "
            "edms-pgdump check explains each)",
            markup=False,
        )


def one_line(text: str) -> str:
    """A message on one line: a value holding a newline must not start a line of its own
    (it would read as a second message)."""
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")


def verbose_option() -> Any:
    return typer.Option(False, "--verbose", "-v", help="List every warning (default: the first few).")


T = TypeVar("T")

INTERRUPTED = (
    "interrupted: nothing was committed, no row was written; but sequences are never rolled back, "
    "so the sequences of tables that were to receive new rows may have moved ahead by up to that "
    "many ids (new ids stay unique, with a gap; lower them with setval if that matters)"
)


def run(fn: Callable[[], T], *, json_output: bool = False, error_exit: int | None = None) -> T:
    """Call the library; turn its exceptions into one line and an exit code
    (``error_exit`` for commands whose exit 1 means something else, like diff's)."""
    try:
        return fn()
    except EdmsPgdumpError as exc:
        if SETTINGS.debug:
            raise
        message = unprefixed("error", str(exc))
        payload: dict[str, Any] = {"ok": False, "error": message, "kind": type(exc).__name__}
        for attr in ("problems", "damages"):
            extra = getattr(exc, attr, None)
            if extra:
                payload[attr] = extra
        report = getattr(exc, "report", None)
        if report is not None and hasattr(report, "to_dict"):
            payload["report"] = report.to_dict()
            if "problems" not in payload and getattr(report, "problems", None):
                payload["problems"] = list(report.problems)  # an import names every table at once
        total = deletions_total(payload.get("problems") or [message])
        if total is not None:
            payload["deletions_total"] = total
        if json_output:
            emit_json(payload)
        else:
            err.print(prefixed("error", one_line(message)), markup=False)
            for p in payload.get("problems", payload.get("damages", []))[1:]:
                err.print(f"  also: {one_line(unprefixed('error', str(p)))}", markup=False)
            if total is not None:
                err.print(f"  in all: {total} row(s) would be deleted", markup=False)
        raise typer.Exit(exc.exit_code if error_exit is None or exc.exit_code == 2 else error_exit) from None
    except KeyboardInterrupt:
        err.print(INTERRUPTED, markup=False)
        raise typer.Exit(130) from None


_WOULD_DELETE = re.compile(
    r": (\d+) row\(s\)(?: in the subset's scope)? the archive does not hold would be deleted"
)


def deletions_total(problems: list[Any]) -> int | None:
    """The --max-deletes refusal names each table's count; the total the limit is about is
    their sum (None when this is not that refusal)."""
    texts = [str(p) for p in problems]
    if not any("over --max-deletes" in t for t in texts):
        return None
    return sum(int(m.group(1)) for t in texts for m in _WOULD_DELETE.finditer(t))


class _RowsBytes(ProgressColumn):
    """``1,234/5,000 rows  1.2 MB``: rows against the expected count, bytes streamed."""

    def render(self, task: Task) -> Text:
        if task.fields.get("kind") == "phase":
            return Text(f"step {int(task.completed):,}")
        total = f"/{int(task.total):,}" if task.total is not None else ""
        nbytes = int(task.fields.get("nbytes", 0))
        return Text(f"{int(task.completed):,}{total} rows  {filesize.decimal(nbytes)}")


class RichProgress:
    """Per-table bars (rows against the expected count, bytes) plus an overall bar.

    Totals are estimates on export (the planner's row count) and exact on import (the
    manifest); a finished table's total snaps to what was really moved.
    """

    OVERALL = "all tables"

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        self.totals: dict[str, int | None] = {}
        self.overall: TaskID | None = None
        self.nbytes: dict[TaskID, int] = {}
        self.phase: TaskID | None = None
        self.lock = threading.Lock()

    def _sync_overall(self) -> None:
        if self.overall is None:
            self.overall = self.progress.add_task(self.OVERALL, total=None, nbytes=0)
        known = list(self.totals.values())
        if any(t is None for t in known):
            self._task(self.overall).total = None  # update(total=None) would mean "unchanged"
        else:
            self.progress.update(self.overall, total=sum(t or 0 for t in known))

    def _phase(self, task: str) -> bool:
        """A step after staging (options.PHASE): one line, relabelled at each step, whose
        clock keeps running while the import resolves, writes, re-adds keys and verifies."""
        from edms_pgdump.options import PHASE

        if not task.startswith(PHASE):
            return False
        label = task[len(PHASE) :]
        if self.phase is None:
            self.phase = self.progress.add_task(label, total=None, nbytes=0, kind="phase")
        else:
            self.progress.update(self.phase, description=label, advance=1)
        return True

    def start(self, task: str, total: int | None) -> None:
        if self._phase(task):
            return
        if task in self.tasks:
            return
        total = total if total is not None and total > 0 else None
        self.totals[task] = total
        self._sync_overall()
        self.tasks[task] = self.progress.add_task(task, total=total, nbytes=0)

    def advance(self, task: str, rows: int, nbytes: int) -> None:
        t = self.tasks.get(task)
        if t is None:
            return
        with self.lock:  # export workers report from several threads
            for target in (t, self.overall):
                if target is not None:
                    self.nbytes[target] = self.nbytes.get(target, 0) + nbytes
                    self.progress.update(target, advance=rows, nbytes=self.nbytes[target])

    def finish(self, task: str) -> None:
        t = self.tasks.get(task)
        if t is None:
            return
        done = int(self._task(t).completed)
        self.progress.update(t, total=done, completed=done)
        self.totals[task] = done
        self._sync_overall()

    def _task(self, task_id: TaskID) -> Task:
        return self.progress.tasks[self.progress.task_ids.index(task_id)]


@contextmanager
def progress_bars(enabled: bool) -> Iterator[RichProgress | None]:
    """Bars on stderr, only when it is a terminal: pipes and CI logs stay clean."""
    if not enabled or not err.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        _RowsBytes(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as p:
        yield RichProgress(p)


def json_option() -> Any:
    return typer.Option(False, "--json", help="Print one JSON document instead of text.")


def quiet_option() -> Any:
    return typer.Option(
        False, "--quiet", "-q", help="No progress bars (they are off anyway when stderr is not a terminal)."
    )


def audit_option() -> Any:
    return typer.Option(
        None,
        "--audit-log",
        help="Append the audit line here (default: $EDMS_PGDUMP_AUDIT_LOG, else "
        "$XDG_STATE_HOME/edms-pgdump/audit.jsonl or ~/.local/state/edms-pgdump/audit.jsonl; "
        "EDMS_PGDUMP_AUDIT_LOG=off disables).",
    )
