"""Keys under a loose equality (a nondeterministic ICU collation, citext) follow the
target's rules: raw staging columns take the target column's collation, so two archive
keys the target calls equal are a duplicate refused before any write; a key the target
calls equal matches its row; and a case-only change of a natural key that is also the
primary key is written (its bytes are compared), then a re-import writes nothing."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from edms_pgdump import export_archive, import_archive, load_mapping_text, verify_archive
from edms_pgdump.errors import EdmsPgdumpError
from tests.support.real_schemas import NewDb, counts, error_text, fetch, make_db, run

MAPPING = "version: 1\ntables: {public.code: {natural_key: [code]}}\n"
ICU = "CREATE COLLATION public.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)"


def _icu_or_skip(new_db: NewDb) -> None:
    try:
        make_db(new_db, ICU)
    except psycopg.Error:
        pytest.skip("this server has no ICU collations (the embedded PostgreSQL 18 build has none)")


def _citext_or_skip(new_db: NewDb) -> None:
    try:
        make_db(new_db, "CREATE EXTENSION citext")
    except psycopg.Error as exc:
        pytest.skip(f"this server has no citext extension ({exc})")


def _round_trip(src: str, dst: str, tmp_path: Path) -> None:
    archive = tmp_path / "a.edmsdump"
    export_archive(src, load_mapping_text(MAPPING), archive, audit_log=False)
    report = import_archive(dst, archive, audit_log=False)
    assert report.committed and report.ok, report.to_dict()
    assert counts(report, "public.code") == (2, 1, 1, 0)
    assert fetch(dst, "SELECT code::text, label FROM public.code ORDER BY 2") == [
        ("bolt", "b"),
        ("Widget", "w"),
    ]
    again = import_archive(dst, archive, audit_log=False)
    assert counts(again, "public.code") == (2, 0, 0, 2)
    verified = verify_archive(archive, dst).database
    assert verified is not None and verified.matches, verified


def test_case_only_change_of_a_nondeterministic_primary_key(new_db: NewDb, tmp_path: Path) -> None:
    _icu_or_skip(new_db)
    src = make_db(new_db, "CREATE TABLE public.code (code text PRIMARY KEY, label text)")
    run(src, "INSERT INTO public.code VALUES ('Widget', 'w'), ('bolt', 'b')")
    dst = make_db(
        new_db, ICU, "CREATE TABLE public.code (code text COLLATE public.ci PRIMARY KEY, label text)"
    )
    run(dst, "INSERT INTO public.code VALUES ('WIDGET', 'w')")
    _round_trip(src, dst, tmp_path)


def test_case_only_change_of_a_citext_primary_key(new_db: NewDb, tmp_path: Path) -> None:
    _citext_or_skip(new_db)
    schema = "CREATE EXTENSION IF NOT EXISTS citext; CREATE TABLE public.code (code citext PRIMARY KEY, label text)"
    src = make_db(new_db, schema, "INSERT INTO public.code VALUES ('Widget', 'w'), ('bolt', 'b')")
    dst = make_db(new_db, schema, "INSERT INTO public.code VALUES ('WIDGET', 'w')")
    _round_trip(src, dst, tmp_path)


def test_keys_equal_under_the_targets_collation_are_a_duplicate(new_db: NewDb, tmp_path: Path) -> None:
    _icu_or_skip(new_db)
    src = make_db(new_db, "CREATE TABLE public.code (code text PRIMARY KEY, label text)")
    run(src, "INSERT INTO public.code VALUES ('Widget', 'w'), ('WIDGET', 'W')")  # distinct in the source
    dst = make_db(
        new_db, ICU, "CREATE TABLE public.code (code text COLLATE public.ci PRIMARY KEY, label text)"
    )
    run(dst, "INSERT INTO public.code VALUES ('other', 'o')")
    archive = tmp_path / "a.edmsdump"
    export_archive(src, load_mapping_text(MAPPING), archive, audit_log=False)
    with pytest.raises(EdmsPgdumpError) as info:
        import_archive(dst, archive, audit_log=False)
    text = error_text(info.value)
    assert "public.code" in text and "idget" in text.lower(), text
    assert fetch(dst, "SELECT code, label FROM public.code") == [("other", "o")]  # nothing written
