"""Interop with the standard tools (Debian's age and minisign): what we write they read,
what they write we read. Each tool is installed with apt-get when missing (as root),
else the test skips and says why."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from edms_pgdump import ArchiveError, export_archive, import_archive
from edms_pgdump.api import verify_archive
from edms_pgdump.demo.resources import sample_mapping_path
from edms_pgdump.mapping import load_mapping
from tests.support.security import make_age_key, tool
from tests.support.story import natural_view


def _tools() -> tuple[str, str, str]:
    age, keygen, minisign = tool("age"), tool("age-keygen"), tool("minisign")
    if not (age and keygen and minisign):
        missing = [n for n, p in (("age", age), ("age-keygen", keygen), ("minisign", minisign)) if not p]
        pytest.skip(f"{', '.join(missing)} not installed and apt-get could not install them (needs root)")
    return age, keygen, minisign


def _run(*cmd: str, **kw: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{cmd}: {done.stderr}"
    return done  # type: ignore[no-any-return]


def test_age_and_minisign_cli_read_what_we_write_and_we_read_what_they_write(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    age, keygen, minisign = _tools()
    src, dst = sample_dbs
    identity = tmp_path / "key.txt"
    _run(keygen, "-o", str(identity))
    recipient = _run(keygen, "-y", str(identity)).stdout.strip()
    _run(minisign, "-G", "-W", "-p", str(tmp_path / "key.pub"), "-s", str(tmp_path / "key.key"))

    archive = tmp_path / "prod.edms"
    export_archive(
        src,
        load_mapping(sample_mapping_path()),
        archive,
        encrypt_to=[recipient],
        sign_key=tmp_path / "key.key",
        audit_log=False,
    )

    # the standard tools: decrypt, then check the signature of the extracted manifest
    plain = tmp_path / "prod.tar"
    _run(age, "-d", "-i", str(identity), "-o", str(plain), str(archive))
    with tarfile.open(plain) as tar:
        assert tar.getnames()[:2] == ["manifest.json", "manifest.json.minisig"]
        tar.extractall(tmp_path / "x", filter="data")
    checked = _run(minisign, "-Vm", "manifest.json", "-p", str(tmp_path / "key.pub"), cwd=tmp_path / "x")
    assert "Signature and comment signature verified" in checked.stdout
    assert "file:manifest.json" in checked.stdout

    # a changed manifest fails the standard tool too
    manifest = tmp_path / "x" / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"rows": ', b'"rows":  '))
    failed = subprocess.run(
        [minisign, "-Vm", "manifest.json", "-p", str(tmp_path / "key.pub")],
        cwd=tmp_path / "x",
        capture_output=True,
        text=True,
    )
    assert failed.returncode != 0

    # the other way round: the plain tar encrypted by age itself, imported by us under the
    # key minisign made
    by_age = tmp_path / "by-age.edms"
    _run(age, "-r", recipient, "-o", str(by_age), str(plain))
    assert verify_archive(by_age, identities=[identity], trusted_keys=[tmp_path / "key.pub"]).ok
    result = import_archive(
        dst, by_age, identities=[identity], trusted_keys=[tmp_path / "key.pub"], audit_log=False
    )
    assert result.committed
    assert natural_view(dst) == natural_view(src)


def test_pyrage_reads_what_we_write_and_we_read_what_it_writes(
    sample_dbs: tuple[str, str], tmp_path: Path
) -> None:
    pyrage = pytest.importorskip("pyrage", reason="pyrage (the test extra) is not installed")
    src, dst = sample_dbs
    alice = make_age_key(tmp_path, "alice")
    plain, ours = tmp_path / "plain.edms", tmp_path / "ours.edms"
    export_archive(src, load_mapping(sample_mapping_path()), plain, audit_log=False)
    export_archive(
        src, load_mapping(sample_mapping_path()), ours, encrypt_to=[alice.recipient], audit_log=False
    )
    ident = pyrage.x25519.Identity.from_str(alice.secret_text)
    with tarfile.open(fileobj=io.BytesIO(pyrage.decrypt(ours.read_bytes(), [ident]))) as tar:
        assert tar.getnames()[0] == "manifest.json"

    theirs = tmp_path / "theirs.edms"
    recipient = pyrage.x25519.Recipient.from_str(alice.recipient)
    theirs.write_bytes(pyrage.encrypt(plain.read_bytes(), [recipient]))
    assert import_archive(dst, theirs, identities=[alice.identity_file], audit_log=False).committed
    assert natural_view(dst) == natural_view(src)

    # a passphrase-encrypted file (age -p, which reads the passphrase from a terminal only)
    locked = tmp_path / "locked.edms"
    locked.write_bytes(pyrage.passphrase.encrypt(plain.read_bytes(), "hunter2"))
    with pytest.raises(ArchiveError, match=r"encrypted with a passphrase \(age -p\)"):
        import_archive(dst, locked, identities=[alice.identity_file], audit_log=False)
