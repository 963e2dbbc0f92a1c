"""export.sql refuses what ``edms-pgdump export`` refuses: every data check of the
library's export runs in the script's snapshot, before the first ``\\copy``, with the
library's message. For each refusal a schema that trips it: the library export refuses,
``psql -f export.sql`` stops with the very same message and writes no data file. A
schema on which every check runs and passes still exports byte for byte what the
library exports."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from edms_pgdump import api
from edms_pgdump.archive.integrity import read_member_text
from edms_pgdump.archive.package import ArchiveReader
from edms_pgdump.demo.servers import Server
from edms_pgdump.errors import EdmsPgdumpError
from edms_pgdump.mapping import load_mapping_text
from edms_pgdump.runbook.scripts import COUNTS_FILE, data_file, render_runbook, write_runbooks
from tests.support.generic_schema import MAPPING as GENERIC_MAPPING
from tests.support.generic_schema import SCHEMA as GENERIC_SCHEMA
from tests.support.generic_schema import SOURCE_DATA as GENERIC_DATA
from tests.support.psql import ROOT, run_psql
from tests.support.real_schemas import make_db as _db


def _library_refusal(dsn: str, mapping: str, tmp_path: Path) -> str:
    out = tmp_path / "lib.edms"
    with pytest.raises(EdmsPgdumpError) as info:
        api.export_archive(dsn, load_mapping_text(mapping), out, audit_log=False, compression="none")
    assert not out.exists()
    return str(info.value)


def _psql_export(
    server: Server, dsn: str, mapping: str, tmp_path: Path, name: str = "data"
) -> tuple[subprocess.CompletedProcess[str], Path]:
    scripts = tmp_path / "scripts"
    if not (scripts / "export.sql").exists():
        write_runbooks(dsn, load_mapping_text(mapping), ["export"], scripts)
    data = tmp_path / name
    data.mkdir()
    return run_psql(server, dsn, scripts / "export.sql", data), data


def _error(stderr: str) -> str:
    """The message of the ERROR psql printed (one line, then PL/pgSQL's CONTEXT)."""
    found = re.search(r"ERROR:  (.*)\n", stderr)
    assert found is not None, stderr
    return found.group(1)


def _both_refuse(server: Server, dsn: str, mapping: str, tmp_path: Path) -> str:
    """The library's refusal, which psql gives word for word, with no data file written."""
    message = _library_refusal(dsn, mapping, tmp_path)
    res, data = _psql_export(server, dsn, mapping, tmp_path)
    assert res.returncode == 3, res.stderr
    assert _error(res.stderr) == message
    assert sorted(p.name for p in data.iterdir()) == []
    return message


TREE = """
CREATE TABLE public.node (id serial PRIMARY KEY, parent_id integer REFERENCES public.node (id),
  label text NOT NULL, UNIQUE (parent_id, label));
INSERT INTO public.node (id, parent_id, label) VALUES (1, NULL, 'root'), (2, 1, 'a'), (3, NULL, 'b'), (4, 3, 'c');
UPDATE public.node SET parent_id = 4 WHERE id = 3;  -- b -> c -> b: no path from a root
"""
TREE_MAPPING = "version: 1\ntables:\n  public.node: {natural_key: [parent_id, label]}\n"


def test_a_looping_parent_chain(tmp_path: Path, pg_server: Server, new_db: Any) -> None:
    dsn = _db(new_db, TREE)
    message = _both_refuse(pg_server, dsn, TREE_MAPPING, tmp_path)
    assert message.startswith("public.node: 2 row(s) have a parent but no path from a root")
    assert "(parent_id=4, label='b')" in message and "break the loop in the data" in message


PEOPLE = """
CREATE TABLE public.person (id serial PRIMARY KEY, email text NOT NULL, name text);
INSERT INTO public.person (email, name) VALUES ('a@x', 'Ann'), ('a@x', 'Ann 2'), ('b@x', 'Bob'),
  ('c@x', 'O''Brien'), ('c@x', NULL), ('c@x', 'C3'), ('d@x', 'Dee');
"""
PEOPLE_MAPPING = "version: 1\ntables:\n  public.person: {natural_key: [email]}\n"


def test_a_natural_key_not_unique_in_the_data(tmp_path: Path, pg_server: Server, new_db: Any) -> None:
    dsn = _db(new_db, PEOPLE)
    message = _both_refuse(pg_server, dsn, PEOPLE_MAPPING, tmp_path)
    assert message.startswith(
        "natural key not unique in the data of public.person (email); nothing was exported."
    )
    assert "(email='c@x') 3 times, (email='a@x') 2 times (2 key value(s) shared by 5 rows)" in message


PRODUCTS = """
CREATE SCHEMA archive;
CREATE TABLE public.product (id serial PRIMARY KEY, sku text NOT NULL UNIQUE);
CREATE TABLE archive.product (id serial PRIMARY KEY, sku text NOT NULL UNIQUE);
CREATE TABLE public.sale (id serial PRIMARY KEY, ref text NOT NULL UNIQUE, product_id integer);
INSERT INTO public.product (sku) SELECT 'p' || g FROM generate_series(1, 3) g;
INSERT INTO archive.product (sku) SELECT 'old' || g FROM generate_series(1, 5) g;
INSERT INTO public.sale (ref, product_id) SELECT 's' || g, 1 + g % 3 FROM generate_series(1, 1500) g;
"""
PRODUCTS_MAPPING = """version: 1
tables:
  public.product: {natural_key: [sku]}
  archive.product: {natural_key: [sku]}
  public.sale: {natural_key: [ref]}
"""


def test_an_undecided_likely_reference(tmp_path: Path, pg_server: Server, new_db: Any) -> None:
    dsn = _db(new_db, PRODUCTS)
    message = _both_refuse(pg_server, dsn, PRODUCTS_MAPPING, tmp_path)
    assert message.startswith("likely reference not decided in public.sale.product_id; nothing was exported.")
    # thousands separators as the library writes them; the other table the ids fit after it
    assert (
        "1,500 of 1,500 non-NULL values are ids of public.product (they are also ids of archive.product)"
        in message
    )


def test_an_undecided_likely_reference_to_one_table(tmp_path: Path, pg_server: Server, new_db: Any) -> None:
    dsn = _db(new_db, PRODUCTS, "INSERT INTO public.product (sku) SELECT 'n' || g FROM generate_series(1, 9) g",
              "UPDATE public.sale SET product_id = 12 WHERE ref = 's1'")  # fmt: skip
    message = _both_refuse(pg_server, dsn, PRODUCTS_MAPPING, tmp_path)
    assert "1,500 of 1,500 non-NULL values are ids of public.product: it is likely a reference" in message


CATEGORIES = """
CREATE TABLE public.category (id serial PRIMARY KEY, code text UNIQUE);
CREATE TABLE public.item (id serial PRIMARY KEY, name text NOT NULL UNIQUE,
  category_id integer REFERENCES public.category (id));
INSERT INTO public.category (code) VALUES ('tools'), (NULL);
INSERT INTO public.item (name, category_id) SELECT 'i' || id, id FROM public.category;
"""
# the reference is part of item's natural key: refused when it names the NULL-keyed row
CATEGORIES_MAPPING = """version: 1
tables:
  public.category: {natural_key: [code]}
  public.item: {natural_key: [category_id, name]}
"""


def test_a_reference_to_a_null_natural_key_inside_a_natural_key(
    tmp_path: Path, pg_server: Server, new_db: Any
) -> None:
    """Archive format 2 carries the reference's presence, but item's key (the one other
    rows are matched by) would hold NULL for that row and for no category alike."""
    dsn = _db(new_db, CATEGORIES)
    message = _both_refuse(pg_server, dsn, CATEGORIES_MAPPING, tmp_path)
    assert message.startswith("reference to a row whose natural key is NULL in public.item.category_id;")
    assert (
        "1 row(s) reference the public.category row whose natural key (code) is NULL from public.item's "
        "natural key (category_id, name): that key cannot tell such a reference from none: "
        "(category_id=2, name='i2')"
    ) in message
    assert message.endswith("or declare category_id NOT NULL")


def test_a_reference_to_a_null_natural_key_elsewhere_travels(
    tmp_path: Path, pg_server: Server, new_db: Any
) -> None:
    """Outside a natural key it travels (format 2), the same from the library and from
    export.sql: i2's presence says true, with the key field NULL."""
    dsn = _db(new_db, CATEGORIES)
    mapping = CATEGORIES_MAPPING.replace("[category_id, name]", "[name]")
    _same_data(pg_server, dsn, mapping, tmp_path)
    archive = tmp_path / "a.edms"
    with ArchiveReader(archive) as reader:
        item = reader.manifest.table("public.item")
        assert item.field_names == ["name", "category_id.code", "category_id.#present"]
        assert sorted(read_member_text(reader, item).splitlines()) == [b"i1\ttools\tt", b"i2\t\\N\tt"]


NOTES = """
CREATE TABLE public.party (id serial PRIMARY KEY, code text UNIQUE NOT NULL);
CREATE TABLE public.note (id serial PRIMARY KEY, ref text UNIQUE NOT NULL, party_id integer);
CREATE TABLE public.doc (id serial PRIMARY KEY, ref text UNIQUE NOT NULL, party_id integer);
INSERT INTO public.party (code) VALUES ('a');
INSERT INTO public.note (ref, party_id) VALUES ('n1', 1), ('n2', 4242), ('n3', NULL);
INSERT INTO public.doc (ref, party_id) VALUES ('d1', 1), ('d2', 999);
ALTER TABLE public.doc ADD CONSTRAINT doc_party_fk FOREIGN KEY (party_id) REFERENCES public.party (id) NOT VALID;
"""
NOTES_MAPPING = """version: 1
tables:
  public.party: {natural_key: [code]}
  public.note: {natural_key: [ref], references: [{columns: [party_id], table: public.party}]}
  public.doc: {natural_key: [ref]}
"""


def test_references_to_rows_that_do_not_exist(tmp_path: Path, pg_server: Server, new_db: Any) -> None:
    """A declared reference and a NOT VALID foreign key: the database checks neither for
    old rows, and the export's join would write their ids as NULL."""
    dsn = _db(new_db, NOTES)
    message = _both_refuse(pg_server, dsn, NOTES_MAPPING, tmp_path)
    assert message == (
        "reference to rows that do not exist in public.doc.party_id, public.note.party_id; nothing was "
        "exported. public.doc.party_id [reference-dangling]: 1 row(s) reference public.party rows that do "
        "not exist through the foreign key doc_party_fk (party_id), which is NOT VALID: (party_id=999); "
        "they would be exported as NULL; fix: delete or fix those rows, then ALTER TABLE public.doc "
        "VALIDATE CONSTRAINT doc_party_fk (and 1 more)"
    )


def test_every_kind_at_once_heads_each_kind(tmp_path: Path, pg_server: Server, new_db: Any) -> None:
    """Unsafe data of several kinds: one refusal heading each kind with its places, in the
    library's order, then the first problem and how many more."""
    dsn = _db(new_db, PEOPLE, CATEGORIES, NOTES)
    mapping = PEOPLE_MAPPING + "".join(m.split("tables:\n")[1] for m in (CATEGORIES_MAPPING, NOTES_MAPPING))
    message = _both_refuse(pg_server, dsn, mapping, tmp_path)
    assert message.startswith(
        "natural key not unique in the data of public.person (email); reference to a row whose natural "
        "key is NULL in public.item.category_id; reference to rows that do not exist in "
        "public.doc.party_id, public.note.party_id; nothing was exported. public.person.email "
        "[key-not-unique-data]: "
    )
    assert message.endswith(" (and 3 more)")


def test_a_generic_id_of_an_unmapped_type(tmp_path: Path, pg_server: Server, new_db: Any) -> None:
    dsn = _db(
        new_db,
        GENERIC_SCHEMA,
        GENERIC_DATA,
        "CREATE TABLE public.auth_user (id serial PRIMARY KEY, username text UNIQUE NOT NULL)",
        "INSERT INTO auth_user (username) VALUES ('ann')",
        "INSERT INTO app_comment (content_type_id, object_id, body) SELECT ct.id, u.id::text, 'by ann' "
        "FROM django_content_type ct, auth_user u WHERE ct.model = 'user'",
    )
    message = _both_refuse(pg_server, dsn, GENERIC_MAPPING, tmp_path)
    assert message.startswith(
        "error: public.app_comment: 1 row(s) have a content_type_id of type auth.user, which names "
        "public.auth_user; that table is not mapped"
    )
    # listed in ignore_types, the ids travel as they are, in both
    ignored = GENERIC_MAPPING.replace(
        "natural_key: [body]\n    generic_references: [{type: content_type_id, id: object_id}]",
        "natural_key: [body]\n    generic_references: [{type: content_type_id, id: object_id, "
        "ignore_types: [auth.user]}]",
    )
    _same_data(pg_server, dsn, ignored, tmp_path / "ignored")


def test_generic_ids_that_name_nothing(tmp_path: Path, pg_server: Server, new_db: Any) -> None:
    dsn = _db(new_db, GENERIC_SCHEMA, GENERIC_DATA, "DELETE FROM app_cabinet WHERE label IN ('cab3', 'cab4')")
    message = _both_refuse(pg_server, dsn, GENERIC_MAPPING, tmp_path)
    assert message.startswith(
        "error: public.app_accessentry.object_id: 4 row(s) name an object that does not exist through "
        "(content_type_id, object_id): (type='app.cabinet', object_id='3')"
    )
    assert message.endswith("; nothing was exported")


def test_generic_ids_that_name_nothing_warn_under_skip(
    tmp_path: Path, pg_server: Server, new_db: Any
) -> None:
    """on_dangling: skip is a warning in both, and the same rows are left out."""
    dsn = _db(new_db, GENERIC_SCHEMA, GENERIC_DATA, "DELETE FROM app_cabinet WHERE label = 'cab1'")
    mapping = GENERIC_MAPPING.replace(
        "role_id]\n    generic_references: [{type: content_type_id, id: object_id}]",
        "role_id]\n    generic_references: [{type: content_type_id, id: object_id, on_dangling: skip}]",
    )
    assert "on_dangling: skip" in mapping
    warnings, res = _same_data(pg_server, dsn, mapping, tmp_path)
    assert len(warnings) == 1 and "those rows are left out of the archive" in warnings[0]
    assert f"WARNING:  {warnings[0]}\n" in res.stderr


def test_a_type_row_newer_than_the_script(tmp_path: Path, pg_server: Server, new_db: Any) -> None:
    """export.sql resolves the tables the type table named when it was generated; a
    table only a newer type row names is refused, asking for a new script (the library,
    planning on the data, would carry it)."""
    dsn = _db(new_db, GENERIC_SCHEMA, GENERIC_DATA.replace(", ('app','tag')", ""))
    write_runbooks(dsn, load_mapping_text(GENERIC_MAPPING), ["export"], tmp_path / "scripts")
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(
            "INSERT INTO django_content_type (app_label, model) VALUES ('app', 'tag');"
            "INSERT INTO app_comment (content_type_id, object_id, body) SELECT ct.id, t.id::text, 'on a tag' "
            "FROM django_content_type ct, app_tag t WHERE ct.model = 'tag' AND t.name = 'tag1'"
        )
    res, data = _psql_export(pg_server, dsn, GENERIC_MAPPING, tmp_path)
    assert res.returncode == 3
    assert _error(res.stderr) == (
        "error: public.app_comment: 1 row(s) have a content_type_id of type app.tag, which names "
        "public.app_tag; no public.django_content_type row named that table when this export.sql was "
        "generated, so it cannot write their object_id; fix: generate export.sql again (edms-pgdump sql "
        "export); nothing was exported"
    )
    assert list(data.iterdir()) == []
    write_runbooks(dsn, load_mapping_text(GENERIC_MAPPING), ["export"], tmp_path / "scripts")
    assert _psql_export(pg_server, dsn, GENERIC_MAPPING, tmp_path, "again")[0].returncode == 0


def _same_data(server: Server, dsn: str, mapping: str, tmp_path: Path) -> tuple[list[str], Any]:
    """Library export and export.sql both succeed with byte-identical data; the library's
    warnings and psql's run are returned."""
    tmp_path.mkdir(exist_ok=True)
    archive = tmp_path / "a.edms"
    result = api.export_archive(dsn, load_mapping_text(mapping), archive, audit_log=False, compression="none")
    res, data = _psql_export(server, dsn, mapping, tmp_path)
    assert res.returncode == 0, res.stderr
    # the script's order may differ (it plans generic references on the type table)
    files = {
        row[1]: row for row in (line.split("\t") for line in (data / COUNTS_FILE).read_text().splitlines())
    }
    with ArchiveReader(archive) as reader:
        assert sorted(files) == sorted(t.table for t in reader.manifest.tables)
        for t in reader.manifest.tables:
            index, _, rows, _ = files[t.table]
            # the same lines byte for byte, in whatever order the plan returned them
            assert sorted((data / data_file(int(index))).read_bytes().splitlines()) == sorted(
                read_member_text(reader, t).splitlines()
            ), t.table
            assert rows == str(t.rows)
    return result.warnings, res


def _clean_db(new_db: Any) -> tuple[str, str]:
    """Every kind of check has something to look at, and passes: a tree without loops, a
    key with no unique constraint but unique rows, a likely-named column only some of
    whose values are ids, a NULL-keyed row nobody references, declared and NOT VALID
    references whose rows exist, generic ids that all name rows."""
    dsn = _db(
        new_db,
        TREE.split("UPDATE")[0],
        PEOPLE.replace("('a@x', 'Ann 2')", "('a2@x', 'Ann 2')").replace("('c@x', NULL), ('c@x', 'C3')", "('c2@x', NULL)"),
        PRODUCTS,
        "UPDATE public.sale SET product_id = 77 WHERE ref = 's1'",
        CATEGORIES,
        "UPDATE public.item SET category_id = 1",
        NOTES,
        "DELETE FROM public.note WHERE ref = 'n2'; DELETE FROM public.doc WHERE ref = 'd2'",
        GENERIC_SCHEMA,
        GENERIC_DATA,
    )  # fmt: skip
    mapping = GENERIC_MAPPING + "".join(
        m.split("tables:\n")[1]
        for m in (TREE_MAPPING, PEOPLE_MAPPING, PRODUCTS_MAPPING, CATEGORIES_MAPPING, NOTES_MAPPING)
    )
    return dsn, mapping


def test_clean_data_passes_every_check_and_exports_the_same(
    tmp_path: Path, pg_server: Server, new_db: Any
) -> None:
    dsn, mapping = _clean_db(new_db)
    _same_data(pg_server, dsn, mapping, tmp_path)
    script = (tmp_path / "scripts" / "export.sql").read_text()
    for what in (
        "-- public.node\n",
        "-- public.person: natural key unique in the data?",
        "-- public.sale.product_id: a likely reference?",
        "-- public.item (category_id): references to a NULL natural key?",
        "-- public.note (party_id): references to rows that do not exist?",
        "-- public.doc (party_id): references to rows that do not exist?",
        "-- public.app_comment (content_type_id, object_id)\n",
        "-- public.app_comment (content_type_id, object_id), on_dangling: error",
    ):
        assert what in script
    # every check runs before the first data file is written
    assert script.rindex("RAISE EXCEPTION") < script.index("\\copy")


def test_golden_export_checks(new_db: Any, request: pytest.FixtureRequest) -> None:
    """The checks as a reviewer reads them, for the schema above: sql/export_checks.sql."""
    dsn, mapping = _clean_db(new_db)
    text = render_runbook(dsn, load_mapping_text(mapping), "export")
    golden = ROOT / "sql" / "export_checks.sql"
    if request.config.getoption("--update-golden"):
        golden.write_text(text)
    assert golden.exists(), "run pytest --update-golden to create it"
    assert text == golden.read_text(), f"{golden} is stale; regenerate with pytest --update-golden"


HOSTILE = """
CREATE SCHEMA "Odd'Schema";
CREATE TABLE "Odd'Schema"."Par $edms$ :x" (id serial PRIMARY KEY, "Key; --" text NOT NULL, ":ROW_COUNT" integer);
INSERT INTO "Odd'Schema"."Par $edms$ :x" ("Key; --", ":ROW_COUNT") VALUES
  (E'p''1\\\\', 1), (E'p''1\\\\', 2), ('$edms$ :datadir', 3);
"""
HOSTILE_MAPPING = """
version: 1
tables:
  '"Odd''Schema"."Par $edms$ :x"': {natural_key: ['Key; --']}
"""


def test_hostile_names_and_values_in_a_refusal(tmp_path: Path, pg_server: Server, new_db: Any) -> None:
    """Quotes, dollar tags, psql variables and backslashes in names and sample values
    reach the message as the library writes them, and nothing runs that should not."""
    dsn = _db(new_db, HOSTILE)
    message = _both_refuse(pg_server, dsn, HOSTILE_MAPPING, tmp_path)
    assert message.startswith(
        """natural key not unique in the data of "Odd'Schema"."Par $edms$ :x" (Key; --); nothing was exported."""
    )
    assert "(Key; --='p''1\\') 2 times" in message
    assert "$edms1$" in (tmp_path / "scripts" / "export.sql").read_text()
