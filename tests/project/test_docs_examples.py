"""The examples in README.md and docs/commands.md are real: a sampled subset of the
commands they show (the ones on the sample schema: $PROD, $FRESH, $OTHER) is run against a
real server, and each output is compared with the one printed in the docs by its shape (the
words that start each line, numbers, hashes, ids and timings aside) and its exit code. A
doc example that drifts from the tool fails here.

Sampled, not all: the examples on other schemas (h10_*, $REG, $DRIFTED, the Django
fixtures), the demo and the psql runbooks are covered by their own tests.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from edms_pgdump.cli import app
from edms_pgdump.demo import sample
from edms_pgdump.demo.resources import sample_mapping_path

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

# (document, command exactly as shown), in the order they run: the archive first
SAMPLED: list[tuple[str, str]] = [
    ("docs/commands.md", "edms-pgdump export --dsn $PROD -m edms.yaml -o prod.edmsdump"),
    ("docs/commands.md", "edms-pgdump check --dsn $PROD -m edms.yaml"),
    ("docs/commands.md", "edms-pgdump check prod.edmsdump"),
    ("docs/commands.md", "edms-pgdump inspect prod.edmsdump"),
    ("docs/commands.md", "edms-pgdump verify prod.edmsdump"),
    ("docs/commands.md", "edms-pgdump verify prod.edmsdump --dsn $OTHER"),
    (
        "docs/commands.md",
        "edms-pgdump import prod.edmsdump --dsn $FRESH --delete-missing --max-deletes 10 --dry-run",
    ),
    ("docs/commands.md", "edms-pgdump import prod.edmsdump --dsn $FRESH --delete-missing --dry-run"),
    ("docs/commands.md", "edms-pgdump import prod.edmsdump --dsn $FRESH --dry-run"),
    ("README.md", "edms-pgdump check --dsn $PROD -m edms.yaml"),
    ("README.md", "edms-pgdump import prod.edmsdump --dsn $FRESH"),
    ("README.md", "edms-pgdump import prod.edmsdump --dsn $FRESH"),  # again: already applied
    ("README.md", "edms-pgdump verify prod.edmsdump --dsn $FRESH"),
    ("docs/commands.md", "edms-pgdump verify prod.edmsdump --dsn $FRESH"),
]


def examples(doc: str) -> dict[str, list[tuple[list[str], int]]]:
    """Every ``$ edms-pgdump …`` in a fenced block: its output lines and exit code
    (``[exit N]`` when shown, else 0), by command text; a command shown twice keeps both."""
    found: dict[str, list[tuple[list[str], int]]] = {}
    for block in re.findall(r"```[^\n]*\n(.*?)```", (ROOT / doc).read_text(), re.S):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            if not lines[i].startswith("$ edms-pgdump"):
                i += 1
                continue
            command = lines[i][2:]
            i += 1
            while command.endswith("\\") and i < len(lines):
                command = command[:-1] + lines[i].strip()
                i += 1
            output: list[str] = []
            code = 0
            while i < len(lines) and not lines[i].startswith("$ "):
                m = re.fullmatch(r"\[exit (\d+)\]", lines[i].strip())
                if m:
                    code = int(m.group(1))
                else:
                    output.append(lines[i])
                i += 1
            found.setdefault(command, []).append((output, code))
    return found


def shape(lines: list[str]) -> list[str]:
    """Each line as its first two words, servers named SERVER and numbers made 0: what a
    reader scans for (the docs ran on 127.0.0.1:5432/docs_prod, the test on its own)."""
    shapes = []
    for line in lines:
        line = re.sub(r"(\[local\]|[\w.\-]+):\d+/[\w\-]+", "SERVER", line)
        words = re.findall(r"[A-Za-z_][\w.\-/:]*", re.sub(r"\d+", "0", line))
        if words:
            shapes.append(" ".join(words[:2]))
    return shapes


@pytest.fixture
def env(sample_dbs: tuple[str, str], new_db, sample_template: str, tmp_path: Path, monkeypatch) -> Path:
    src, fresh = sample_dbs
    other = new_db(sample_template)
    with psycopg.connect(other, autocommit=True) as c:
        sample.reinitialise(c)
    for var, dsn in (("PROD", src), ("FRESH", fresh), ("OTHER", other)):
        monkeypatch.setenv(var, dsn)
    monkeypatch.setenv("EDMS_PGDUMP_AUDIT_LOG", "audit.jsonl")
    shutil.copy(sample_mapping_path(), tmp_path / "edms.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _argv(command: str) -> list[str]:
    import os
    import shlex

    return [os.path.expandvars(a) for a in shlex.split(command)][1:]


def test_sampled_doc_examples_match_the_tool(env: Path) -> None:
    docs = {doc: examples(doc) for doc in {d for d, _ in SAMPLED}}
    seen: dict[tuple[str, str], int] = {}
    mismatches = []
    for doc, command in SAMPLED:
        shown = docs[doc].get(command)
        assert shown, f"{doc} no longer shows `{command}`: update SAMPLED"
        n = seen.get((doc, command), 0)
        seen[(doc, command)] = n + 1
        expected, code = shown[min(n, len(shown) - 1)]
        res = runner.invoke(app, _argv(command))
        got = shape(res.output.splitlines())
        if res.exit_code != code or got != shape(expected):
            mismatches.append(
                f"{doc}: $ {command}\n  exit {res.exit_code} (docs: {code})\n"
                f"  docs: {shape(expected)}\n  tool: {got}\n{res.output}"
            )
    assert not mismatches, "\n\n".join(mismatches)
