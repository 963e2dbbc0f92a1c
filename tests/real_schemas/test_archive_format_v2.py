"""Issue 23, archive format version 2: a reference carries whether it is present apart
from its key fields (``<label>.#present``), and a partly NULL composite reference its
plain columns as values (``<label>.#value.<column>``).

* a contact with no e-mail (natural key [email], all NULL) who owns items: travels, into
  a target with other ids, exactly; the re-import writes nothing;
* a tenant-scoped optional parent, ``(tenant_id, parent_id) -> parent (tenant_id, id)``
  with parent_id NULL, next to ``tenant_id -> tenant``: exact as well;
* an archive of format version 1 (no presence fields) still imports, with version 1's
  meaning (an all-NULL key is no reference);
* a presence field that contradicts its key fields is refused, nothing written.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import psycopg
import pytest

from edms_pgdump import check_mapping, export_archive, import_archive, load_mapping_text
from edms_pgdump.api import import_fixture
from edms_pgdump.archive.manifest import MANIFEST_CHECKSUM, manifest_checksum
from edms_pgdump.errors import ImportRejected, SchemaDriftError
from tests.support.real_schemas import (
    FAR,
    NewDb,
    assert_keyed_union,
    counts,
    fetch,
    keyed_rows,
    make_db,
    push_sequences,
    table_snapshot,
)

# [email] is the key, NULL for one contact at most (NULLS NOT DISTINCT, PostgreSQL 15+)
CONTACTS = """
CREATE TABLE public.contact (id serial PRIMARY KEY, email text, name text NOT NULL);
CREATE UNIQUE INDEX contact_email ON public.contact (email) NULLS NOT DISTINCT;
CREATE TABLE public.item (id serial PRIMARY KEY, code text NOT NULL UNIQUE,
  owner_id integer REFERENCES public.contact (id));
"""
CONTACT_ROWS = """
INSERT INTO public.contact (id, email, name) VALUES (1, 'ann@x', 'Ann'), (2, NULL, 'Nobody');
INSERT INTO public.item (code, owner_id) VALUES ('i1', 1), ('i2', 2), ('i3', NULL), ('i4', 2);
"""
CONTACTS_MAPPING = """version: 1
tables:
  public.contact: {natural_key: [email]}
  public.item: {natural_key: [code]}
"""
ITEMS = (
    "SELECT i.code, c.email, c.name FROM public.item i LEFT JOIN public.contact c ON c.id = i.owner_id "
    "ORDER BY i.code"
)

TENANTS = """
CREATE TABLE public.tenant (id serial PRIMARY KEY, code text NOT NULL UNIQUE);
CREATE TABLE public.parent (id serial PRIMARY KEY, tenant_id integer NOT NULL REFERENCES public.tenant (id),
  name text NOT NULL, UNIQUE (tenant_id, id), UNIQUE (tenant_id, name));
CREATE TABLE public.child (id serial PRIMARY KEY, ref text NOT NULL UNIQUE,
  tenant_id integer REFERENCES public.tenant (id), parent_id integer,
  CONSTRAINT child_parent_fk FOREIGN KEY (tenant_id, parent_id) REFERENCES public.parent (tenant_id, id));
"""
TENANT_ROWS = """
INSERT INTO public.tenant (id, code) VALUES (1, 'acme'), (2, 'globex');
INSERT INTO public.parent (id, tenant_id, name) VALUES (1, 1, 'root'), (2, 2, 'root');
INSERT INTO public.child (ref, tenant_id, parent_id) VALUES
  ('a', 1, 1), ('b', 1, NULL), ('c', 2, 2), ('d', NULL, NULL), ('e', 2, NULL);
"""
TENANTS_MAPPING = """version: 1
tables:
  public.tenant: {natural_key: [code]}
  public.parent: {natural_key: [tenant_id, name]}
  public.child: {natural_key: [ref]}
