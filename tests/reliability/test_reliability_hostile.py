"""Suite 4: hostile identifiers and values, hostile YAML mappings.

Nothing executes that should not (canary tables survive, no file appears), nothing is
silently ignored (unknown or duplicated YAML keys are refused with their path).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from edms_pgdump import (
    EdmsPgdumpError,
    MappingError,
    import_archive,
    load_mapping,
    load_mapping_text,
    verify_archive,
)
from edms_pgdump.mapping import MAX_MAPPING_BYTES
from tests.support.db import export, member_digests

SCHEMA = 'Ev"il; DROP TABLE canary;--'
PARENT = 'Parent Table\n"x"'
CHILD = "select"
UNI = "Ünïcødé 😀 таблица"
# columns
P_KEY = 'Key "Col"; --'
P_FROM = "from"
C_KEY = "Mixed Case"
C_REF = "new\nline col"
U_KEY = "ключ"
U_REF = "order"


def q(*parts: str) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


def ddl() -> str:
    s = SCHEMA
    return f"""
    CREATE TABLE public.canary (x int);
    INSERT INTO public.canary VALUES (1);
    CREATE SCHEMA {q(s)};
    CREATE TABLE {q(s, PARENT)} (
        id bigserial PRIMARY KEY,
        {q(P_KEY)} text NOT NULL,
        {q(P_FROM)} integer NOT NULL,
        "User" text,
        UNIQUE ({q(P_KEY)}, {q(P_FROM)})
    );
    CREATE TABLE {q(s, CHILD)} (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        {q(C_KEY)} text NOT NULL UNIQUE,
        {q(C_REF)} bigint REFERENCES {q(s, PARENT)} (id),
        "#n" boolean,
        "#h" text,
        "t" text,
        "TABLE" text
    );
    CREATE TABLE {q(s, UNI)} (
        "ИД" serial PRIMARY KEY,
        {q(U_KEY)} text NOT NULL UNIQUE,
        {q(U_REF)} bigint NOT NULL REFERENCES {q(s, CHILD)} (id),
        "значение" text
    );
    """


VALUES = [
    "",
    "'; DROP TABLE canary; --",
    'a"b',
    "tab\tx",
    "\\N",
    "new\nline",
    "Ünï😀",
    "NULL",
    'Robert\'); DROP TABLE "select";--',
    "$$; SELECT pg_sleep(10); $$",
    "back\\slash\\",
    " leading and trailing ",
    "CaSe",
    "case",
]


def populate(dsn: str) -> None:
    s = SCHEMA
    with psycopg.connect(dsn, autocommit=True) as c:
        for i, v in enumerate(VALUES):
            c.execute(
                sql.SQL("INSERT INTO {} ({}, {}, {{}}) VALUES (%s, %s, %s)".replace("{{}}", '"User"')).format(
                    sql.Identifier(s, PARENT), sql.Identifier(P_KEY), sql.Identifier(P_FROM)
                ),
                (v, i % 3, v[::-1]),
            )
        for i, v in enumerate(VALUES):
            c.execute(
                sql.SQL(
                    'INSERT INTO {} ({}, {}, "#n", "#h", t, "TABLE") '
                    "SELECT %s, id, %s, %s, %s, %s FROM {} WHERE {} = %s AND {} = %s"
                ).format(
                    sql.Identifier(s, CHILD),
                    sql.Identifier(C_KEY),
                    sql.Identifier(C_REF),
                    sql.Identifier(s, PARENT),
                    sql.Identifier(P_KEY),
                    sql.Identifier(P_FROM),
                ),
                ("child " + v, i % 2 == 0, v, v, VALUES[-1 - i], v, i % 3),
            )
        c.execute(
            sql.SQL("INSERT INTO {} ({}, {}) VALUES ('orphan ref', NULL)").format(
                sql.Identifier(s, CHILD), sql.Identifier(C_KEY), sql.Identifier(C_REF)
            )
        )
        for i, v in enumerate(VALUES):
            c.execute(
                sql.SQL('INSERT INTO {} ({}, {}, "значение") SELECT %s, id, %s FROM {} WHERE {} = %s').format(
                    sql.Identifier(s, UNI),
                    sql.Identifier(U_KEY),
                    sql.Identifier(U_REF),
                    sql.Identifier(s, CHILD),
                    sql.Identifier(C_KEY),
                ),
                (v + " ü", v, "child " + VALUES[(i + 3) % len(VALUES)]),
            )


def mapping_text() -> str:
    tables = {
        q(SCHEMA, PARENT): {"natural_key": [P_KEY, P_FROM]},
        q(SCHEMA, CHILD): {"natural_key": [C_KEY]},
        q(SCHEMA, UNI): {"natural_key": [U_KEY]},
    }
    # JSON is YAML: every key and column written as an escaped double-quoted scalar.
    return "version: 1\ntables: " + json.dumps(tables, ensure_ascii=False) + "\n"


def content(dsn: str) -> list[tuple[object, ...]]:
    """All rows through natural keys (ids replaced by the referenced row's key)."""
    s = SCHEMA
    with psycopg.connect(dsn, autocommit=True) as c:
        stmt = sql.SQL(
            'SELECT p.{pk}, p.{pf}, p."User", ch.{ck}, ch."#n", ch."#h", ch.t, ch."TABLE", '
            'u.{uk}, u."значение" '
            "FROM {child} ch LEFT JOIN {parent} p ON p.id = ch.{cref} "
            "FULL JOIN {uni} u ON u.{uref} = ch.id "
            "ORDER BY 4, 9"
        ).format(
            pk=sql.Identifier(P_KEY),
            pf=sql.Identifier(P_FROM),
            ck=sql.Identifier(C_KEY),
            uk=sql.Identifier(U_KEY),
            child=sql.Identifier(s, CHILD),
            parent=sql.Identifier(s, PARENT),
            uni=sql.Identifier(s, UNI),
            cref=sql.Identifier(C_REF),
            uref=sql.Identifier(U_REF),
        )
        return list(c.execute(stmt).fetchall())


def _canary_alive(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as c:
        return c.execute("SELECT count(*) FROM public.canary").fetchone() == (1,)


def test_hostile_identifiers_and_key_values_round_trip(new_db, tmp_path: Path) -> None:
    src, dst = new_db(), new_db()
    with psycopg.connect(src, autocommit=True) as c:
        c.execute(ddl().encode())
    with psycopg.connect(dst, autocommit=True) as c:
        c.execute(ddl().encode())
        # re-initialised: ids far away from the source's
        c.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), 70000)", (q(SCHEMA, PARENT),))
        c.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN id RESTART WITH 80000").format(sql.Identifier(SCHEMA, CHILD))
        )
    populate(src)
    with psycopg.connect(dst, autocommit=True) as c:
        c.execute(
            sql.SQL("INSERT INTO {} ({}, {}) VALUES ('pre-existing ''row', 99)").format(
                sql.Identifier(SCHEMA, PARENT), sql.Identifier(P_KEY), sql.Identifier(P_FROM)
            )
        )
    m = load_mapping_text(mapping_text())
    assert {(t.schema, t.name) for t in m.tables} == {(SCHEMA, PARENT), (SCHEMA, CHILD), (SCHEMA, UNI)}

    archive = export(src, m, tmp_path / "hostile.edms")
    assert verify_archive(archive).ok
    report = import_archive(dst, archive)
    assert report.committed
    n = len(VALUES)
    assert {t.table: t.inserted for t in report.tables} == {
        str(next(t for t in m.tables if t.name == PARENT)): n,
        str(next(t for t in m.tables if t.name == CHILD)): n + 1,
        str(next(t for t in m.tables if t.name == UNI)): n,
    }
    assert content(src) == content(dst)
    assert _canary_alive(src) and _canary_alive(dst)

    # Second export of the target: same lines (row order aside) for every member.
    again = export(dst, m, tmp_path / "again.edms")
    assert set(member_digests(again)) == set(member_digests(archive))
    # and a second import changes nothing
    second = import_archive(dst, archive)
    assert (second.inserted, second.updated) == (0, 0)
    assert _canary_alive(dst)


