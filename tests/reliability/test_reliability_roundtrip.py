"""Suite 1: byte-identical round trip of a torture table.

Export the source, import into a re-initialised target (different surrogate ids),
export the target again: every member's COPY text (data_sha256) must be identical.
Then the same with hostile session defaults on the databases and the connecting role.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edms_pgdump import ImportOptions, import_archive, verify_archive
from tests.support.db import execute, export, member_digests, member_texts, rows, scalar
from tests.support.torture import OWNERS, TORTURE_DDL, TORTURE_ROWS, torture_content

MAPPING = """
version: 1
tables:
  tort.owners: {natural_key: [name]}
  tort.t: {natural_key: [k]}
"""

HOSTILE = {
    "DateStyle": "'SQL, DMY'",
    "IntervalStyle": "'iso_8601'",
    "TimeZone": "'Pacific/Chatham'",
    "bytea_output": "'escape'",
    "extra_float_digits": "-15",
    "search_path": "'tort, pg_catalog, public'",
    "lc_monetary": "'C'",
}

HOSTILE_ROLE = {
    "DateStyle": "'German, YMD'",
    "IntervalStyle": "'sql_standard'",
    "TimeZone": "'America/St_Johns'",
    "bytea_output": "'escape'",
    "extra_float_digits": "0",
    "search_path": "'\"$user\", tort'",
}


def _dbname(dsn: str) -> str:
    return str(rows(dsn, "SELECT current_database()")[0][0])


def _make_torture(dsn: str, *, populate: bool, id_start: int) -> None:
    execute(dsn, TORTURE_DDL)
    execute(
        dsn,
        f"ALTER TABLE tort.owners ALTER COLUMN id RESTART WITH {id_start}",
        f"ALTER SEQUENCE tort.t_id_seq RESTART WITH {id_start * 3}",
    )
    if populate:
        import psycopg

        with psycopg.connect(dsn, autocommit=True) as conn:
            for name in OWNERS:
                conn.execute("INSERT INTO tort.owners (name) VALUES (%s)", (name,))
        execute(dsn, TORTURE_ROWS)


def _set_hostile(dsn: str, settings: dict[str, str], role: dict[str, str]) -> None:
    db = _dbname(dsn)
    stmts = [f'ALTER DATABASE "{db}" SET {k} = {v}' for k, v in settings.items()]
    stmts += [f'ALTER ROLE CURRENT_USER IN DATABASE "{db}" SET {k} = {v}' for k, v in role.items()]
    execute(dsn, *stmts)


def _check_hostile_active(dsn: str) -> None:
    # The role-in-database settings win over the database settings: prove they apply to a
    # plain new session (tests.support.db.rows would pin its own settings).
    got = scalar(
        dsn,
        "SELECT concat_ws('|', current_setting('DateStyle'), current_setting('bytea_output'), "
        "current_setting('TimeZone'), current_setting('IntervalStyle'))",
    )
    assert got == "German, YMD|escape|America/St_Johns|sql_standard"


FORMS = {
    "zstd-file": {"compression": "zstd"},
    "none-dir": {"compression": "none", "directory": True},
}


def _roundtrip(
    new_db, tmp_path: Path, hostile: bool, form: str, sort_rows: bool = False
) -> tuple[str, str, Path, Path]:
    src = new_db()
    dst = new_db()
    _make_torture(src, populate=True, id_start=1)
    _make_torture(dst, populate=False, id_start=900_000)  # re-initialised: no id matches
    if hostile:
        _set_hostile(src, HOSTILE, HOSTILE_ROLE)
        _set_hostile(dst, HOSTILE, HOSTILE_ROLE)
        _check_hostile_active(src)
        _check_hostile_active(dst)
    kw = {**FORMS[form], "sort_rows": sort_rows}
    first = export(src, MAPPING, tmp_path / "first.edms", **kw)
    assert verify_archive(first).ok
    report = import_archive(dst, first)
    assert report.committed
    n_rows = rows(src, "SELECT count(*) FROM tort.t")[0][0]
    assert n_rows == 34
    assert {t.table: t.inserted for t in report.tables} == {"tort.owners": len(OWNERS), "tort.t": n_rows}
    second = export(dst, MAPPING, tmp_path / "second.edms", **kw)
    return src, dst, first, second


@pytest.mark.parametrize(
    ("hostile", "form"),
    [(False, "zstd-file"), (False, "none-dir"), (True, "zstd-file"), (True, "none-dir")],
)
def test_torture_roundtrip_same_copy_lines(new_db, tmp_path: Path, hostile: bool, form: str) -> None:
    src, dst, first, second = _roundtrip(new_db, tmp_path, hostile, form)
    a, b = member_texts(first), member_texts(second)
    assert set(a) == {"tort.owners", "tort.t"}
    for table in a:
        # Every COPY line (every value's exact text) comes back; only row order may differ
        # (without --sorted; see the byte-identical test below).
        assert sorted(a[table].split(b"\n")) == sorted(b[table].split(b"\n")), table
        assert len(a[table]) == len(b[table])
    n_rows = rows(src, "SELECT count(*) FROM tort.t")[0][0]
    # Same bytes also means same content: compare real rows through the natural key.
    assert torture_content(src) == torture_content(dst)
    assert len(torture_content(dst)) == n_rows
    # Ids really differ (the round trip went through natural keys, not ids).
    assert rows(dst, "SELECT min(id) FROM tort.owners")[0][0] >= 900_000

    # The archive text itself carries the canonical forms, whatever the session defaults.
    text = a["tort.t"]
    assert b"\\N" in text  # NULL marker
    assert b"\\\\N" in text  # the literal two-character string \N, escaped
    assert b"\\\\x00ff00000a0d5c4e" in text  # bytea hex output, escaped backslash
    assert b"NaN\tNaN\tNaN" in text
    assert b"Infinity\tInfinity" in text and b"-Infinity\t-Infinity" in text
    assert b"\t-0\t-0\t" in text  # float -0 kept
    assert b"1 year 2 mons -3 days +04:05:06.789" in text  # IntervalStyle postgres
    assert b"2024-03-31 00:59:59.999999+00" in text  # ISO DateStyle, UTC
    assert b"\t0.1\t0.1\t0.1\t" in text  # shortest exact floats (extra_float_digits 3)
    assert "😀𝄞𠜎".encode() in text
    assert len(text) > 4_000_000  # the wide row (several MB) made it through

    # A second import of the same archive is a no-op: every row unchanged.
    again = import_archive(dst, first, options=ImportOptions(on_conflict="update"))
    assert (again.inserted, again.updated) == (0, 0)
    assert sum(t.unchanged for t in again.tables) == n_rows + len(OWNERS)


def test_torture_roundtrip_is_byte_identical(new_db, tmp_path: Path) -> None:
    """With --sorted, re-exporting the imported data gives the same bytes, member by member."""
    _src, _dst, first, second = _roundtrip(new_db, tmp_path, True, "zstd-file", sort_rows=True)
    assert member_digests(first) == member_digests(second)


def test_hostile_defaults_do_not_change_export_bytes(new_db, tmp_path: Path) -> None:
    """The same database exported with and without hostile defaults gives the same bytes."""
    src = new_db()
    _make_torture(src, populate=True, id_start=1)
    plain = member_digests(export(src, MAPPING, tmp_path / "plain.edms"))
    _set_hostile(src, HOSTILE, HOSTILE_ROLE)
    _check_hostile_active(src)
    hostile = member_digests(export(src, MAPPING, tmp_path / "hostile.edms"))
    assert plain == hostile


def test_row_content_survives_with_hostile_target_only(new_db, tmp_path: Path) -> None:
    """Source with plain defaults, target with hostile ones: values must not be reinterpreted
    (a DMY DateStyle or a Chatham TimeZone on the importing session would shift dates)."""
    src = new_db()
    dst = new_db()
    _make_torture(src, populate=True, id_start=1)
    _make_torture(dst, populate=False, id_start=5000)
    _set_hostile(dst, HOSTILE, HOSTILE_ROLE)
    archive = export(src, MAPPING, tmp_path / "a.edms")
    import_archive(dst, archive)
    assert torture_content(src) == torture_content(dst)
    got = rows(
        dst,
        "SET TimeZone = 'UTC'; SET DateStyle = ISO; "
        "SELECT ts::text, d::text FROM tort.t WHERE k = 'dst-spring'",
    )
    assert got == [("2024-03-31 00:59:59.999999+00", "2024-03-31")]
