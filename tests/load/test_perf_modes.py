"""The fast import paths against real PostgreSQL: ``constraints="recreate"``, counts
derived instead of re-joined, merged staging steps. Each must leave the target exactly
as the default path does, and reject the same bad data, rolling everything back."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from edms_pgdump.demo import sample
from edms_pgdump.demo.resources import sample_mapping_path
from edms_pgdump.errors import EdmsPgdumpError, ImportRejected, KeyNotUniqueError
from edms_pgdump.export.write import write_archive
from edms_pgdump.load import transaction as load
from edms_pgdump.load.transaction import ImportHooks, ImportOptions
from edms_pgdump.load.transaction import load_archive as import_archive
from edms_pgdump.mapping import load_mapping
from edms_pgdump.program import constraints as program_constraints
from tests.support.db import db_digest, export_without_data_proofs

FK_QUERY = """
SELECT r.relname, c.conname, pg_get_constraintdef(c.oid), c.convalidated,
       obj_description(c.oid, 'pg_constraint')
FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
JOIN pg_namespace n ON n.oid = r.relnamespace
WHERE c.contype = 'f' AND n.nspname = 'public' ORDER BY 1, 2
"""


@pytest.fixture(autouse=True)
def _recreate_even_small_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample data here is small; make constraints=recreate drop foreign keys anyway."""
    monkeypatch.setattr(program_constraints, "RECREATE_MIN_ROWS", 0)


INDEX_QUERY = """
SELECT i.tablename, i.indexname, i.indexdef, obj_description(format('%I.%I', i.schemaname, i.indexname)::regclass)
FROM pg_indexes i WHERE i.schemaname = 'public' ORDER BY 1, 2
"""