def test_case_distinct_keys_are_distinct_rows(new_db, tmp_path: Path) -> None:
    """'CaSe' and 'case' are different natural keys; they must not be merged."""
    src, dst = new_db(), new_db()
    for d in (src, dst):
        with psycopg.connect(d, autocommit=True) as c:
            c.execute(ddl().encode())
    populate(src)
    archive = export(src, mapping_text(), tmp_path / "a.edms")
    import_archive(dst, archive)
    with psycopg.connect(dst, autocommit=True) as c:
        got = c.execute(
            sql.SQL("SELECT {k} FROM {t} WHERE lower({k}) = 'case' ORDER BY {k} COLLATE \"C\"").format(
                k=sql.Identifier(P_KEY), t=sql.Identifier(SCHEMA, PARENT)
            )
        ).fetchall()
    assert got == [("CaSe",), ("case",)]


# -- YAML ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['touch {canary}']",
        "!!python/object/new:os.system ['touch {canary}']",
        "!!python/name:os.system",
        "!!python/module:os",
        "!!python/object:edms_pgdump.mapping.Mapping {{version: 1}}",
    ],
)
def test_python_tags_refused(tmp_path: Path, tag: str) -> None:
    canary = tmp_path / "pwned"
    text = f"version: 1\ntables:\n  public.users: {{natural_key: [username], export: {tag.format(canary=canary)}}}\n"
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    assert "only plain YAML is allowed" in str(err.value)
    assert str(path) in str(err.value)
    assert not canary.exists()
    with pytest.raises(MappingError):
        load_mapping_text(f"version: 1\ntables: {tag.format(canary=canary)}\n")
    assert not canary.exists()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("version: 1\ntabels: {public.users: {natural_key: [username]}}\n", "tabels: unknown top-level key"),
        (
            "version: 1\ntables: {public.users: {natural_keys: [username]}}\n",
            "tables.\"public.users\": unknown key 'natural_keys'",
        ),
        (
            "version: 1\ntables: {'reg.\"My Table\"': {natural_key: [a], on_confict: skip}}\n",
            'tables."reg.\\"My Table\\"": unknown key \'on_confict\'',
        ),
        (
            "version: 1\ntables:\n  public.documents:\n    natural_key: [n]\n"
            "    references: [{columns: [a], table: public.x, colums: [b]}]\n",
            "tables.\"public.documents\".references[0]: unknown key 'colums'",
        ),
        (
            "version: 1\ntables: {public.users: {natural_key: [username], on_conflict: upsert}}\n",
            "tables.\"public.users\".on_conflict: 'upsert' is not allowed",
        ),
        (
            "version: 1\ntables: {public.users: {natural_key: [username, 7]}}\n",
            'tables."public.users".natural_key[1]',
        ),
        ("version: 2\ntables: {public.users: {natural_key: [username]}}\n", "version: expected 1, got 2"),
    ],
)
def test_unknown_or_wrong_keys_refused_with_yaml_path(text: str, needle: str) -> None:
    with pytest.raises(MappingError) as err:
        load_mapping_text(text)
    assert needle in str(err.value)


