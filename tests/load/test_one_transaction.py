"""One import transaction for archive import, fixture import, ``verify --dsn`` and ``diff``:
each goes through ``load.import_transaction``; what a hook returns runs inside it; diff
prepares the archive once; the balance refusal reads the same from the library and the
psql runbook; invalid options are refused where they are made, naming the option."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from edms_pgdump import api
from edms_pgdump.db import Connection
from edms_pgdump.demo.servers import Server
from edms_pgdump.django import fixture_import
from edms_pgdump.errors import ImportRejected, UsageError
from edms_pgdump.load import prepare, transaction
from edms_pgdump.load.transaction import ImportHooks, ImportInput, load_archive
from edms_pgdump.mapping import load_mapping_text
from edms_pgdump.options import ImportOptions
from edms_pgdump.program.steps import Execute, Program, Step
from edms_pgdump.results import ImportReport
from edms_pgdump.runbook.scripts import write_runbooks
from tests.support.psql import run_psql
from tests.support.real_schemas import make_db

SCHEMA = """
CREATE TABLE public.shop_tag (id serial PRIMARY KEY, code text NOT NULL UNIQUE);
CREATE TABLE public.shop_item (
    id serial PRIMARY KEY,
    sku text NOT NULL UNIQUE,
    tag_id integer REFERENCES public.shop_tag (id)
);
"""
DATA = """
INSERT INTO public.shop_tag (code) VALUES ('a'), ('b'), ('c');
INSERT INTO public.shop_item (sku, tag_id) VALUES ('i1', 1), ('i2', 2), ('i3', NULL);
"""
WHOLE = load_mapping_text(
    """
version: 1
tables:
  public.shop_tag: {natural_key: [code]}
  public.shop_item: {natural_key: [sku]}
"""
)


def _count(dsn: str, query: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute(query.encode()).fetchone()
        return int(row[0]) if row else 0


class _Spy:
    """Counts the calls of a function of this package and passes them on (a real run;
    nothing of PostgreSQL is replaced)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
        self.calls = 0
        real: Callable[..., Any] = getattr(module, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)


class _Marker(ImportHooks):
    """Returns one step before the program and one after it: each writes a row."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def before_program(
        self, conn: Connection, given: ImportInput, program: Program, report: ImportReport
    ) -> Sequence[Step]:
        self.seen.append(f"before {len(given.catalog.tables)} tables, {len(program.tables)} loaded")
        return (Execute("marker", None, _marker_insert("before")),)

    def after_program(self, conn: Connection, program: Program, report: ImportReport) -> Sequence[Step]:
        self.seen.append(f"after {report.inserted} inserted")
        return (Execute("marker", None, _marker_insert(f"after {report.inserted}")),)


def _marker_insert(text: str) -> sql.Composed:
    return sql.SQL("INSERT INTO public.marker (note) VALUES ({})").format(sql.Literal(text))


def test_a_hooks_returned_steps_run_inside_the_one_transaction(new_db: Any, tmp_path: Path) -> None:
    src = make_db(new_db, SCHEMA, DATA)
    dst = make_db(new_db, SCHEMA, "CREATE TABLE public.marker (note text)")
    archive = tmp_path / "a.edms"
    api.export_archive(src, WHOLE, archive, audit_log=False)
    dry = _Marker()
    report = load_archive(dst, archive, options=ImportOptions(dry_run=True), hooks=[dry])
    assert not report.committed and dry.seen == ["before 3 tables, 2 loaded", "after 6 inserted"]
    assert _count(dst, "SELECT count(*) FROM public.marker") == 0  # rolled back with the rest
    hooks = _Marker()
    report = load_archive(dst, archive, hooks=[hooks])
    assert report.committed
    with psycopg.connect(dst, autocommit=True) as c:
        notes = [r[0] for r in c.execute("SELECT note FROM public.marker ORDER BY note")]
    assert notes == ["after 6", "before"]
    assert any(p["step"] == "marker" for p in report.profile)  # run by the program's interpreter


def test_every_caller_goes_through_the_one_transaction(
    new_db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_db(new_db, SCHEMA, DATA)
    dst = make_db(new_db, SCHEMA)
    archive = tmp_path / "a.edms"
    api.export_archive(src, WHOLE, archive, audit_log=False)
    spy = _Spy(monkeypatch, transaction, "import_transaction")
    fixture_spy = _Spy(monkeypatch, fixture_import, "import_transaction")
    assert api.import_archive(dst, archive, audit_log=False).committed
    assert spy.calls == 1
    verified = api.verify_archive(archive, dst)
    assert verified.database is not None and verified.database.matches
    assert spy.calls == 2
    diff = api.diff(archive, dsn=dst)
    assert spy.calls == 3 and not any(t.only_in_archive for t in diff.tables)  # type: ignore[union-attr]
    fixture = tmp_path / "f.json"
    fixture.write_text(json.dumps([{"model": "shop.tag", "pk": 9, "fields": {"code": "d"}}]))
    result = api.import_fixture(dst, fixture, WHOLE, audit_log=False)
    assert result.committed and result.inserted == 1
    assert fixture_spy.calls == 1 and spy.calls == 3
    assert _count(dst, "SELECT count(*) FROM public.shop_tag WHERE code = 'd'") == 1


def test_diff_of_a_subset_prepares_the_archive_once(
    new_db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The subset's scope is found from the plan the transaction prepared, not from a
    second prepare_import (counted where every caller of it ends: its build_plan)."""
    src = make_db(new_db, SCHEMA, DATA)
    dst = make_db(new_db, SCHEMA, "INSERT INTO public.shop_item (sku) VALUES ('other')")
    archive = tmp_path / "subset.edms"
    api.export_archive(src, WHOLE, archive, where=[("public.shop_item", "tag_id IS NOT NULL")], audit_log=False)
    spy = _Spy(monkeypatch, prepare, "build_plan")
    diff = api.diff(archive, dsn=dst)
    assert spy.calls == 1
    items = next(t for t in diff.tables if t.table == "public.shop_item")  # type: ignore[union-attr]
    assert items.only_in_archive == 2 and items.scope["rule"] == "where"
    assert items.only_in_target == 0 and items.outside_scope == 1  # 'other' has no tag: outside the scope


