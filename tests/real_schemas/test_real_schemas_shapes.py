"""Issue 23, key and reference shapes: each one round-trips through natural values (a
re-import writes nothing) or is refused before any archive is written, naming the table,
the column and the fix."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from edms_pgdump import check_mapping, export_archive, import_archive, load_mapping_text
from edms_pgdump.demo.servers import Server
from edms_pgdump.errors import ArchiveError, DataRuleError, PlanError, SchemaDriftError
from edms_pgdump.options import ImportOptions
from edms_pgdump.results import ImportReport
from edms_pgdump.runbook.scripts import write_runbooks
from tests.support.psql import run_psql
from tests.support.real_schemas import (
    NewDb,
    assert_keyed_union,
    error_text,
    export_and_import,
    fetch,
    keyed_rows,
    make_db,
    natural_rows,
    push_sequences,
    table_snapshot,
)


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return path


def _round_trip(src: str, dst: str, mapping: str, tmp_path: Path) -> ImportReport:
    """Export, import, then import the same archive again: the second writes nothing."""
    before, source = keyed_rows(dst, mapping), keyed_rows(src, mapping)
    report, _ = export_and_import(src, dst, mapping, tmp_path)
    assert report.committed and report.ok, report.to_dict()
    assert_keyed_union(before, source, keyed_rows(dst, mapping))
    again = import_archive(dst, tmp_path / "a.edmsdump", audit_log=False)
    assert again.committed and again.ok, again.to_dict()
    assert all(t.inserted == 0 and t.updated == 0 for t in again.tables), again.to_dict()
    return report


# -- 1. two foreign keys sharing a column -------------------------------------------
SHARED = """
CREATE TABLE tenant (id serial PRIMARY KEY, code text NOT NULL UNIQUE);
CREATE TABLE parent (tenant_id int NOT NULL REFERENCES tenant, id serial, name text NOT NULL,
    PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, name));
CREATE TABLE child (id serial PRIMARY KEY, tenant_id int NOT NULL REFERENCES tenant,
    parent_id int, label text NOT NULL, UNIQUE (tenant_id, label),
    CONSTRAINT {name} FOREIGN KEY (tenant_id, parent_id) REFERENCES parent (tenant_id, id));
"""
SHARED_SOURCE = """
INSERT INTO tenant (id, code) VALUES (1, 'acme'), (2, 'umbrella');
INSERT INTO parent (tenant_id, id, name) VALUES (1, 1, 'p1'), (1, 2, 'p2'), (2, 3, 'p1');
INSERT INTO child (tenant_id, parent_id, label) VALUES (1, 1, 'c1'), (1, 2, 'c2'), (2, 3, 'c1'), (2, NULL, 'c9');
"""
SHARED_TARGET = """
INSERT INTO tenant (id, code) VALUES (1, 'umbrella'), (2, 'other');
INSERT INTO parent (tenant_id, id, name) VALUES (2, 7, 'x');
"""
SHARED_MAP = """
version: 1
tables:
  public.tenant: {natural_key: [code]}
  public.parent: {natural_key: [tenant_id, name]}
  public.child: {natural_key: [tenant_id, label]}
