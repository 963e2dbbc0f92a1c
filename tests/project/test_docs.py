"""The documentation follows the code: every command the CLI registers has a section with
a real example in docs/commands.md and a row in the README's command table, every
relative link in README.md and docs/*.md leads somewhere, and the README stays a front
page (at most 400 lines). Commands are read from the typer app, so a new command fails
here until it is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from edms_pgdump.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 400

FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _command_names() -> list[str]:
    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


COMMANDS = _command_names()


def _sections(markdown: str, level: str = "## ") -> dict[str, str]:
    """Heading text -> body up to the next heading of the same level (code blocks kept)."""
    out: dict[str, str] = {}
    current: str | None = None
    in_fence = False
    for line in markdown.splitlines():
        if line.startswith(("```", "~~~")):
            in_fence = not in_fence
        if not in_fence and line.startswith(level):
            current = line[len(level) :].strip()
            out[current] = ""
        elif current is not None:
            out[current] += line + "\n"
    return out


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(markdown: str) -> set[str]:
    prose = FENCE.sub("", markdown)
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", prose, re.M)}


def _doc_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def test_readme_is_a_front_page() -> None:
    lines = README.read_text().count("\n")
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines (at most {README_MAX_LINES}); move reference text to docs/"
    )


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_an_example_in_docs_commands(name: str) -> None:
    sections = _sections((DOCS / "commands.md").read_text())
    assert name in sections, f"docs/commands.md has no '## {name}' section; add one with an example"
    example = re.compile(rf"^\$ edms-pgdump {re.escape(name)}\b.*\n(?!\$ )\S", re.M)
    assert example.search(sections[name]), (
        f"docs/commands.md '## {name}' shows no example: add a code block with a line "
        f"'$ edms-pgdump {name} …' followed by its real output"
    )


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_a_row_in_the_readme_table(name: str) -> None:
    rows = [line for line in README.read_text().splitlines() if line.startswith("| ")]
    first_cells = [row.split(" | ")[0] for row in rows]
    assert any(re.search(rf"`edms-pgdump {re.escape(name)}[\s`]", cell) for cell in first_cells), (
        f"README.md's command table has no row for `edms-pgdump {name}`; add one linking to "
        f"docs/commands.md#{name}"
    )


@pytest.mark.parametrize("page", _doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_an_existing_file(page: Path) -> None:
    prose = FENCE.sub("", page.read_text())
    broken: list[str] = []
    for target in LINK.findall(prose):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            broken.append(f"{target} (no file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest})")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest.read_text()):
            broken.append(f"{target} (no heading with anchor #{anchor} in {dest.name})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: " + "; ".join(broken)


def test_the_link_check_sees_links() -> None:
    """Guard against a LINK pattern that silently matches nothing."""
    targets = LINK.findall(FENCE.sub("", README.read_text()))
    assert "docs/commands.md" in targets
    assert any(t.startswith("docs/commands.md#") for t in targets)
