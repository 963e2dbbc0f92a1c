"""Schemas and rows shared by the real-schema round trips (tests/real_schemas/test_real_schemas_*.py):
a nullable unique e-mail key, a smallint reference to an integer serial id, and two teams
tables for the write-nothing checks (dry run, verify). One copy, imported by each suite."""

from __future__ import annotations

from pathlib import Path

from edms_pgdump import export_archive, load_mapping_text
from tests.support.real_schemas import NewDb, make_db, push_sequences, settled_inserted_tuples

# -- a nullable unique column as the natural key -----------------------------------------

EMAIL = """
CREATE TABLE public.person (id serial PRIMARY KEY, email text UNIQUE, name text NOT NULL);
CREATE TABLE public.ticket (id serial PRIMARY KEY, code text NOT NULL UNIQUE,
    person_id int REFERENCES public.person (id));
"""

EMAIL_MAPPING = """
version: 1
tables:
  public.person: {natural_key: [email]}
  public.ticket: {natural_key: [code]}
"""

EMAIL_SOURCE = """
INSERT INTO public.person (id, email, name) VALUES (1, 'ann@x', 'Ann'), (2, NULL, 'Nobody'), (3, 'bob@x', 'Bob');
INSERT INTO public.ticket (code, person_id) VALUES ('t1', 1), ('t3', 3), ('t6', 1);
"""

# the target's row with a NULL e-mail is the source's (NULLs match as equal): updated, not
# doubled; ids 1..3 belong to other people
EMAIL_TARGET = """
INSERT INTO public.person (id, email, name) VALUES (1, 'zed@x', 'Zed'), (2, NULL, 'Old name'), (3, 'cy@x', 'Cy');
INSERT INTO public.ticket (code, person_id) VALUES ('z1', 2), ('z2', 1);
"""

TICKETS = (
    "SELECT t.code, p.email, p.name FROM public.ticket t LEFT JOIN public.person p ON p.id = t.person_id"
    " ORDER BY t.code"
)


# -- a smallint FK column referencing an integer serial id -------------------------------

SMALLINT = """
CREATE TABLE public.department (departmentid serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE public.employeedepartmenthistory (id serial PRIMARY KEY, login text NOT NULL,
    departmentid smallint NOT NULL REFERENCES public.department (departmentid), startdate date NOT NULL,
    UNIQUE (login, startdate));
"""

SMALLINT_SOURCE = """
INSERT INTO public.department (name) SELECT 'dept ' || i FROM generate_series(1, 16) AS i;
INSERT INTO public.employeedepartmenthistory (login, departmentid, startdate)
    SELECT 'u' || i, 1 + i % 16, DATE '2020-01-01' + i FROM generate_series(1, 40) AS i;
"""

SMALLINT_MAPPING = """
version: 1
tables:
  public.department: {natural_key: [name]}
  public.employeedepartmenthistory: {natural_key: [login, startdate]}
"""


# -- two tables for the write-nothing checks ---------------------------------------------

TEAMS = """
CREATE TABLE public.team (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE public.member (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, login text NOT NULL UNIQUE,
    team_id int NOT NULL REFERENCES public.team (id), mentor_id bigint REFERENCES public.member (id));
"""

TEAMS_SOURCE = """
INSERT INTO public.team (name) SELECT 'team ' || i FROM generate_series(1, 5) AS i;
INSERT INTO public.member (login, team_id) SELECT 'm' || i, 1 + i % 5 FROM generate_series(1, 50) AS i;
UPDATE public.member SET mentor_id = id - 1 WHERE id > 1;
"""

TEAMS_TARGET = """
INSERT INTO public.team (name) VALUES ('team 1'), ('elsewhere');
INSERT INTO public.member (login, team_id) VALUES ('outsider', 2);
"""

TEAMS_MAPPING = """
version: 1
tables:
  public.team: {natural_key: [name]}
  public.member: {natural_key: [login]}
"""

TEAM_TABLES = ("public.team", "public.member")


def teams_databases(new_db: NewDb, tmp_path: Path) -> tuple[str, str, Path]:
    """(source, target with its own rows and far-ahead sequences, archive of the source)."""
    src = make_db(new_db, TEAMS, TEAMS_SOURCE)
    dst = make_db(new_db, TEAMS, TEAMS_TARGET)
    push_sequences(dst)
    archive = tmp_path / "a.edmsdump"
    export_archive(src, load_mapping_text(TEAMS_MAPPING), archive, audit_log=False)
    return src, dst, archive


def team_inserts(dsn: str) -> dict[str, int]:
    """n_tup_ins of the team tables, once settled."""
    got = settled_inserted_tuples(dsn)
    return {t: got[t] for t in TEAM_TABLES}
