"""The import proves what its transaction really did (issue 21): each class of target
machinery that changes or swallows a write is refused with nothing committed, the
message naming the table and the cause; an audit trigger's inserts succeed as reported
side effects. The trigger and cascade cases run through the psql runbook too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from edms_pgdump import api
from edms_pgdump.demo.servers import Server
from edms_pgdump.errors import EdmsPgdumpError
from edms_pgdump.mapping import load_mapping_text
from edms_pgdump.options import ImportOptions
from edms_pgdump.runbook.scripts import write_runbooks
from tests.support.psql import run_psql
from tests.support.real_schemas import fetch, make_db

ITEMS = "CREATE TABLE public.items (id serial PRIMARY KEY, code text NOT NULL UNIQUE, title text)"
ITEMS_MAPPING = "version: 1\ntables: {public.items: {natural_key: [code]}}\n"

PARENTS = "CREATE TABLE public.parents (id serial PRIMARY KEY, code text NOT NULL UNIQUE)"
PARENTS_MAPPING = "version: 1\ntables: {public.parents: {natural_key: [code]}}\n"


def _export(src: str, mapping: str, tmp_path: Path) -> Path:
    archive = tmp_path / "a.edms"
    api.export_archive(src, load_mapping_text(mapping), archive, audit_log=False)
    return archive


def _snapshot(dsn: str, *tables: str) -> dict[str, list[tuple[Any, ...]]]:
    return {t: fetch(dsn, f"SELECT * FROM {t} ORDER BY 1") for t in tables}


def _refused(dst: str, archive: Path, tables: tuple[str, ...], **options: Any) -> str:
    """Import, expecting a refusal; the target is exactly as before."""
    before = _snapshot(dst, *tables)
    with pytest.raises(EdmsPgdumpError) as info:
        api.import_archive(dst, archive, options=ImportOptions(**options), audit_log=False, history=False)
    assert _snapshot(dst, *tables) == before
    return str(info.value)


def _psql_refused(
    server: Server, src: str, dst: str, mapping: str, tmp_path: Path, tables: tuple[str, ...], **options: Any
) -> str:
    """The same refusal from export.sql + import.sql run with psql, nothing committed."""
    scripts, data = tmp_path / "scripts", tmp_path / "data"
    data.mkdir(parents=True)
    write_runbooks(src, load_mapping_text(mapping), ["export"], scripts)
    write_runbooks(dst, load_mapping_text(mapping), ["import"], scripts, ImportOptions(**options))
    assert run_psql(server, src, scripts / "export.sql", data).returncode == 0
    before = _snapshot(dst, *tables)
    res = run_psql(server, dst, scripts / "import.sql", data)
    assert res.returncode == 3, res.stderr
    assert _snapshot(dst, *tables) == before
    return res.stderr


def _swallowing(new_db: Any, guard: str) -> tuple[str, str]:
    src = make_db(new_db, ITEMS, "INSERT INTO public.items (code, title) VALUES ('a', 'new'), ('b', 'same')")
    dst = make_db(
        new_db, ITEMS, "INSERT INTO public.items (code, title) VALUES ('a', 'old'), ('b', 'same')", guard
    )
    return src, dst


FREEZE = (
    "CREATE FUNCTION public.swallow() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;"
    "CREATE TRIGGER swallow BEFORE UPDATE ON public.items FOR EACH ROW EXECUTE FUNCTION public.swallow()"
)


DEFERRED = (
    "CREATE FUNCTION public.shout() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN"
    " IF NEW.title NOT LIKE '%!' THEN UPDATE public.items SET title = upper(title) || '!' WHERE id = NEW.id;"
    " END IF; RETURN NULL; END$$;"
    "CREATE CONSTRAINT TRIGGER shout AFTER INSERT OR UPDATE ON public.items DEFERRABLE INITIALLY DEFERRED"
    " FOR EACH ROW EXECUTE FUNCTION public.shout()"
)


# a trigger that swallows the UPDATE, and a deferred constraint trigger that rewrites the
# rows at COMMIT (the import fires it before its proof, which then sees the rewrite)
UPDATE_COUNT_CHANGERS = {"swallowing": (FREEZE, 0, "swallow"), "deferred-rewriting": (DEFERRED, 2, "shout")}


@pytest.mark.parametrize("case", list(UPDATE_COUNT_CHANGERS))
def test_a_trigger_that_changes_the_update_count_is_refused(
    new_db: Any, tmp_path: Path, pg_server: Server, case: str
) -> None:
    guard, updated, trigger = UPDATE_COUNT_CHANGERS[case]
    src, dst = _swallowing(new_db, guard)
    said = f"public.items: the transaction updated {updated} row(s) but the import planned 1"
    message = _refused(dst, _export(src, ITEMS_MAPPING, tmp_path), ("public.items",))
    assert said in message and f"trigger {trigger} on public.items" in message
    stderr = _psql_refused(pg_server, src, dst, ITEMS_MAPPING, tmp_path / "psql", ("public.items",))
    assert said in stderr and f"trigger {trigger} on public.items" in stderr


def test_a_do_instead_nothing_rule_is_refused(new_db: Any, tmp_path: Path) -> None:
    src, dst = _swallowing(new_db, "CREATE RULE keep AS ON UPDATE TO public.items DO INSTEAD NOTHING")
    message = _refused(dst, _export(src, ITEMS_MAPPING, tmp_path), ("public.items",))
    assert "public.items: the transaction updated 0 row(s) but the import planned 1" in message
    assert "rule keep on public.items" in message


def _mirror_dbs(new_db: Any, action: str) -> tuple[str, str]:
    notes = (
        "CREATE TABLE public.notes (id serial PRIMARY KEY, parent_id integer "
        f"REFERENCES public.parents (id) ON DELETE {action}, body text)"
    )
    src = make_db(new_db, PARENTS, "INSERT INTO public.parents (code) VALUES ('a')")
    dst = make_db(
        new_db,
        PARENTS,
        notes,
        "INSERT INTO public.parents (code) VALUES ('a'), ('b')",
        "INSERT INTO public.notes (parent_id, body) SELECT id, 'kept' FROM public.parents",
    )
    return src, dst


@pytest.mark.parametrize("on_conflict", [None, "skip"])
def test_a_cascade_from_an_unmapped_table_is_refused_before_any_write(
    new_db: Any, tmp_path: Path, pg_server: Server, on_conflict: str | None
) -> None:
    src, dst = _mirror_dbs(new_db, "CASCADE")
    tables = ("public.parents", "public.notes")
    archive = _export(src, PARENTS_MAPPING, tmp_path)
    message = _refused(dst, archive, tables, delete_missing=True, on_conflict=on_conflict)
    assert (
        "public.parents: --delete-missing would delete rows that public.notes references through "
        "notes_parent_id_fkey (parent_id) ON DELETE CASCADE: 1 row(s) of public.notes would be deleted"
    ) in message
    assert "--allow-cascade" in message
    stderr = _psql_refused(
        pg_server,
        src,
        dst,
        PARENTS_MAPPING,
        tmp_path / "psql",
        tables,
        delete_missing=True,
        on_conflict=on_conflict,
    )
    assert "ON DELETE CASCADE: 1 row(s) of public.notes would be deleted" in stderr


@pytest.mark.parametrize("on_conflict", [None, "skip"])
def test_a_set_null_from_an_unmapped_table_is_refused(
    new_db: Any, tmp_path: Path, on_conflict: str | None
) -> None:
    src, dst = _mirror_dbs(new_db, "SET NULL")
    archive = _export(src, PARENTS_MAPPING, tmp_path)
    message = _refused(
        dst, archive, ("public.parents", "public.notes"), delete_missing=True, on_conflict=on_conflict
    )
    assert "ON DELETE SET NULL: 1 row(s) of public.notes would be set to NULL" in message


def test_allow_cascade_accepts_the_cascade_and_reports_it(new_db: Any, tmp_path: Path) -> None:
    src, dst = _mirror_dbs(new_db, "CASCADE")
    archive = _export(src, PARENTS_MAPPING, tmp_path)
    report = api.import_archive(
        dst,
        archive,
        options=ImportOptions(delete_missing=True, allow_cascade=True),
        audit_log=False,
        history=False,
    )
    assert report.committed
    assert [(e["table"], e["deleted"]) for e in report.side_effects] == [("public.notes", 1)]
    assert "notes_parent_id_fkey ON DELETE CASCADE" in str(report.side_effects[0]["cause"])
    assert fetch(dst, "SELECT code FROM public.parents") == [("a",)]
    assert fetch(dst, "SELECT count(*) FROM public.notes") == [(1,)]


def test_a_set_null_into_a_mapped_child_under_skip_is_refused(new_db: Any, tmp_path: Path) -> None:
    """A child the archive holds (left as it is under skip) still points at a parent the
    mirror deletes; ON DELETE SET NULL would blank it behind the import's back."""
    children = (
        "CREATE TABLE public.children (id serial PRIMARY KEY, label text NOT NULL UNIQUE, "
        "parent_id integer REFERENCES public.parents (id) ON DELETE SET NULL)"
    )
    mapping = "version: 1\ntables: {public.parents: {natural_key: [code]}, public.children: {natural_key: [label]}}\n"
    src = make_db(
        new_db,
        PARENTS,
        children,
        "INSERT INTO public.parents (code) VALUES ('a')",
        "INSERT INTO public.children (label, parent_id) SELECT 'c', id FROM public.parents",
    )
    dst = make_db(
        new_db,
        PARENTS,
        children,
        "INSERT INTO public.parents (code) VALUES ('a'), ('b')",
        "INSERT INTO public.children (label, parent_id) SELECT 'c', id FROM public.parents WHERE code = 'b'",
    )
    archive = _export(src, mapping, tmp_path)
    message = _refused(
        dst, archive, ("public.parents", "public.children"), delete_missing=True, on_conflict="skip"
    )
    assert "public.children: the transaction updated 1 row(s) but the import planned 0" in message
    assert "children_parent_id_fkey ON DELETE SET NULL to public.parents" in message


