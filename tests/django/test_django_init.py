"""init --django: a mapping written from the test project's models, checked on the real
database, and round-tripping the project's data like loaddata does."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytest.importorskip("django", reason="the Django tests need the django extra (pip install '.[test]')")

from edms_pgdump import api
from tests.conftest import NewDb
from tests.django_project import harness
from tests.support.django_dbs import migrated  # fixtures


def _init(dsn: str, *args: str, check: bool = True) -> tuple[dict[str, object], str, int]:
    proc = harness.run(dsn, "-m", "edms_pgdump", "init", "--django", "settings", *args, check=check)
    return yaml.safe_load(proc.stdout) if proc.returncode == 0 else {}, proc.stderr, proc.returncode


def test_init_django_writes_the_keys_of_the_models(migrated: str, new_db: NewDb) -> None:
    source = new_db(migrated)
    harness.seed(source, 10)
    mapping, stderr, rc = _init(source)
    assert rc == 0 and "the mapping passes check on this database" in stderr
    tables = mapping["tables"]
    assert isinstance(tables, dict)
    # natural_key() matched on stored rows, following the FK into Document's own key
    assert tables["public.edms_app_documentworkflow"] == {"natural_key": ["document_id", "workflow_type"]}
    assert tables["public.edms_app_document"] == {"natural_key": ["document_number"]}
    assert tables["public.auth_user"] == {"natural_key": ["username"]}
    assert tables["public.auth_permission"] == {"natural_key": ["codename", "content_type_id"]}
    # a UniqueConstraint holding a generic reference; the M2M through table by its two FKs
    assert tables["public.edms_app_comment"] == {
        "natural_key": ["content_type_id", "object_id", "number"],
        "generic_references": [{"type": "content_type_id", "id": "object_id"}],
    }
    assert tables["public.edms_app_document_tags"] == {"natural_key": ["document_id", "tag_id"]}
    assert tables["public.django_content_type"] == {"natural_key": ["app_label", "model"], "export": False}
    # types: from the registry's db_table names, not a guess
    types = mapping["types"]["public.django_content_type"]  # type: ignore[index]
    assert types["table_name"] == "{app_label}_{model}"
    assert types["tables"]["contenttypes.contenttype"] == "public.django_content_type"
    assert types["tables"]["edms_app.document"] == "public.edms_app_document"
    assert "edms_app.document_tags" not in types["tables"]
    # installation state and the keyless model are left out, saying why
    assert set(mapping["exclude"]) == {  # type: ignore[arg-type]
        "public.django_session",
        "public.django_admin_log",
        "public.django_migrations",
        "public.edms_app_scratchnote",
    }
    text = harness.run(source, "-m", "edms_pgdump", "init", "--django", "settings").stdout
    assert (
        "# edms_app.scratchnote: no natural_key() and no unique field; it holds no rows: "
        "choose a natural key before it does" in text
    )
    assert "# edms_app.documentworkflow: natural_key(), matched on 20 stored row(s)" in text


def test_without_rows_the_manager_signature_is_the_hint(migrated: str, new_db: NewDb) -> None:
    empty = new_db(migrated)
    mapping, _, rc = _init(empty)
    assert rc == 0
    assert mapping["tables"]["public.edms_app_documentworkflow"] == {  # type: ignore[index]
        "natural_key": ["document_id", "workflow_type"]
    }


def test_include_app_maps_sessions(migrated: str, new_db: NewDb) -> None:
    mapping, _, rc = _init(new_db(migrated), "--include-app", "sessions")
    assert rc == 0
    assert mapping["tables"]["public.django_session"] == {"natural_key": ["session_key"]}  # type: ignore[index]
    assert "public.django_session" not in mapping["exclude"]  # type: ignore[operator]


def test_init_needs_dsn_or_django(tmp_path: Path) -> None:
    from edms_pgdump.errors import UsageError

    with pytest.raises(UsageError, match="init needs --dsn"):
        api.init_mapping(None)


def test_the_mapping_round_trips_like_loaddata(migrated: str, new_db: NewDb, tmp_path: Path) -> None:
    """Export with the written mapping, import into a re-initialised target whose ids are
    elsewhere: the same data as loaddata of dumpdata gives."""
    source = new_db(migrated)
    harness.seed(source, 40)
    mapping_file = tmp_path / "mapping.yaml"
    harness.run(source, "-m", "edms_pgdump", "init", "--django", "settings", "-o", str(mapping_file))
    archive = tmp_path / "backup.edmsdump"
    api.export_archive(source, mapping_file, archive)
    by_us, by_loaddata = new_db(migrated), new_db(migrated)
    harness.shift_ids(by_us)
    result = api.import_archive(by_us, archive)
    assert result.committed
    fixture = harness.dumpdata(source, tmp_path / "b.json", "--natural-foreign", *harness.EXCLUDE_STATE)
    harness.django(by_loaddata, "loaddata", str(fixture))
    assert harness.natural_view(by_us) == harness.natural_view(by_loaddata) == harness.natural_view(source)
