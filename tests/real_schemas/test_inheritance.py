"""Classic table inheritance (INHERITS, not partitioning): a parent's member holds the
parent's own rows only, a child under ``exclude:`` never leaks into it, a child mapped
on its own travels on its own, and --delete-missing on the parent leaves its children's
rows alone. The same through the psql runbook, and verify/diff compare the parent alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from edms_pgdump import ImportOptions, export_archive, import_archive, load_mapping_text, verify_archive
from edms_pgdump.api import check_mapping, diff
from edms_pgdump.archive.package import ArchiveReader
from edms_pgdump.catalog.read import read_catalog
from edms_pgdump.db import connect
from edms_pgdump.demo.servers import Server
from edms_pgdump.results import DiffResult
from edms_pgdump.runbook.scripts import write_runbooks
from tests.support.psql import run_psql
from tests.support.real_schemas import NewDb, counts, fetch, make_db, natural_rows, push_sequences

SCHEMA = """
CREATE TABLE public.city (id serial PRIMARY KEY, name text NOT NULL UNIQUE, population int);
CREATE TABLE public.capital (state text NOT NULL) INHERITS (public.city);
ALTER TABLE public.capital ADD PRIMARY KEY (id), ADD UNIQUE (name);
CREATE TABLE public.ghost_town (abandoned int) INHERITS (public.city);
CREATE TABLE public.street (id serial PRIMARY KEY, city_id int NOT NULL REFERENCES public.city,
    name text NOT NULL, UNIQUE (city_id, name));
"""

SOURCE = """
INSERT INTO public.city (name, population) VALUES ('Lyon', 500), ('Nice', 340);
INSERT INTO public.capital (name, population, state) VALUES ('Paris', 2100, 'IDF');
INSERT INTO public.ghost_town (name, population, abandoned) VALUES ('Oradour', 0, 1944);
INSERT INTO public.street (city_id, name) SELECT id, 'Main' FROM ONLY public.city;
"""

TARGET = """
INSERT INTO public.city (name, population) VALUES ('Lyon', 1), ('Gone', 7);
INSERT INTO public.capital (name, population, state) VALUES ('Berlin', 3600, 'BE');
INSERT INTO public.ghost_town (name, population, abandoned) VALUES ('Kolmanskop', 0, 1956);
"""

MAPPING = """
version: 1
tables:
  public.city: {natural_key: [name]}
  public.capital: {natural_key: [name]}
  public.street: {natural_key: [city_id, name]}
