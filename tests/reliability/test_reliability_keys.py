"""Suite 8: natural-key edge cases. Nullable key components (NULLs match as equal),
case/collation differences between databases (reported, never merged silently), keys
longer than an index entry may be (a clear error, nothing written)."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from edms_pgdump import EdmsPgdumpError, ImportRejected, import_archive
from tests.support.db import db_digest, export, rows

TREE_DDL = """
CREATE TABLE public.nodes (
    id        serial PRIMARY KEY,
    parent_id integer REFERENCES public.nodes (id),
    label     text NOT NULL,
    note      text
);
CREATE UNIQUE INDEX nodes_parent_label ON public.nodes (coalesce(parent_id, 0), label);
CREATE TABLE public.variants (
    id      bigserial PRIMARY KEY,
    code    text NOT NULL,
    variant text,
    node_id integer REFERENCES public.nodes (id),
    qty     integer,
    UNIQUE NULLS NOT DISTINCT (code, variant)
);
"""

TREE_ROWS = """
INSERT INTO public.nodes (id, parent_id, label, note) VALUES
    (1, NULL, 'root', 'first root'), (2, NULL, 'other root', NULL),
    (3, 1, 'a', NULL), (4, 2, 'a', 'same label, other parent'), (5, 3, 'leaf', NULL), (6, 4, 'leaf', NULL);
SELECT setval('public.nodes_id_seq', 6);
INSERT INTO public.variants (code, variant, node_id, qty) VALUES
    ('X', NULL, 5, 1), ('X', 'red', 5, 2), ('Y', NULL, NULL, 3), ('Y', '', 6, 4);
"""

TREE_MAPPING = """
version: 1
tables:
  public.nodes: {natural_key: [parent_id, label]}
  public.variants: {natural_key: [code, variant]}
