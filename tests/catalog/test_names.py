"""Qualified names print the way PostgreSQL's quote_ident() writes them, so every name in a
message or a ``fix:`` line can be pasted into psql as it is."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from edms_pgdump.analysis.check import check_database
from edms_pgdump.catalog.names import QUOTED_KEYWORDS, QualifiedName, parse_qualified_name, quote_identifier
from edms_pgdump.mapping import load_mapping_text

# Names around every rule: case, digits, dollar, non-ASCII, quotes, dots, spaces.
AWKWARD = [
    "users", "_x", "a1", "1a", "Users", "a$b", "été", "with space", 'quo"te', "a.b", "t-1",
    "limit", "user", "int", "between", "json", "name", "text", "id", "offset2", "select_", "",
]  # fmt: skip


def server_keywords(conn: psycopg.Connection) -> dict[str, str]:
    return {r[0]: r[1] for r in conn.execute("SELECT word, catcode FROM pg_get_keywords()")}


def test_the_keyword_constant_matches_the_server(admin: psycopg.Connection) -> None:
    keywords = server_keywords(admin)
    needs_quotes = {w for w, code in keywords.items() if code != "U"}
    missing = needs_quotes - QUOTED_KEYWORDS
    assert not missing, f"regenerate QUOTED_KEYWORDS in names.py: the server also quotes {sorted(missing)}"
    if admin.info.server_version // 10000 == 18:
        assert needs_quotes == QUOTED_KEYWORDS  # the constant was generated from PostgreSQL 18
    else:  # older servers know fewer keywords; none that we quote is unreserved there
        assert all(keywords.get(w, "absent") != "U" for w in QUOTED_KEYWORDS)


def test_quoting_is_exactly_the_servers(admin: psycopg.Connection) -> None:
    words = sorted(set(server_keywords(admin)) | {w for w in AWKWARD if w})
    server = dict(admin.execute("SELECT w, quote_ident(w) FROM unnest(%s::text[]) AS w", (words,)).fetchall())
    ours = {w: quote_identifier(w) for w in words}
    if admin.info.server_version // 10000 < 18:  # words that are keywords only in newer versions
        ours = {w: q for w, q in ours.items() if w not in QUOTED_KEYWORDS or server[w] != w}
        server = {w: server[w] for w in ours}
    assert ours == server
    assert quote_identifier("") == '""'


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        (QualifiedName("public", "users"), "public.users"),
        (QualifiedName("public", "limit"), 'public."limit"'),
        (QualifiedName("public", "user"), 'public."user"'),
        (QualifiedName("order", "int"), '"order"."int"'),
        (QualifiedName("reg", "Contract"), 'reg."Contract"'),
        (QualifiedName("s", 'a."b"'), 's."a.""b"""'),
    ],
)
def test_str_quotes_where_needed_and_parses_back(name: QualifiedName, shown: str) -> None:
    assert str(name) == shown
    assert parse_qualified_name(shown) == name


def test_printed_names_work_when_pasted_into_sql(new_db) -> None:
    dsn = new_db()
    names = [
        QualifiedName("public", "limit"),
        QualifiedName("public", "user"),
        QualifiedName("public", "between"),
        QualifiedName("select", "Mixed Case"),
        QualifiedName("public", 'quo"te.dot'),
    ]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for n in names:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(n.schema)))
            conn.execute(sql.SQL("CREATE TABLE {} (code text)").format(n.ident))
            conn.execute(sql.SQL("INSERT INTO {} VALUES ('x')").format(n.ident))
        for n in names:  # the printed form, pasted verbatim
            row = conn.execute(f"SELECT count(*), tableoid::regclass::text FROM {n} GROUP BY 2".encode()).fetchone()
            assert row is not None and row[0] == 1
            # and PostgreSQL prints it the same way (public is on the search_path, so left out)
            assert row[1] == (quote_identifier(n.name) if n.schema == "public" else str(n))


def test_check_fix_for_a_keyword_table_runs_in_psql(new_db) -> None:
    """Issue 9: the fix printed `CREATE UNIQUE INDEX ON public.limit (code)`, a syntax error."""
    dsn = new_db()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute('CREATE TABLE public."limit" (id serial PRIMARY KEY, code text NOT NULL)')
        conn.execute("INSERT INTO public.\"limit\" (code) VALUES ('a'), ('b')")
    report = check_database(dsn, load_mapping_text('version: 1\ntables:\n  public."limit": {natural_key: [code]}\n'))
    (problem,) = [p for p in report.problems if p.code == "key-not-unique"]
    assert problem.fix.startswith('CREATE UNIQUE INDEX ON public."limit" ('), problem.fix
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(problem.fix.encode())  # pasted as printed
        assert conn.execute(
            "SELECT count(*) FROM pg_index WHERE indrelid = 'public.\"limit\"'::regclass AND indisunique"
            " AND NOT indisprimary"
        ).fetchone() == (1,)
    after = check_database(dsn, load_mapping_text('version: 1\ntables:\n  public."limit": {natural_key: [code]}\n'))
    assert [p.code for p in after.problems if p.code == "key-not-unique"] == []