exclude: [public.ghost_town]
"""


def _rows(dsn: str, table: str) -> list[tuple[Any, ...]]:
    return fetch(dsn, f"SELECT name, population FROM ONLY {table} ORDER BY name")  # test constant


def test_catalog_knows_the_inheritance_tree(new_db: NewDb) -> None:
    dsn = make_db(new_db, SCHEMA)
    with connect(dsn) as conn:
        cat = read_catalog(conn)
    city = cat.tables[next(n for n in cat.tables if n.name == "city")]
    capital = cat.tables[next(n for n in cat.tables if n.name == "capital")]
    assert [c.name for c in city.children] == ["capital", "ghost_town"]
    assert city.has_children and not capital.has_children
    assert [p.name for p in capital.inherits] == ["city"]


def test_check_names_a_child_left_out(new_db: NewDb) -> None:
    dsn = make_db(new_db, SCHEMA)
    mapping = load_mapping_text(MAPPING.replace("exclude: [public.ghost_town]", "exclude: []"))
    report = check_mapping(dsn=dsn, mapping=mapping)
    found = [str(p) for p in report.warnings if p.code == "inheritance-child-unmapped"]
    assert len(found) == 1 and "public.ghost_town" in found[0] and "exclude:" in found[0], found


def test_parent_travels_alone_and_children_keep_their_rows(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, SCHEMA, SOURCE)
    dst = make_db(new_db, SCHEMA)
    push_sequences(dst)
    run_target = TARGET
    with psycopg.connect(dst, autocommit=True) as conn:
        conn.execute(run_target.encode())
    archive = tmp_path / "a.edmsdump"
    export_archive(src, load_mapping_text(MAPPING), archive, audit_log=False)
    with ArchiveReader(archive) as reader:
        rows = {str(t.table): t.rows for t in reader.manifest.tables}
    # Paris (a capital) and Oradour (an excluded child) are not city rows
    assert rows == {"public.city": 2, "public.capital": 1, "public.street": 2}

    options = ImportOptions(delete_missing=True)
    report = import_archive(dst, archive, options=options, audit_log=False)
    assert report.committed and report.ok, report.to_dict()
    assert counts(report, "public.city") == (2, 1, 1, 0)
    assert _rows(dst, "public.city") == [("Lyon", 500), ("Nice", 340)]  # 'Gone' deleted
    assert _rows(dst, "public.capital") == [("Paris", 2100)]  # Berlin deleted from capital only
    # the excluded child is untouched, although --delete-missing ran on its parent
    assert _rows(dst, "public.ghost_town") == [("Kolmanskop", 0)]
    assert natural_rows(dst, MAPPING) == natural_rows(src, MAPPING)

    again = import_archive(dst, archive, options=options, audit_log=False)
    assert again.committed and again.ok
    for t in again.tables:
        assert (t.inserted, t.updated, t.deleted) == (0, 0, 0), t.to_dict()

    verified = verify_archive(archive, dst)
    assert verified.database is not None and verified.database.matches, verified.database
    found = diff(archive, dsn=dst)
    assert isinstance(found, DiffResult) and found.identical, found.to_dict()


def test_a_child_row_is_not_the_parents_difference(new_db: NewDb, tmp_path: Path) -> None:
    """A capital named like a city in the target is not that city: verify sees the city
    missing, and the import inserts it into the parent."""
    src = make_db(new_db, SCHEMA, SOURCE)
    dst = make_db(
        new_db, SCHEMA, "INSERT INTO public.capital (name, population, state) VALUES ('Nice', 1, 'X')"
    )
    archive = tmp_path / "a.edmsdump"
    mapping = MAPPING.replace("  public.capital: {natural_key: [name]}\n", "").replace(
        "exclude: [public.ghost_town]", "exclude: [public.ghost_town, public.capital]"
    )
    export_archive(src, load_mapping_text(mapping), archive, audit_log=False)
    verified = verify_archive(archive, dst)
    assert verified.database is not None and verified.database.missing == 4  # 2 cities, 2 streets
    report = import_archive(dst, archive, audit_log=False)
    assert counts(report, "public.city") == (2, 2, 0, 0)
    assert fetch(dst, "SELECT count(*) FROM public.city WHERE name = 'Nice'") == [(2,)]
    assert _rows(dst, "public.capital") == [("Nice", 1)]


def test_runbook_reads_and_writes_the_parent_only(new_db: NewDb, tmp_path: Path, pg_server: Server) -> None:
    src = make_db(new_db, SCHEMA, SOURCE)
    dst = make_db(new_db, SCHEMA, TARGET)
    mapping = load_mapping_text(MAPPING)
    write_runbooks(src, mapping, ["export"], tmp_path)
    write_runbooks(dst, mapping, ["import"], tmp_path, ImportOptions(delete_missing=True))
    text = (tmp_path / "import.sql").read_text()
    assert 'DELETE FROM ONLY "public"."city"' in text
    data = tmp_path / "data"
    data.mkdir()
    res = run_psql(pg_server, src, tmp_path / "export.sql", data)
    assert res.returncode == 0, res.stderr
    res = run_psql(pg_server, dst, tmp_path / "import.sql", data)
    assert res.returncode == 0, res.stderr
    assert _rows(dst, "public.city") == [("Lyon", 500), ("Nice", 340)]
    assert _rows(dst, "public.ghost_town") == [("Kolmanskop", 0)]
    assert natural_rows(dst, MAPPING) == natural_rows(src, MAPPING)