def test_an_after_insert_trigger_that_duplicates_a_mapped_child_is_refused(
    new_db: Any, tmp_path: Path
) -> None:
    children = (
        "CREATE TABLE public.children (id serial PRIMARY KEY, "
        "parent_id integer NOT NULL REFERENCES public.parents (id), label text NOT NULL)"
    )
    mapping = (
        "version: 1\ntables: {public.parents: {natural_key: [code]}, "
        "public.children: {natural_key: [parent_id, label]}}\n"
    )
    src = make_db(
        new_db,
        PARENTS,
        children,
        "INSERT INTO public.parents (code) VALUES ('a')",
        "INSERT INTO public.children (parent_id, label) SELECT id, 'default' FROM public.parents",
    )
    dst = make_db(
        new_db,
        PARENTS,
        children,
        "CREATE FUNCTION public.mk_child() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "
        "INSERT INTO public.children (parent_id, label) VALUES (NEW.id, 'default'); RETURN NULL; END$$",
        "CREATE TRIGGER mk_child AFTER INSERT ON public.parents FOR EACH ROW EXECUTE FUNCTION public.mk_child()",
    )
    message = _refused(dst, _export(src, mapping, tmp_path), ("public.parents", "public.children"))
    assert "public.children: the transaction inserted 2 row(s) but the import planned 1" in message
    assert "trigger mk_child on public.parents" in message


