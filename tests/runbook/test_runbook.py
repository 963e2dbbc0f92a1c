"""psql runbooks: export.sql + import.sql run with plain psql give exactly the state the
Python import gives, and any count mismatch or unresolved key stops psql with nothing
committed. Also the golden files in sql/ for config/edms.yaml."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from edms_pgdump import export_archive, import_archive
from edms_pgdump.archive.integrity import read_member_text
from edms_pgdump.archive.package import ArchiveReader
from edms_pgdump.catalog.read import read_catalog
from edms_pgdump.db import connect
from edms_pgdump.demo import sample
from edms_pgdump.demo.servers import Server
from edms_pgdump.errors import ImportRejected
from edms_pgdump.mapping import Mapping, load_mapping, load_mapping_text
from edms_pgdump.plan.build import build_plan
from edms_pgdump.runbook.scripts import COUNTS_FILE, data_file, runbook_text, write_runbooks
from edms_pgdump.sqlgen import export_query
from tests.support.psql import ROOT, run_psql
from tests.support.reg_schema import REG_MAPPING, REG_SCHEMA, REG_SOURCE_DATA, REG_TARGET_DATA


def state(dsn: str, mapping: Mapping, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every mapped table's rows with ids replaced by natural keys (the export query run on
    the target), plus raw rows of ``extra`` tables; surrogate ids are left out."""
    with connect(dsn) as conn:
        plan = build_plan(mapping, read_catalog(conn))
        out: dict[str, Any] = {}
        for tp in plan.exported:
            rows = conn.execute(export_query(plan, tp)).fetchall()
            out[str(tp.table)] = sorted(rows, key=repr)
        for t in extra:
            out[t] = sorted(conn.execute(f"SELECT note FROM {t}").fetchall())  # test constant
        return out


def make_db(new_db: Any, schema: str, data: str) -> str:
    dsn = new_db()
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(schema.encode())
        c.execute(data.encode())
    return dsn


def roundtrip(tmp_path: Path, server: Server, src: str, targets: tuple[str, str], mapping: Mapping) -> Path:
    """Python export+import into targets[0]; psql export.sql+import.sql into targets[1]."""
    archive = tmp_path / "a.edmsdump"
    export_archive(src, mapping, archive, compression="none")
    report = import_archive(targets[0], archive)
    assert report.committed and report.ok
    scripts = tmp_path / "scripts"
    write_runbooks(src, mapping, ["export"], scripts)
    write_runbooks(targets[1], mapping, ["import"], scripts)
    data = tmp_path / "data"
    data.mkdir()
    res = run_psql(server, src, scripts / "export.sql", data)
    assert res.returncode == 0, res.stderr
    with ArchiveReader(archive) as reader:
        for i, t in enumerate(reader.manifest.tables, start=1):
            # the archive member's lines, byte for byte: same statement, same session settings
            # (in the order the plan happened to return them: an unsorted export has none)
            assert sorted((data / data_file(i)).read_bytes().splitlines()) == sorted(
                read_member_text(reader, t).splitlines()
            ), t.table
            counts = (data / COUNTS_FILE).read_text().splitlines()[i - 1].split("\t")
            assert (counts[0], counts[2]) == (str(i), str(t.rows))
    res = run_psql(server, targets[1], scripts / "import.sql", data)
    assert res.returncode == 0, res.stderr
    return data


