"""The import program's step list, golden-tested without a database: a hand-built
catalog (a tree, a cycle through a deferrable key, a generic-free lookup), planned and
turned into steps, rendered as one line per step. A change to the import algorithm
shows up here as a diff to review (regenerate with pytest --update-golden)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edms_pgdump import sqlgen
from edms_pgdump.catalog.names import QualifiedName, parse_qualified_name
from edms_pgdump.catalog.read import Catalog, Column, ForeignKey, SequenceInfo, Table
from edms_pgdump.mapping import load_mapping_text
from edms_pgdump.options import ImportOptions
from edms_pgdump.plan.build import build_plan
from edms_pgdump.program.build import import_program
from edms_pgdump.program.steps import (
    Balance,
    Check,
    CompareCounts,
    CopyIn,
    Derive,
    End,
    Execute,
    Program,
    Record,
    Refuse,
    Setting,
    Step,
    When,
)

GOLDEN = Path(__file__).parent.parent / "golden"


def q(text: str) -> QualifiedName:
    return parse_qualified_name(text)


def col(name: str, type_: str = "bigint", *, null: bool = False, serial: str = "") -> Column:
    """``serial``: the table whose own id sequence the column draws from."""
    if not serial:
        return Column(name, type_, not null, None, "", "")
    sequence = q(f"public.{serial}_{name}_seq")
    return Column(name, type_, not null, f"nextval('{sequence}'::regclass)", "", "", sequence=sequence)


def seq(table: str) -> SequenceInfo:
    return SequenceInfo(q(f"public.{table}_id_seq"), "bigint", 1, 2**63 - 1, 1)


CATALOG = Catalog(
    {
        q("public.users"): Table(
            q("public.users"),
            (col("id", serial="users"), col("username", "text"), col("email", "text", null=True)),
            ("id",),
            (("username",),),
            (),
            immediate_unique_keys=(("id",), ("username",)),
            owned=True,
        ),
        q("public.folders"): Table(
            q("public.folders"),
            (col("id", serial="folders"), col("parent_id", null=True), col("label", "text")),
            ("id",),
            (("parent_id", "label"),),
            (ForeignKey("folders_parent_fk", ("parent_id",), q("public.folders"), ("id",), False, False),),
            owned=True,
        ),
        q("public.documents"): Table(
            q("public.documents"),
            (
                col("id", serial="documents"),
                col("number", "text"),
                col("owner_id"),
                col("folder_id", null=True),
                col("current_version_id", null=True),
            ),
            ("id",),
            (("number",),),
            (
                ForeignKey("documents_owner_fk", ("owner_id",), q("public.users"), ("id",), False, False),
                ForeignKey("documents_folder_fk", ("folder_id",), q("public.folders"), ("id",), False, False),
                ForeignKey(
                    "documents_current_fk",
                    ("current_version_id",),
                    q("public.versions"),
                    ("id",),
                    True,
                    False,
                ),
            ),
            immediate_unique_keys=(("id",), ("number",)),
            owned=True,
            estimated_rows=1000,
        ),
        q("public.versions"): Table(
            q("public.versions"),
            (col("id", serial="versions"), col("document_id"), col("n", "integer")),
            ("id",),
            (("document_id", "n"),),
            (
                ForeignKey(
                    "versions_document_fk", ("document_id",), q("public.documents"), ("id",), False, False
                ),
            ),
            owned=True,
        ),
    },
    sequences={s.name: s for s in (seq("users"), seq("folders"), seq("documents"), seq("versions"))},
)

MAPPING = load_mapping_text(
    """
version: 1
tables:
  public.users: {natural_key: [username], export: false}
  public.folders: {natural_key: [parent_id, label]}
  public.documents: {natural_key: [number]}
  public.versions: {natural_key: [document_id, n]}