"""


# the constraint's name decides whether the catalog lists it before or after tenant_id's
# (was: KeyError 'tenant_id' in plan and import for one order, fk-column-raw for the other)
@pytest.mark.parametrize("name", ["a_child_parent_fk", "z_child_parent_fk"])
def test_two_fks_sharing_a_column_into_an_empty_target(new_db: NewDb, tmp_path: Path, name: str) -> None:
    src = make_db(new_db, SHARED.format(name=name), SHARED_SOURCE.replace(", (2, NULL, 'c9')", ""))
    dst = make_db(new_db, SHARED.format(name=name))
    push_sequences(dst)
    check = check_mapping(dsn=src, mapping=_file(tmp_path, SHARED_MAP))
    assert check.errors == [], [str(p) for p in check.errors]
    _round_trip(src, dst, SHARED_MAP, tmp_path)


# c9 has a tenant and no parent: the composite reference is absent, not partly NULL
@pytest.mark.parametrize("name", ["a_child_parent_fk", "z_child_parent_fk"])
def test_two_fks_sharing_a_column_round_trip(new_db: NewDb, tmp_path: Path, name: str) -> None:
    schema = SHARED.format(name=name)
    src = make_db(new_db, schema, SHARED_SOURCE)
    dst = make_db(new_db, schema, SHARED_TARGET)
    push_sequences(dst)
    check = check_mapping(dsn=src, mapping=_file(tmp_path, SHARED_MAP))
    assert check.errors == [], [str(p) for p in check.errors]
    _round_trip(src, dst, SHARED_MAP, tmp_path)
    got = fetch(
        dst,
        "SELECT t.code, c.label, p.name FROM child c JOIN tenant t ON t.id = c.tenant_id"
        " LEFT JOIN parent p ON (p.tenant_id, p.id) = (c.tenant_id, c.parent_id) ORDER BY 1, 2",
    )
    assert got == [
        ("acme", "c1", "p1"),
        ("acme", "c2", "p2"),
        ("umbrella", "c1", "p1"),
        ("umbrella", "c9", None),
    ]


def test_a_reference_sharing_a_column_set_while_the_shared_one_is_null_is_refused(
    new_db: NewDb, tmp_path: Path
) -> None:
    schema = SHARED.format(name="child_parent_fk").replace(
        "tenant_id int NOT NULL REFERENCES tenant,\n    parent_id",
        "tenant_id int REFERENCES tenant,\n    parent_id",
    )
    assert "tenant_id int REFERENCES tenant," in schema
    src = make_db(
        new_db,
        schema,
        SHARED_SOURCE,
        "INSERT INTO child (tenant_id, parent_id, label) VALUES (NULL, 1, 'c0')",
    )
    archive = tmp_path / "a.edmsdump"
    with pytest.raises(DataRuleError) as exc:
        export_archive(src, load_mapping_text(SHARED_MAP), archive, audit_log=False)
    msg = str(exc.value)
    assert "public.child.tenant_id" in msg and "child_parent_fk" in msg and "nothing was exported" in msg
    assert not archive.exists()


# -- 2. a natural-key column inside a composite FK (a partition key) ------------------
REGIONS = """
CREATE TABLE customer (id bigserial, region text NOT NULL, email text NOT NULL,
    PRIMARY KEY (id, region), UNIQUE (region, email)) PARTITION BY LIST (region);
CREATE TABLE customer_eu PARTITION OF customer FOR VALUES IN ('eu');
CREATE TABLE customer_us PARTITION OF customer FOR VALUES IN ('us');
CREATE TABLE orders (id bigserial, region text NOT NULL, number int NOT NULL, customer_id bigint,
    total numeric(10, 2), PRIMARY KEY (id, region), UNIQUE (region, number),
    FOREIGN KEY (customer_id, region) REFERENCES customer (id, region)) PARTITION BY LIST (region);
CREATE TABLE orders_eu PARTITION OF orders FOR VALUES IN ('eu');
CREATE TABLE orders_us PARTITION OF orders FOR VALUES IN ('us');
"""
REGIONS_SOURCE = """
INSERT INTO customer (id, region, email) VALUES (1, 'eu', 'ann@x'), (2, 'us', 'bob@x'), (3, 'eu', 'bob@x');
INSERT INTO orders (region, number, customer_id, total) VALUES
    ('eu', 1, 1, 10), ('eu', 2, 3, 20), ('us', 1, 2, 30), ('us', 2, NULL, 40);
"""
REGIONS_TARGET = """
INSERT INTO customer (id, region, email) VALUES (1, 'eu', 'bob@x'), (2, 'us', 'zed@x');
INSERT INTO orders (region, number, customer_id, total) VALUES ('us', 7, 2, 1);
"""
REGIONS_MAP = """
version: 1
tables:
  public.customer: {natural_key: [region, email]}
  public.orders: {natural_key: [region, number]}