def test_sample_runbooks_match_the_python_import(
    tmp_path: Path, pg_server: Server, new_db: Any, sample_dbs: tuple[str, str], sample_template: str
) -> None:
    src, dst_py = sample_dbs
    dst_psql = new_db(sample_template)
    with psycopg.connect(dst_psql, autocommit=True) as c:
        sample.reinitialise(c)
    mapping = load_mapping(ROOT / "config" / "edms.yaml")
    data = roundtrip(tmp_path, pg_server, src, (dst_py, dst_psql), mapping)
    after = state(dst_psql, mapping)
    assert after == state(dst_py, mapping)
    assert len(after["public.documents"]) == 200 + 4  # 200 imported beside 4 legacy rows
    src_rows = set(map(tuple, state(src, mapping)["public.document_workflows"]))
    assert src_rows <= set(map(tuple, after["public.document_workflows"]))
    # a second run changes nothing and still balances
    res = run_psql(pg_server, dst_psql, tmp_path / "scripts" / "import.sql", data)
    assert res.returncode == 0, res.stderr
    assert "public.documents          |      200 |    200 |        0 |       0 |       200" in res.stdout
    assert state(dst_psql, mapping) == after
    # the target changed a few workflows: the rows left are stored apart and updated with
    # sequential scans off (the library's program, rendered for psql), back to the archive
    with psycopg.connect(dst_psql, autocommit=True) as c:
        changed = c.execute(
            "UPDATE public.document_workflows AS w SET state = 'edited' FROM public.documents AS d "
            "WHERE d.id = w.document_id AND w.id % 20 = 0 AND d.document_number NOT LIKE 'legacy-%'"
        ).rowcount
    assert 0 < changed <= 200 // 10
    res = run_psql(pg_server, dst_psql, tmp_path / "scripts" / "import.sql", data)
    assert res.returncode == 0, res.stderr
    assert f"public.document_workflows |      200 |    200 |        0 | {changed:7d} |" in res.stdout
    assert state(dst_psql, mapping) == after


def test_reg_schema_runbooks_match_the_python_import(tmp_path: Path, pg_server: Server, new_db: Any) -> None:
    mapping = load_mapping_text(REG_MAPPING)
    src = make_db(new_db, REG_SCHEMA, REG_SOURCE_DATA)
    dst_py = make_db(new_db, REG_SCHEMA, REG_TARGET_DATA)
    dst_psql = make_db(new_db, REG_SCHEMA, REG_TARGET_DATA)
    roundtrip(tmp_path, pg_server, src, (dst_py, dst_psql), mapping)
    after = state(dst_psql, mapping, ("reg.audit_log",))
    assert after == state(dst_py, mapping, ("reg.audit_log",))
    assert after["reg.audit_log"] == [("target only",)]  # the unmapped table is untouched
    assert ("FR", "A1", "Alpha") in after["reg.party"]  # updated by natural key
    contracts = {(r[0], r[1], r[2]): r for r in after['reg."Contract"']}
    # self-reference resolved through the composite key of the parent
    assert contracts[("FR", "C3", "Z'9")][4:] == ("FR", "A1", "K-2")
    teams = {r[0]: r[1:] for r in after["reg.team"]}
    assert teams["red"] == ("red", "alice") and teams["blue"] == ("blue", "carol")  # second pass
    assert teams["green"] == (None, None)
    with psycopg.connect(dst_psql) as c:
        assert c.execute("SELECT count(*) FROM reg.team WHERE lead_id IS NOT NULL").fetchone() == (2,)