def _q(dsn: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as c:
        return list(c.execute(query, params).fetchall())


def _x(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        for s in statements:
            c.execute(s.encode())


def _export(src: str, tmp_path: Path, name: str = "a.edmsdump") -> Path:
    out = tmp_path / name
    write_archive(src, load_mapping(sample_mapping_path()), out, jobs=2)
    return out


def _reinit(new_db: Any, sample_template: str) -> str:
    dsn: str = new_db(sample_template)
    with psycopg.connect(dsn, autocommit=True) as c:
        sample.reinitialise(c)
    return dsn


def _row_versions(dsn: str) -> list[tuple[Any, ...]]:
    """Where every row physically is and which transaction wrote it."""
    return _q(
        dsn,
        "SELECT 'u', ctid::text, xmin::text FROM public.users UNION ALL "
        "SELECT 'd', ctid::text, xmin::text FROM public.documents UNION ALL "
        "SELECT 'v', ctid::text, xmin::text FROM public.document_versions UNION ALL "
        "SELECT 'w', ctid::text, xmin::text FROM public.document_workflows ORDER BY 1, 2",
    )


def test_recreate_leaves_the_same_state_as_keep(
    sample_dbs: tuple[str, str], new_db: Any, sample_template: str, tmp_path: Path
) -> None:
    src, keep_dst = sample_dbs
    _x(
        keep_dst,
        "COMMENT ON CONSTRAINT document_versions_document_id_fkey "
        "ON public.document_versions IS 'versions belong to a document'",
    )
    recreate_dst = _reinit(new_db, sample_template)
    _x(
        recreate_dst,
        "COMMENT ON CONSTRAINT document_versions_document_id_fkey "
        "ON public.document_versions IS 'versions belong to a document'",
        "COMMENT ON INDEX public.documents_owner_idx IS 'who owns what'",
    )
    _x(keep_dst, "COMMENT ON INDEX public.documents_owner_idx IS 'who owns what'")
    fks_before = _q(recreate_dst, FK_QUERY)
    indexes_before = _q(recreate_dst, INDEX_QUERY)
    archive = _export(src, tmp_path)

    keep = import_archive(keep_dst, archive)
    recreate = import_archive(recreate_dst, archive, options=ImportOptions(constraints="recreate"))

    assert keep.ok and recreate.ok and recreate.committed
    assert [t.to_dict() for t in keep.tables] == [t.to_dict() for t in recreate.tables]
    assert db_digest(keep_dst) == db_digest(recreate_dst)
    # every foreign key is back, validated, with its comment
    assert _q(recreate_dst, FK_QUERY) == fks_before
    assert all(row[3] for row in fks_before)
    assert any(row[4] == "versions belong to a document" for row in fks_before)
    assert any(p["step"].startswith("re-add fk") for p in recreate.profile)
    # the plain indexes were dropped and built again, the same, with their comments
    assert any(p["step"] == "create index documents_owner_idx" for p in recreate.profile)
    assert _q(recreate_dst, INDEX_QUERY) == indexes_before == _q(keep_dst, INDEX_QUERY)
    assert any(row[3] == "who owns what" for row in indexes_before)


def test_reimport_rewrites_no_row_in_either_mode(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, dst = sample_dbs
    archive = _export(src, tmp_path)
    first = import_archive(dst, archive)
    assert first.inserted > 0
    before = _row_versions(dst)
    for mode in ("keep", "recreate"):
        again = import_archive(dst, archive, options=ImportOptions(constraints=mode))  # type: ignore[arg-type]
        assert again.ok and again.inserted == 0 and again.updated == 0
        assert all(t.unchanged == t.expected == t.present_after for t in again.tables)
    assert _row_versions(dst) == before


def test_recreate_changed_rows_update_like_keep(
    sample_dbs: tuple[str, str], new_db: Any, sample_template: str, tmp_path: Path
) -> None:
    src, dst_keep = sample_dbs
    dst_recreate = _reinit(new_db, sample_template)
    first = _export(src, tmp_path, "first.edmsdump")
    import_archive(dst_keep, first)
    import_archive(dst_recreate, first, options=ImportOptions(constraints="recreate"))
    _x(
        src,
        "UPDATE public.document_workflows SET state = 'done' WHERE state <> 'done' AND id % 3 = 0",
        "UPDATE public.documents SET parent_id = NULL WHERE id % 11 = 0",
    )
    with psycopg.connect(src, autocommit=True) as c:
        sample.populate(c, sample.SampleSize(10, 20), prefix="more-")
    second = _export(src, tmp_path, "second.edmsdump")
    keep = import_archive(dst_keep, second)
    recreate = import_archive(dst_recreate, second, options=ImportOptions(constraints="recreate"))
    assert keep.updated > 0 and keep.inserted > 0
    assert [t.to_dict() for t in keep.tables] == [t.to_dict() for t in recreate.tables]
    assert db_digest(dst_keep) == db_digest(dst_recreate)


def test_recreate_dry_run_rolls_back_and_keeps_constraints(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    src, dst = sample_dbs
    before, fks, indexes = db_digest(dst), _q(dst, FK_QUERY), _q(dst, INDEX_QUERY)
    report = import_archive(
        dst, _export(src, tmp_path), options=ImportOptions(dry_run=True, constraints="recreate")
    )
    assert report.ok and not report.committed and report.inserted > 0
    assert db_digest(dst) == before
    assert _q(dst, FK_QUERY) == fks
    assert _q(dst, INDEX_QUERY) == indexes


@pytest.mark.parametrize("mode", ["keep", "recreate"])
def test_violating_row_rolls_back_everything(sample_dbs: tuple[str, str], tmp_path: Path, mode: str) -> None:
    """A target trigger points new documents at an owner that does not exist: the
    foreign key catches it (per row, or when re-added) and nothing is written."""
    src, dst = sample_dbs
    archive = _export(src, tmp_path)
    _x(
        dst,
        "CREATE FUNCTION public.bad_owner() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN NEW.owner_id := -42; RETURN NEW; END$$",
        "CREATE TRIGGER bad_owner BEFORE INSERT ON public.documents "
        "FOR EACH ROW WHEN (NEW.document_number = 'DOC-00000007') EXECUTE FUNCTION public.bad_owner()",
    )
    before, fks = db_digest(dst), _q(dst, FK_QUERY)
    with pytest.raises(EdmsPgdumpError) as info:
        import_archive(dst, archive, options=ImportOptions(constraints=mode))  # type: ignore[arg-type]
    message = str(info.value)
    assert "documents_owner_id_fkey" in message
    assert "-42" in message
    # a table with user triggers keeps its keys even under recreate (a deferred trigger
    # could hold pending events): the per-row check names the key either way
    assert "rolled back" in message
    assert db_digest(dst) == before
    assert _q(dst, FK_QUERY) == fks


def test_trigger_changing_the_key_is_caught_without_the_shortcut(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    """Counts are derived only when no trigger can change what a row becomes; a
    trigger rewriting the natural key makes the import look keys up again and fail."""
    src, dst = sample_dbs
    archive = _export(src, tmp_path)
    _x(
        dst,
        "CREATE FUNCTION public.shout() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN NEW.username := upper(NEW.username); RETURN NEW; END$$",
        "CREATE TRIGGER shout BEFORE INSERT ON public.users FOR EACH ROW EXECUTE FUNCTION public.shout()",
    )
    before = db_digest(dst)
    for mode in ("keep", "recreate"):
        with pytest.raises(ImportRejected) as info:
            import_archive(dst, archive, options=ImportOptions(constraints=mode))  # type: ignore[arg-type]
        assert "public.users" in str(info.value)
        assert db_digest(dst) == before


def test_recreate_needs_ownership(
    sample_dbs: tuple[str, str], tmp_path: Path, admin: psycopg.Connection[Any]
) -> None:
    src, dst = sample_dbs
    archive = _export(src, tmp_path)
    role = f"edms_loader_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        _x(
            dst,
            f'GRANT USAGE ON SCHEMA public TO "{role}"',
            f'GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO "{role}"',
            f'GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO "{role}"',
        )
        params = psycopg.conninfo.conninfo_to_dict(dst)
        params["user"] = role
        params.pop("password", None)
        loader = psycopg.conninfo.make_conninfo(**params)  # type: ignore[arg-type]
        before = db_digest(dst)
        with pytest.raises(ImportRejected) as info:
            import_archive(loader, archive, options=ImportOptions(constraints="recreate"))
        assert "ownership" in str(info.value)
        assert db_digest(dst) == before
        # the default mode needs no ownership
        assert import_archive(loader, archive).committed
    finally:
        _x(dst, f'DROP OWNED BY "{role}"')
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_unknown_constraints_mode_is_refused(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, dst = sample_dbs
    with pytest.raises(EdmsPgdumpError, match="constraints"):
        import_archive(dst, _export(src, tmp_path), options=ImportOptions(constraints="drop"))  # type: ignore[arg-type]


def test_profile_names_the_heavy_steps(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, dst = sample_dbs
    report = import_archive(dst, _export(src, tmp_path))
    steps = {p["step"] for p in report.to_dict()["profile"]}
    assert {"copy", "insert", "summary"} <= steps
    assert all(p["seconds"] >= 0 for p in report.profile)


def test_recreate_keeps_constraints_for_small_loads(
    sample_dbs: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below the threshold per-row checks are cheaper than re-validating whole tables."""
    monkeypatch.setattr(program_constraints, "RECREATE_MIN_ROWS", 10_000_000)
    src, dst = sample_dbs
    report = import_archive(dst, _export(src, tmp_path), options=ImportOptions(constraints="recreate"))
    assert report.committed and report.inserted > 0
    assert not any("fk" in p["step"] for p in report.profile)


def _archive_with_duplicate_user(src: str, tmp_path: Path) -> Path:
    _x(
        src,
        "ALTER TABLE public.users DROP CONSTRAINT users_username_key",
        "INSERT INTO public.users (username, email) VALUES ('user000001', 'twin@example.org')",
    )
    with pytest.raises(KeyNotUniqueError, match=r"public\.users"):
        _export(src, tmp_path, "refused.edmsdump")  # export proves keys unique on its snapshot
    with export_without_data_proofs():
        return _export(src, tmp_path, "dup.edmsdump")


@pytest.mark.parametrize("mode", ["keep", "recreate"])
def test_duplicate_keys_among_new_rows_are_named(
    sample_dbs: tuple[str, str], tmp_path: Path, mode: str
) -> None:
    """The target's unique index enforces the key, so the archive is not grouped up
    front; the INSERT trips over the index and the keys are still named."""
    src, dst = sample_dbs
    archive = _archive_with_duplicate_user(src, tmp_path)
    before = db_digest(dst)
    with pytest.raises(ImportRejected) as info:
        import_archive(dst, archive, options=ImportOptions(constraints=mode))  # type: ignore[arg-type]
    assert "public.users: the archive holds duplicate natural keys (username): (username='user000001'" in str(
        info.value
    )
    assert db_digest(dst) == before


def test_duplicate_keys_among_existing_rows_are_named(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, dst = sample_dbs
    assert import_archive(dst, _export(src, tmp_path)).committed
    archive = _archive_with_duplicate_user(src, tmp_path)
    before = db_digest(dst)
    with pytest.raises(ImportRejected, match=r"duplicate natural keys \(username\): \(username='user000001'"):
        import_archive(dst, archive)
    assert db_digest(dst) == before


class _LockSpy(ImportHooks):
    def __init__(self) -> None:
        self.modes: dict[str, set[str]] = {}

    def after_program(self, conn: Any, program: Any, report: Any) -> tuple[()]:
        for rel, mode in conn.execute(
            "SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE l.pid = pg_backend_pid() AND c.relkind = 'r' "
            "AND c.relnamespace = 'public'::regnamespace"
        ):
            self.modes.setdefault(rel, set()).add(mode)
        return ()


@pytest.mark.parametrize("mode", ["keep", "recreate"])
def test_documented_locks(sample_dbs: tuple[str, str], tmp_path: Path, mode: str) -> None:
    """keep: SHARE ROW EXCLUSIVE (readers go on); recreate: ACCESS EXCLUSIVE on the
    tables whose foreign keys were dropped and on the tables they reference."""
    src, dst = sample_dbs
    spy = _LockSpy()
    import_archive(dst, _export(src, tmp_path), options=ImportOptions(constraints=mode), hooks=[spy])  # type: ignore[arg-type]
    tables = {"users", "documents", "document_versions", "document_workflows"}
    assert tables <= set(spy.modes)
    strongest = {t: "AccessExclusiveLock" in spy.modes[t] for t in tables}
    assert all(strongest.values()) if mode == "recreate" else not any(strongest.values())
    assert all("ShareRowExclusiveLock" in spy.modes[t] for t in tables)


def test_recreate_keeps_not_valid_and_deferrable_state(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    """A NOT VALID foreign key stays NOT VALID (its old rows are never checked), a
    DEFERRABLE one stays DEFERRABLE."""
    src, dst = sample_dbs
    _x(
        dst,
        "ALTER TABLE public.document_workflows DROP CONSTRAINT document_workflows_assignee_id_fkey",
        "ALTER TABLE public.document_workflows ADD CONSTRAINT document_workflows_assignee_id_fkey "
        "FOREIGN KEY (assignee_id) REFERENCES public.users (id) ON DELETE SET NULL NOT VALID",
    )
    fks = _q(dst, FK_QUERY)
    report = import_archive(dst, _export(src, tmp_path), options=ImportOptions(constraints="recreate"))
    assert report.committed
    assert any(p["step"] == "re-add fk document_workflows_assignee_id_fkey" for p in report.profile)
    after = _q(dst, FK_QUERY)
    assert after == fks
    assert any(
        r[1] == "document_workflows_assignee_id_fkey" and not r[3] and "NOT VALID" in r[2] for r in after
    )
    assert any("DEFERRABLE" in r[2] for r in after)


def test_pooled_session_that_used_temp_tables_still_imports(
    sample_dbs: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """temp_buffers cannot change once a session touched a temporary table (a pooled
    server connection may have): the setting is skipped, the import goes on."""
    src, dst = sample_dbs
    archive = _export(src, tmp_path)
    real_connect = load.connect

    def used_connect(dsn: str, **kw: Any) -> Any:
        conn = real_connect(dsn, **kw)
        conn.execute("SET temp_buffers = '16MB'")
        conn.execute("CREATE TEMP TABLE earlier_client (a int)")
        conn.execute("INSERT INTO earlier_client VALUES (1)")
        return conn

    monkeypatch.setattr(load, "connect", used_connect)
    report = import_archive(dst, archive, options=ImportOptions(temp_buffers="64MB"))
    assert report.committed and report.inserted > 0


def test_auto_keeps_the_keys_when_a_reader_holds_the_tables(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    """ACCESS EXCLUSIVE, needed to drop a foreign key, cannot be had while another session
    reads the table: the import does not fail, it keeps those keys (checked per row)."""
    src, dst = sample_dbs
    archive = _export(src, tmp_path)
    fks = _q(dst, FK_QUERY)
    with psycopg.connect(dst) as reader:
        reader.execute("SELECT count(*) FROM public.users").fetchone()  # holds ACCESS SHARE until rollback
        report = import_archive(dst, archive, options=ImportOptions(lock_timeout="1s"))
        reader.rollback()
    assert report.committed and report.inserted > 0
    assert any("foreign keys stay in place" in w for w in report.warnings), report.warnings
    assert not any(p["step"].startswith("drop fk") for p in report.profile)
    assert _q(dst, FK_QUERY) == fks


def test_keys_are_validated_with_fresh_statistics(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    """Before a loaded table's foreign keys are re-added, their columns are analyzed, so
    each validation is planned for the rows there now, not for the near-empty target's
    statistics (documents.parent_id: NULL in every row). Only those columns: the others
    keep the statistics they had."""
    src, dst = sample_dbs
    archive = tmp_path / "a.edmsdump"
    write_archive(src, load_mapping(sample_mapping_path()), archive)
    stats = "SELECT attname, null_frac FROM pg_stats WHERE schemaname = 'public' AND tablename = 'documents'"
    with psycopg.connect(dst, autocommit=True) as c:
        c.execute("ANALYZE public.documents")
        before = dict(c.execute(stats).fetchall())
    report = import_archive(dst, archive)
    analyzed = [p["table"] for p in report.profile if p["step"] == "analyze key columns"]
    assert "public.documents" in analyzed and len(analyzed) == len(set(analyzed))
    with psycopg.connect(dst, autocommit=True) as c:
        after = dict(c.execute(stats).fetchall())
        parents = c.execute("SELECT avg((parent_id IS NULL)::int)::real FROM public.documents").fetchone()
    assert before["parent_id"] == 1.0 and parents is not None
    assert abs(after["parent_id"] - parents[0]) < 0.05
    keys = {"parent_id", "owner_id", "current_version_id"}
    assert {k: v for k, v in after.items() if k not in keys} == {k: v for k, v in before.items() if k not in keys}