"""


def test_key_column_inside_a_composite_fk_round_trips(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, REGIONS, REGIONS_SOURCE)
    dst = make_db(new_db, REGIONS, REGIONS_TARGET)
    push_sequences(dst)
    check = check_mapping(dsn=src, mapping=_file(tmp_path, REGIONS_MAP))
    assert check.errors == [], [str(p) for p in check.errors]
    _round_trip(src, dst, REGIONS_MAP, tmp_path)
    got = fetch(
        dst,
        "SELECT o.region, o.number, c.email FROM orders o"
        " LEFT JOIN customer c ON (c.id, c.region) = (o.customer_id, o.region) ORDER BY 1, 2",
    )
    assert got == [
        ("eu", 1, "ann@x"),
        ("eu", 2, "bob@x"),
        ("us", 1, "bob@x"),
        ("us", 2, None),
        ("us", 7, "zed@x"),
    ]


# -- 3. a generated column as the natural key -----------------------------------------
GENERATED = """
CREATE TABLE article (id serial PRIMARY KEY, title text NOT NULL,
    slug text GENERATED ALWAYS AS (lower(replace(title, ' ', '-'))) STORED UNIQUE, body text);
CREATE TABLE comment (id serial PRIMARY KEY, article_id int NOT NULL REFERENCES article,
    n int NOT NULL, said text, UNIQUE (article_id, n));
"""
GENERATED_SOURCE = """
INSERT INTO article (id, title, body) VALUES (1, 'Hello World', 'hi'), (2, 'Second Post', 'more');
INSERT INTO comment (article_id, n, said) VALUES (1, 1, 'first'), (2, 1, 'yes'), (2, 2, 'no');
"""
GENERATED_TARGET = """
INSERT INTO article (id, title, body) VALUES (1, 'Second Post', 'old'), (2, 'Other', 'x');
"""
GENERATED_MAP = """
version: 1
tables:
  public.article: {natural_key: [slug]}
  public.comment: {natural_key: [article_id, n]}
"""


def test_generated_natural_key_round_trips(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, GENERATED, GENERATED_SOURCE)
    dst = make_db(new_db, GENERATED, GENERATED_TARGET)
    push_sequences(dst)
    check = check_mapping(dsn=src, mapping=_file(tmp_path, GENERATED_MAP))
    assert check.errors == [], [str(p) for p in check.errors]
    report = _round_trip(src, dst, GENERATED_MAP, tmp_path)
    assert [(t.table, t.inserted, t.updated) for t in report.tables] == [
        ("public.article", 1, 1),
        ("public.comment", 3, 0),
    ]
    got = fetch(
        dst,
        "SELECT a.slug, a.body, c.n, c.said FROM article a LEFT JOIN comment c ON c.article_id = a.id ORDER BY 1, 3",
    )
    assert got == [
        ("hello-world", "hi", 1, "first"),
        ("other", "x", None, None),
        ("second-post", "more", 1, "yes"),
        ("second-post", "more", 2, "no"),
    ]


# -- 4. PostgreSQL 18: NOT ENFORCED and temporal (PERIOD) foreign keys -----------------
def _pg18(admin: psycopg.Connection) -> None:
    if admin.info.server_version < 180000:
        pytest.skip("NOT ENFORCED and PERIOD foreign keys need PostgreSQL 18")


UNENFORCED = """
CREATE TABLE owner (id serial PRIMARY KEY, login text NOT NULL UNIQUE);
CREATE TABLE item (id serial PRIMARY KEY, code text NOT NULL UNIQUE, owner_id int,
    CONSTRAINT item_owner_fk FOREIGN KEY (owner_id) REFERENCES owner NOT ENFORCED);
"""
UNENFORCED_SOURCE = """
INSERT INTO owner (id, login) VALUES (1, 'ann'), (2, 'bob');
INSERT INTO item (code, owner_id) VALUES ('i1', 1), ('i2', 2), ('i3', NULL);
"""
UNENFORCED_MAP = """
version: 1
tables:
  public.owner: {natural_key: [login]}
  public.item: {natural_key: [code]}
