"""The export program (export/program.py): its steps as golden text, every refusal step
rendered in export.sql with the message the library raises, both derived from the
program so neither can drift.

The schema trips every kind of refusal step the program has: generic references (types
not mapped, ids naming nothing), a tree (loops), a natural key without a unique
constraint, a likely reference, a reference to a NULL-keyed row from a natural key, declared and NOT VALID
references, and a two-column reference that may be partly NULL with its id column set.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from edms_pgdump import api, sqlgen
from edms_pgdump.analysis.generic_probe import plan_with_targets
from edms_pgdump.analysis.probes import UNSAFE_DATA_HEADS, unsafe_data_line
from edms_pgdump.catalog.read import Catalog, read_catalog
from edms_pgdump.db import connect
from edms_pgdump.demo.servers import Server
from edms_pgdump.errors import EdmsPgdumpError, PlanError
from edms_pgdump.export.program import (
    HOLES,
    REFUSALS,
    Commit,
    CopyOut,
    Counts,
    ExportProgram,
    LikelyColumn,
    PinSession,
    RefuseDangling,
    RefuseLoopingTrees,
    RefusePlanWarnings,
    RefuseUnmappedTypes,
    RefuseUnsafeData,
    Sampled,
    Settings,
    Snapshot,
    Step,
    SubsetClosure,
    SubsetCounts,
    SubsetFilter,
    SubsetNeeded,
    SubsetStart,
    export_program,
)
from edms_pgdump.export.subset import resolve_filters, subset_steps
from edms_pgdump.mapping import Mapping, load_mapping_text
from edms_pgdump.options import ExportOptions
from edms_pgdump.plan.build import Plan, build_plan
from edms_pgdump.program.render_psql import literal
from edms_pgdump.runbook.scripts import export_script, write_runbooks
from tests.support.generic_schema import MAPPING as GENERIC_MAPPING
from tests.support.generic_schema import SCHEMA as GENERIC_SCHEMA
from tests.support.generic_schema import SOURCE_DATA as GENERIC_DATA
from tests.support.psql import ROOT, run_psql
from tests.support.real_schemas import make_db, run

GOLDEN = ROOT / "tests" / "golden"

SCHEMA = """
CREATE TABLE public.node (id serial PRIMARY KEY, parent_id integer REFERENCES public.node (id),
  label text NOT NULL, UNIQUE (parent_id, label));
CREATE TABLE public.person (id serial PRIMARY KEY, email text, name text);
CREATE TABLE public.product (id serial PRIMARY KEY, sku text NOT NULL UNIQUE);
CREATE TABLE public.sale (id serial PRIMARY KEY, ref text NOT NULL UNIQUE, product_id integer);
CREATE TABLE public.category (id serial PRIMARY KEY, code text UNIQUE);
CREATE TABLE public.item (id serial PRIMARY KEY, name text NOT NULL UNIQUE,
  category_id integer REFERENCES public.category (id));
CREATE TABLE public.party (id serial PRIMARY KEY, code text UNIQUE NOT NULL);
CREATE TABLE public.note (id serial PRIMARY KEY, ref text UNIQUE NOT NULL, party_id integer);
CREATE TABLE public.doc (id serial PRIMARY KEY, ref text UNIQUE NOT NULL, party_id integer);
ALTER TABLE public.doc ADD CONSTRAINT doc_party_fk FOREIGN KEY (party_id) REFERENCES public.party (id) NOT VALID;
CREATE TABLE public.shelf (id serial PRIMARY KEY, room text NOT NULL, pos integer NOT NULL, UNIQUE (room, pos),
  UNIQUE (room, id));
CREATE TABLE public.book (id serial PRIMARY KEY, isbn text NOT NULL UNIQUE, room text, shelf_id integer,
  FOREIGN KEY (room, shelf_id) REFERENCES public.shelf (room, id));
CREATE TABLE public.block (id serial PRIMARY KEY, ref text UNIQUE NOT NULL, body jsonb);
"""
MAPPING = (
    GENERIC_MAPPING
    + """
  public.node: {natural_key: [parent_id, label]}
  public.person: {natural_key: [email]}
  public.product: {natural_key: [sku]}
  public.sale: {natural_key: [ref]}
  public.category: {natural_key: [code]}
  public.item: {natural_key: [category_id, name]}
  public.party: {natural_key: [code]}
  public.note: {natural_key: [ref], references: [{columns: [party_id], table: public.party}]}
  public.doc: {natural_key: [ref]}
  public.shelf: {natural_key: [room, pos]}
  public.book: {natural_key: [isbn]}
  public.block:
    natural_key: [ref]
    embedded_references: [{column: body, json: '$[*] ? (@.type == "product").value', table: public.product}]