"""
)


def _lines(steps: tuple[Step, ...], depth: int = 0) -> list[str]:
    out: list[str] = []
    pad = "  " * depth
    for s in steps:
        table = lambda t: str(t) if t is not None else "-"  # noqa: E731
        if isinstance(s, When):
            out.append(f"{pad}when {s.condition.describe()}  # {s.why}")
            out += _lines(s.steps, depth + 1)
        elif isinstance(s, Execute):
            extra = f" -> {s.count}" if s.count else ""
            out.append(f"{pad}execute {s.step} [{table(s.table)}]{extra}: {sqlgen.render(s.statement)}")
        elif isinstance(s, CopyIn):
            out.append(f"{pad}copy-in [{s.table}]: {sqlgen.render(s.statement)}")
        elif isinstance(s, Record):
            out.append(f"{pad}record {s.step} [{s.table}] {', '.join(s.counts)}: {sqlgen.render(s.query)}")
        elif isinstance(s, Derive):
            terms = " + ".join(f"{t.factor}*{t.table}.{t.count}" for t in s.terms)
            out.append(f"{pad}derive [{s.table}] {s.count} = {terms}")
        elif isinstance(s, Check):
            out.append(f"{pad}check {s.step} [{table(s.table)}] {s.shape}: {sqlgen.render(s.query)}")
        elif isinstance(s, CompareCounts):
            out.append(f"{pad}compare [{s.table}] {s.left} == {s.right}")
        elif isinstance(s, Refuse):
            out.append(f"{pad}refuse [{s.table}] {s.message.head}<{s.value.count}>{s.message.tail}")
        elif isinstance(s, Balance):
            out.append(f"{pad}balance [{s.table}]")
        elif isinstance(s, Setting):
            extra = " (best effort)" if s.best_effort else ""
            out.append(f"{pad}setting{extra}: {sqlgen.render(s.statement)}")
        elif isinstance(s, End):
            out.append(f"{pad}end: {'commit' if s.commit else 'rollback'}")
        else:  # pragma: no cover - a new step type needs a line here
            raise TypeError(s)
    return out


def _render(program: Program) -> str:
    return "\n".join(_lines((*program.opening, *program.steps, *program.closing))) + "\n"


@pytest.mark.parametrize(
    "name, options",
    [
        ("default", ImportOptions()),
        ("keep-dry-run", ImportOptions(constraints="keep", dry_run=True, on_conflict="skip")),
        ("compare", ImportOptions(dry_run=True, compare_only=True, constraints="keep")),
        ("mirror", ImportOptions(delete_missing=True, max_deletes=10)),
    ],
)
def test_import_program_golden(name: str, options: ImportOptions, request: pytest.FixtureRequest) -> None:
    plan = build_plan(MAPPING, CATALOG)
    assert not plan.errors, plan.errors
    text = _render(import_program(plan, CATALOG, options))
    golden = GOLDEN / f"import_program_{name}.txt"
    if request.config.getoption("--update-golden"):
        golden.write_text(text)
    assert golden.exists(), "run pytest --update-golden to create it"
    assert text == golden.read_text(), f"{golden} is stale; review the diff, then pytest --update-golden"


def test_the_program_orders_writes_after_every_check() -> None:
    """Every staging, resolving and checking step comes before the first write."""
    plan = build_plan(MAPPING, CATALOG)
    lines = _render(import_program(plan, CATALOG, ImportOptions(constraints="keep")))
    first_write = min(
        lines.index(marker)
        for marker in ("execute insert", "execute update", "execute drop fk")
        if marker in lines
    )
    assert lines.rindex("check unresolved") < first_write
    assert lines.rindex("execute final") < first_write or lines.rindex("execute keyed+final") < first_write


def test_rows_found_unchanged_are_kept_beside_the_raw_rows() -> None:
    """In a private staging schema, the rows set aside as unchanged are an UNLOGGED table
    of it, like the raw rows (the rows left to resolve are then found by a parallel
    plan); without one, both are temporary."""
    plan = build_plan(MAPPING, CATALOG)
    staged = _render(import_program(plan, CATALOG, ImportOptions(), staging_schema="stage"))
    assert 'CREATE UNLOGGED TABLE "stage"."edms_002_documents_same" WITH (autovacuum_enabled = false) AS' in staged
    assert 'CREATE TEMP TABLE "edms_002_documents_keyed" ON COMMIT DROP' in staged
    alone = _render(import_program(plan, CATALOG, ImportOptions()))
    assert 'CREATE TEMP TABLE "edms_002_documents_same" ON COMMIT DROP AS' in alone
    assert "UNLOGGED" not in alone