TRIGGER = """
CREATE FUNCTION public.rename_tag() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.code := NEW.code || '-renamed';
  RETURN NEW;
END $$;
CREATE TRIGGER rename BEFORE INSERT ON public.shop_tag FOR EACH ROW EXECUTE FUNCTION public.rename_tag();
"""
TAGS = load_mapping_text("version: 1\ntables:\n  public.shop_tag: {natural_key: [code]}\n")


def test_library_and_runbook_refuse_a_rewriting_trigger_with_the_same_message(
    new_db: Any, tmp_path: Path, pg_server: Server
) -> None:
    """A trigger renames every inserted key, so none of the archive's keys is present
    after the insert: both interpreters refuse with the one message of the proof (the
    written rows are read back and compared, because the table has a trigger)."""
    src = make_db(new_db, SCHEMA, DATA)
    dst_py = make_db(new_db, SCHEMA, TRIGGER)
    dst_psql = make_db(new_db, SCHEMA, TRIGGER)
    archive = tmp_path / "a.edms"
    api.export_archive(src, TAGS, archive, audit_log=False)
    with pytest.raises(ImportRejected) as err:
        api.import_archive(dst_py, archive, audit_log=False)
    expected = (
        "public.shop_tag: 3 written row(s) do not read back as the archive holds them: "
        "(code='a', problem='differs'), (code='b', problem='differs'), (code='c', problem='differs'); "
        "the target changed what the import wrote (likely cause: trigger rename on public.shop_tag); "
        "nothing was committed"
    )
    assert str(err.value) == expected
    assert _count(dst_py, "SELECT count(*) FROM public.shop_tag") == 0  # rolled back
    scripts, data = tmp_path / "scripts", tmp_path / "data"
    data.mkdir()
    write_runbooks(src, TAGS, ["export"], scripts)
    write_runbooks(dst_psql, TAGS, ["import"], scripts)
    assert run_psql(pg_server, src, scripts / "export.sql", data).returncode == 0
    res = run_psql(pg_server, dst_psql, scripts / "import.sql", data)
    assert res.returncode != 0
    # the same message; psql shows the sample rows as JSON, the library as SQL literals
    head, samples, tail = expected.partition("(code='a', problem='differs'), (code='b', problem='differs'), (code='c', problem='differs')")
    assert samples
    runbook_samples = '{"code": "a", "problem": "differs"}, {"code": "b", "problem": "differs"}, {"code": "c", "problem": "differs"}'
    assert f"ERROR:  {head}{runbook_samples}{tail}" in res.stderr
    assert _count(dst_psql, "SELECT count(*) FROM public.shop_tag") == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"on_conflict": "merge"}, "on_conflict='merge' (--on-conflict): use one of update, skip, error"),
        ({"constraints": "drop"}, "constraints='drop' (--constraints): use one of auto, keep, recreate"),
        ({"jobs": 0}, "jobs=0 (--jobs): use a whole number of connections from 1 to 64"),
        ({"max_deletes": -1, "delete_missing": True}, "max_deletes=-1 (--max-deletes): use a whole number"),
        ({"max_deletes": 5}, "max_deletes (--max-deletes) limits delete_missing (--delete-missing)"),
        ({"compare_only": True}, "compare_only=True needs dry_run=True"),
        ({"sample_size": 0}, "sample_size=0: use a whole number of at least 1"),
    ],
)
def test_options_are_refused_where_they_are_made_naming_the_option_and_the_fix(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError) as err:
        ImportOptions(**options)
    assert message in str(err.value)


def test_the_cli_reports_an_invalid_option_as_a_usage_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edms_pgdump.cli.app import app

    res = CliRunner().invoke(
        app,
        [
            "import-fixture",
            str(tmp_path / "f.json"),
            "--dsn",
            "postgresql://x@127.0.0.1:1/x",
            "-m",
            str(tmp_path / "m.yaml"),
            "--constraints",
            "sometimes",
        ],
    )
    assert res.exit_code == 2, res.output
    assert "constraints='sometimes' (--constraints): use one of auto, keep, recreate" in res.output
    assert "Traceback" not in res.output