"""
)
# rows that trip every refusal: a loop, a duplicated key, ids of products, a reference to
# the NULL-keyed category from item's natural key, references to rows that do not exist, a
# reference partly NULL with its id set (b3; b2's room travels as a value),
# generic ids naming nothing and of a type not mapped, an id inside JSON naming no product
BAD_DATA = """
INSERT INTO public.block (ref, body) VALUES ('k1', '[{"type": "product", "value": 1}, {"type": "product", "value": 4242}]');
INSERT INTO public.node (id, parent_id, label) VALUES (1, NULL, 'root'), (2, 1, 'a'), (3, NULL, 'b'), (4, 3, 'c');
UPDATE public.node SET parent_id = 4 WHERE id = 3;
INSERT INTO public.person (email, name) VALUES ('a@x', 'Ann'), ('a@x', 'Ann 2'), ('b@x', 'Bob');
INSERT INTO public.product (sku) SELECT 'p' || g FROM generate_series(1, 3) g;
INSERT INTO public.sale (ref, product_id) SELECT 's' || g, 1 + g % 3 FROM generate_series(1, 30) g;
INSERT INTO public.category (code) VALUES ('tools'), (NULL);
INSERT INTO public.item (name, category_id) SELECT 'i' || id, id FROM public.category;
INSERT INTO public.party (code) VALUES ('a');
INSERT INTO public.note (ref, party_id) VALUES ('n1', 1), ('n2', 4242);
INSERT INTO public.shelf (room, pos) VALUES ('r1', 1);
INSERT INTO public.book (isbn, room, shelf_id) VALUES ('b1', 'r1', 1), ('b2', 'r1', NULL), ('b3', NULL, 1);
INSERT INTO public.app_comment (content_type_id, object_id, body)
  SELECT id, '9999', 'gone' FROM public.django_content_type WHERE model = 'document';
INSERT INTO public.app_comment (content_type_id, object_id, body)
  SELECT id, '1', 'a user' FROM public.django_content_type WHERE model = 'user';
