"""Import refuses bad data with a report naming tables and keys, and writes nothing."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from edms_pgdump import (
    ImportOptions,
    ImportRejected,
    PlanError,
    SchemaDriftError,
    export_archive,
    import_archive,
    load_mapping_text,
)
from edms_pgdump.errors import KeyNotUniqueError
from tests.support.db import export_without_data_proofs
from tests.support.story import counts

SCHEMA = """
CREATE TABLE public.teams (id serial PRIMARY KEY, code text NOT NULL UNIQUE, name text);
CREATE TABLE public.people (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL,            -- natural key without a unique constraint
    team_id int REFERENCES public.teams (id),
    mentor_id bigint REFERENCES public.people (id),
    score numeric,
    full_name text GENERATED ALWAYS AS (upper(email)) STORED
);
"""

MAPPING = """
version: 1
tables:
  public.teams: {natural_key: [code]}
  public.people: {natural_key: [email]}
"""


def _db(new_db, rows: str = "") -> str:  # type: ignore[no-untyped-def]
    dsn = new_db()
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(SCHEMA)
        if rows:
            c.execute(rows)
    return dsn


SOURCE_ROWS = """
INSERT INTO public.teams (code, name) VALUES ('red', 'Red'), ('blue', 'Blue');
INSERT INTO public.people (email, team_id, score) VALUES
  ('a@x', 1, 1.50), ('b@x', 2, NULL), ('c@x', NULL, 2);
UPDATE public.people SET mentor_id = (SELECT id FROM public.people WHERE email = 'a@x')
  WHERE email <> 'a@x';
