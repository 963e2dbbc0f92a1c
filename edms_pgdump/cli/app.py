"""The typer application and what every command shares: output, progress, errors.

Commands live in sibling modules (one per group) and call exactly one library
function each; this module maps library exceptions to exit codes and one-line
messages (tracebacks only with --debug).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from ..errors import EdmsPgdumpError

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2

app = typer.Typer(
    name="edms-pgdump",
    help="Natural-key logical export/import for PostgreSQL at COPY speed.\n\n"
    "Exit codes: 0 ok, 1 data or validation problem reported, 2 usage error.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@dataclass
class Settings:
    debug: bool = False


SETTINGS = Settings()

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    SETTINGS.debug = debug


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


T = TypeVar("T")


def run(fn: Callable[[], T], *, json_output: bool = False) -> T:
    """Call the library; turn its exceptions into one line and an exit code."""
    try:
        return fn()
    except EdmsPgdumpError as exc:
        if SETTINGS.debug:
            raise
        payload: dict[str, Any] = {"ok": False, "error": str(exc), "kind": type(exc).__name__}
        for attr in ("problems", "damages"):
            extra = getattr(exc, attr, None)
            if extra:
                payload[attr] = extra
        report = getattr(exc, "report", None)
        if report is not None and hasattr(report, "to_dict"):
            payload["report"] = report.to_dict()
        if json_output:
            emit_json(payload)
        else:
            err.print(f"error: {exc}", markup=False)
            for p in payload.get("problems", payload.get("damages", []))[1:]:
                err.print(f"  also: {p}", markup=False)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted; nothing was committed")
        raise typer.Exit(130) from None


class RichProgress:
    """Per-table bars (rows, bytes) plus an overall bar; silent when not a TTY."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def start(self, task: str, total: int | None) -> None:
        if task not in self.tasks:
            self.tasks[task] = self.progress.add_task(task, total=total)

    def advance(self, task: str, rows: int, nbytes: int) -> None:
        if task in self.tasks:
            self.progress.advance(self.tasks[task], rows)

    def finish(self, task: str) -> None:
        if task in self.tasks:
            t = self.tasks[task]
            done = self.progress.tasks[self.progress.task_ids.index(t)].completed
            self.progress.update(t, total=done, completed=done)


@contextmanager
def progress_bars(enabled: bool) -> Iterator[RichProgress | None]:
    if not enabled or not err.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as p:
        yield RichProgress(p)


_ = DownloadColumn  # kept for byte-oriented bars


def json_option() -> Any:
    return typer.Option(False, "--json", help="Print one JSON document instead of text.")


def quiet_option() -> Any:
    return typer.Option(False, "--quiet", "-q", help="No progress bars.")