"""


def _db(new_db: Any, *data: str) -> tuple[str, Mapping]:
    dsn = make_db(new_db, GENERIC_SCHEMA, SCHEMA, GENERIC_DATA, *data)
    return dsn, load_mapping_text(MAPPING)


def _program(dsn: str, mapping: Mapping, options: ExportOptions) -> tuple[ExportProgram, Plan, Catalog]:
    """The program as the library builds it: the generic targets found on the data."""
    conn = connect(dsn)
    try:
        catalog = read_catalog(conn)
        plan, _ = plan_with_targets(conn, mapping, catalog, build_plan(mapping, catalog))
    finally:
        conn.close()
    filters = resolve_filters(mapping, options.where)
    subset = subset_steps(plan, catalog, filters) if filters else None
    return export_program(plan, catalog, mapping, options, subset), plan, catalog


# -- the steps as text ------------------------------------------------------------------------


def _shown(text: str) -> str:
    return HOLES.sub(lambda m: f"<{m.group(1)}>", text)


def _sampled(c: Sampled, what: str) -> list[str]:
    warn = " (warning)" if c.warn else ""
    return [
        f"  {c.code} [{c.table}]{warn}: {sqlgen.render(c.query)}",
        f"    says: {_shown(what)}",
    ]


def _lines(step: Step) -> list[str]:
    if isinstance(step, PinSession):
        return ["pin session: " + "; ".join(sqlgen.render(s) for s in step.statements)]
    if isinstance(step, Snapshot):
        return [f"snapshot: {sqlgen.render(step.statement)}"]
    if isinstance(step, Settings):
        return ["settings: " + "; ".join(sqlgen.render(s) for s in step.statements)]
    if isinstance(step, RefuseUnmappedTypes):
        out = ["refuse unmapped generic types:"]
        for t in step.checks:
            out += [f"  [{t.table}] ({t.type_column}, {t.id_column}): {sqlgen.render(t.query)}"]
            out += [f"    says: {_shown(t.unmapped)}", f"    or, stale: {_shown(t.stale)}"]
        return out
    if isinstance(step, RefuseDangling):
        return ["refuse dangling generic ids:"] + [
            x for c in step.checks for x in _sampled(c, str(c.problem))
        ]
    if isinstance(step, RefusePlanWarnings):
        return [f"refuse plan warnings: {step.message}"]
    if isinstance(step, RefuseLoopingTrees):
        return ["refuse looping trees:"] + [x for c in step.checks for x in _sampled(c, c.problem.message)]
    if isinstance(step, RefuseUnsafeData):
        out = ["refuse unsafe data (" + ", ".join(step.codes) + "):"]
        for c in step.checks:
            if isinstance(c, LikelyColumn):
                out.append(f"  {c.code} [{c.table}.{c.column}]:")
                for cand in c.candidates:
                    out.append(f"    {cand.target}: {sqlgen.render(cand.query)}")
                    out.append(f"      says: {_shown(unsafe_data_line(cand.alone))}")
            else:
                out += _sampled(c, unsafe_data_line(c.problem))
        return out
    if isinstance(step, SubsetStart):
        return ["subset start: " + ", ".join(f"{k.table} -> {k.name}" for k in step.kept)]
    if isinstance(step, SubsetFilter):
        return [f"subset filter [{step.filter.table}]: {sqlgen.render(step.statement)}"]
    if isinstance(step, SubsetClosure):
        return [f"subset closure {step.phase} (at most {step.rounds} rounds):"] + [
            f"  {what}: {sqlgen.render(s)}" for s, what in step.statements
        ]
    if isinstance(step, SubsetNeeded):
        return [f"subset needed: {step.what}: {sqlgen.render(step.statement)}"]
    if isinstance(step, SubsetCounts):
        return [f"subset counts [{step.table}] {step.index}"]
    if isinstance(step, CopyOut):
        where = " (on the snapshot connection)" if step.on_snapshot_connection else ""
        return [f"copy-out {step.index:04d} [{step.table}]{where}: {sqlgen.render(step.statement)}"]
    if isinstance(step, Counts):
        return ["counts: " + ", ".join(f"{e.index} {e.table} {e.scope.describe()}" for e in step.entries)]
    assert isinstance(step, Commit)
    return ["commit"]


def program_text(program: ExportProgram) -> str:
    return "\n".join(line for s in program.steps for line in _lines(s)) + "\n"


VARIANTS = {
    "default": ExportOptions(),
    "subset-strict": ExportOptions(
        where=(("public.note", "ref = 'n1'"), ("public.node", "label = 'root'")),
        allow_warnings=False,
        sort_rows=True,
        jobs=2,
    ),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_export_program_golden(name: str, new_db: Any, request: pytest.FixtureRequest) -> None:
    """The export's steps as a reviewer reads them (regenerate with pytest --update-golden)."""
    dsn, mapping = _db(new_db)
    program, _, _ = _program(dsn, mapping, VARIANTS[name])
    text = program_text(program)
    golden = GOLDEN / f"export_program_{name}.txt"
    if request.config.getoption("--update-golden"):
        golden.write_text(text)
    assert golden.exists(), "run pytest --update-golden to create it"
    assert text == golden.read_text(), f"{golden} is stale; review the diff, then pytest --update-golden"


# -- every refusal, once: rendered in export.sql, raised by the library ----------------------


def _templates(step: Step) -> list[str]:
    """The messages a refusal step can give, holes and all, as each interpreter uses them."""
    if isinstance(step, RefuseUnmappedTypes):
        return [m for t in step.checks for m in (t.unmapped, t.stale)]
    if isinstance(step, RefuseDangling):
        return [str(c.problem) for c in step.checks]
    if isinstance(step, RefusePlanWarnings):
        return [step.message]
    if isinstance(step, RefuseLoopingTrees):
        return [c.problem.message for c in step.checks]
    assert isinstance(step, RefuseUnsafeData)
    out: list[str] = []
    for c in step.checks:
        if isinstance(c, LikelyColumn):
            out += [unsafe_data_line(p) for cand in c.candidates for p in (cand.alone, cand.more)]
        else:
            out.append(unsafe_data_line(c.problem))
    return out + [head for _, head in step.heads]