"""


def _tree(dsn: str) -> list[tuple[object, ...]]:
    return rows(
        dsn,
        "SELECT n.label, p.label, pp.label, n.note FROM public.nodes n "
        "LEFT JOIN public.nodes p ON p.id = n.parent_id LEFT JOIN public.nodes pp ON pp.id = p.parent_id "
        "ORDER BY 1, 2 NULLS FIRST, 3 NULLS FIRST",
    )


def _variants(dsn: str) -> list[tuple[object, ...]]:
    return rows(
        dsn,
        "SELECT v.code, v.variant, n.label, p.label, v.qty FROM public.variants v "
        "LEFT JOIN public.nodes n ON n.id = v.node_id LEFT JOIN public.nodes p ON p.id = n.parent_id "
        "ORDER BY 1, 2 NULLS FIRST",
    )


def test_nullable_key_components_match_as_equal(new_db, tmp_path: Path) -> None:
    src, dst = new_db(), new_db()
    for d in (src, dst):
        with psycopg.connect(d, autocommit=True) as c:
            c.execute(TREE_DDL.encode())
    with psycopg.connect(src, autocommit=True) as c:
        c.execute(TREE_ROWS.encode())
    with psycopg.connect(dst, autocommit=True) as c:
        c.execute(b"SELECT setval('public.nodes_id_seq', 1000)")
    archive = export(src, TREE_MAPPING, tmp_path / "tree.edms")
    first = import_archive(dst, archive)
    assert first.committed and first.inserted == 10
    assert _tree(src) == _tree(dst)
    assert _variants(src) == _variants(dst)
    # the same archive again: NULL parents and NULL variants match the rows already there
    second = import_archive(dst, archive)
    assert (second.inserted, second.updated) == (0, 0)
    assert sum(t.unchanged for t in second.tables) == 10
    assert rows(dst, "SELECT count(*) FROM public.nodes") == [(6,)]
    # a changed non-key column on a NULL-keyed row is an update of that row, not a new row
    with psycopg.connect(src, autocommit=True) as c:
        c.execute(b"UPDATE public.variants SET qty = 30 WHERE code = 'Y' AND variant IS NULL")
    third = import_archive(dst, export(src, TREE_MAPPING, tmp_path / "tree2.edms"))
    assert (third.inserted, third.updated) == (0, 1)
    assert _variants(src) == _variants(dst)


def test_empty_string_and_null_key_parts_stay_distinct(new_db, tmp_path: Path) -> None:
    """('Y', NULL) and ('Y', '') are two rows; NULL-equality must not fold '' into NULL."""
    src, dst = new_db(), new_db()
    for d in (src, dst):
        with psycopg.connect(d, autocommit=True) as c:
            c.execute(TREE_DDL.encode())
    with psycopg.connect(src, autocommit=True) as c:
        c.execute(TREE_ROWS.encode())
    archive = export(src, TREE_MAPPING, tmp_path / "t.edms")
    import_archive(dst, archive)
    assert rows(
        dst, "SELECT code, variant FROM public.variants WHERE code = 'Y' ORDER BY variant NULLS FIRST"
    ) == [
        ("Y", None),
        ("Y", ""),
    ]
    again = import_archive(dst, archive)
    assert (again.inserted, again.updated) == (0, 0)


def test_duplicate_null_keys_in_archive_are_refused(new_db, tmp_path: Path) -> None:
    """Two source rows whose nullable natural key is NULL cannot be told apart: refuse,
    never merge them into one row."""
    src, dst = new_db(), new_db()
    ddl = b"CREATE TABLE public.people (id serial PRIMARY KEY, email text UNIQUE, name text)"
    for d in (src, dst):
        with psycopg.connect(d, autocommit=True) as c:
            c.execute(ddl)
    with psycopg.connect(src, autocommit=True) as c:
        c.execute(
            b"INSERT INTO public.people (email, name) VALUES (NULL, 'ann'), (NULL, 'bob'), ('c@x', 'cid')"
        )
    mapping = "version: 1\ntables: {public.people: {natural_key: [email]}}\n"
    before = db_digest(dst)
    with pytest.raises(EdmsPgdumpError) as err:
        import_archive(dst, export(src, mapping, tmp_path / "p.edms"))
    msg = str(err.value)
    assert "public.people" in msg
    assert ("duplicate" in msg or "not unique" in msg) and "email=NULL" in msg, msg
    assert db_digest(dst) == before


def _ci_type(dsn: str, kind: str) -> str | None:
    """A case-insensitive text type in ``dsn``: an ICU nondeterministic collation or citext."""
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            if kind == "icu":
                c.execute(
                    b"CREATE COLLATION public.ci (provider = icu, locale = 'und-u-ks-level2', "
                    b"deterministic = false)"
                )
                return "text COLLATE public.ci"
            c.execute(b"CREATE EXTENSION citext")
            return "citext"
    except psycopg.Error:
        return None


CI_KINDS = ["icu", "citext"]


@pytest.mark.parametrize("kind", CI_KINDS)
def test_case_insensitive_target_does_not_merge_silently(new_db, tmp_path: Path, kind: str) -> None:
    """Source keys 'Alpha' and 'alpha' are two rows; the target compares keys
    case-insensitively. The import must refuse, not fold the two into one."""
    src, dst = new_db(), new_db()
    ci = _ci_type(dst, kind)
    if ci is None:
        pytest.skip(f"{kind} is not available on this server (ICU not built in / no citext)")
    with psycopg.connect(src, autocommit=True) as c:
        c.execute(b"CREATE TABLE public.tags (id serial PRIMARY KEY, name text NOT NULL UNIQUE, n int)")
        c.execute(b"INSERT INTO public.tags (name, n) VALUES ('Alpha', 1), ('alpha', 2), ('beta', 3)")
    with psycopg.connect(dst, autocommit=True) as c:
        c.execute(
            f"CREATE TABLE public.tags (id serial PRIMARY KEY, name {ci} NOT NULL UNIQUE, n int)".encode()
        )
    archive = export(src, "version: 1\ntables: {public.tags: {natural_key: [name]}}\n", tmp_path / "t.edms")
    before = db_digest(dst)
    with pytest.raises(EdmsPgdumpError) as err:
        import_archive(dst, archive)
    msg = str(err.value)
    # refused (today by the duplicate-key check or the target's unique constraint
    # "tags_name_key"), rolled back
    assert "tags" in msg, msg
    assert "Alpha" in msg or "alpha" in msg, msg
    assert "rolled back" in msg or isinstance(err.value, ImportRejected), msg
    assert db_digest(dst) == before


@pytest.mark.parametrize("kind", CI_KINDS)
def test_case_variant_of_existing_target_key_is_reported(new_db, tmp_path: Path, kind: str) -> None:
    """Target already has 'ALPHA' under a case-insensitive type; the archive has 'alpha'.
    It must not be reported as a new row while the target only holds one: either a
    refusal or exactly one update of the existing row."""
    src, dst = new_db(), new_db()
    ci = _ci_type(dst, kind)
    if ci is None:
        pytest.skip(f"{kind} is not available on this server (ICU not built in / no citext)")
    with psycopg.connect(src, autocommit=True) as c:
        c.execute(b"CREATE TABLE public.tags (id serial PRIMARY KEY, name text NOT NULL UNIQUE, n int)")
        c.execute(b"INSERT INTO public.tags (name, n) VALUES ('alpha', 2)")
    with psycopg.connect(dst, autocommit=True) as c:
        c.execute(
            f"CREATE TABLE public.tags (id serial PRIMARY KEY, name {ci} NOT NULL UNIQUE, n int)".encode()
        )
        c.execute(b"INSERT INTO public.tags (name, n) VALUES ('ALPHA', 1)")
    archive = export(src, "version: 1\ntables: {public.tags: {natural_key: [name]}}\n", tmp_path / "t.edms")
    try:
        report = import_archive(dst, archive)
    except EdmsPgdumpError as exc:  # refusing is fine too
        assert "tags" in str(exc)
        return
    got = rows(dst, "SELECT name::text, n FROM public.tags")
    assert len(got) == 1
    assert report.inserted == 0 and report.updated == 1, report.to_dict()
    assert got in ([("ALPHA", 2)], [("alpha", 2)])


def _long_key_case(new_db, tmp_path: Path, md5s: int) -> tuple[str, Path]:
    src, dst = new_db(), new_db()
    with psycopg.connect(src, autocommit=True) as c:
        c.execute(b"CREATE TABLE public.blobs (id serial PRIMARY KEY, k text NOT NULL, v int)")
        c.execute(b"CREATE UNIQUE INDEX blobs_k_md5 ON public.blobs (md5(k))")
        # an incompressible key, too big for a btree entry (max ~2.7 kB)
        c.execute(
            "INSERT INTO public.blobs (k, v) SELECT (SELECT string_agg(md5(g::text || random()::text), '') "
            "FROM generate_series(1, %s) g), 1",
            (md5s,),
        )
        c.execute(b"INSERT INTO public.blobs (k, v) VALUES ('short', 2)")
    with psycopg.connect(dst, autocommit=True) as c:
        c.execute(b"CREATE TABLE public.blobs (id serial PRIMARY KEY, k text NOT NULL UNIQUE, v int)")
    mapping = "version: 1\ntables: {public.blobs: {natural_key: [k]}}\n"
    return dst, export(src, mapping, tmp_path / "b.edms")


@pytest.mark.parametrize("md5s", [200, 625], ids=["6kB-key", "20kB-key"])
def test_key_longer_than_index_allows_fails_cleanly(new_db, tmp_path: Path, md5s: int) -> None:
    dst, archive = _long_key_case(new_db, tmp_path, md5s)
    before = db_digest(dst)
    with pytest.raises(EdmsPgdumpError) as err:
        import_archive(dst, archive)
    msg = str(err.value)
    assert "rolled back" in msg or isinstance(err.value, ImportRejected), msg
    assert re.search(r"index row (size \d+ exceeds|requires \d+ bytes)", msg), msg
    assert db_digest(dst) == before


def test_key_longer_than_index_allows_names_the_table(new_db, tmp_path: Path) -> None:
    dst, archive = _long_key_case(new_db, tmp_path, 625)
    with pytest.raises(EdmsPgdumpError) as err:
        import_archive(dst, archive)
    assert "blobs" in str(err.value), str(err.value)


def test_unicode_normalization_and_whitespace_variants_stay_distinct(new_db, tmp_path: Path) -> None:
    """NFC 'é', NFD 'é', 'e', trailing space and different case are five keys."""
    keys = ["caf\u00e9", "cafe\u0301", "cafe", "cafe ", "CAFE"]
    src, dst = new_db(), new_db()
    for d in (src, dst):
        with psycopg.connect(d, autocommit=True) as c:
            c.execute(b"CREATE TABLE public.words (id serial PRIMARY KEY, w text NOT NULL UNIQUE, n int)")
    with psycopg.connect(src, autocommit=True) as c:
        for i, k in enumerate(keys):
            c.execute("INSERT INTO public.words (w, n) VALUES (%s, %s)", (k, i))
    mapping = "version: 1\ntables: {public.words: {natural_key: [w]}}\n"
    report = import_archive(dst, export(src, mapping, tmp_path / "w.edms"))
    assert report.inserted == 5
    assert rows(dst, "SELECT w, n FROM public.words ORDER BY n") == [(k, i) for i, k in enumerate(keys)]
    again = import_archive(dst, export(src, mapping, tmp_path / "w2.edms"))
    assert (again.inserted, again.updated) == (0, 0)


KEY_TYPES = {
    "timestamptz": ["'2024-03-31 01:30+00'", "'2024-10-27 00:30+00'", "'infinity'"],
    "numeric": ["'NaN'", "'1.50'", "'123456789012345678901234567890.5'"],
    "float8": ["'-0'", "'Infinity'", "'1e-300'"],
    "uuid": ["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'00000000-0000-0000-0000-000000000000'"],
    "bytea": ["'\\x00'", "'\\x'", "'\\x5c4e'"],
    "jsonb": ["'{\"a\": 1}'", "'[]'", "'\"\\\\N\"'"],
    "date": ["'infinity'", "'2024-02-29'"],
    "interval": ["'1 day'", "'-1 mons +2 days 03:00'"],
    "int4range": ["'empty'", "'[1,2)'"],
    "text[]": ["'{a,NULL}'", "'{}'"],
    "boolean": ["true", "false"],
    "mood": ["'sad'", "'with space'"],
}
HOSTILE_DB = [
    "DateStyle = 'SQL, DMY'",
    "TimeZone = 'Pacific/Chatham'",
    "IntervalStyle = 'iso_8601'",
    "bytea_output = 'escape'",
    "extra_float_digits = -15",
]


@pytest.mark.parametrize("typ", list(KEY_TYPES))
def test_referenced_key_of_every_type_resolves(new_db, tmp_path: Path, typ: str) -> None:
    """A child references a parent whose natural key has type ``typ``; both databases
    have hostile session defaults. The reference must resolve to the same parent."""
    src, dst = new_db(), new_db()
    for i, d in enumerate((src, dst)):
        with psycopg.connect(d, autocommit=True) as c:
            c.execute(b"CREATE TYPE public.mood AS ENUM ('sad', 'with space')")
            c.execute(
                f"CREATE TABLE public.p (id serial PRIMARY KEY, k {typ} NOT NULL UNIQUE, v text)".encode()
            )
            c.execute(
                b"CREATE TABLE public.c (id serial PRIMARY KEY, name text UNIQUE NOT NULL, "
                b"p_id int REFERENCES public.p (id))"
            )
            c.execute(f"SELECT setval('public.p_id_seq', {1 + i * 1000})".encode())
            db = c.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
            for h in HOSTILE_DB:
                c.execute(f'ALTER DATABASE "{db}" SET {h}'.encode())
    with psycopg.connect(src, autocommit=True) as c:
        for j, v in enumerate(KEY_TYPES[typ]):
            c.execute(f"INSERT INTO public.p (k, v) VALUES ({v}, 'v{j}')".encode())
            c.execute(
                f"INSERT INTO public.c (name, p_id) SELECT 'c{j}', id FROM public.p WHERE v = 'v{j}'".encode()
            )
    mapping = "version: 1\ntables: {public.p: {natural_key: [k]}, public.c: {natural_key: [name]}}\n"
    archive = export(src, mapping, tmp_path / "a.edms")
    report = import_archive(dst, archive)
    assert report.inserted == 2 * len(KEY_TYPES[typ])
    q = "SELECT c.name, p.k::text, p.v FROM public.c c JOIN public.p p ON p.id = c.p_id ORDER BY 1"
    assert rows(src, q) == rows(dst, q)
    again = import_archive(dst, archive)
    assert (again.inserted, again.updated) == (0, 0)


def test_skipped_differing_rows_are_not_reported_as_unchanged(new_db, tmp_path: Path) -> None:
    from edms_pgdump import ImportOptions

    src, dst = new_db(), new_db()
    for d in (src, dst):
        with psycopg.connect(d, autocommit=True) as c:
            c.execute(b"CREATE TABLE public.t (id serial PRIMARY KEY, k text UNIQUE NOT NULL, v text)")
    with psycopg.connect(src, autocommit=True) as c:
        c.execute(b"INSERT INTO public.t (k, v) VALUES ('a', 'new'), ('b', 'same')")
    with psycopg.connect(dst, autocommit=True) as c:
        c.execute(b"INSERT INTO public.t (k, v) VALUES ('a', 'old'), ('b', 'same')")
    archive = export(src, "version: 1\ntables: {public.t: {natural_key: [k]}}\n", tmp_path / "a.edms")
    report = import_archive(dst, archive, options=ImportOptions(on_conflict="skip"))
    assert rows(dst, "SELECT v FROM public.t WHERE k = 'a'") == [("old",)]  # skipped, as asked
    t = report.tables[0]
    assert (t.inserted, t.updated, t.unchanged, t.skipped) == (0, 0, 1, 1), report.to_dict()
    assert any("1 existing row(s) differ" in w and "k='a'" in w for w in report.warnings), report.warnings