def test_a_trigger_that_reassigns_ids_is_refused(new_db: Any, tmp_path: Path) -> None:
    """Declared references are written with the ids allocated before the INSERT; a
    BEFORE INSERT trigger that picks another id leaves them pointing at nothing."""
    links = "CREATE TABLE public.links (id serial PRIMARY KEY, name text NOT NULL UNIQUE, item_id integer)"
    mapping = (
        "version: 1\ntables:\n  public.items: {natural_key: [code]}\n"
        "  public.links:\n    natural_key: [name]\n"
        "    references: [{columns: [item_id], table: public.items}]\n"
    )
    src = make_db(
        new_db,
        ITEMS,
        links,
        "INSERT INTO public.items (code, title) VALUES ('a', 'x')",
        "INSERT INTO public.links (name, item_id) SELECT 'l', id FROM public.items",
    )
    dst = make_db(
        new_db,
        ITEMS,
        links,
        "CREATE FUNCTION public.renumber() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "
        "NEW.id := NEW.id + 1000; RETURN NEW; END$$",
        "CREATE TRIGGER renumber BEFORE INSERT ON public.items FOR EACH ROW EXECUTE FUNCTION public.renumber()",
    )
    message = _refused(dst, _export(src, mapping, tmp_path), ("public.items", "public.links"))
    assert "public.items: 1 written row(s) do not read back as the archive holds them" in message
    assert "problem='missing'" in message
    assert "trigger renumber on public.items" in message


def test_an_audit_trigger_succeeds_and_is_reported_as_a_side_effect(new_db: Any, tmp_path: Path) -> None:
    audit = (
        "CREATE TABLE public.audit_log (id serial PRIMARY KEY, op text, code text);"
        "CREATE FUNCTION public.audit() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "
        "INSERT INTO public.audit_log (op, code) VALUES (TG_OP, NEW.code); RETURN NULL; END$$;"
        "CREATE TRIGGER audit AFTER INSERT OR UPDATE ON public.items FOR EACH ROW EXECUTE FUNCTION public.audit()"
    )
    src, dst = _swallowing(new_db, audit)
    report = api.import_archive(dst, _export(src, ITEMS_MAPPING, tmp_path), audit_log=False, history=False)
    assert report.committed and report.ok
    assert report.side_effects == [
        {
            "table": "public.audit_log",
            "inserted": 1,
            "updated": 0,
            "deleted": 0,
            "cause": "trigger audit on public.items",
        }
    ]
    assert report.to_dict()["side_effects"] == report.side_effects
    items = report.tables[0]
    assert (items.updated, items.unchanged, items.present_after) == (1, 1, 2)
    assert items.observed == {"inserted": 0, "updated": 1, "deleted": 0}
    assert fetch(dst, "SELECT code, title FROM public.items ORDER BY 1") == [("a", "new"), ("b", "same")]
    assert fetch(dst, "SELECT op, code FROM public.audit_log") == [("UPDATE", "a")]


