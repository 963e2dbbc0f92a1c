"""A text column with a nondeterministic collation calls 'Hello' and 'HELLO' equal; the
import still counts a case-only change as an update (it compares the bytes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from edms_pgdump import api
from edms_pgdump.mapping import load_mapping_text

MAPPING = "version: 1\ntables: {public.notes: {natural_key: [ref]}}\n"


def test_a_case_only_change_is_an_update(new_db: Any, tmp_path: Path) -> None:
    src, dst = new_db(), new_db()
    try:
        with psycopg.connect(dst, autocommit=True) as c:
            c.execute(
                "CREATE COLLATION public.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)"
            )
    except psycopg.Error:
        pytest.skip("this server has no ICU collations")
    with psycopg.connect(src, autocommit=True) as c:
        c.execute("CREATE TABLE public.notes (id serial PRIMARY KEY, ref text NOT NULL UNIQUE, title text)")
        c.execute("INSERT INTO public.notes (ref, title) VALUES ('a', 'Hello'), ('b', 'same')")
    with psycopg.connect(dst, autocommit=True) as c:
        c.execute(
            "CREATE TABLE public.notes (id serial PRIMARY KEY, ref text NOT NULL UNIQUE, "
            "title text COLLATE public.ci)"
        )
        c.execute("INSERT INTO public.notes (ref, title) VALUES ('a', 'HELLO'), ('b', 'same')")
    archive = tmp_path / "n.edms"
    api.export_archive(src, load_mapping_text(MAPPING), archive, audit_log=False)
    report = api.import_archive(dst, archive, audit_log=False)
    notes = report.tables[0]
    assert (notes.inserted, notes.updated, notes.unchanged) == (0, 1, 1)
    with psycopg.connect(dst) as c:
        assert c.execute("SELECT title FROM public.notes WHERE ref = 'a'").fetchone() == ("Hello",)
    assert api.verify_archive(archive, dst).database.matches  # type: ignore[union-attr]


def test_check_warns_that_a_table_keyed_by_its_own_id_keeps_source_ids(new_db: Any) -> None:
    dsn = new_db()
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE public.orders (orderid serial PRIMARY KEY, note text)")
    mapping = load_mapping_text("version: 1\ntables: {public.orders: {natural_key: [orderid]}}\n")
    report = api.check_mapping(dsn=dsn, mapping=mapping)
    kept = [p for p in report.problems if p.code == "ids-kept"]
    assert [(p.severity, p.table, p.column) for p in kept] == [("warning", "public.orders", "orderid")]
    assert "the source's ids are kept" in kept[0].message
    assert "sequence is advanced past the largest imported id" in kept[0].message


def test_a_value_the_target_column_cannot_hold_is_named_with_its_column(new_db: Any, tmp_path: Path) -> None:
    from edms_pgdump.errors import EdmsPgdumpError

    src, dst = new_db(), new_db()
    with psycopg.connect(src, autocommit=True) as c:
        c.execute("CREATE TABLE public.notes (id serial PRIMARY KEY, ref text NOT NULL UNIQUE, n text)")
        c.execute("INSERT INTO public.notes (ref, n) VALUES ('a', '1'), ('b', 'many')")
    with psycopg.connect(dst, autocommit=True) as c:
        c.execute("CREATE TABLE public.notes (id serial PRIMARY KEY, ref text NOT NULL UNIQUE, n integer)")
    archive = tmp_path / "n.edms"
    api.export_archive(src, load_mapping_text(MAPPING), archive, audit_log=False)
    with pytest.raises(EdmsPgdumpError) as info:
        api.import_archive(dst, archive, audit_log=False)
    message = str(info.value)
    assert "public.notes" in message and "many" in message
    assert "column n" in message and "rolled back" in message
    with psycopg.connect(dst) as c:
        assert c.execute("SELECT count(*) FROM public.notes").fetchone() == (0,)
