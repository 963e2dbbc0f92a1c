"""Messages that say only what is true: "nothing to change" only when nothing differs or
goes, verify blaming the database (exit 3) and not the archive, the --max-deletes refusal
giving the total, a defeated subset filter said, schema drift fixed by the importer first,
no internal names or Python values, tree roots not warned about, one line per message, and
an interrupt that says what moved."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
import typer
from typer.testing import CliRunner

from edms_pgdump.cli import app
from edms_pgdump.cli.app import INTERRUPTED, run
from edms_pgdump.demo.resources import sample_mapping_path
from tests.support.real_schemas import make_db

runner = CliRunner()
NOTHING = "nothing to change: the target already holds this archive's data"


def _export(src: str, archive: Path, mapping: Path | None = None, *extra: str) -> Path:
    m = str(mapping or sample_mapping_path())
    res = runner.invoke(app, ["export", "-d", src, "-m", m, "-o", str(archive), *extra])
    assert res.exit_code == 0, res.output
    return archive


def _sql(dsn: str, *stmts: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        for s in stmts:
            c.execute(s.encode())


def test_nothing_to_change_only_when_true(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, dst = sample_dbs
    archive = _export(src, tmp_path / "a.edms")
    assert runner.invoke(app, ["import", str(archive), "-d", dst]).exit_code == 0
    again = runner.invoke(app, ["import", str(archive), "-d", dst])
    assert again.exit_code == 0 and NOTHING in again.stdout
    # rows that --delete-missing would delete: not "nothing to change", next to "N deleted"
    mirror = runner.invoke(
        app, ["import", str(archive), "-d", dst, "--delete-missing", "--max-deletes", "all", "--dry-run"]
    )
    assert mirror.exit_code == 0, mirror.output
    assert (
        "0 inserted, 0 updated, " in mirror.stdout
        and " deleted (would be applied)" in mirror.stdout
        and NOTHING not in mirror.stdout
    )
    # a row left different by --on-conflict skip: not "nothing to change"
    _sql(
        dst,
        "UPDATE public.users SET full_name = 'changed' WHERE id = "
        "(SELECT min(id) FROM public.users WHERE username NOT LIKE 'legacy%')",
    )
    skipped = runner.invoke(app, ["import", str(archive), "-d", dst, "--on-conflict", "skip"])
    assert skipped.exit_code == 0, skipped.output
    assert NOTHING not in skipped.stdout and "skipped" in skipped.stdout


def test_verify_blames_the_database_with_exit_3(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, dst = sample_dbs
    archive = _export(src, tmp_path / "a.edms")
    same = runner.invoke(app, ["verify", str(archive), "-d", src])
    assert same.exit_code == 0, same.output
    assert same.stdout.splitlines()[-1] == "archive OK and the database matches it"
    lacking = runner.invoke(app, ["verify", str(archive), "-d", dst])
    assert lacking.exit_code == 3, lacking.output
    last = lacking.stdout.splitlines()[-1]
    assert last.startswith("archive OK; the database ") and last.endswith("does NOT hold the archive's data")
    assert "FAILED" not in lacking.stdout
    alone = runner.invoke(app, ["verify", str(archive)])
    assert alone.exit_code == 0 and alone.stdout.splitlines()[-1] == "archive OK"


def test_max_deletes_refusal_gives_the_total(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, dst = sample_dbs
    archive = _export(src, tmp_path / "a.edms")
    assert runner.invoke(app, ["import", str(archive), "-d", dst]).exit_code == 0
    _sql(
        dst,
        "INSERT INTO public.users (username, email, full_name) "
        "SELECT 'extra' || g, 'e' || g || '@x', 'E' FROM generate_series(1, 3) g",
    )
    with psycopg.connect(dst) as c:  # the re-initialised target's own users, and the 3 added
        row = c.execute(
            "SELECT count(*) FROM public.users WHERE username LIKE 'legacy%' OR username LIKE 'extra%'"
        )
        extra = int(row.fetchone()[0])  # type: ignore[index]
    res = runner.invoke(app, ["import", str(archive), "-d", dst, "--delete-missing", "--max-deletes", "2"])
    assert res.exit_code == 1, res.output
    lines = res.stderr.splitlines()
    assert lines[0].startswith(
        f"error: public.users: {extra} row(s) the archive does not hold would be deleted"
    )
    assert "the tables named together are over --max-deletes 2, so nothing was written" in lines[0]
    total = sum(int(ln.split(" row(s)")[0].rsplit(" ", 1)[-1]) for ln in lines if " row(s) the archive" in ln)
    assert total >= extra and lines[-1] == f"  in all: {total} row(s) would be deleted"
    doc = json.loads(
        runner.invoke(
            app, ["import", str(archive), "-d", dst, "--delete-missing", "--max-deletes", "2", "--json"]
        ).stdout
    )
    assert doc["deletions_total"] == total


def test_a_defeated_subset_filter_is_said_in_the_summary_and_inspect(new_db, tmp_path: Path) -> None:
    src = make_db(
        new_db,
        "CREATE TABLE customers (id serial PRIMARY KEY, email text UNIQUE NOT NULL)",
        "CREATE TABLE orders (id serial PRIMARY KEY, ref text UNIQUE NOT NULL,"
        " customer_id int NOT NULL REFERENCES customers (id))",
        "INSERT INTO customers (email) SELECT 'cust' || g FROM generate_series(1, 30) g",
        "INSERT INTO orders (ref, customer_id) SELECT 'o' || g, g FROM generate_series(1, 30) g",
    )
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "version: 1\ntables:\n  public.customers: {natural_key: [email]}\n  public.orders: {natural_key: [ref]}\n"
    )
    archive = tmp_path / "a.edms"
    res = runner.invoke(
        app,
        [
            "export",
            "-d",
            src,
            "-m",
            str(mapping),
            "-o",
            str(archive),
            "--where",
            "public.customers",
            "email LIKE 'cust1%'",
        ],
    )
    assert res.exit_code == 0, res.output
    note = (
        "note: public.customers: the filter matched 11 row(s), but 30 were exported: the others are "
        "needed by rows of other tables"
    )
    assert note in res.stdout
    shown = runner.invoke(app, ["inspect", str(archive)])
    assert shown.exit_code == 0, shown.output
    assert "subset: public.customers where email LIKE 'cust1%'" in shown.stdout
    assert "rows chosen by" in shown.stdout and note in shown.stdout


TREE = (
    "CREATE TABLE folder (id serial PRIMARY KEY, parent_id int REFERENCES folder (id), name text NOT NULL,"
    " UNIQUE NULLS NOT DISTINCT (parent_id, name))",
    "CREATE TABLE item (id serial PRIMARY KEY, code text UNIQUE NOT NULL, folder_id int REFERENCES folder (id),"
    " extra text)",
)
TREE_MAPPING = (
    "version: 1\ntables:\n  public.folder: {natural_key: [parent_id, name]}\n"
    "  public.item: {natural_key: [code]}\n"
)


@pytest.fixture
def tree(new_db, tmp_path: Path) -> tuple[str, str, Path]:
    src = make_db(
        new_db,
        *TREE,
        "INSERT INTO folder (parent_id, name) VALUES (NULL, 'Local root')",
        "INSERT INTO folder (parent_id, name) VALUES (1, 'child')",
        "INSERT INTO item (code, folder_id, extra) VALUES ('a', 1, E'two\\nlines'), ('b', 2, 'y')",
    )
    dst = make_db(new_db, *TREE)
    mapping = tmp_path / "m.yaml"
    mapping.write_text(TREE_MAPPING)
    return src, dst, mapping


def test_tree_roots_get_no_null_key_warning_and_diff_shows_no_internals(
    tree: tuple[str, str, Path], tmp_path: Path
) -> None:
    src, dst, mapping = tree
    res = runner.invoke(app, ["check", "-d", src, "-m", str(mapping)])
    assert res.exit_code == 0, res.output
    assert "key-null-data" not in res.stdout and "0 warning(s)" in res.stdout
    archive = _export(src, tmp_path / "a.edms", mapping)
    _sql(dst, "INSERT INTO folder (parent_id, name) VALUES (NULL, 'Local root')")
    _sql(dst, "UPDATE folder SET name = 'Local root' WHERE parent_id IS NULL")
    diff = runner.invoke(app, ["diff", str(archive), "-d", dst])
    assert diff.exit_code == 1, diff.output
    assert "public.folder only in archive: parent_id=Local root, name=child" in diff.stdout
    for leak in ("#path", "[[", "None", "=None"):
        assert leak not in diff.stdout, (leak, diff.stdout)


def test_schema_drift_has_one_error_prefix_and_the_importer_fix_first(
    tree: tuple[str, str, Path], tmp_path: Path
) -> None:
    src, dst, mapping = tree
    archive = _export(src, tmp_path / "a.edms", mapping)
    _sql(dst, "DROP TABLE item")
    res = runner.invoke(app, ["import", str(archive), "-d", dst])
    assert res.exit_code == 1
    (line,) = res.stderr.splitlines()
    assert line == (
        f"error: {archive}: public.item: table is in the archive but not in the target database; leave it "
        "out with --skip-table public.item (the other tables are imported), or create it first"
    )
    _sql(
        dst,
        "CREATE TABLE item (id serial PRIMARY KEY, code text UNIQUE NOT NULL, folder_id int REFERENCES folder (id))",
    )
    res = runner.invoke(app, ["import", str(archive), "-d", dst])
    (line,) = res.stderr.splitlines()
    assert (
        "archive field extra has no matching column or foreign key in the target; leave it out with "
        "--ignore-column public.item.extra" in line
    )
    assert line.count("error:") == 1


def test_values_with_newlines_stay_on_one_line(new_db, tmp_path: Path) -> None:
    src = make_db(
        new_db,
        "CREATE TABLE notes (id serial PRIMARY KEY, title text NOT NULL)",
        "INSERT INTO notes (title) VALUES (E'two\\nlines'), (E'two\\nlines')",
    )
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\ntables:\n  public.notes: {natural_key: [title]}\n")
    res = runner.invoke(app, ["check", "-d", src, "-m", str(mapping)])
    assert res.exit_code == 1, res.output
    for ln in res.stdout.splitlines():
        assert (
            ln.startswith(("error:", "warning:", "    fix:", "[local]", "127.", "self", "    ")) or ":" in ln
        )
    dup = [ln for ln in res.stdout.splitlines() if "two" in ln]
    assert dup and all("two\\nlines" in ln for ln in dup), res.stdout


def test_an_interrupt_says_sequences_may_have_moved(capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(typer.Exit) as exc:
        run(interrupted)
    assert exc.value.exit_code == 130
    assert "nothing was committed" in INTERRUPTED and "sequences" in INTERRUPTED
    assert capsys.readouterr().err.replace("\n", " ").startswith("interrupted: nothing was committed")


def test_check_archive_honours_raw_columns(new_db, tmp_path: Path) -> None:
    src = make_db(
        new_db,
        "CREATE TABLE users (id serial PRIMARY KEY, username text UNIQUE NOT NULL)",
        "CREATE TABLE notes (id serial PRIMARY KEY, ref text UNIQUE NOT NULL, owner_id int)",
        "INSERT INTO users (username) VALUES ('a')",
        "INSERT INTO notes (ref, owner_id) VALUES ('n1', 1)",
    )
    found = {}
    for raw in ("", ", raw_columns: [owner_id]"):
        mapping = tmp_path / f"m{len(raw)}.yaml"
        mapping.write_text(
            "version: 1\ntables:\n  public.users: {natural_key: [username]}\n"
            f"  public.notes: {{natural_key: [ref]{raw}}}\n"
        )
        archive = _export(src, tmp_path / f"a{len(raw)}.edms", mapping)
        res = runner.invoke(app, ["check", str(archive), "--json"])
        found[raw] = [p["code"] for p in json.loads(res.stdout)["problems"] if p.get("column") == "owner_id"]
    assert found[""] == ["id-without-fk"]  # the check can fail: an undeclared id column is found
    assert found[", raw_columns: [owner_id]"] == []


def test_delete_missing_has_a_default_guard_per_table(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, dst = sample_dbs
    archive = _export(src, tmp_path / "a.edms")
    # the re-initialised target holds 3 users of its own; with the archive's 10, 3 of 13 go: 23%
    res = runner.invoke(app, ["import", str(archive), "-d", dst, "--delete-missing"])
    assert res.exit_code == 1, res.output
    first = res.stderr.splitlines()[0]
    assert first.startswith("error: public.users: 3 row(s) the archive does not hold would be deleted: ")
    assert "more than 10% of the table's rows in the target (the default guard of --delete-missing)" in first
    with psycopg.connect(dst) as c:
        assert c.execute("SELECT count(*) FROM public.users WHERE username LIKE 'legacy%'").fetchone() == (3,)
        assert c.execute(
            "SELECT count(*) FROM public.documents WHERE document_number NOT LIKE 'legacy%'"
        ).fetchone() == (0,)
    # --max-deletes all opts out; an explicit --max-deletes replaces the guard
    assert (
        runner.invoke(
            app, ["import", str(archive), "-d", dst, "--delete-missing", "--max-deletes", "all"]
        ).exit_code
        == 0
    )
    with psycopg.connect(dst) as c:
        assert c.execute("SELECT count(*) FROM public.users WHERE username LIKE 'legacy%'").fetchone() == (0,)


def test_import_sql_has_the_same_default_guard(
    sample_dbs: tuple[str, str], pg_server, tmp_path: Path
) -> None:
    from tests.support.psql import run_psql

    src, dst = sample_dbs
    scripts, data = tmp_path / "scripts", tmp_path / "data"
    data.mkdir()
    m = str(sample_mapping_path())
    assert runner.invoke(app, ["sql", "export", "-d", src, "-m", m, "-o", str(scripts)]).exit_code == 0
    res = runner.invoke(app, ["sql", "import", "-d", dst, "-m", m, "-o", str(scripts), "--delete-missing"])
    assert res.exit_code == 0, res.output
    assert run_psql(pg_server, src, scripts / "export.sql", data).returncode == 0
    ran = run_psql(pg_server, dst, scripts / "import.sql", data)
    assert ran.returncode == 3, ran.stdout + ran.stderr
    assert "public.users: 3 row(s) the archive does not hold would be deleted" in ran.stderr
    assert "more than 10% of the table's rows in the target" in ran.stderr
    with psycopg.connect(dst) as c:  # nothing committed
        assert c.execute(
            "SELECT count(*) FROM public.documents WHERE document_number NOT LIKE 'legacy%'"
        ).fetchone() == (0,)
