"""The typed manifest: one ``from_json`` that validates, and a faithful ``to_json``.

No database: manifests are built by hand, as a damaged or future archive would hold them.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from edms_pgdump.archive.manifest import (
    FORMAT_NAME,
    MANIFEST_CHECKSUM,
    FieldEntry,
    Manifest,
    Source,
    TableEntry,
    manifest_checksum,
)
from edms_pgdump.errors import ArchiveError


def _table(name: str = "public.users", member: str = "data/0001.copy.zst") -> dict[str, Any]:
    return {
        "table": name,
        "schema": "public",
        "name": name.split(".")[1],
        "natural_key": ["username"],
        "key_fields": ["username"],
        "fields": [
            {"name": "username", "type": "text", "role": "column", "column": "username"},
            {"name": "team_id.name", "type": "text", "role": "reference", "reference": "team_id"},
        ],
        "expansions": [{"label": "team_id", "ref_table": "public.teams", "columns": ["team_id"]}],
        "dropped_columns": ["id"],
        "estimated_rows": 10,
        "member": member,
        "rows": 3,
        "bytes": 120,
        "sha256": "ab" * 32,
        "data_bytes": 300,
        "data_sha256": "cd" * 32,
        "compression": "zstd",
    }


def _manifest(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": 1,
        "tool_version": "0.1.0",
        "archive_id": "5f0c1a52-0000-4000-8000-000000000001",
        "created_at": "2026-01-01T00:00:00+00:00",
        "source": {
            "server": "db:5432/prod",
            "database": "prod",
            "server_version": "18.0",
            "server_version_num": 180000,
            "snapshot": "00000003-00000002-1",
            "role": "exporter",
        },
        "settings": {"DateStyle": "ISO, MDY"},
        "mapping": {"version": 1, "tables": {}},
        "mapping_sha256": "ef" * 32,
        "sorted_rows": False,
        "mapping_text": "version: 1\n",
        "load_order": ["public.users"],
        "components": [["public.users"]],
        "unmapped_tables": [],
        "problems": [],
        "tables": [_table()],
        "lookups": [{k: v for k, v in _table("public.teams").items() if k not in ("member", "rows")}],
    }
    data.update(changes)
    data[MANIFEST_CHECKSUM] = manifest_checksum(data)
    return data


def _raw(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode()


def test_from_json_types_every_part() -> None:
    m = Manifest.from_json(_raw(_manifest()), "a.edms")
    assert m.archive_id == "5f0c1a52-0000-4000-8000-000000000001"
    assert m.source == Source("db:5432/prod", "prod", "18.0", 180000, "00000003-00000002-1", "exporter")
    (users,) = m.tables
    assert isinstance(users, TableEntry)
    assert (users.table, users.member, users.rows, users.compression) == (
        "public.users",
        "data/0001.copy.zst",
        3,
        "zstd",
    )
    assert users.fields[1] == FieldEntry("team_id.name", "text", "reference", None, "team_id")
    assert users.natural_key == ("username",) and users.dropped_columns == ("id",)
    assert m.table("public.users") is users
    assert m.entry_for_member("data/0001.copy.zst") is users
    assert [t.table for t in m.lookups] == ["public.teams"]
    assert m.components == (("public.users",),)


def test_round_trip_keeps_bytes_and_unknown_keys() -> None:
    """A later format may add keys (filters, digests): an older reader keeps them."""
    data = _manifest(filters={"public.users": "active"})
    data["tables"][0]["digest"] = "sha256:0123"
    data["source"]["cluster"] = "eu-1"
    data[MANIFEST_CHECKSUM] = manifest_checksum({k: v for k, v in data.items() if k != MANIFEST_CHECKSUM})
    raw = _raw(data)
    m = Manifest.from_json(raw, "a.edms")
    assert m.to_json() == raw  # the identity (sha256) is that of the stored bytes
    assert m.extra == {"filters": {"public.users": "active"}}
    assert m.tables[0].extra == {"digest": "sha256:0123"}
    assert m.source.extra == {"cluster": "eu-1"}
    rebuilt = json.loads(Manifest.from_json(raw, "a.edms").sealed().to_json())
    assert rebuilt == data  # re-serialised from the typed form: nothing lost, same checksum


def test_sealed_manifest_validates_and_its_checksum_protects_it() -> None:
    typed = Manifest.from_dict(_manifest(), "built")
    sealed = typed.sealed()
    assert sealed.checksum == manifest_checksum(json.loads(sealed.to_json()))
    again = Manifest.from_json(sealed.to_json(), "sealed")
    assert again.sha256 == sealed.sha256
    edited = json.loads(sealed.to_json())
    edited["tables"][0]["rows"] = 4
    with pytest.raises(ArchiveError, match=r"manifest\.json checksum mismatch"):
        Manifest.from_json(_raw(edited), "edited")


def _damaged(edit: Any) -> dict[str, Any]:
    data = copy.deepcopy(_manifest())
    edit(data)
    data[MANIFEST_CHECKSUM] = manifest_checksum(data)
    return data


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(format_version=3), r"archive format version 3 is not supported .*reads versions 1 and 2"),
        (lambda d: d.update(format_version=0), r"archive format version 0 is not supported"),
        (lambda d: d.update(format="zip"), r"is not an edms-pgdump manifest"),
        (lambda d: d.pop("tables"), r"has no tables list"),
        (lambda d: d["tables"].append(7), r"tables\[1\] is not an object"),
        (lambda d: d["tables"][0].pop("sha256"), r"tables\[0\]\.sha256 is missing or not a str"),
        (lambda d: d["tables"][0].update(rows="3"), r"tables\[0\]\.rows is missing or not a int"),
        (lambda d: d["tables"][0].update(rows=True), r"tables\[0\]\.rows is missing or not a int"),
        (lambda d: d["tables"][0].update(rows=-1), r"negative or non-numeric row count"),
        (lambda d: d["tables"][0].update(fields=[{"name": "x"}]), r"tables\[0\]\.fields\[0\]\.type is missing"),
        (lambda d: d["tables"][0].update(compression="lz4"), r"public\.users: unknown compression 'lz4'"),
        (lambda d: d["tables"][0].update(member="../x"), r"'\.\./x' contains '\.\.'"),
        (lambda d: d["tables"][0].update(member="/etc/passwd"), r"'/etc/passwd' has an absolute path"),
        (lambda d: d["tables"].append(_table("public.teams")), r"'data/0001\.copy\.zst' is listed twice"),
        (
            lambda d: d["tables"].append(_table("public.users", "data/0002.copy")),
            r"table public\.users is listed twice in the manifest \(tables\[1\]\)",
        ),
        (lambda d: d.pop("created_at"), r"lacks 'created_at'"),
        (lambda d: d.update(load_order="public.users"), r"load_order is missing or not a list"),
        (lambda d: d.update(source=[]), r"source is missing or not a object"),
    ],
)
def test_from_json_refuses_damage_naming_the_key(edit: Any, message: str) -> None:
    with pytest.raises(ArchiveError, match=message) as err:
        Manifest.from_json(_raw(_damaged(edit)), "bad.edms")
    assert str(err.value).startswith("bad.edms: ")


def test_from_json_tells_truncated_from_corrupt() -> None:
    raw = _raw(_manifest())
    with pytest.raises(ArchiveError, match=r"manifest\.json is truncated"):
        Manifest.from_json(raw[: len(raw) // 2], "cut.edms")
    with pytest.raises(ArchiveError, match=r"manifest\.json is corrupt"):
        Manifest.from_json(b"[" + raw[1:], "bad.edms")
    with pytest.raises(ArchiveError, match=r"manifest\.json is corrupt \(UnicodeDecodeError"):
        Manifest.from_json(b"\xff\xfe" + raw, "bad.edms")


def test_the_oldest_manifests_without_checksum_or_text_digest_still_read() -> None:
    data = _manifest()
    del data[MANIFEST_CHECKSUM]
    for key in ("data_bytes", "data_sha256", "schema", "expansions", "estimated_rows"):
        del data["tables"][0][key]
    for key in ("sorted_rows", "mapping_text", "lookups", "settings"):
        del data[key]
    m = Manifest.from_json(_raw(data), "old.edms")
    t = m.tables[0]
    assert (t.data_bytes, t.data_sha256, t.expansions, t.estimated_rows) == (None, "", (), None)
    assert m.checksum is None and m.sorted_rows is False and m.mapping_text == ""
