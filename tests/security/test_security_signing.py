"""minisign signatures on a real PostgreSQL: with --trusted-key, a forged member (checksums
recomputed), a manifest swapped from another export, an unsigned archive and another
signer are all refused before anything is written; inspect shows who signed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edms_pgdump import ArchiveError, UsageError, export_archive, import_archive, inspect_archive
from edms_pgdump.api import verify_archive
from edms_pgdump.archive.keys import SIGN_PASSWORD_ENV, TRUSTED_KEYS_ENV
from edms_pgdump.cli import app
from edms_pgdump.demo.resources import sample_mapping_path
from edms_pgdump.mapping import load_mapping
from tests.support.db import db_digest, execute, rows
from tests.support.security import SignKey, forge_member, make_age_key, make_sign_key, read_tar, write_tar


def _export(src: str, out: Path, key: SignKey | None, **kw: object) -> Path:
    export_archive(
        src,
        load_mapping(sample_mapping_path()),
        out,
        audit_log=False,
        sign_key=key.secret_file if key else None,
        **kw,  # type: ignore[arg-type]
    )
    return out


def _a_title(src: str) -> str:
    return str(rows(src, "SELECT title FROM public.documents ORDER BY document_number LIMIT 1")[0][0])


def test_signed_archive_imports_under_its_key_and_inspect_names_the_signer(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    src, dst = sample_dbs
    key = make_sign_key(tmp_path, "release")
    archive = _export(src, tmp_path / "a.edms", key)
    files = read_tar(archive)
    assert list(files)[:2] == ["manifest.json", "manifest.json.minisig"]

    info = inspect_archive(archive)
    assert info.signature is not None and info.signature.key_id == key.key_id
    assert not info.signature.verified
    assert f"archive:{info.manifest.archive_id}" in info.signature.trusted_comment

    result = verify_archive(archive, trusted_keys=[key.public_file])
    assert result.ok and result.signature is not None and result.signature.verified
    assert result.to_dict()["signature"]["trusted_key"] == str(key.public_file)

    imported = import_archive(dst, archive, trusted_keys=[key.public_file], audit_log=False)
    assert imported.committed and imported.inserted > 0

    res = CliRunner().invoke(app, ["inspect", str(archive), "--trusted-key", str(key.public_file)])
    assert res.exit_code == 0, res.output
    assert f"signed by minisign key {key.key_id} (verified with {key.public_file})" in res.output


def test_forged_member_with_recomputed_checksums_is_refused_under_the_trusted_key(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    src, dst = sample_dbs
    key = make_sign_key(tmp_path, "release")
    archive = _export(src, tmp_path / "a.edms", key)
    title = _a_title(src).encode()
    forged = tmp_path / "forged.edms"
    write_tar(forged, forge_member(read_tar(archive), "public.documents", title, b"FORGED " + title[7:]))

    # the forgery is self-consistent: every checksum passes, so only the signature can tell
    assert verify_archive(forged).ok

    before = db_digest(dst)
    for trusted in ([key.public_file], []):
        env_keys = {} if trusted else {TRUSTED_KEYS_ENV: str(key.public_file)}
        os.environ.update(env_keys)
        try:
            with pytest.raises(ArchiveError) as err:
                import_archive(dst, forged, trusted_keys=trusted, audit_log=False)
        finally:
            for k in env_keys:
                del os.environ[k]
        assert f"manifest.json does not match its signature by key {key.key_id}" in str(err.value)
        assert "refusing it before anything is written" in str(err.value)
    with pytest.raises(ArchiveError, match="does not match its signature"):
        verify_archive(forged, trusted_keys=[key.public_file])
    assert db_digest(dst) == before


def test_manifest_swapped_from_another_export_is_refused(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    src, dst = sample_dbs
    key = make_sign_key(tmp_path, "release")
    first = read_tar(_export(src, tmp_path / "first.edms", key))
    execute(src, "UPDATE public.documents SET title = title || ' (rev 2)' WHERE id = (SELECT min(id) FROM public.documents)")
    second = read_tar(_export(src, tmp_path / "second.edms", key))
    before = db_digest(dst)

    # the second export's manifest over the first one's signature
    only_manifest = dict(second)
    only_manifest["manifest.json.minisig"] = first["manifest.json.minisig"]
    write_tar(tmp_path / "swap1.edms", only_manifest)
    with pytest.raises(ArchiveError, match=f"does not match its signature by key {key.key_id}"):
        import_archive(dst, tmp_path / "swap1.edms", trusted_keys=[key.public_file], audit_log=False)

    # the second export's manifest and its own valid signature over the first export's rows
    both = dict(first)
    both["manifest.json"] = second["manifest.json"]
    both["manifest.json.minisig"] = second["manifest.json.minisig"]
    write_tar(tmp_path / "swap2.edms", both)
    with pytest.raises(ArchiveError) as err:
        import_archive(dst, tmp_path / "swap2.edms", trusted_keys=[key.public_file], audit_log=False)
    assert "public.documents: member" in str(err.value) and "nothing was imported" in str(err.value)
    assert db_digest(dst) == before


def test_unsigned_and_other_signer_are_refused_naming_the_key_ids(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    src, dst = sample_dbs
    ours, theirs = make_sign_key(tmp_path, "ours"), make_sign_key(tmp_path, "theirs")
    unsigned = _export(src, tmp_path / "unsigned.edms", None)
    other = _export(src, tmp_path / "other.edms", theirs)
    before = db_digest(dst)

    with pytest.raises(ArchiveError) as err:
        import_archive(dst, unsigned, trusted_keys=[ours.public_file], audit_log=False)
    assert "the archive is not signed" in str(err.value)
    assert f"{ours.key_id} ({ours.public_file})" in str(err.value)
    assert "export with --sign-key" in str(err.value) or "exported with --sign-key" in str(err.value)

    os.environ[TRUSTED_KEYS_ENV] = os.pathsep.join([str(ours.public_file), str(tmp_path / "ours.pub")])
    try:
        res = CliRunner().invoke(app, ["import", str(other), "--dsn", dst, "--json", "-q"])
    finally:
        del os.environ[TRUSTED_KEYS_ENV]
    assert res.exit_code == 1, res.output
    doc = json.loads(res.output)
    assert f"signed by key {theirs.key_id}, which is not a trusted key" in doc["error"]
    assert ours.key_id in doc["error"]
    assert db_digest(dst) == before

    # without a trusted key both still import: the signature is checked only when asked
    assert import_archive(dst, other, audit_log=False).committed


def test_password_protected_key_and_key_file_mistakes(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, _ = sample_dbs
    password = "correct horse battery staple"
    key = make_sign_key(tmp_path, "locked", password=password, mode=0o640)

    with pytest.raises(UsageError) as err:  # no terminal under pytest, no variable
        _export(src, tmp_path / "a.edms", key)
    assert f"{SIGN_PASSWORD_ENV} or run from a terminal" in str(err.value)

    os.environ[SIGN_PASSWORD_ENV] = "wrong"
    try:
        with pytest.raises(UsageError, match="wrong password for this minisign key") as err:
            _export(src, tmp_path / "a.edms", key)
        assert "wrong" not in str(err.value).replace("wrong password", "")
        os.environ[SIGN_PASSWORD_ENV] = password
        result = export_archive(
            src, sample_mapping_path(), tmp_path / "a.edms", sign_key=key.secret_file, audit_log=False
        )
    finally:
        del os.environ[SIGN_PASSWORD_ENV]
    assert any(
        "minisign secret key file is readable by group or others (mode 0640)" in w for w in result.warnings
    )
    assert password not in json.dumps(result.to_dict())
    assert verify_archive(tmp_path / "a.edms", trusted_keys=[key.public_file]).signature is not None

    with pytest.raises(UsageError, match="not a minisign public key; that is a secret key"):
        verify_archive(tmp_path / "a.edms", trusted_keys=[key.secret_file])
    with pytest.raises(UsageError, match="not a minisign secret key"):
        _export(src, tmp_path / "b.edms", SignKey(key.public_file, key.public_file, key.key_id))
    with pytest.raises(UsageError, match="file not found \\(--trusted-key\\)"):
        verify_archive(tmp_path / "a.edms", trusted_keys=[tmp_path / "missing.pub"])
    assert not (tmp_path / "b.edms").exists()


def test_encrypted_and_signed_together(sample_dbs: tuple[str, str], tmp_path: Path) -> None:
    src, dst = sample_dbs
    key, alice = make_sign_key(tmp_path, "release"), make_age_key(tmp_path, "alice")
    archive = _export(src, tmp_path / "a.edms", key, encrypt_to=[alice.recipient])
    result = import_archive(
        dst, archive, identities=[alice.identity_file], trusted_keys=[key.public_file], audit_log=False
    )
    assert result.committed
    with pytest.raises(ArchiveError, match="encrypted with age; pass --identity"):
        verify_archive(archive, trusted_keys=[key.public_file])