"""


def test_not_enforced_fk_travels_like_a_declared_reference(
    new_db: NewDb, admin: psycopg.Connection, tmp_path: Path
) -> None:
    _pg18(admin)
    src = make_db(new_db, UNENFORCED, UNENFORCED_SOURCE)
    dst = make_db(new_db, UNENFORCED, "INSERT INTO owner (id, login) VALUES (1, 'bob');")
    push_sequences(dst)
    _round_trip(src, dst, UNENFORCED_MAP, tmp_path)
    got = fetch(dst, "SELECT i.code, o.login FROM item i LEFT JOIN owner o ON o.id = i.owner_id ORDER BY 1")
    assert got == [("i1", "ann"), ("i2", "bob"), ("i3", None)]


def test_not_enforced_fk_to_a_missing_row_is_refused_with_a_fitting_fix(
    new_db: NewDb, admin: psycopg.Connection, tmp_path: Path
) -> None:
    _pg18(admin)
    src = make_db(
        new_db, UNENFORCED, UNENFORCED_SOURCE, "INSERT INTO item (code, owner_id) VALUES ('i9', 99)"
    )
    check = check_mapping(dsn=src, mapping=_file(tmp_path, UNENFORCED_MAP))
    (err,) = [p for p in check.errors if p.code == "reference-dangling"]
    assert (err.table, err.column) == ("public.item", "owner_id")
    assert "NOT ENFORCED" in err.message and "VALIDATE" not in err.fix
    assert "ALTER TABLE public.item ALTER CONSTRAINT item_owner_fk ENFORCED" in err.fix
    archive = tmp_path / "a.edmsdump"
    with pytest.raises(DataRuleError) as exc:
        export_archive(src, load_mapping_text(UNENFORCED_MAP), archive, audit_log=False)
    assert "public.item.owner_id" in str(exc.value) and "nothing was exported" in str(exc.value)
    assert not archive.exists()


TEMPORAL = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE TABLE room (id serial, code text NOT NULL, valid_at daterange NOT NULL,
    PRIMARY KEY (id, valid_at WITHOUT OVERLAPS), UNIQUE (code, valid_at WITHOUT OVERLAPS));
CREATE TABLE booking (id serial PRIMARY KEY, ref text NOT NULL UNIQUE, room_id int NOT NULL,
    during daterange NOT NULL,
    CONSTRAINT booking_room_fk FOREIGN KEY (room_id, PERIOD during) REFERENCES room (id, PERIOD valid_at));
INSERT INTO room (id, code, valid_at) VALUES (1, 'r1', '[2025-01-01,2026-01-01)');
INSERT INTO booking (ref, room_id, during) VALUES ('b1', 1, '[2025-03-01,2025-03-05)');
"""
TEMPORAL_MAP = """
version: 1
tables:
  public.room: {natural_key: [code, valid_at]}
  public.booking: {natural_key: [ref]}
"""


def test_temporal_fk_is_refused_before_export(
    new_db: NewDb, admin: psycopg.Connection, tmp_path: Path
) -> None:
    _pg18(admin)
    src = make_db(new_db, TEMPORAL)
    check = check_mapping(dsn=src, mapping=_file(tmp_path, TEMPORAL_MAP))
    (err,) = [p for p in check.errors if p.code == "fk-temporal"]
    assert (err.table, err.column) == ("public.booking", "room_id")
    assert "booking_room_fk" in err.message and "PERIOD during" in err.message
    assert "exclude:" in err.fix and 'DROP CONSTRAINT "booking_room_fk"' in err.fix
    archive = tmp_path / "a.edmsdump"
    with pytest.raises(PlanError) as exc:
        export_archive(src, load_mapping_text(TEMPORAL_MAP), archive, audit_log=False)
    assert "public.booking.room_id" in str(exc.value) and "booking_room_fk" in str(exc.value)
    assert not archive.exists()


# -- 5. a declared reference to columns that are not unique ---------------------------
NOT_UNIQUE = """
CREATE TABLE product (id serial PRIMARY KEY, name text NOT NULL UNIQUE, family text NOT NULL);
CREATE TABLE line (id serial PRIMARY KEY, ref text NOT NULL UNIQUE, family text);
INSERT INTO product (name, family) VALUES ('bolt', 'metal'), ('nut', 'metal'), ('gear', 'gear');
INSERT INTO line (ref, family) VALUES ('l1', 'metal'), ('l2', 'gear');
"""
NOT_UNIQUE_MAP = """
version: 1
tables:
  public.product: {natural_key: [name]}
  public.line:
    natural_key: [ref]
    references: [{columns: [family], table: public.product, target_columns: [family]}]
"""