def _broken_run(
    tmp_path: Path, pg_server: Server, sample_dbs: tuple[str, str], damage: Any
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], dict[str, Any]]:
    src, dst = sample_dbs
    mapping = load_mapping(ROOT / "config" / "edms.yaml")
    write_runbooks(src, mapping, ["export", "import"], tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    assert run_psql(pg_server, src, tmp_path / "export.sql", data).returncode == 0
    damage(data)
    before = state(dst, mapping)
    res = run_psql(pg_server, dst, tmp_path / "import.sql", data)
    return res, before, state(dst, mapping)


def test_unresolved_key_stops_psql_with_nothing_committed(
    tmp_path: Path, pg_server: Server, sample_dbs: tuple[str, str]
) -> None:
    def damage(data: Path) -> None:
        docs = data / data_file(2)
        lines = docs.read_text().splitlines(keepends=True)
        cols = lines[0].split("\t")
        cols[2] = "ghost"  # owner_id.username
        lines[0] = "\t".join(cols)
        docs.write_text("".join(lines))

    res, before, after = _broken_run(tmp_path, pg_server, sample_dbs, damage)
    assert res.returncode == 3
    assert (
        "public.documents: 1 unresolved reference(s) through documents_owner_id_fkey "
        '(owner_id -> public.users): {"owner_id.username": "ghost"}; those rows of public.users '
        "are neither in the archive nor in the target" in res.stderr
    )
    assert after == before


def test_count_mismatch_stops_psql_with_nothing_committed(
    tmp_path: Path, pg_server: Server, sample_dbs: tuple[str, str]
) -> None:
    def damage(data: Path) -> None:
        versions = data / data_file(3)
        versions.write_text("".join(versions.read_text().splitlines(keepends=True)[1:]))

    res, before, after = _broken_run(tmp_path, pg_server, sample_dbs, damage)
    assert res.returncode == 3
    assert (
        "public.document_versions: staged 399 rows but the manifest says 400; "
        "the archive is inconsistent, re-export it" in res.stderr
    )
    assert after == before


def test_duplicate_key_stops_psql_with_nothing_committed(
    tmp_path: Path, pg_server: Server, sample_dbs: tuple[str, str]
) -> None:
    def damage(data: Path) -> None:
        users = data / data_file(1)
        lines = users.read_text().splitlines(keepends=True)
        users.write_text("".join([*lines, lines[0]]))
        counts = (data / COUNTS_FILE).read_text().replace("public.users\t10", "public.users\t11")
        (data / COUNTS_FILE).write_text(counts)

    res, before, after = _broken_run(tmp_path, pg_server, sample_dbs, damage)
    assert res.returncode == 3
    assert (
        'public.users: the archive holds duplicate natural keys (username): {"username": "user000001"} '
        "2 times; fix the source data" in res.stderr
    )
    assert after == before


def test_columns_in_another_order_stop_psql_with_nothing_committed(
    tmp_path: Path, pg_server: Server, sample_dbs: tuple[str, str]
) -> None:
    def damage(data: Path) -> None:  # as if the source had its columns in another order
        counts = (data / COUNTS_FILE).read_text().replace('["username", "email"', '["email", "username"')
        (data / COUNTS_FILE).write_text(counts)

    res, before, after = _broken_run(tmp_path, pg_server, sample_dbs, damage)
    assert res.returncode == 3
    assert (
        'the data files do not have the columns this script loads: public.users was exported with ["email", '
        '"username", "full_name", "is_active", "created_at"] but is loaded as ["username", "email", '
        '"full_name", "is_active", "created_at"]; migrate the schemas to match' in res.stderr
    )
    assert after == before


def test_lookup_table_resolves_in_the_target_like_the_python_import(
    tmp_path: Path, pg_server: Server, new_db: Any
) -> None:
    mapping = load_mapping_text(
        REG_MAPPING.replace("{natural_key: [country, code]}", "{natural_key: [country, code], export: false}")
    )
    target = (
        REG_TARGET_DATA
        + "INSERT INTO reg.party (country, code, name) VALUES ('DE', 'B2', 'b'), ('FR', 'C3', 'c');"
    )
    src = make_db(new_db, REG_SCHEMA, REG_SOURCE_DATA)
    dst_py = make_db(new_db, REG_SCHEMA, target)
    dst_psql = make_db(new_db, REG_SCHEMA, target)
    roundtrip(tmp_path, pg_server, src, (dst_py, dst_psql), mapping)
    after = state(dst_psql, mapping)
    assert after == state(dst_py, mapping)
    assert "reg.party" not in after and len(after['reg."Contract"']) == 5
    with psycopg.connect(dst_psql) as c:  # the lookup table itself is not written
        assert c.execute("SELECT name FROM reg.party WHERE code = 'A1'").fetchone() == ("Old Alpha",)


HOSTILE_SCHEMA = """
CREATE SCHEMA "Odd'Schema";
CREATE TABLE "Odd'Schema"."Par $edms$ :x" (id serial PRIMARY KEY, "Key; --" text NOT NULL UNIQUE);
CREATE TABLE "Odd'Schema"."child\\x" (
    id serial PRIMARY KEY, k text NOT NULL UNIQUE,
    ":ROW_COUNT" integer REFERENCES "Odd'Schema"."Par $edms$ :x" (id), "a""b" text);
"""
HOSTILE_DATA = """
INSERT INTO "Odd'Schema"."Par $edms$ :x" ("Key; --") VALUES ('p''1'), ('p\\2');
INSERT INTO "Odd'Schema"."child\\x" (k, ":ROW_COUNT", "a""b")
    SELECT 'c' || id, id, E'tab\\there' FROM "Odd'Schema"."Par $edms$ :x";
"""
HOSTILE_MAPPING = """
version: 1
tables:
  '"Odd''Schema"."Par $edms$ :x"': {natural_key: ['Key; --']}
  '"Odd''Schema"."child\\x"': {natural_key: [k]}
"""


def test_hostile_identifiers_survive_psql(tmp_path: Path, pg_server: Server, new_db: Any) -> None:
    mapping = load_mapping_text(HOSTILE_MAPPING)
    src = make_db(new_db, HOSTILE_SCHEMA, HOSTILE_DATA)
    dst_py = make_db(new_db, HOSTILE_SCHEMA, "")
    dst_psql = make_db(new_db, HOSTILE_SCHEMA, "")
    roundtrip(tmp_path, pg_server, src, (dst_py, dst_psql), mapping)
    after = state(dst_psql, mapping)
    assert after == state(dst_py, mapping) == state(src, mapping)
    assert "$edms1$" in (tmp_path / "scripts" / "import.sql").read_text()


@pytest.mark.parametrize("policy", ["skip", "error"])
def test_on_conflict_policies_match_the_python_import(
    policy: str, tmp_path: Path, pg_server: Server, new_db: Any
) -> None:
    mapping = load_mapping_text(
        REG_MAPPING.replace(
            "{natural_key: [country, code]}", f"{{natural_key: [country, code], on_conflict: {policy}}}"
        )
    )
    src = make_db(new_db, REG_SCHEMA, REG_SOURCE_DATA)
    dst_py = make_db(new_db, REG_SCHEMA, REG_TARGET_DATA)
    dst_psql = make_db(new_db, REG_SCHEMA, REG_TARGET_DATA)
    if policy == "skip":
        roundtrip(tmp_path, pg_server, src, (dst_py, dst_psql), mapping)
        after = state(dst_psql, mapping)
        assert after == state(dst_py, mapping)
        assert ("FR", "A1", "Old Alpha") in after["reg.party"]  # existing row kept as it was
        return
    with pytest.raises(ImportRejected, match=r"^reg\.party: 1 existing row\(s\) differ from the archive"):
        roundtrip(tmp_path, pg_server, src, (dst_py, dst_psql), mapping)
    before = state(dst_psql, mapping)
    write_runbooks(src, mapping, ["export"], tmp_path / "scripts")
    write_runbooks(dst_psql, mapping, ["import"], tmp_path / "scripts")
    data = tmp_path / "data2"
    data.mkdir()
    assert run_psql(pg_server, src, tmp_path / "scripts" / "export.sql", data).returncode == 0
    res = run_psql(pg_server, dst_psql, tmp_path / "scripts" / "import.sql", data)
    assert res.returncode == 3
    assert (
        'reg.party: 1 existing row(s) differ from the archive and on_conflict is error: {"code": "A1", '
        '"country": "FR"}; use --on-conflict update or skip to proceed' in res.stderr
    )
    assert state(dst_psql, mapping) == before


@pytest.mark.parametrize("kind", ["export", "import"])
def test_golden_runbooks(
    kind: str, new_db: Any, sample_template: str, request: pytest.FixtureRequest
) -> None:
    mapping = load_mapping(ROOT / "config" / "edms.yaml")
    with connect(new_db(sample_template)) as conn:
        catalog = read_catalog(conn)
    plan = build_plan(mapping, catalog)
    text = runbook_text("export" if kind == "export" else "import", plan, mapping, catalog)
    golden = ROOT / "sql" / f"{kind}.sql"
    if request.config.getoption("--update-golden"):
        golden.write_text(text)
    assert golden.exists(), "run pytest --update-golden to create it"
    assert text == golden.read_text(), f"{golden} is stale; regenerate with pytest --update-golden"


def test_plan_cli_shows_order_expansions_broken_edges_and_sql(new_db: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edms_pgdump.cli import app

    dsn = make_db(new_db, REG_SCHEMA, REG_SOURCE_DATA)
    mapping = tmp_path / "reg.yaml"
    mapping.write_text(REG_MAPPING)
    res = CliRunner().invoke(app, ["plan", "--dsn", dsn, "-m", str(mapping), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["load_order"] == ["reg.party", 'reg."Contract"', "reg.team", "reg.member"]
    contract = next(t for t in info["tables"] if t["table"] == 'reg."Contract"')
    assert contract["key_fields"] == [
        "(party_country,party_code).country",
        "(party_country,party_code).code",
        "Number",
    ]
    party_fk = next(e for e in contract["expansions"] if e["constraint"] == "contract_party_fk")
    assert party_fk["columns"] == ["party_country", "party_code"]
    assert party_fk["ref_columns"] == ["country", "code"]
    assert contract["export_sql"].startswith('COPY (SELECT "r1"."country", "r1"."code", t."Number"')
    steps = {(s["phase"], s["table"]) for s in info["import_steps"]}
    assert ("second_pass", "reg.team") in steps
    second = next(s["sql"] for s in info["import_steps"] if s["phase"] == "second_pass")
    assert second.startswith('UPDATE "reg"."team" AS t SET "lead_id" = f."lead_id"')
    res = CliRunner().invoke(app, ["plan", "--dsn", dsn, "-m", str(mapping), "--no-sql"])
    assert res.exit_code == 0, res.output
    assert (
        "cycle reg.team <-> reg.member: breaks reg.team (lead_id) -> reg.member [team_lead_fk]: "
        "inserted as NULL, filled by an UPDATE once the referenced rows exist" in res.output
    )
    assert "lead_id -> reg.member as lead_id.team_id.name, lead_id.login [second_pass]" in res.output


def test_sql_cli_writes_the_runbook_and_refuses_an_unsafe_plan(new_db: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edms_pgdump.cli import app

    dsn = make_db(new_db, REG_SCHEMA, REG_SOURCE_DATA)
    mapping = tmp_path / "reg.yaml"
    mapping.write_text(REG_MAPPING)
    res = CliRunner().invoke(
        app, ["sql", "import", "--dsn", dsn, "-m", str(mapping), "-o", str(tmp_path / "rb")]
    )
    assert res.exit_code == 0, res.output
    with connect(dsn) as conn:
        catalog = read_catalog(conn)
    plan = build_plan(load_mapping_text(REG_MAPPING), catalog)
    written = (tmp_path / "rb" / "import.sql").read_text()
    assert written == runbook_text("import", plan, load_mapping_text(REG_MAPPING), catalog)
    assert not (tmp_path / "rb" / "export.sql").exists()
    res = CliRunner().invoke(
        app, ["sql", "import", "--dsn", dsn, "-m", str(mapping), "--lock-timeout", "5s", "--json"]
    )
    assert res.exit_code == 0, res.output
    script = json.loads(res.output)["script"]
    assert "SET LOCAL \"lock_timeout\" = '5s';" in script
    assert script.replace("'5s'", "'30s'") == written
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(
            "CREATE TABLE reg.note (id serial PRIMARY KEY, ref text UNIQUE NOT NULL,"
            " log_id integer REFERENCES reg.audit_log (id))"
        )
    mapping.write_text(REG_MAPPING + "  reg.note: {natural_key: [ref]}\n")
    res = CliRunner().invoke(app, ["sql", "export", "--dsn", dsn, "-m", str(mapping)])
    assert res.exit_code == 1
    assert (
        "error: reg.note.log_id: foreign key note_log_id_fkey (log_id) references reg.audit_log" in res.output
    )
    res = CliRunner().invoke(app, ["sql", "both", "--dsn", dsn, "-m", str(mapping)])
    assert res.exit_code == 2


def test_import_script_runs_the_library_program_verbatim(new_db: Any, sample_template: str) -> None:
    """The runbook is a rendering of the same program the library runs: every statement
    of the program appears in it, in the program's order."""
    from edms_pgdump import sqlgen as g
    from edms_pgdump.program.build import Execute, import_program

    mapping = load_mapping(ROOT / "config" / "edms.yaml")
    with connect(new_db(sample_template)) as conn:
        catalog = read_catalog(conn)
    plan = build_plan(mapping, catalog)
    text = runbook_text("import", plan, mapping, catalog)
    program = import_program(plan, catalog)
    statements = [g.render(s.statement) + ";" for s in program.walk() if isinstance(s, Execute)]
    assert len(statements) > 20
    position = 0
    for stmt in statements:
        found = text.find(stmt, position)
        assert found >= 0, f"not in the runbook, or out of order: {stmt[:120]}"
        position = found + len(stmt)
    # the deferred cycle edge is deferred and checked again within its component
    assert text.index(g.render(g.set_all_constraints("DEFERRED"))) < text.index(
        g.render(g.set_all_constraints("IMMEDIATE"))
    )
