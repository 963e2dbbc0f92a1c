"""age encryption of archives on a real PostgreSQL: two recipients each able to import,
and every refusal (no identity, wrong identity, truncated or altered file) before
anything is written to the target."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from edms_pgdump import ArchiveError, UsageError, export_archive, import_archive, inspect_archive
from edms_pgdump.api import check_mapping, verify_archive
from edms_pgdump.archive.encryption import MAGIC, SEALED_CHUNK
from edms_pgdump.cli import app
from edms_pgdump.demo import sample
from edms_pgdump.demo.resources import sample_mapping_path
from edms_pgdump.mapping import load_mapping
from tests.support.db import db_digest
from tests.support.security import AgeKey, make_age_key
from tests.support.story import natural_view


def _export(src: str, out: Path, *recipients: AgeKey, **kw: object) -> Path:
    export_archive(
        src,
        load_mapping(sample_mapping_path()),
        out,
        audit_log=False,
        encrypt_to=[r.recipient for r in recipients],
        **kw,  # type: ignore[arg-type]
    )
    return out


def test_round_trip_to_two_recipients_each_identity_alone_imports(
    sample_dbs: tuple[str, str], new_db, sample_template: str, tmp_path: Path
) -> None:
    src, dst = sample_dbs
    alice, bob = make_age_key(tmp_path, "alice"), make_age_key(tmp_path, "bob")
    archive = _export(src, tmp_path / "a.edms", alice, bob)
    raw = archive.read_bytes()
    assert raw.startswith(MAGIC)
    assert raw.count(b"-> X25519 ") == 2
    assert b"manifest.json" not in raw and b"public.documents" not in raw  # nothing readable

    dst2 = new_db(sample_template)
    with psycopg.connect(dst2, autocommit=True) as c:
        sample.reinitialise(c)
    expected = natural_view(src)
    for target, key in ((dst, alice), (dst2, bob)):
        result = import_archive(target, archive, identities=[key.identity_file], audit_log=False)
        assert result.committed and result.inserted > 0
        assert natural_view(target) == expected


def test_no_identity_wrong_identity_and_truncation_are_refused_before_any_write(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    src, dst = sample_dbs
    alice, mallory = make_age_key(tmp_path, "alice"), make_age_key(tmp_path, "mallory")
    archive = _export(src, tmp_path / "a.edms", alice, compression="none")  # several chunks
    before = db_digest(dst)

    with pytest.raises(ArchiveError) as err:
        import_archive(dst, archive, audit_log=False)
    assert "encrypted with age; pass --identity FILE" in str(err.value)

    with pytest.raises(ArchiveError) as err:
        import_archive(dst, archive, identities=[mallory.identity_file], audit_log=False)
    message = str(err.value)
    assert f"none of the identities given ({mallory.identity_file})" in message
    assert "pass the --identity whose public key" in message
    assert mallory.secret_text not in message

    raw = archive.read_bytes()
    for cut in (len(raw) - 1, len(raw) - SEALED_CHUNK, len(raw) // 2):
        truncated = tmp_path / f"cut{cut}.edms"
        truncated.write_bytes(raw[:cut])
        with pytest.raises(ArchiveError, match="truncated"):
            import_archive(dst, truncated, identities=[alice.identity_file], audit_log=False)

    # one flipped byte in the first chunk: in the manifest's tar header, then in a member
    assert len(raw) > SEALED_CHUNK + 1000  # so that the first chunk is not the last
    payload = raw.index(b"\n", raw.index(b"\n--- ") + 1) + 1 + 16
    for where in (payload + 100, payload + SEALED_CHUNK - 500):
        flipped = bytearray(raw)
        flipped[where] ^= 0x01
        altered = tmp_path / "flipped.edms"
        altered.write_bytes(bytes(flipped))
        with pytest.raises(ArchiveError) as err:
            import_archive(dst, altered, identities=[alice.identity_file], audit_log=False)
        assert "fails authentication: the file was changed or damaged after it was encrypted" in str(err.value)
    assert db_digest(dst) == before


def test_directory_form_cannot_be_encrypted_and_bad_recipients_name_the_fix(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    src, _ = sample_dbs
    alice = make_age_key(tmp_path, "alice")
    with pytest.raises(UsageError, match="drop --format dir"):
        _export(src, tmp_path / "d", alice, directory=True)
    with pytest.raises(UsageError) as err:
        export_archive(src, sample_mapping_path(), tmp_path / "x", encrypt_to=[alice.secret_text])
    assert "is not an age recipient; that is an identity" in str(err.value)
    assert alice.secret_text not in str(err.value)
    with pytest.raises(UsageError, match="age1"):
        export_archive(src, sample_mapping_path(), tmp_path / "x", encrypt_to=["age1typo"])
    rfile = tmp_path / "recipients.txt"
    rfile.write_text(f"# team\n{alice.recipient}\n\nnot-a-key\n")
    with pytest.raises(UsageError, match=r"recipients.txt line 4: 'not-a-key' is not an age recipient"):
        export_archive(src, sample_mapping_path(), tmp_path / "x", recipients_file=[rfile])
    assert not (tmp_path / "x").exists()


def test_cli_inspect_verify_check_decrypt_and_secrets_stay_out_of_output(
    sample_dbs: tuple[str, str], tmp_path: Path, _private_audit_log: Path
) -> None:
    src, dst = sample_dbs
    alice = make_age_key(tmp_path, "alice", mode=0o644)  # readable by others: a warning
    rfile = tmp_path / "recipients.txt"
    rfile.write_text(f"# ops team\n{alice.recipient}\n")
    runner = CliRunner()
    archive = tmp_path / "a.edms"
    res = runner.invoke(
        app,
        ["export", "--dsn", src, "-m", str(sample_mapping_path()), "-o", str(archive), "-R", str(rfile), "-q"],
    )
    assert res.exit_code == 0, res.output
    assert "archive encrypted with age" in res.output
    assert archive.read_bytes().startswith(MAGIC)

    res = runner.invoke(app, ["inspect", str(archive)])
    assert res.exit_code == 1
    assert "encrypted with age; pass --identity FILE" in res.output

    ident = str(alice.identity_file)
    res = runner.invoke(app, ["inspect", str(archive), "--identity", ident])
    assert res.exit_code == 0, res.output
    assert "encrypted with age" in res.output and "public.documents" in res.output
    assert f"{ident}: this age identity file is readable by group or others (mode 0644)" in res.output
    assert f"chmod 600 {ident}" in res.output

    res = runner.invoke(app, ["verify", str(archive), "-i", ident, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["ok"] and doc["encrypted"] and doc["signature"] is None

    res = runner.invoke(app, ["check", str(archive), "--identity", ident, "--json"])
    assert res.exit_code in (0, 1), res.output
    assert json.loads(res.output)["source"] == str(archive)
    assert check_mapping(archive, identities=[ident]).source == str(archive)

    res = runner.invoke(app, ["import", str(archive), "--dsn", dst, "-i", ident, "--json", "-q"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["committed"]
    assert any("readable by group or others" in w for w in doc["warnings"])

    everything = res.output + _private_audit_log.read_text()
    assert alice.secret_text not in everything
    assert alice.secret_text.lower() not in everything
    audit_lines = [json.loads(line) for line in _private_audit_log.read_text().splitlines()]
    mine = [a for a in audit_lines if a.get("archive") == str(archive)]
    assert any(a.get("encrypted_to") == [alice.recipient] for a in mine)
    assert any(a.get("encrypted") is True for a in mine)


def test_verify_and_inspect_read_an_encrypted_archive_with_the_library(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    src, _ = sample_dbs
    alice = make_age_key(tmp_path, "alice")
    archive = _export(src, tmp_path / "a.edms", alice)
    result = verify_archive(archive, identities=[alice.identity_file])
    assert result.ok and result.encrypted
    assert {t["table"] for t in result.tables} >= {"public.users", "public.documents"}
    info = inspect_archive(archive, identities=[alice.identity_file])
    assert info.encrypted and info.to_dict()["encrypted"] is True
    with psycopg.connect(src) as conn:
        users = conn.execute("SELECT count(*) FROM public.users").fetchone()
    assert users is not None and info.manifest.table("public.users").rows == users[0]
