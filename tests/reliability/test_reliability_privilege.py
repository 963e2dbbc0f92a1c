"""Suite 6: least privilege. Export as a role holding only pg_read_all_data, import as a
role that owns nothing (INSERT/UPDATE/SELECT, TEMP, sequence USAGE), never a superuser.
Row-level security that would hide rows is refused, not exported (or matched) partially."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from edms_pgdump import DatabaseError, export_archive, import_archive, load_mapping
from tests.support.db import db_digest, manifest, member_texts

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "config" / "edms.yaml"


class Roles:
    def __init__(self, admin: psycopg.Connection) -> None:
        self.admin = admin
        self.created: list[str] = []
        self.dbs: list[str] = []

    def create(self, prefix: str, *grants_in_role: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE").format(sql.Identifier(name))
        )
        for g in grants_in_role:
            self.admin.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(g), sql.Identifier(name)))
        self.created.append(name)
        return name

    def touch(self, dsn: str) -> None:
        self.dbs.append(dsn)


@pytest.fixture
def roles(admin) -> Iterator[Roles]:
    r = Roles(admin)
    yield r
    for dsn in r.dbs:
        try:
            with psycopg.connect(dsn, autocommit=True) as c:
                for name in r.created:
                    c.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        except psycopg.OperationalError:
            pass
    for name in r.created:
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def as_role(dsn: str, role: str) -> str:
    params = conninfo_to_dict(dsn)
    params.pop("password", None)
    return make_conninfo(**{**params, "user": role})


def _is_superuser(dsn: str) -> bool:
    with psycopg.connect(dsn) as c:
        return c.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (True,)


def _grant_import(dsn: str, role: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        db = c.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
        r = sql.Identifier(role)
        c.execute(sql.SQL("GRANT CONNECT, TEMP ON DATABASE {} TO {}").format(sql.Identifier(db), r))
        c.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(r))
        c.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {}").format(r))
        c.execute(sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {}").format(r))


def _counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as c:
        return {
            t: int(c.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
            for t in (
                "public.users",
                "public.documents",
                "public.document_versions",
                "public.document_workflows",
            )
        }


def test_export_with_only_pg_read_all_data(sample_dbs, roles: Roles, tmp_path: Path) -> None:
    src, _dst = sample_dbs
    reader = roles.create("edms_reader", "pg_read_all_data")
    roles.touch(src)
    rdsn = as_role(src, reader)
    assert not _is_superuser(rdsn)
    with psycopg.connect(rdsn) as c:  # really nothing but pg_read_all_data
        assert c.execute(
            "SELECT has_table_privilege('public.users', 'INSERT'), has_database_privilege(current_database(), "
            "'CREATE'), has_schema_privilege('public', 'CREATE')"
        ).fetchone() == (False, False, False)
    m = load_mapping(MAPPING)
    export_archive(rdsn, m, tmp_path / "reader.edms")
    export_archive(src, m, tmp_path / "owner.edms")
    assert manifest(tmp_path / "reader.edms")["source"]["role"] == reader
    assert member_texts(tmp_path / "reader.edms") == member_texts(tmp_path / "owner.edms")


def test_import_as_non_owner_role(sample_dbs, roles: Roles, tmp_path: Path) -> None:
    src, dst = sample_dbs
    importer = roles.create("edms_importer")
    roles.touch(dst)
    _grant_import(dst, importer)
    idsn = as_role(dst, importer)
    assert not _is_superuser(idsn)
    archive = tmp_path / "a.edms"
    export_archive(src, load_mapping(MAPPING), archive)
    before = _counts(dst)
    report = import_archive(idsn, archive)
    assert report.committed
    after = _counts(dst)
    assert {t: after[t] - before[t] for t in after} == _counts(src)
    # second import with the same role: everything unchanged, nothing needs more rights
    again = import_archive(idsn, archive)
    assert (again.inserted, again.updated) == (0, 0)
    with psycopg.connect(dst) as c:  # the importer owns nothing afterwards
        owned = c.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
            "WHERE r.rolname = %s AND c.relpersistence <> 't'",
            (importer,),
        ).fetchone()
        assert owned == (0,)


def test_import_without_update_right_fails_cleanly(sample_dbs, roles: Roles, tmp_path: Path) -> None:
    src, dst = sample_dbs
    importer = roles.create("edms_noupdate")
    roles.touch(dst)
    _grant_import(dst, importer)
    with psycopg.connect(dst, autocommit=True) as c:
        c.execute(
            sql.SQL("REVOKE INSERT ON public.document_workflows FROM {}").format(sql.Identifier(importer))
        )
    archive = tmp_path / "a.edms"
    export_archive(src, load_mapping(MAPPING), archive)
    before = db_digest(dst)
    with pytest.raises(DatabaseError) as err:
        import_archive(as_role(dst, importer), archive)
    assert "permission denied" in str(err.value)
    assert "document_workflows" in str(err.value)
    assert "rolled back" in str(err.value)
    assert db_digest(dst) == before


def test_rls_hiding_rows_from_exporter_is_refused(sample_dbs, roles: Roles, tmp_path: Path) -> None:
    src, _dst = sample_dbs
    reader = roles.create("edms_rls_reader", "pg_read_all_data")
    roles.touch(src)
    with psycopg.connect(src, autocommit=True) as c:
        c.execute("ALTER TABLE public.documents ENABLE ROW LEVEL SECURITY")
        c.execute("CREATE POLICY only_drafts ON public.documents FOR SELECT USING (status = 'draft')")
    out = tmp_path / "rls.edms"
    with pytest.raises(DatabaseError) as err:
        export_archive(as_role(src, reader), load_mapping(MAPPING), out)
    msg = str(err.value)
    assert "row-level security" in msg
    assert "documents" in msg
    assert not out.exists()
    assert not list(tmp_path.iterdir()), "a partial archive was left behind"
    # the owner (or BYPASSRLS) exports everything
    export_archive(src, load_mapping(MAPPING), out)
    assert {t["table"]: t["rows"] for t in manifest(out)["tables"]}["public.documents"] == 200


def test_forced_rls_on_owner_is_refused(sample_dbs, roles: Roles, tmp_path: Path) -> None:
    """FORCE ROW LEVEL SECURITY applies to the table owner too: still refused, not partial."""
    src, _dst = sample_dbs
    owner = roles.create("edms_owner")
    roles.touch(src)
    with psycopg.connect(src, autocommit=True) as c:
        for t in ("users", "documents", "document_versions", "document_workflows"):
            c.execute(
                sql.SQL("ALTER TABLE {} OWNER TO {}").format(
                    sql.Identifier("public", t), sql.Identifier(owner)
                )
            )
        c.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(owner)))
        c.execute("ALTER TABLE public.document_versions ENABLE ROW LEVEL SECURITY")
        c.execute("ALTER TABLE public.document_versions FORCE ROW LEVEL SECURITY")
        c.execute("CREATE POLICY v1 ON public.document_versions USING (version_number = 1)")
    with pytest.raises(DatabaseError) as err:
        export_archive(as_role(src, owner), load_mapping(MAPPING), tmp_path / "x.edms")
    assert "row-level security" in str(err.value)
    assert "document_versions" in str(err.value)


def test_rls_on_target_is_refused_on_import(sample_dbs, roles: Roles, tmp_path: Path) -> None:
    """RLS hiding target rows from the importer would make existing keys look new."""
    src, dst = sample_dbs
    importer = roles.create("edms_rls_importer")
    roles.touch(dst)
    _grant_import(dst, importer)
    archive = tmp_path / "a.edms"
    export_archive(src, load_mapping(MAPPING), archive)
    import_archive(dst, archive)  # the target already holds every row once
    with psycopg.connect(dst, autocommit=True) as c:
        c.execute("ALTER TABLE public.users ENABLE ROW LEVEL SECURITY")
        c.execute("CREATE POLICY none_visible ON public.users USING (false)")
    before = db_digest(dst)
    with pytest.raises(DatabaseError) as err:
        import_archive(as_role(dst, importer), archive)
    assert "row-level security" in str(err.value)
    assert db_digest(dst) == before
