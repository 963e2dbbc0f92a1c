"""Re-import sets unchanged rows aside before resolving them (``sqlgen.unchanged``):
the outcome must be exactly the import's without that shortcut, including rows the
target changed since the last import and references to rows renamed there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from edms_pgdump.demo import sample
from edms_pgdump.demo.resources import sample_mapping_path
from edms_pgdump.errors import ImportRejected
from edms_pgdump.export.write import write_archive
from edms_pgdump.load.transaction import ImportOptions
from edms_pgdump.load.transaction import load_archive as import_archive
from edms_pgdump.mapping import load_mapping
from edms_pgdump.program.unchanged import UnchangedSteps
from tests.support.db import db_digest, export_without_data_proofs

# what the target changed since the last import; the archive holds the old values
DRIFT = (
    # a plain column
    "UPDATE public.documents SET title = 'edited in the target' WHERE id % 17 = 0",
    # a referenced row's natural key: the rows pointing at it no longer read as the archive's
    "UPDATE public.users SET username = 'renamed-' || username WHERE username = 'user000001'",
    # a reference (parent), and one removed
    "UPDATE public.documents SET parent_id = NULL WHERE id % 13 = 0",
    # a row deleted: the archive's copy is new again
    "DELETE FROM public.document_workflows WHERE id % 19 = 0",
    # a reference through a two-level key (current version -> its document's number)
    "UPDATE public.documents d SET current_version_id = NULL WHERE id % 23 = 0",
)


def _x(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        for s in statements:
            c.execute(s.encode())


def _reinit(new_db: Any, sample_template: str) -> str:
    dsn: str = new_db(sample_template)
    with psycopg.connect(dsn, autocommit=True) as c:
        sample.reinitialise(c)
    return dsn


def _outcome(dsn: str) -> dict[str, Any]:
    """``db_digest``, except that the workflows deleted by DRIFT and inserted again may
    take the sequence's new ids in another order (the order a join returns the new rows
    in, which the shortcut's index lookups change): for them, the rows without their id,
    and the ids as a set. Nothing references a workflow."""
    digest: dict[str, Any] = db_digest(dsn)
    with psycopg.connect(dsn, autocommit=True) as c:
        digest["public.document_workflows"] = c.execute(
            "SELECT md5(string_agg(row(w.document_id, w.workflow_type, w.state, w.assignee_id, w.due_date)::text, "
            "',' ORDER BY row(w.document_id, w.workflow_type, w.state, w.assignee_id, w.due_date)::text)), "
            "md5(string_agg(w.id::text, ',' ORDER BY w.id)) FROM public.document_workflows AS w"
        ).fetchone()
    return digest


def _steps(report: Any, step: str) -> list[dict[str, Any]]:
    return [p for p in report.profile if p["step"] == step]


def test_reimport_of_the_same_archive_resolves_no_row(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, dst = sample_dbs
    archive = tmp_path / "a.edmsdump"
    write_archive(src, load_mapping(sample_mapping_path()), archive)
    first = import_archive(dst, archive)
    before = db_digest(dst)
    again = import_archive(dst, archive)
    # the staged rows are counted for the comparison's plan only where the target holds
    # them already: a first load keeps probing with them in archive order (new ids in order)
    assert not _steps(first, "analyze raw")
    assert {p["table"] for p in _steps(again, "analyze raw")} >= {"public.documents", "public.document_versions"}
    assert again.committed and again.ok and again.inserted == 0 and again.updated == 0
    assert all(t.unchanged == t.expected == t.present_after > 0 for t in again.tables)
    # every row was found unchanged up front; the key joins and the resolving saw none
    same = {p["table"]: p["rows"] for p in _steps(again, "unchanged")}
    assert same == {t.table: t.expected for t in again.tables}
    resolved = [p for p in again.profile if p["step"] in ("keyed", "keyed+final") and p.get("rows")]
    assert resolved == []
    assert db_digest(dst) == before
    # set aside beside the raw rows, in the import's private schema, which went with it
    assert again.staging["tables"] == "unlogged"
    with psycopg.connect(dst) as c:
        left = c.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname LIKE 'edms%' OR n.nspname LIKE 'edms_pgdump_stage%'"
        ).fetchall()
    assert left == []


def _again_with_and_without_the_shortcut(
    sample_dbs: tuple[str, str],
    new_db: Any,
    sample_template: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *drift: str,
) -> tuple[Any, Any, str, str]:
    """The source's archive imported into two targets, each then changed by ``drift``,
    and imported again: into ``fast`` as it is, into ``slow`` with no row set aside. The
    reports (each table's the same in both) and the two targets."""
    src, fast = sample_dbs
    slow = _reinit(new_db, sample_template)
    archive = tmp_path / "a.edmsdump"
    write_archive(src, load_mapping(sample_mapping_path()), archive)
    for dst in (fast, slow):
        assert import_archive(dst, archive).committed
        _x(dst, *drift)
    assert db_digest(fast) == db_digest(slow)
    shortcut = import_archive(fast, archive)
    with monkeypatch.context() as m:
        m.setattr(UnchangedSteps, "prunable", lambda self, name: False)
        plain = import_archive(slow, archive)
    assert not _steps(plain, "unchanged")
    assert shortcut.committed and plain.committed
    assert [t.to_dict() for t in shortcut.tables] == [t.to_dict() for t in plain.tables]
    return shortcut, plain, fast, slow


def test_rows_the_target_changed_are_imported_as_without_the_shortcut(
    sample_dbs: tuple[str, str], new_db: Any, sample_template: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shortcut, _plain, fast, slow = _again_with_and_without_the_shortcut(
        sample_dbs, new_db, sample_template, tmp_path, monkeypatch, *DRIFT
    )
    assert shortcut.updated > 0 and shortcut.inserted > 0  # the renamed user and deleted workflows
    assert _outcome(fast) == _outcome(slow)
    # the documents of the renamed user point at the archive's user again
    with psycopg.connect(fast, autocommit=True) as c:
        wrong = c.execute(
            "SELECT count(*) FROM public.documents d JOIN public.users u ON u.id = d.owner_id "
            "WHERE u.username LIKE 'renamed-%'"
        ).fetchone()
    assert wrong == (0,)
    # rows left to resolve: stored apart where few (1 workflow in 19, 1 user), else a view
    stored = {p["table"] for p in _steps(shortcut, "analyze rows to resolve")}
    assert {"public.document_workflows", "public.users"} <= stored and "public.documents" not in stored
    # only the drifted rows were resolved
    resolved = sum(p.get("rows", 0) for p in shortcut.profile if p["step"] in ("keyed", "keyed+final"))
    assert 0 < resolved < sum(t.expected for t in shortcut.tables) // 2


@pytest.mark.parametrize("twin_email", [None, "twin@example.org"])
def test_a_repeated_key_among_unchanged_rows_is_refused(
    sample_dbs: tuple[str, str], tmp_path: Path, twin_email: str | None
) -> None:
    """An archive that holds one user twice, both rows as the target holds it (or the
    second one different): the key is set aside once and resolved never, so the keyed
    rows fall short of the rows to resolve, and the import names the repeated key."""
    src, dst = sample_dbs
    archive = tmp_path / "a.edmsdump"
    mapping = load_mapping(sample_mapping_path())
    write_archive(src, mapping, archive)
    assert import_archive(dst, archive).committed
    email = "email" if twin_email is None else f"'{twin_email}'"
    _x(
        src,
        "ALTER TABLE public.users DROP CONSTRAINT users_username_key",
        f"INSERT INTO public.users (username, email, full_name, is_active, created_at) "
        f"SELECT username, {email}, full_name, is_active, created_at FROM public.users WHERE username = 'user000001'",
    )
    twice = tmp_path / "twice.edmsdump"
    with export_without_data_proofs():
        write_archive(src, mapping, twice)
    before = db_digest(dst)
    with pytest.raises(ImportRejected, match=r"public\.users: the archive holds duplicate natural keys \(username\): "
                       r"\(username='user000001'\); fix the source data"):
        import_archive(dst, twice, options=ImportOptions())
    assert db_digest(dst) == before


def test_a_target_that_holds_few_rows_is_not_compared_and_imports_as_without_the_shortcut(
    sample_dbs: tuple[str, str], new_db: Any, sample_template: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the target holds fewer than 1 row in 10 of the staged, the comparison is
    not run (it would hash every staged row to set a few aside): the target's rows are
    counted, ``same`` is made empty, and its rows are keyed and compared as before."""
    # 1 workflow in 20 is left, as the archive has it; nothing refers to workflows
    drift = ("DELETE FROM public.document_workflows WHERE id % 20 <> 0", "ANALYZE public.document_workflows")
    shortcut, _plain, fast, slow = _again_with_and_without_the_shortcut(
        sample_dbs, new_db, sample_template, tmp_path, monkeypatch, *drift
    )
    workflows = next(t for t in shortcut.tables if t.table == "public.document_workflows")
    assert 0 < workflows.unchanged < workflows.expected // 10 and workflows.inserted == workflows.expected - workflows.unchanged
    # counted, not compared: nothing set aside for the workflows; the other tables compared
    assert {p["table"] for p in _steps(shortcut, "target rows held")} == {"public.document_workflows"}
    same = {p["table"]: p.get("rows", 0) for p in _steps(shortcut, "unchanged")}
    assert same["public.document_workflows"] == 0 and same["public.documents"] > 0
    assert _outcome(fast) == _outcome(slow)
