"""GENERATED ALWAYS identity columns: kept as the natural key (the source's ids), drawn
anew as a surrogate, and travelling as a plain value outside the key. Every INSERT that
writes one says OVERRIDING SYSTEM VALUE; `check` and `plan` say so; the kept ids' sequence
ends at or above max(id); existing rows keep an ALWAYS identity value PostgreSQL will not
UPDATE; a re-import writes nothing."""

from __future__ import annotations

from pathlib import Path

from edms_pgdump import export_archive, import_archive, load_mapping_text
from edms_pgdump.api import check_mapping, plan_mapping
from tests.support.real_schemas import NewDb, counts, fetch, make_db, natural_rows, sequence_values

SCHEMA = """
CREATE TABLE public.ticket (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text NOT NULL);
CREATE TABLE public.ticket_note (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id int NOT NULL REFERENCES public.ticket, body text NOT NULL, UNIQUE (ticket_id, body));
CREATE TABLE public.counter (name text PRIMARY KEY, serial_no bigint GENERATED ALWAYS AS IDENTITY, hits int);
"""

SOURCE = """
INSERT INTO public.ticket (id, title) OVERRIDING SYSTEM VALUE VALUES (5, 'five'), (9, 'nine'), (100, 'hundred');
INSERT INTO public.ticket_note (ticket_id, body) SELECT id, 'note on ' || title FROM public.ticket;
INSERT INTO public.counter (name, serial_no, hits) OVERRIDING SYSTEM VALUE VALUES ('a', 70, 1), ('b', 71, 2);
"""

TARGET = """
INSERT INTO public.ticket (id, title) OVERRIDING SYSTEM VALUE VALUES (9, 'old nine');
INSERT INTO public.counter (name, hits) VALUES ('a', 0);
"""

MAPPING = """
version: 1
tables:
  public.ticket: {natural_key: [id]}
  public.ticket_note: {natural_key: [ticket_id, body]}
  public.counter: {natural_key: [name]}
"""

TICKETS = """
version: 1
tables:
  public.ticket: {natural_key: [id]}
  public.ticket_note: {natural_key: [ticket_id, body]}
"""


def test_check_and_plan_say_overriding(new_db: NewDb) -> None:
    dsn = make_db(new_db, SCHEMA)
    report = check_mapping(dsn=dsn, mapping=load_mapping_text(MAPPING))
    warned = {(str(p.table), p.code): str(p) for p in report.warnings}
    assert "OVERRIDING SYSTEM VALUE" in warned[("public.ticket", "ids-kept")]
    assert "OVERRIDING SYSTEM VALUE" in warned[("public.counter", "identity-not-updated")]
    plan = plan_mapping(dsn, load_mapping_text(MAPPING))
    inserts = {s["table"]: s["sql"] for s in plan.import_steps if s["phase"] == "insert"}
    assert sorted(inserts) == ["public.counter", "public.ticket", "public.ticket_note"]
    assert all("OVERRIDING SYSTEM VALUE SELECT" in s for s in inserts.values()), inserts


def test_always_identity_round_trip(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, SCHEMA, SOURCE)
    dst = make_db(new_db, SCHEMA, TARGET)
    archive = tmp_path / "a.edmsdump"
    export_archive(src, load_mapping_text(MAPPING), archive, audit_log=False)
    report = import_archive(dst, archive, audit_log=False)
    assert report.committed and report.ok, report.to_dict()
    assert counts(report, "public.ticket") == (3, 2, 1, 0)
    assert natural_rows(dst, TICKETS) == natural_rows(src, TICKETS)
    # a new counter row carries the archive's value; the existing one keeps its own
    assert fetch(dst, "SELECT name, serial_no, hits FROM public.counter ORDER BY 1") == [
        ("a", 1, 1),
        ("b", 71, 2),
    ]
    assert sequence_values(dst)["public.ticket_id_seq"] >= 100
    again = import_archive(dst, archive, audit_log=False)
    assert again.committed and again.ok
    for t in again.tables:
        assert (t.inserted, t.updated) == (0, 0), t.to_dict()
    # the application's next INSERT draws an id past the kept ones
    assert fetch(dst, "INSERT INTO public.ticket (title) VALUES ('app') RETURNING id")[0][0] > 100