"""
CHILDREN = (
    "SELECT c.ref, t.code, p.name FROM public.child c LEFT JOIN public.tenant t ON t.id = c.tenant_id "
    "LEFT JOIN public.parent p ON p.id = c.parent_id ORDER BY c.ref"
)


def _round_trip(src: str, dst: str, mapping: str, tmp_path: Path, tables: list[str]) -> None:
    """Export, import into ``dst`` (other ids), compare by natural values, re-import."""
    before = keyed_rows(dst, mapping)
    archive = tmp_path / "a.edmsdump"
    export_archive(src, load_mapping_text(mapping), archive, audit_log=False)
    import_archive(dst, archive, audit_log=False)
    assert_keyed_union(before, keyed_rows(src, mapping), keyed_rows(dst, mapping))
    snapshot = table_snapshot(dst, *tables)
    again = import_archive(dst, archive, audit_log=False)
    for t in tables:
        expected, inserted, updated, _ = counts(again, t)
        assert (inserted, updated) == (0, 0), (t, expected)
    assert table_snapshot(dst, *tables) == snapshot


def test_a_reference_to_the_row_whose_key_is_all_null_travels(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, CONTACTS, CONTACT_ROWS)
    # the target has the contact with no e-mail already, under another id, and one of its own
    dst = make_db(new_db, CONTACTS)
    push_sequences(dst)
    with psycopg.connect(dst, autocommit=True) as c:
        c.execute("INSERT INTO public.contact (email, name) VALUES ('zed@x', 'Zed'), (NULL, 'Nobody')")
    report = check_mapping(dsn=src, mapping=load_mapping_text(CONTACTS_MAPPING))
    assert [p.code for p in report.errors] == []
    _round_trip(src, dst, CONTACTS_MAPPING, tmp_path, ["public.contact", "public.item"])
    expected = [("i1", "ann@x", "Ann"), ("i2", None, "Nobody"), ("i3", None, None), ("i4", None, "Nobody")]
    assert fetch(src, ITEMS) == expected
    assert fetch(dst, ITEMS) == expected
    # the references point at the target's row, whose id the source never had
    assert fetch(dst, "SELECT min(owner_id) FROM public.item") >= [(FAR,)]


def test_the_archive_says_version_2_and_carries_presence(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, CONTACTS, CONTACT_ROWS)
    out = tmp_path / "dir"
    export_archive(
        src, load_mapping_text(CONTACTS_MAPPING), out, audit_log=False, directory=True, compression="none"
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format_version"] == 2
    item = next(t for t in manifest["tables"] if t["table"] == "public.item")
    assert [f["name"] for f in item["fields"]] == ["code", "owner_id.email", "owner_id.#present"]
    assert item["expansions"][0]["present"] == "owner_id.#present"
    rows = sorted((out / item["member"]).read_text().splitlines())
    assert rows == ["i1\tann@x\tt", "i2\t\\N\tt", "i3\t\\N\tf", "i4\t\\N\tt"]


def test_a_tenant_scoped_optional_parent_travels(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, TENANTS, TENANT_ROWS)
    dst = make_db(new_db, TENANTS)
    push_sequences(dst)
    with psycopg.connect(dst, autocommit=True) as c:
        c.execute("INSERT INTO public.tenant (code) VALUES ('initech'), ('globex')")
    report = check_mapping(dsn=src, mapping=load_mapping_text(TENANTS_MAPPING))
    assert [p.code for p in report.errors] == []
    _round_trip(src, dst, TENANTS_MAPPING, tmp_path, ["public.tenant", "public.parent", "public.child"])
    expected = [
        ("a", "acme", "root"),
        ("b", "acme", None),
        ("c", "globex", "root"),
        ("d", None, None),
        ("e", "globex", None),
    ]
    assert fetch(src, CHILDREN) == expected
    assert fetch(dst, CHILDREN) == expected


def _rewrite(folder: Path, edit_rows: object = None, to_v1: bool = False) -> None:
    """Edit a directory archive (compression none) as another writer would: ``to_v1``
    drops every format-2 field (the version 1 layout), ``edit_rows`` maps each member's
    lines; sizes, hashes and the manifest checksum are recomputed to match."""
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    for t in manifest["tables"]:
        member = folder / t["member"]
        lines = member.read_bytes().decode().splitlines()
        names = [f["name"] for f in t["fields"]]
        if to_v1:
            keep = [i for i, n in enumerate(names) if ".#present" not in n and ".#value." not in n]
            lines = ["\t".join(line.split("\t")[i] for i in keep) for line in lines]
            t["fields"] = [t["fields"][i] for i in keep]
            for e in t["expansions"]:
                e.pop("present", None)
                e.pop("carried", None)
        if callable(edit_rows):
            lines = [edit_rows(t["table"], line) for line in lines]
        data = "".join(line + "\n" for line in lines).encode()
        member.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        t.update(bytes=len(data), sha256=digest, data_bytes=len(data), data_sha256=digest)
    if to_v1:
        manifest["format_version"] = 1
    manifest.pop(MANIFEST_CHECKSUM, None)
    manifest[MANIFEST_CHECKSUM] = manifest_checksum(manifest)
    path.write_text(json.dumps(manifest, indent=2) + "\n")


def test_an_archive_of_format_version_1_still_imports(new_db: NewDb, tmp_path: Path) -> None:
    """Version 1 had no presence field: an all-NULL key meant no reference. Such an
    archive (written in the version 1 layout) imports, i3's owner stays NULL although
    the target has a contact with no e-mail, and b's tenant arrives through its own
    reference."""
    rows = CONTACT_ROWS.replace("('i2', 2), ", "").replace(", ('i4', 2)", "")
    src = make_db(new_db, CONTACTS, rows, TENANTS, TENANT_ROWS.replace(", ('e', 2, NULL)", ""))
    dst = make_db(new_db, CONTACTS, TENANTS)
    push_sequences(dst)
    with psycopg.connect(dst, autocommit=True) as c:
        c.execute("INSERT INTO public.contact (email, name) VALUES (NULL, 'Nobody')")
    mapping = CONTACTS_MAPPING + TENANTS_MAPPING.split("tables:\n")[1]
    out = tmp_path / "v1"
    export_archive(src, load_mapping_text(mapping), out, audit_log=False, directory=True, compression="none")
    _rewrite(out, to_v1=True)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format_version"] == 1
    assert not [f for t in manifest["tables"] for f in t["fields"] if "#present" in f["name"]]
    report = import_archive(dst, out, audit_log=False)
    assert counts(report, "public.item")[1] == 2
    assert fetch(dst, ITEMS) == [("i1", "ann@x", "Ann"), ("i3", None, None)]
    assert fetch(dst, CHILDREN) == fetch(src, CHILDREN)


def test_a_presence_field_that_contradicts_its_key_is_refused(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, CONTACTS, CONTACT_ROWS)
    dst = make_db(new_db, CONTACTS)
    out = tmp_path / "dir"
    export_archive(
        src, load_mapping_text(CONTACTS_MAPPING), out, audit_log=False, directory=True, compression="none"
    )
    # i1 references ann@x, but its presence now says "no reference"
    _rewrite(out, lambda table, line: line.replace("i1\tann@x\tt", "i1\tann@x\tf"))
    with pytest.raises(ImportRejected) as info:
        import_archive(dst, out, audit_log=False)
    assert str(info.value) == (
        "public.item: 1 row(s) whose owner_id.#present contradicts the key fields of the reference "
        "through item_owner_id_fkey (owner_id -> public.contact): (owner_id.email='ann@x', "
        "owner_id.#present=false); owner_id.#present must be true where the reference is present and "
        "false only where every key field is NULL: the member was edited or not written by edms-pgdump, "
        "re-export it"
    )
    assert fetch(dst, "SELECT count(*) FROM public.item") == [(0,)]
    assert fetch(dst, "SELECT count(*) FROM public.contact") == [(0,)]


def test_a_format_2_field_in_a_version_1_manifest_is_refused(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, CONTACTS, CONTACT_ROWS)
    dst = make_db(new_db, CONTACTS)
    out = tmp_path / "dir"
    export_archive(
        src, load_mapping_text(CONTACTS_MAPPING), out, audit_log=False, directory=True, compression="none"
    )
    path = out / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 1
    manifest.pop(MANIFEST_CHECKSUM)
    manifest[MANIFEST_CHECKSUM] = manifest_checksum(manifest)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    with pytest.raises(SchemaDriftError) as info:
        import_archive(dst, out, audit_log=False)
    assert "archive field owner_id.#present belongs to archive format 2, but the manifest says format 1" in str(
        info.value
    )
    assert fetch(dst, "SELECT count(*) FROM public.item") == [(0,)]


def test_a_django_fixture_tells_null_from_a_reference_to_the_null_keyed_row(
    new_db: NewDb, tmp_path: Path
) -> None:
    """Django's natural keys say it as well: ``[null]`` names the contact with no e-mail,
    ``null`` no contact. import-fixture reads it into the same presence field."""
    schema = CONTACTS.replace("public.contact", "public.app_contact").replace("public.item", "public.app_item")
    dst = make_db(new_db, schema)
    push_sequences(dst)
    fixture = tmp_path / "backup.json"
    fixture.write_text(
        json.dumps(
            [
                {"model": "app.contact", "fields": {"email": "ann@x", "name": "Ann"}},
                {"model": "app.contact", "fields": {"email": None, "name": "Nobody"}},
                {"model": "app.item", "fields": {"code": "i1", "owner": ["ann@x"]}},
                {"model": "app.item", "fields": {"code": "i2", "owner": [None]}},
                {"model": "app.item", "fields": {"code": "i3", "owner": None}},
            ]
        )
    )
    mapping = CONTACTS_MAPPING.replace("public.contact", "public.app_contact").replace(
        "public.item", "public.app_item"
    )
    result = import_fixture(dst, fixture, load_mapping_text(mapping), history=False, audit_log=False)
    assert result.committed
    items = ITEMS.replace("public.item", "public.app_item").replace("public.contact", "public.app_contact")
    assert fetch(dst, items) == [("i1", "ann@x", "Ann"), ("i2", None, "Nobody"), ("i3", None, None)]
    again = import_fixture(dst, fixture, load_mapping_text(mapping), history=False, audit_log=False)
    assert (again.inserted, again.updated) == (0, 0)