def test_declared_reference_to_non_unique_columns_is_refused(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, NOT_UNIQUE)
    check = check_mapping(dsn=src, mapping=_file(tmp_path, NOT_UNIQUE_MAP))
    (err,) = [p for p in check.errors if p.code == "reference-target-not-unique"]
    assert (err.table, err.column) == ("public.line", "family")
    assert "not unique in public.product" in err.message
    assert "target_columns at a unique key of public.product (id; name)" in err.fix
    assert 'CREATE UNIQUE INDEX ON public.product ("family");' in err.fix
    archive = tmp_path / "a.edmsdump"
    with pytest.raises(PlanError) as exc:
        export_archive(src, load_mapping_text(NOT_UNIQUE_MAP), archive, audit_log=False)
    assert "public.line.family" in str(exc.value)
    assert not archive.exists()
    # the same reference to a unique column is accepted
    ok = NOT_UNIQUE_MAP.replace("target_columns: [family]", "target_columns: [name]")
    check = check_mapping(dsn=src, mapping=_file(tmp_path, ok))
    assert [p for p in check.errors if p.code.startswith("reference-target")] == []


# -- 6. schema drift that retargets a foreign key --------------------------------------
RETARGET = """
CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE groups (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE item (id serial PRIMARY KEY, code text NOT NULL UNIQUE, owner_id int REFERENCES {owner});
"""
RETARGET_MAP = """
version: 1
tables:
  public.users: {natural_key: [name]}
  public.groups: {natural_key: [name]}
  public.item: {natural_key: [code]}
"""