@pytest.mark.parametrize(
    ("unique", "existing"),
    [("UNIQUE", "INSERT INTO public.items (code, title) VALUES ('AB', 'old')"), ("UNIQUE", ""), ("", "")],
    ids=["unique-existing", "unique-empty", "no-unique-index"],
)
def test_a_nondeterministic_collation_key_is_refused(
    new_db: Any, tmp_path: Path, unique: str, existing: str
) -> None:
    """Two archive keys that differ only in case are one key under the target's
    case-insensitive collation: never merged into one row, never stored twice."""
    src = make_db(
        new_db, ITEMS, "INSERT INTO public.items (code, title) VALUES ('Ab', 'upper'), ('ab', 'lower')"
    )
    dst = new_db()
    try:
        make_db(
            lambda: dst,
            "CREATE COLLATION public.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)",
        )
    except psycopg.Error:
        pytest.skip("this server has no ICU collations (the embedded PostgreSQL 18 is built without ICU)")
    make_db(
        lambda: dst,
        f"CREATE TABLE public.items (id serial PRIMARY KEY, code text COLLATE public.ci NOT NULL {unique}, "
        "title text)",
        *([existing] if existing else []),
    )
    message = _refused(dst, _export(src, ITEMS_MAPPING, tmp_path), ("public.items",))
    # the archive repeats a key (matched twice), the unique index refuses the second
    # INSERT, or, without one, the keys held twice after the writes are named
    assert "public.items" in message
    assert "ab" in message.lower() or "repeats a key" in message


def test_the_cli_refuses_an_unplanned_delete_and_accepts_it_by_name(new_db: Any, tmp_path: Path) -> None:
    """A trigger that deletes rows of a table outside the archive: refused with exit 1,
    naming the table and the trigger; --allow-side-effects TABLE accepts it, and --json
    lists it under side_effects."""
    import json

    from typer.testing import CliRunner

    from edms_pgdump.cli import app

    purge = (
        "CREATE TABLE public.cache (id serial PRIMARY KEY, code text);"
        "INSERT INTO public.cache (code) VALUES ('a'), ('z');"
        "CREATE FUNCTION public.purge() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "
        "DELETE FROM public.cache WHERE code = NEW.code; RETURN NULL; END$$;"
        "CREATE TRIGGER purge AFTER UPDATE ON public.items FOR EACH ROW EXECUTE FUNCTION public.purge()"
    )
    src, dst = _swallowing(new_db, purge)
    archive = _export(src, ITEMS_MAPPING, tmp_path)
    runner = CliRunner()
    base = [
        "import",
        str(archive),
        "--dsn",
        dst,
        "--no-history",
        "--audit-log",
        str(tmp_path / "audit.jsonl"),
    ]
    refused = runner.invoke(app, base)
    assert refused.exit_code == 1, refused.output
    assert "public.cache" in refused.output and "trigger purge on public.items" in refused.output
    assert fetch(dst, "SELECT count(*) FROM public.cache") == [(2,)]
    assert fetch(dst, "SELECT title FROM public.items WHERE code = 'a'") == [("old",)]
    accepted = runner.invoke(app, [*base, "--allow-side-effects", "public.cache", "--json"])
    assert accepted.exit_code == 0, accepted.output
    report = json.loads(accepted.stdout)
    assert [(e["table"], e["deleted"]) for e in report["side_effects"]] == [("public.cache", 1)]
    assert fetch(dst, "SELECT code FROM public.cache") == [("z",)]


def test_prove_compares_every_table_and_a_plain_table_is_observed(new_db: Any, tmp_path: Path) -> None:
    """A table nothing in the target can change is proven by observation alone; --prove
    reads it back as well (and the result is the same)."""
    src, dst = _swallowing(new_db, "SELECT 1")
    archive = _export(src, ITEMS_MAPPING, tmp_path)
    plain = api.import_archive(
        dst, archive, options=ImportOptions(dry_run=True), audit_log=False, history=False
    )
    steps = {p["step"] for p in plain.profile}
    assert "observe" in steps and "compare written" not in steps
    proved = api.import_archive(
        dst, archive, options=ImportOptions(prove=True), audit_log=False, history=False
    )
    assert "compare written" in {p["step"] for p in proved.profile}
    for report in (plain, proved):
        items = report.tables[0]
        assert (items.inserted, items.updated, items.unchanged, items.present_after) == (0, 1, 1, 2)
        assert items.observed == {"inserted": 0, "updated": 1, "deleted": 0}
    assert fetch(dst, "SELECT code, title FROM public.items ORDER BY 1") == [("a", "new"), ("b", "same")]