@pytest.mark.parametrize(
    "text",
    [
        "version: 1\ntables:\n  public.users: {natural_key: [username]}\n  public.users: {natural_key: [email]}\n",
        "version: 1\nversion: 1\ntables:\n  public.users: {natural_key: [username]}\n",
        "version: 1\ntables:\n  public.users: {natural_key: [username], natural_key: [email]}\n",
    ],
)
def test_duplicate_yaml_keys_refused_not_silently_overwritten(text: str) -> None:
    with pytest.raises(MappingError) as err:
        load_mapping_text(text)
    assert "duplicate key" in str(err.value)
    assert ":" in str(err.value)  # names where (line)


def test_equivalent_table_spellings_are_duplicates() -> None:
    with pytest.raises(MappingError) as err:
        load_mapping_text(
            'version: 1\ntables:\n  public.users: {natural_key: [a]}\n  \'"public"."users"\': {natural_key: [b]}\n'
        )
    assert "listed twice" in str(err.value)


def test_huge_mapping_file_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    body = "version: 1\ntables:\n" + "".join(
        f"  public.t{i:07d}: {{natural_key: [c]}}\n" for i in range(MAX_MAPPING_BYTES // 30 + 10)
    )
    path.write_text(body)
    assert path.stat().st_size > MAX_MAPPING_BYTES
    t = time.monotonic()
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    assert time.monotonic() - t < 1.0
    assert f"larger than the {MAX_MAPPING_BYTES} byte limit" in str(err.value)
    # the text API has the same limit
    with pytest.raises(MappingError) as err2:
        load_mapping_text(body)
    assert "byte limit" in str(err2.value)


def test_alias_bomb_refused_quickly() -> None:
    lines = ["version: 1", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    lines.append("tables: {public.users: {natural_key: *a8}}")
    t = time.monotonic()
    with pytest.raises(MappingError):
        load_mapping_text("\n".join(lines) + "\n")
    assert time.monotonic() - t < 2.0


def test_non_utf8_mapping_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("version: 1\ntables: {public.caf\xe9: {natural_key: [a]}}\n".encode("latin-1"))
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    assert "not UTF-8" in str(err.value)


def test_hostile_mapping_names_never_reach_sql_unquoted(new_db, tmp_path: Path) -> None:
    """A mapping naming a table that is an injection attempt is an unknown table, not SQL."""
    src = new_db()
    with psycopg.connect(src, autocommit=True) as c:
        c.execute(b"CREATE TABLE public.canary (x int); INSERT INTO public.canary VALUES (1)")
        c.execute(b"CREATE TABLE public.t (id serial PRIMARY KEY, k text UNIQUE)")
    name = f"x{uuid.uuid4().hex[:6]}"
    text = (
        "version: 1\ntables:\n"
        "  public.t: {natural_key: [k]}\n"
        f'  \'"public"."t; DROP TABLE public.canary; --{name}"\': {{natural_key: [k]}}\n'
    )
    m = load_mapping_text(text)
    with pytest.raises(EdmsPgdumpError) as err:
        export(src, m, tmp_path / "x.edms")
    assert "DROP TABLE public.canary" in str(err.value)  # named as a table, not executed
    assert _canary_alive(src)


@pytest.mark.parametrize(
    "column",
    [
        "#new",
        "#hit",
        "#path",
        "t",
        "r1",
    ],
)
def test_user_columns_named_like_staging_columns(new_db, tmp_path: Path, column: str) -> None:
    src, dst = new_db(), new_db()
    for d in (src, dst):
        with psycopg.connect(d, autocommit=True) as c:
            c.execute(
                sql.SQL("CREATE TABLE public.t (id serial PRIMARY KEY, k text UNIQUE, {} text)").format(
                    sql.Identifier(column)
                )
            )
    with psycopg.connect(src, autocommit=True) as c:
        c.execute(
            sql.SQL("INSERT INTO public.t (k, {}) VALUES ('a', 'x'), ('b', NULL)").format(
                sql.Identifier(column)
            )
        )
    archive = export(src, "version: 1\ntables: {public.t: {natural_key: [k]}}\n", tmp_path / "a.edms")
    report = import_archive(dst, archive)
    assert report.inserted == 2
    with psycopg.connect(dst, autocommit=True) as c:
        got = c.execute(sql.SQL("SELECT k, {} FROM public.t ORDER BY k").format(sql.Identifier(column)))
        assert got.fetchall() == [("a", "x"), ("b", None)]


# -- psql runbooks (edms-pgdump sql) ------------------------------------------------------


def _newline_table_db(new_db, canary: Path) -> tuple[str, str]:
    """A source whose table name carries a psql meta-command on its own line."""
    evil = f"t\n\\! touch {canary}\n"
    assert len(evil.encode()) < 63  # not truncated by the server
    src = new_db()
    with psycopg.connect(src, autocommit=True) as c:
        c.execute(
            sql.SQL("CREATE TABLE {} (id serial PRIMARY KEY, k text UNIQUE NOT NULL)").format(
                sql.Identifier("public", evil)
            )
        )
        c.execute(sql.SQL("INSERT INTO {} (k) VALUES ('a')").format(sql.Identifier("public", evil)))
    text = "version: 1\ntables: " + json.dumps({q("public", evil): {"natural_key": ["k"]}}) + "\n"
    return src, text


def test_import_runbook_cannot_inject_psql_meta_commands(new_db, pg_server) -> None:
    import subprocess

    from edms_pgdump import EdmsPgdumpError
    from edms_pgdump.runbook.scripts import render_runbook

    canary = Path(f"/tmp/edms_pw_{uuid.uuid4().hex[:6]}")
    try:
        src, text = _newline_table_db(new_db, canary)
        try:
            script = render_runbook(src, load_mapping_text(text), "import")
        except EdmsPgdumpError as exc:
            assert "line break" in str(exc), str(exc)  # refused, naming why
            assert not canary.exists()
            return
        path = canary.with_suffix(".sql")
        path.write_text(script)
        subprocess.run(
            [
                str(Path(pg_server.bin_dir) / "psql"),
                "-X",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                src,
                "-f",
                str(path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert not canary.exists(), "the runbook executed a shell command hidden in a table name"
    finally:
        canary.unlink(missing_ok=True)
        canary.with_suffix(".sql").unlink(missing_ok=True)


def test_export_runbook_with_newline_name_is_a_clear_error(new_db) -> None:
    from edms_pgdump import EdmsPgdumpError
    from edms_pgdump.runbook.scripts import render_runbook

    canary = Path(f"/tmp/edms_pw_{uuid.uuid4().hex[:6]}")
    src, text = _newline_table_db(new_db, canary)
    try:
        render_runbook(src, load_mapping_text(text), "export")
    except EdmsPgdumpError as exc:
        assert "newline" in str(exc) or "line break" in str(exc) or "\\n" in str(exc)
    assert not canary.exists()


def test_cli_prints_markup_like_names_literally(new_db, tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.support.db import subprocess_env

    name = "x[/][bold red]y"
    src, dst = new_db(), new_db()
    for d in (src, dst):
        with psycopg.connect(d, autocommit=True) as c:
            c.execute(
                sql.SQL("CREATE TABLE {} (id serial PRIMARY KEY, k text UNIQUE NOT NULL)").format(
                    sql.Identifier("public", name)
                )
            )
    with psycopg.connect(src, autocommit=True) as c:
        c.execute(sql.SQL("INSERT INTO {} (k) VALUES ('[/]')").format(sql.Identifier("public", name)))
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "version: 1\ntables: " + json.dumps({q("public", name): {"natural_key": ["k"]}}) + "\n"
    )
    archive = tmp_path / "a.edms"
    outputs = []
    for args in (
        ["export", "--dsn", src, "-m", str(mapping), "-o", str(archive)],
        ["inspect", str(archive)],
        ["import", str(archive), "--dsn", dst],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "edms_pgdump", *args],
            capture_output=True,
            text=True,
            env=subprocess_env(),
            timeout=120,
        )
        outputs.append((args[0], proc.returncode, proc.stderr[-300:]))
    assert [(cmd, rc) for cmd, rc, _ in outputs] == [("export", 0), ("inspect", 0), ("import", 0)], outputs
    assert not any("Traceback" in err for _, _, err in outputs), outputs


def test_column_named_like_an_expanded_reference_is_refused(new_db, tmp_path: Path) -> None:
    """A plain column literally named 'owner_id.username' beside the FK owner_id would
    make two archive fields with one name: refused with the fix, never mixed up."""
    src = new_db()
    with psycopg.connect(src, autocommit=True) as c:
        c.execute(
            b"CREATE TABLE public.u (id serial PRIMARY KEY, username text UNIQUE NOT NULL);"
            b"CREATE TABLE public.d (id serial PRIMARY KEY, k text UNIQUE NOT NULL, "
            b'owner_id int REFERENCES public.u (id), "owner_id.username" text)'
        )
    mapping = "version: 1\ntables: {public.u: {natural_key: [username]}, public.d: {natural_key: [k]}}\n"
    with pytest.raises(EdmsPgdumpError) as err:
        export(src, mapping, tmp_path / "a.edms")
    assert "public.d" in str(err.value)
    assert "'owner_id.username' is ambiguous" in str(err.value)
    assert not (tmp_path / "a.edms").exists()