def test_drift_that_retargets_a_reference_is_refused_by_name(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(
        new_db,
        RETARGET.format(owner="users"),
        "INSERT INTO users (name) VALUES ('ann'); INSERT INTO groups (name) VALUES ('ann');"
        "INSERT INTO item (code, owner_id) VALUES ('i1', 1)",
    )
    dst = make_db(new_db, RETARGET.format(owner="groups"), "INSERT INTO groups (name) VALUES ('ann')")
    archive = tmp_path / "a.edmsdump"
    export_archive(src, load_mapping_text(RETARGET_MAP), archive, audit_log=False)
    before = table_snapshot(dst, "users", "groups", "item")
    with pytest.raises(SchemaDriftError) as exc:
        import_archive(dst, archive, audit_log=False)
    text = error_text(exc.value)
    assert "public.item: reference owner_id points at public.users" in text
    assert "but at public.groups" in text and "item_owner_id_fkey" in text
    assert "migrate the target so owner_id references public.users again" in text
    assert table_snapshot(dst, "users", "groups", "item") == before


# -- 7. a subset filter on surrogate ids, imported as a mirror -------------------------
SUBSET = """
CREATE TABLE team (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE doc (id serial PRIMARY KEY, number text NOT NULL UNIQUE, team_id int REFERENCES team);
INSERT INTO team (name) VALUES ('red'), ('blue');
INSERT INTO doc (number, team_id) VALUES ('d1', 1), ('d2', 2), ('d3', 1), ('d4', NULL);
"""
SUBSET_MAP = """
version: 1
tables:
  public.team: {natural_key: [name]}
  public.doc: {natural_key: [number]}
"""


@pytest.mark.parametrize("where", ["id <= 2", "team_id = 1 AND number <> 'x'"])
def test_mirror_import_of_a_filter_on_surrogate_ids_is_refused(
    new_db: NewDb, tmp_path: Path, where: str
) -> None:
    src = make_db(new_db, SUBSET)
    # the target's ids name other rows: d4 has id 1 there, d1 id 4
    dst = make_db(
        new_db,
        SUBSET.split("INSERT")[0],
        "INSERT INTO team (name) VALUES ('blue'), ('red');"
        "INSERT INTO doc (number, team_id) VALUES ('d4', NULL), ('d3', 2), ('d2', 1), ('d1', 2), ('d9', 2)",
    )
    archive = tmp_path / "a.edmsdump"
    export_archive(
        src, load_mapping_text(SUBSET_MAP), archive, where=[("public.doc", where)], audit_log=False
    )
    before = table_snapshot(dst, "team", "doc")
    with pytest.raises(ArchiveError) as exc:
        import_archive(dst, archive, options=ImportOptions(delete_missing=True), audit_log=False)
    msg = str(exc.value)
    column = "id" if where.startswith("id") else "team_id"
    assert f"public.doc: the subset's filter ({where}) names {column}, which holds surrogate ids" in msg
    assert "Fix: filter public.doc on its natural-key or other plain columns (number)" in msg
    assert table_snapshot(dst, "team", "doc") == before
    # without --delete-missing the subset imports: only its rows, by natural key
    report = import_archive(dst, archive, audit_log=False)
    assert report.committed and report.ok


def test_mirror_import_of_a_filter_on_natural_key_columns_deletes_in_scope(
    new_db: NewDb, tmp_path: Path
) -> None:
    src = make_db(new_db, SUBSET)
    dst = make_db(new_db, SUBSET.split("INSERT")[0], "INSERT INTO doc (number) VALUES ('d0'), ('d2'), ('d9')")
    archive = tmp_path / "a.edmsdump"
    export_archive(
        src, load_mapping_text(SUBSET_MAP), archive, where=[("public.doc", "number <= 'd2'")], audit_log=False
    )
    report = import_archive(dst, archive, options=ImportOptions(delete_missing=True), audit_log=False)
    assert report.committed and report.ok, report.to_dict()
    assert fetch(dst, "SELECT number FROM doc ORDER BY 1") == [("d1",), ("d2",), ("d9",)]


def test_import_sql_with_delete_missing_refuses_a_filter_on_surrogate_ids(
    new_db: NewDb, tmp_path: Path
) -> None:
    dst = make_db(new_db, SUBSET)
    mapping = load_mapping_text(
        SUBSET_MAP.replace("{natural_key: [number]}", "{natural_key: [number], where: 'id <= 2'}")
    )
    with pytest.raises(PlanError) as exc:
        write_runbooks(dst, mapping, ["import"], tmp_path / "rb", ImportOptions(delete_missing=True))
    msg = str(exc.value)
    assert "the subset's filter (id <= 2) names id, which holds surrogate ids" in msg
    assert "filter public.doc on its natural-key or other plain columns (number)" in msg
    assert not (tmp_path / "rb" / "import.sql").exists()
    # without --delete-missing the runbook is written
    write_runbooks(dst, mapping, ["import"], tmp_path / "rb")
    assert (tmp_path / "rb" / "import.sql").exists()


# -- 8. arrays of ids ------------------------------------------------------------------
ARRAYS = """
CREATE TABLE tag (id serial PRIMARY KEY, name text UNIQUE);
CREATE TABLE post (id serial PRIMARY KEY, slug text NOT NULL UNIQUE, tag_ids integer[]);
"""
ARRAYS_SOURCE = """
INSERT INTO tag (id, name) VALUES (1, 'red'), (2, 'blue'), (3, 'green'), (4, NULL);
INSERT INTO post (slug, tag_ids) VALUES
    ('p1', '{1,2}'), ('p2', '{3,NULL,1}'), ('p3', '{}'), ('p4', NULL), ('p5', '{2,2,4}');
"""
# the target's ids 1..4 are other tags
ARRAYS_TARGET = """
INSERT INTO tag (id, name) VALUES (1, 'green'), (2, 'red'), (3, 'yellow');
INSERT INTO post (slug, tag_ids) VALUES ('p1', '{3}');
"""
ARRAYS_MAP = """
version: 1
tables:
  public.tag: {natural_key: [name]}
  public.post: {natural_key: [slug]}
"""
ARRAYS_DECLARED = ARRAYS_MAP.replace(
    "  public.post: {natural_key: [slug]}",
    "  public.post:\n    natural_key: [slug]\n    references: [{columns: [tag_ids], table: public.tag}]",
)
POSTS = (
    "SELECT p.slug, (SELECT array_agg(t.name ORDER BY e.o) FROM unnest(p.tag_ids) WITH ORDINALITY e(v, o)"
    " LEFT JOIN tag t ON t.id = e.v), p.tag_ids IS NULL, cardinality(p.tag_ids) FROM post p ORDER BY 1"
)


def test_an_undeclared_array_of_ids_is_a_likely_reference(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, ARRAYS, ARRAYS_SOURCE)
    check = check_mapping(dsn=src, mapping=_file(tmp_path, ARRAYS_MAP))
    (err,) = [p for p in check.errors if p.code == "likely-reference"]
    assert (err.table, err.column) == ("public.post", "tag_ids")
    assert "7 of 7 non-NULL array elements are ids of public.tag" in err.message
    assert "references: [{columns: [tag_ids], table: public.tag}]" in err.fix
    archive = tmp_path / "a.edmsdump"
    with pytest.raises(DataRuleError) as exc:
        export_archive(src, load_mapping_text(ARRAYS_MAP), archive, audit_log=False)
    assert "public.post.tag_ids" in str(exc.value) and "nothing was exported" in str(exc.value)
    assert not archive.exists()


def test_a_declared_array_of_ids_travels_element_by_element(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, ARRAYS, ARRAYS_SOURCE)
    dst = make_db(new_db, ARRAYS, ARRAYS_TARGET)
    push_sequences(dst)
    check = check_mapping(dsn=src, mapping=_file(tmp_path, ARRAYS_DECLARED))
    assert check.errors == [], [str(p) for p in check.errors]
    _round_trip(src, dst, ARRAYS_DECLARED, tmp_path)
    assert fetch(dst, POSTS) == [
        ("p1", ["red", "blue"], False, 2),
        ("p2", ["green", None, "red"], False, 3),
        ("p3", None, False, 0),
        ("p4", None, True, None),
        ("p5", ["blue", "blue", None], False, 3),  # the tag whose name is NULL, not a NULL element
    ]
    assert fetch(dst, "SELECT tag_ids[3] IS NOT NULL FROM post WHERE slug = 'p5'") == [(True,)]
    assert fetch(dst, "SELECT tag_ids[2] IS NULL FROM post WHERE slug = 'p2'") == [(True,)]


def test_an_array_element_naming_no_row_is_refused_before_export(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, ARRAYS, ARRAYS_SOURCE, "INSERT INTO post (slug, tag_ids) VALUES ('p9', '{1,99}')")
    archive = tmp_path / "a.edmsdump"
    with pytest.raises(DataRuleError) as exc:
        export_archive(src, load_mapping_text(ARRAYS_DECLARED), archive, audit_log=False)
    msg = str(exc.value)
    assert "public.post.tag_ids" in msg and "do not exist" in msg and "nothing was exported" in msg
    assert not archive.exists()


def test_a_declared_array_of_ids_travels_through_the_psql_runbooks(
    new_db: NewDb, pg_server: Server, tmp_path: Path
) -> None:
    src = make_db(new_db, ARRAYS, ARRAYS_SOURCE)
    dst = make_db(new_db, ARRAYS, ARRAYS_TARGET)
    push_sequences(dst)
    mapping = load_mapping_text(ARRAYS_DECLARED)
    write_runbooks(src, mapping, ["export"], tmp_path / "x")
    write_runbooks(dst, mapping, ["import"], tmp_path / "i")
    data = tmp_path / "data"
    data.mkdir()
    res = run_psql(pg_server, src, tmp_path / "x" / "export.sql", data)
    assert res.returncode == 0, res.stderr
    res = run_psql(pg_server, dst, tmp_path / "i" / "import.sql", data)
    assert res.returncode == 0, res.stderr
    assert natural_rows(dst, ARRAYS_DECLARED) == natural_rows(src, ARRAYS_DECLARED) | {
        "public.tag": sorted(natural_rows(src, ARRAYS_DECLARED)["public.tag"] + [("yellow",)], key=repr)
    }
    assert fetch(dst, POSTS)[1] == ("p2", ["green", None, "red"], False, 3)
