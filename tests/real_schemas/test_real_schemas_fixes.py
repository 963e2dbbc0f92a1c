"""Real-schema cases found failing during this round (issues 10 and 16), now fixed: a
reference to the row whose nullable key is NULL, new ids that overflow a smallint
reference (refused before any sequence moves), and what a dry run leaves behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from edms_pgdump import ImportOptions, export_archive, import_archive, load_mapping_text
from edms_pgdump.errors import EdmsPgdumpError
from tests.support.real_schema_texts import (
    EMAIL,
    EMAIL_MAPPING,
    EMAIL_SOURCE,
    EMAIL_TARGET,
    SMALLINT,
    SMALLINT_MAPPING,
    SMALLINT_SOURCE,
    TEAMS_MAPPING,
    TICKETS,
    teams_databases,
)
from tests.support.real_schemas import (
    FAR,
    NewDb,
    assert_union,
    error_text,
    fetch,
    make_db,
    natural_rows,
    push_sequences,
    sequence_values,
    settled_inserted_tuples,
    table_snapshot,
)


def test_a_reference_to_the_row_whose_nullable_key_is_null_is_not_lost(new_db: NewDb, tmp_path: Path) -> None:
    """A ticket of the person with no e-mail (t2) and a ticket of nobody (t4) must stay
    apart. Both export as person_id.email = NULL today; the archive must tell them apart
    or the export must refuse, naming the table, the column and the row. Never a silent
    NULL, never a ticket of nobody given to the person without an e-mail."""
    src = make_db(
        new_db,
        EMAIL,
        EMAIL_SOURCE,
        "INSERT INTO public.ticket (code, person_id) VALUES ('t2', 2), ('t4', NULL)",
    )
    dst = make_db(new_db, EMAIL, EMAIL_TARGET)
    push_sequences(dst)
    archive = tmp_path / "a.edmsdump"
    try:
        export_archive(src, load_mapping_text(EMAIL_MAPPING), archive, audit_log=False)
    except EdmsPgdumpError as exc:  # a refusal is correct too, if it names what to fix
        msg = error_text(exc)
        assert "public.ticket" in msg and "person_id" in msg and "t2" in msg, msg
        assert not archive.exists()
        return
    report = import_archive(dst, archive, audit_log=False)
    assert report.committed, report.to_dict()
    got = {r[0]: r[1:] for r in fetch(dst, TICKETS)}
    assert got["t4"] == (None, None)  # no person
    assert got["t2"] == (None, "Nobody")  # the person without an e-mail


def test_ids_that_overflow_a_smallint_fk_column_are_refused_before_any_write(
    new_db: NewDb, tmp_path: Path
) -> None:
    src = make_db(new_db, SMALLINT, SMALLINT_SOURCE)
    dst = make_db(new_db, SMALLINT, "INSERT INTO public.department (name) VALUES ('kept')")
    push_sequences(dst)  # the 16 new departments would get ids 100001..100016
    tables = ("public.department", "public.employeedepartmenthistory")
    rows_before, seqs_before = table_snapshot(dst, *tables), sequence_values(dst)
    written_before = settled_inserted_tuples(dst)
    archive = tmp_path / "a.edmsdump"
    export_archive(src, load_mapping_text(SMALLINT_MAPPING), archive, audit_log=False)

    with pytest.raises(EdmsPgdumpError) as exc:
        import_archive(dst, archive, audit_log=False)

    msg = error_text(exc.value)
    assert "employeedepartmenthistory" in msg, msg
    assert "departmentid" in msg, msg
    assert "smallint" in msg, msg
    assert str(FAR + 16) in msg, msg  # the largest id the import would allocate
    assert table_snapshot(dst, *tables) == rows_before
    assert sequence_values(dst) == seqs_before
    written = settled_inserted_tuples(dst)
    # not even a rolled-back INSERT: the refusal comes before the first write
    assert {t: written.get(t) for t in tables} == {t: written_before.get(t) for t in tables}


def test_dry_run_rolls_back_every_row_and_moves_no_sequence(new_db: NewDb, tmp_path: Path) -> None:
    """A dry run runs the writes (so it meets what the real import would: triggers, check
    constraints) and rolls them back; ids for new rows are computed, so no sequence
    moves. (pg_stat_user_tables counts the rolled-back inserts; ``verify`` is the
    comparison that touches nothing at all, tested in test_real_schemas_ids.)"""
    src, dst, archive = teams_databases(new_db, tmp_path)
    target_before = natural_rows(dst, TEAMS_MAPPING)
    sequences = sequence_values(dst)
    report = import_archive(dst, archive, options=ImportOptions(dry_run=True), audit_log=False)
    assert report.dry_run and not report.committed and report.inserted == 50 + 4
    assert natural_rows(dst, TEAMS_MAPPING) == target_before
    assert sequence_values(dst) == sequences
    import_archive(dst, archive, audit_log=False)
    assert_union(target_before, natural_rows(src, TEAMS_MAPPING), natural_rows(dst, TEAMS_MAPPING))