def _pattern(template: str) -> re.Pattern[str]:
    parts = HOLES.split(template)
    return re.compile("".join(".+?" if i % 2 else re.escape(p) for i, p in enumerate(parts)), re.DOTALL)


def test_every_refusal_step_is_in_export_sql_with_its_message(new_db: Any) -> None:
    """Each refusal step of the program is rendered, and every literal part of each of its
    messages is in export.sql as the SQL literal the DO block raises."""
    dsn, mapping = _db(new_db)
    program, _, _ = _program(dsn, mapping, ExportOptions(allow_warnings=False))
    script = "\n".join(line.text for line in export_script(program))
    refusals = list(program.refusals())
    assert {type(s) for s in refusals} == set(REFUSALS)  # the schema trips every kind
    unsafe = next(s for s in refusals if isinstance(s, RefuseUnsafeData))
    assert set(unsafe.codes) == {code for code, _ in UNSAFE_DATA_HEADS}
    checked = 0
    for step in refusals:
        for template in _templates(step):
            for i, part in enumerate(HOLES.split(template)):
                if i % 2 == 0 and part:
                    assert literal(part) in script, (type(step).__name__, part)
                    checked += 1
    assert checked > 40
    # and nothing is copied before the last refusal
    assert script.rindex("RAISE EXCEPTION") < script.index("\\copy")


def _raised(dsn: str, mapping: Mapping, tmp_path: Path, **options: Any) -> EdmsPgdumpError:
    out = tmp_path / "out.edms"
    with pytest.raises(EdmsPgdumpError) as info:
        api.export_archive(dsn, mapping, out, audit_log=False, compression="none", **options)
    assert not out.exists()
    return info.value


def _matches_a_template(text: str, templates: list[str]) -> bool:
    return any(_pattern(t).fullmatch(text) for t in templates)


def test_the_library_raises_each_refusal_steps_message(
    tmp_path: Path, pg_server: Server, new_db: Any
) -> None:
    """Fix the data one refusal at a time: each time the library refuses with the message
    of the next refusal step (its holes filled), and psql running export.sql stops with
    the very same words."""
    dsn, mapping = _db(new_db, BAD_DATA)
    program, _, _ = _program(dsn, mapping, ExportOptions())
    steps = {type(s): s for s in program.refusals()}
    fixes = [
        (RefuseUnmappedTypes, "DELETE FROM public.app_comment WHERE body = 'a user'"),
        (RefuseDangling, "DELETE FROM public.app_comment WHERE body = 'gone'"),
        (RefuseLoopingTrees, "UPDATE public.node SET parent_id = NULL WHERE id = 3"),
        (RefuseUnsafeData, ""),
    ]
    seen = 0
    for kind, fix in fixes:
        err = _raised(dsn, mapping, tmp_path)
        templates = _templates(steps[kind])
        if kind is RefuseLoopingTrees:
            assert _matches_a_template(str(err), templates), str(err)
        else:
            assert isinstance(err, PlanError)
            assert err.problems, str(err)
            for line in err.problems:
                assert _matches_a_template(line, templates), (kind.__name__, line)
            seen += len(err.problems)
        scripts, data = tmp_path / f"scripts-{kind.__name__}", tmp_path / f"data-{kind.__name__}"
        data.mkdir()
        write_runbooks(dsn, mapping, ["export"], scripts)
        res = run_psql(pg_server, dsn, scripts / "export.sql", data)
        assert res.returncode == 3, res.stderr
        found = re.search(r"ERROR:  (.*)\n", res.stderr)
        assert found is not None and found.group(1) == str(err)
        assert list(data.iterdir()) == []
        if fix:
            run(dsn, fix)
    # the last refusal gathers every unsafe-data kind in one message
    assert seen >= 2 + 5


def test_plan_warnings_refuse_when_none_are_allowed(tmp_path: Path, new_db: Any) -> None:
    """allow_warnings=False: the program's RefusePlanWarnings step, its message as built."""
    dsn, mapping = _db(new_db)
    program, plan, _ = _program(dsn, mapping, ExportOptions(allow_warnings=False))
    (step,) = [s for s in program.refusals() if isinstance(s, RefusePlanWarnings)]
    assert plan.warnings
    err = _raised(dsn, mapping, tmp_path, allow_warnings=False)
    assert str(err) == step.message
    assert step.message.endswith("fix them or allow warnings, nothing was exported")
