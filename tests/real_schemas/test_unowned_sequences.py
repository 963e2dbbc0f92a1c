"""Sequences no column owns (``DEFAULT nextval('x')`` without OWNED BY), on an excerpt of
Pagila's published schema: the catalog finds them through the default's dependency,
``check`` warns where ids are kept, ``import --dry-run`` computes new ids without moving
any sequence, and the import leaves every kept-id sequence at or above max(id), so the
application's next ordinary INSERT succeeds. A re-import writes nothing."""

from __future__ import annotations

from pathlib import Path

from edms_pgdump import ImportOptions, export_archive, import_archive, load_mapping_text
from edms_pgdump.api import check_mapping
from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.catalog.read import read_catalog
from edms_pgdump.db import connect
from tests.support.pagila_schema import DATA, KEPT_IDS, MAPPING, SCHEMA
from tests.support.real_schemas import (
    NewDb,
    assert_union,
    fetch,
    make_db,
    natural_rows,
    sequence_values,
    table_snapshot,
)

TABLES = [f"public.{t}" for t in ("language", "actor", "film", "film_actor", "customer", "payment")]


def test_catalog_finds_the_sequence_of_the_default(new_db: NewDb) -> None:
    dsn = make_db(new_db, SCHEMA)
    with connect(dsn) as conn:
        cat = read_catalog(conn)
    actor = cat.tables[QualifiedName("public", "actor")].column("actor_id")
    assert actor is not None and actor.sequence == QualifiedName("public", "actor_actor_id_seq")
    # a partition's column and the parent's draw from the same unowned sequence
    payment = cat.tables[QualifiedName("public", "payment")].column("payment_id")
    assert payment is not None and payment.sequence == QualifiedName("public", "payment_payment_id_seq")
    assert cat.sequences[payment.sequence].data_type == "bigint"


def test_check_warns_where_ids_are_kept(new_db: NewDb) -> None:
    dsn = make_db(new_db, SCHEMA)
    report = check_mapping(dsn=dsn, mapping=load_mapping_text(MAPPING))
    assert not report.errors, [str(p) for p in report.errors]
    kept = {(str(p.table), p.column) for p in report.warnings if p.code == "ids-kept"}
    assert kept == {(t, c) for t, c, _ in KEPT_IDS}, kept


def test_pagila_dry_run_then_import_leaves_sequences_ahead(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, SCHEMA, DATA)
    # a re-initialised target: the application already created two languages
    dst = make_db(new_db, SCHEMA, "INSERT INTO public.language (name) VALUES ('German'), ('Klingon')")
    archive = tmp_path / "pagila.edmsdump"
    export_archive(src, load_mapping_text(MAPPING), archive, audit_log=False)

    before = natural_rows(dst, MAPPING)
    sequences, rows = sequence_values(dst), table_snapshot(dst, *TABLES)
    dry = import_archive(dst, archive, options=ImportOptions(dry_run=True), audit_log=False)
    assert dry.ok and not dry.committed, dry.to_dict()
    assert sequence_values(dst) == sequences  # no id drawn
    assert table_snapshot(dst, *TABLES) == rows

    report = import_archive(dst, archive, audit_log=False)
    assert report.committed and report.ok, report.to_dict()
    assert_union(before, natural_rows(src, MAPPING), natural_rows(dst, MAPPING))
    after = sequence_values(dst)
    for table, column, seq in KEPT_IDS:
        top = fetch(dst, f"SELECT max({column}) FROM {table}")[0][0]  # test constants
        assert after[seq] >= top, (seq, after[seq], top)

    again = import_archive(dst, archive, audit_log=False)
    assert again.committed and again.ok
    for t in again.tables:
        assert (t.inserted, t.updated) == (0, 0), t.to_dict()

    # the application's next ordinary INSERTs take their ids from the sequences
    fetch(dst, "INSERT INTO public.actor (first_name, last_name) VALUES ('NEW', 'ACTOR') RETURNING actor_id")
    fetch(
        dst,
        "INSERT INTO public.payment (customer_id, staff_id, rental_id, amount, payment_date) "
        "SELECT max(customer_id), 1, 1, 1.00, '2022-02-02' FROM public.customer RETURNING payment_id",
    )
    assert fetch(dst, "SELECT count(*) FROM public.payment") == [(26,)]