"""


def _people(dsn: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as c:
        return c.execute(
            "SELECT p.email, t.code, m.email, p.score::text, p.full_name FROM public.people p "
            "LEFT JOIN public.teams t ON t.id = p.team_id "
            "LEFT JOIN public.people m ON m.id = p.mentor_id ORDER BY 1"
        ).fetchall()


def test_identity_always_generated_columns_and_unconstrained_key(new_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = _db(new_db, SOURCE_ROWS)
    dst = _db(new_db, "INSERT INTO public.people (email) VALUES ('zz@x');")
    mapping = load_mapping_text(MAPPING)
    result = export_archive(src, mapping, tmp_path / "a.edmsdump")
    assert any("key-not-unique" in w or "no unique constraint" in w for w in result.warnings)
    report = import_archive(dst, tmp_path / "a.edmsdump")
    assert report.committed
    assert [r for r in _people(dst) if r[0] != "zz@x"] == _people(src)
    # numeric 1.50 vs 1.5 must not be "unchanged": compared as text
    with psycopg.connect(dst, autocommit=True) as c:
        c.execute("UPDATE public.people SET score = 1.5 WHERE email = 'a@x'")
    again = import_archive(dst, tmp_path / "a.edmsdump")
    people = next(t for t in again.tables if t.table == "public.people")
    assert (people.inserted, people.updated, people.unchanged) == (0, 1, 2)
    assert [r for r in _people(dst) if r[0] != "zz@x"] == _people(src)


def test_duplicate_natural_keys_in_archive_are_rejected(new_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = _db(new_db, SOURCE_ROWS + "INSERT INTO public.people (email) VALUES ('b@x');")
    dst = _db(new_db)
    with pytest.raises(KeyNotUniqueError, match=r"public.people.*\(email='b@x'\) 2 times"):
        export_archive(src, load_mapping_text(MAPPING), tmp_path / "a.edmsdump")
    assert not (tmp_path / "a.edmsdump").exists()
    with export_without_data_proofs():  # an archive from before export proved its keys
        export_archive(src, load_mapping_text(MAPPING), tmp_path / "a.edmsdump")
    with pytest.raises(ImportRejected) as exc:
        import_archive(dst, tmp_path / "a.edmsdump")
    assert "public.people: the archive holds duplicate natural keys (email): (email='b@x'" in str(exc.value)
    assert counts_of(dst) == {"teams": 0, "people": 0}


def test_duplicate_natural_keys_in_target_are_rejected(new_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = _db(new_db, SOURCE_ROWS)
    dst = _db(new_db, "INSERT INTO public.people (email) VALUES ('q@x'), ('q@x');")
    export_archive(src, load_mapping_text(MAPPING), tmp_path / "a.edmsdump")
    with pytest.raises(ImportRejected, match=r"the target holds duplicate natural keys \(email\): \(email='q@x'"):
        import_archive(dst, tmp_path / "a.edmsdump")
    assert counts_of(dst) == {"teams": 0, "people": 2}


def counts_of(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as c:
        return {
            t: c.execute(f"SELECT count(*) FROM public.{t}").fetchone()[0]  # type: ignore[index]
            for t in ("teams", "people")
        }


def test_unresolved_reference_to_lookup_table_names_the_keys(new_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """teams are managed elsewhere (export: false); a missing team is named, nothing written."""
    src = _db(new_db, SOURCE_ROWS)
    dst = _db(new_db, "INSERT INTO public.teams (code) VALUES ('red');")
    mapping = load_mapping_text(MAPPING.replace("{natural_key: [code]}", "{natural_key: [code], export: false}"))
    export_archive(src, mapping, tmp_path / "a.edmsdump")
    with pytest.raises(ImportRejected) as exc:
        import_archive(dst, tmp_path / "a.edmsdump")
    msg = str(exc.value)
    assert "public.people: 1 unresolved reference(s) through people_team_id_fkey" in msg
    assert "team_id.code='blue'" in msg
    assert counts_of(dst) == {"teams": 1, "people": 0}
    with psycopg.connect(dst, autocommit=True) as c:
        c.execute("INSERT INTO public.teams (code) VALUES ('blue')")
    report = import_archive(dst, tmp_path / "a.edmsdump")
    assert report.committed and report.inserted == 3


def test_conflict_policies(new_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = _db(new_db, SOURCE_ROWS)
    dst = _db(new_db, SOURCE_ROWS.replace("'Blue'", "'Navy'"))
    export_archive(src, load_mapping_text(MAPPING), tmp_path / "a.edmsdump")
    with pytest.raises(ImportRejected, match=r"public.teams: 1 existing row\(s\) differ .*code='blue'"):
        import_archive(dst, tmp_path / "a.edmsdump", options=ImportOptions(on_conflict="error"))
    skip = import_archive(dst, tmp_path / "a.edmsdump", options=ImportOptions(on_conflict="skip"))
    assert skip.updated == 0
    with psycopg.connect(dst) as c:
        assert c.execute("SELECT name FROM public.teams WHERE code='blue'").fetchone() == ("Navy",)
    upd = import_archive(dst, tmp_path / "a.edmsdump")
    assert upd.updated == 1
    with psycopg.connect(dst) as c:
        assert c.execute("SELECT name FROM public.teams WHERE code='blue'").fetchone() == ("Blue",)


def test_schema_drift_is_reported_before_writing(new_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = _db(new_db, SOURCE_ROWS)
    dst = _db(new_db)
    with psycopg.connect(dst, autocommit=True) as c:
        c.execute("ALTER TABLE public.people DROP COLUMN score")
        c.execute("ALTER TABLE public.teams ADD COLUMN region text NOT NULL")
    export_archive(src, load_mapping_text(MAPPING), tmp_path / "a.edmsdump")
    with pytest.raises(SchemaDriftError) as exc:
        import_archive(dst, tmp_path / "a.edmsdump")
    problems = "\n".join(exc.value.problems)
    assert "public.people: archive field score has no matching column" in problems
    assert "public.teams.region: NOT NULL column without default is not in the archive" in problems
    assert counts_of(dst) == {"teams": 0, "people": 0}


def test_fk_to_unmapped_table_is_refused_at_export(new_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = _db(new_db, SOURCE_ROWS)
    mapping = load_mapping_text("version: 1\ntables:\n  public.people: {natural_key: [email]}\n")
    with pytest.raises(PlanError, match=r"public.people.team_id: foreign key people_team_id_fkey .* references public.teams, which has no natural key"):
        export_archive(src, mapping, tmp_path / "a.edmsdump")
    assert not (tmp_path / "a.edmsdump").exists()


def test_reimport_of_story_archive_writes_no_tuples(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    from edms_pgdump import load_mapping

    src, dst = sample_dbs
    root = Path(__file__).resolve().parents[2]
    export_archive(src, load_mapping(root / "config" / "edms.yaml"), tmp_path / "a.edmsdump")
    import_archive(dst, tmp_path / "a.edmsdump")

    def writes() -> int:
        with psycopg.connect(dst) as c:
            c.execute("SELECT pg_stat_force_next_flush()") if _has_flush(c) else None
            row = c.execute(
                "SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) FROM pg_stat_user_tables "
                "WHERE schemaname = 'public'"
            ).fetchone()
            return int(row[0] or 0)  # type: ignore[index]

    before_counts = counts(dst)
    before = writes()
    report = import_archive(dst, tmp_path / "a.edmsdump")
    assert report.inserted == 0 and report.updated == 0
    assert counts(dst) == before_counts
    import time

    time.sleep(0.6)  # statistics are flushed asynchronously
    assert writes() == before


def _has_flush(conn: psycopg.Connection) -> bool:  # type: ignore[type-arg]
    return bool(conn.execute("SELECT to_regproc('pg_stat_force_next_flush') IS NOT NULL").fetchone()[0])  # type: ignore[index]
