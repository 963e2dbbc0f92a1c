"""Archives through pipes (issue 27, part 1): ``export -o -`` and ``import/verify/inspect -``,
run as real processes joined by a real pipe, on a real PostgreSQL.

Every command runs with its own ``TMPDIR``: after each one that folder must be empty,
so the stdin spool and the export's scratch are proven removed, on success and on
refusal alike."""

from __future__ import annotations

import os
import pty
import resource
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support.db import subprocess_env
from tests.support.real_schemas import fetch, make_db
from tests.support.security import forge_member, make_age_key, make_sign_key, read_tar, write_tar

SCHEMA = (
    "CREATE TABLE owners (id serial PRIMARY KEY, username text UNIQUE NOT NULL)",
    "CREATE TABLE docs (id serial PRIMARY KEY, number text UNIQUE NOT NULL,"
    " owner_id int NOT NULL REFERENCES owners (id), title text)",
)
MAPPING = """version: 1
tables:
  public.owners:
    natural_key: [username]
  public.docs:
    natural_key: [number]
"""
DOCS = 300


@pytest.fixture
def dbs(new_db, tmp_path: Path) -> tuple[str, str, Path]:
    src = make_db(
        new_db,
        *SCHEMA,
        "INSERT INTO owners (username) VALUES ('ann'), ('bob'), ('cyd')",
        f"INSERT INTO docs (number, owner_id, title) SELECT 'D' || g, 1 + g % 3, 'title ' || g "
        f"FROM generate_series(1, {DOCS}) g",
    )
    # the target's ids are elsewhere: an id carried raw would point at the wrong owner
    dst = make_db(new_db, *SCHEMA, "SELECT setval('owners_id_seq', 500)")
    mapping = tmp_path / "map.yaml"
    mapping.write_text(MAPPING)
    return src, dst, mapping


def _env(tmp_path: Path) -> dict[str, str]:
    env = subprocess_env()
    spool = tmp_path / "tmpdir"
    spool.mkdir(exist_ok=True)
    env["TMPDIR"] = str(spool)
    env["EDMS_PGDUMP_AUDIT_LOG"] = str(tmp_path / "audit.jsonl")
    env.pop("EDMS_PGDUMP_TRUSTED_KEYS", None)
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "edms_pgdump", *args]


def _assert_tmpdir_empty(tmp_path: Path) -> None:
    assert list((tmp_path / "tmpdir").iterdir()) == []


def _pipe(
    tmp_path: Path, export: list[str], reader: list[str]
) -> tuple[subprocess.CompletedProcess[str], int, str]:
    """``export … -o - | reader …`` with a real OS pipe; (reader's result, export's exit
    code, export's stderr)."""
    env = _env(tmp_path)
    exp = subprocess.Popen(_cli(*export), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert exp.stdout is not None and exp.stderr is not None
    try:
        got = subprocess.run(
            _cli(*reader), stdin=exp.stdout, capture_output=True, text=True, env=env, timeout=120
        )
    finally:
        exp.stdout.close()
        exp_err = exp.stderr.read().decode()
        exp.wait(timeout=120)
    return got, exp.returncode, exp_err


def _run(tmp_path: Path, args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(_cli(*args), input=stdin, capture_output=True, env=_env(tmp_path), timeout=120)


def _export_bytes(tmp_path: Path, src: str, mapping: Path, *extra: str) -> bytes:
    done = _run(tmp_path, ["export", "--dsn", src, "-m", str(mapping), "-o", "-", *extra])
    assert done.returncode == 0, done.stderr.decode()
    _assert_tmpdir_empty(tmp_path)
    return done.stdout


def _target_rows(dst: str) -> list[tuple[object, ...]]:
    return fetch(
        dst,
        "SELECT d.number, o.username, d.title FROM docs d JOIN owners o ON o.id = d.owner_id ORDER BY d.number",
    )


def _flip(data: bytes, member: str, at: int | bytes) -> bytes:
    """``data`` with one bit changed, ``at`` bytes into ``member``'s content (or in the first
    byte of ``at`` there: a value the JSON keeps valid when it changes)."""
    path = Path("/dev/shm" if Path("/dev/shm").is_dir() else "/tmp") / f"flip-{os.getpid()}.tar"
    path.write_bytes(data)
    try:
        with tarfile.open(path) as tar:
            info = tar.getmember(member)
            offset = info.offset_data
            if isinstance(at, bytes):
                content = data[offset : offset + info.size]
                assert content.count(at) >= 1, f"{at!r} not in {member}"
                offset += content.index(at)
            else:
                offset += at
    finally:
        path.unlink()
    changed = bytearray(data)
    changed[offset] ^= 0x01
    return bytes(changed)


def test_export_to_stdout_piped_into_import_from_stdin(dbs: tuple[str, str, Path], tmp_path: Path) -> None:
    src, dst, mapping = dbs
    got, exp_rc, exp_err = _pipe(
        tmp_path,
        ["export", "--dsn", src, "-m", str(mapping), "-o", "-"],
        ["import", "-", "--dsn", dst],
    )
    assert exp_rc == 0, exp_err
    assert got.returncode == 0, got.stderr
    # the export's report went to stderr: stdout carried only the archive
    assert "exported -" in exp_err and f"{DOCS + 3} rows" in exp_err
    assert "import stdin -> " in got.stdout and f"{DOCS + 3} inserted" in got.stdout
    assert _target_rows(dst) == _target_rows(src)
    assert len(_target_rows(dst)) == DOCS
    assert min(r[0] for r in fetch(dst, "SELECT id FROM owners")) > 500  # the target's own ids
    _assert_tmpdir_empty(tmp_path)


def test_stream_is_the_file_form_and_inspect_and_verify_read_stdin(
    dbs: tuple[str, str, Path], tmp_path: Path
) -> None:
    src, _, mapping = dbs
    data = _export_bytes(tmp_path, src, mapping)
    saved = tmp_path / "saved.edmsdump"
    saved.write_bytes(data)
    with tarfile.open(saved) as tar:
        assert tar.getnames() == ["manifest.json", "data/0001.copy.zst", "data/0002.copy.zst"]

    inspected = _run(tmp_path, ["inspect", "-"], data)
    assert inspected.returncode == 0, inspected.stderr.decode()
    text = inspected.stdout.decode()
    assert "archive stdin" in text and "public.docs" in text and str(DOCS) in text
    _assert_tmpdir_empty(tmp_path)

    verified = _run(tmp_path, ["verify", "-"], data)
    assert verified.returncode == 0, verified.stderr.decode()
    assert "archive OK" in verified.stdout.decode()
    assert f"ok  public.docs  {DOCS} rows" in verified.stdout.decode()
    _assert_tmpdir_empty(tmp_path)

    # the saved stream is an ordinary archive file
    from_file = _run(tmp_path, ["verify", str(saved)])
    assert from_file.returncode == 0 and "archive OK" in from_file.stdout.decode()


@pytest.mark.parametrize(
    ("member", "at", "expected"),
    [
        ("data/0002.copy.zst", 200, "member 'data/0002.copy.zst' SHA-256 mismatch"),
        ("manifest.json", b"username]", "manifest.json checksum mismatch"),
    ],
)
def test_one_byte_changed_in_the_stream_is_refused_with_nothing_written(
    dbs: tuple[str, str, Path], tmp_path: Path, member: str, at: int | bytes, expected: str
) -> None:
    src, dst, mapping = dbs
    data = _flip(_export_bytes(tmp_path, src, mapping), member, at)
    before = fetch(dst, "SELECT count(*) FROM owners UNION ALL SELECT count(*) FROM docs")

    imported = _run(tmp_path, ["import", "-", "--dsn", dst], data)
    err = imported.stderr.decode()
    assert imported.returncode == 1, err
    assert err.startswith("error: stdin: ") and expected in err
    assert (
        fetch(dst, "SELECT count(*) FROM owners UNION ALL SELECT count(*) FROM docs")
        == before
        == [(0,), (0,)]
    )
    # not even the history table: the refusal came before the transaction
    assert fetch(dst, "SELECT count(*) FROM pg_namespace WHERE nspname = 'edms_pgdump'") == [(0,)]
    _assert_tmpdir_empty(tmp_path)

    verified = _run(tmp_path, ["verify", "-"], data)
    assert verified.returncode == 1
    assert expected in (verified.stdout + verified.stderr).decode()
    _assert_tmpdir_empty(tmp_path)


def test_encrypted_stream_round_trip_and_refusals(dbs: tuple[str, str, Path], tmp_path: Path) -> None:
    src, dst, mapping = dbs
    key = make_age_key(tmp_path, "reader")
    data = _export_bytes(tmp_path, src, mapping, "--encrypt-to", key.recipient)
    assert data.startswith(b"age-encryption.org/v1\n")

    missing = _run(tmp_path, ["import", "-", "--dsn", dst], data)
    assert missing.returncode == 1
    assert "stdin: the archive is encrypted with age; pass --identity FILE" in missing.stderr.decode()

    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    damaged = _run(
        tmp_path, ["import", "-", "--dsn", dst, "--identity", str(key.identity_file)], bytes(flipped)
    )
    assert damaged.returncode == 1
    # one chunk here: age's last-chunk check names it (a longer stream names the chunk)
    assert damaged.stderr.decode().startswith("error: stdin: ")
    assert "fails authentication" in damaged.stderr.decode()
    assert fetch(dst, "SELECT count(*) FROM docs") == [(0,)]

    got, exp_rc, exp_err = _pipe(
        tmp_path,
        ["export", "--dsn", src, "-m", str(mapping), "-o", "-", "--encrypt-to", key.recipient],
        ["import", "-", "--dsn", dst, "--identity", str(key.identity_file)],
    )
    assert exp_rc == 0, exp_err
    assert got.returncode == 0, got.stderr
    assert _target_rows(dst) == _target_rows(src)
    _assert_tmpdir_empty(tmp_path)


def test_empty_stream_terminal_and_folder_form_are_refused(
    dbs: tuple[str, str, Path], tmp_path: Path
) -> None:
    src, dst, mapping = dbs
    empty = _run(tmp_path, ["import", "-", "--dsn", dst], b"")
    assert empty.returncode == 1
    assert "stdin: the stream is empty" in empty.stderr.decode()
    _assert_tmpdir_empty(tmp_path)

    folder = _run(tmp_path, ["export", "--dsn", src, "-m", str(mapping), "-o", "-", "--format", "dir"])
    assert folder.returncode == 2
    assert "-o -: a pipe carries the single-file form" in folder.stderr.decode()

    leader, follower = pty.openpty()
    try:
        tty = subprocess.run(
            _cli("export", "--dsn", src, "-m", str(mapping), "-o", "-"),
            stdout=follower,
            stderr=subprocess.PIPE,
            env=_env(tmp_path),
            timeout=120,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert tty.returncode == 2
    assert "stdout is a terminal" in tty.stderr.decode()
    _assert_tmpdir_empty(tmp_path)


def test_forged_stream_is_refused_under_the_trusted_key_and_the_signed_one_imports(
    dbs: tuple[str, str, Path], tmp_path: Path
) -> None:
    src, dst, mapping = dbs
    key = make_sign_key(tmp_path, "release")
    data = _export_bytes(tmp_path, src, mapping, "--sign-key", str(key.secret_file))
    genuine = tmp_path / "genuine.edmsdump"
    genuine.write_bytes(data)
    forged = tmp_path / "forged.edmsdump"
    # every size and checksum recomputed: only the signature can tell
    write_tar(forged, forge_member(read_tar(genuine), "public.docs", b"title 7\n", b"FORGED!\n"))
    trusted = ["--trusted-key", str(key.public_file)]

    refused = _run(tmp_path, ["import", "-", "--dsn", dst, *trusted], forged.read_bytes())
    err = refused.stderr.decode()
    assert refused.returncode == 1, err
    assert err.startswith("error: stdin: ")
    assert f"manifest.json does not match its signature by key {key.key_id}" in err
    assert fetch(dst, "SELECT count(*) FROM docs") == [(0,)]
    _assert_tmpdir_empty(tmp_path)

    imported = _run(tmp_path, ["import", "-", "--dsn", dst, *trusted], data)
    assert imported.returncode == 0, imported.stderr.decode()
    assert fetch(dst, "SELECT title FROM docs WHERE number = 'D7'") == [("title 7",)]
    assert _target_rows(dst) == _target_rows(src)


def _small_files(limit: int) -> None:
    """In the child: files may not grow past ``limit`` bytes, as on a full TMPDIR (pipes are
    not files, so stdout and stdin are not limited)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SIGXFSZ as on Linux")
def test_a_full_tmpdir_is_named_with_the_fix_at_both_ends(dbs: tuple[str, str, Path], tmp_path: Path) -> None:
    src, dst, mapping = dbs
    data = _export_bytes(tmp_path, src, mapping, "--compression", "none")
    env = {**_env(tmp_path), "EDMS_PGDUMP_AUDIT_LOG": "off", "PYTHONDONTWRITEBYTECODE": "1"}
    tmpdir = env["TMPDIR"]

    # -j 2 stages in parallel from a spooled copy of the stream, which needs the disk
    imported = subprocess.run(
        _cli("import", "-", "--dsn", dst, "-j", "2"),
        input=data,
        capture_output=True,
        env=env,
        timeout=120,
        preexec_fn=lambda: _small_files(len(data) // 2),
    )
    err = imported.stderr.decode()
    assert imported.returncode == 1, err
    assert f"error: stdin: the stream does not fit in {tmpdir} (File too large, after " in err
    assert "needs temporary disk of the archive's size: point TMPDIR at a larger disk" in err
    assert fetch(dst, "SELECT count(*) FROM docs") == [(0,)]
    _assert_tmpdir_empty(tmp_path)

    # with one connection the stream is staged while it is read: no file grows at all
    imported = subprocess.run(
        _cli("import", "-", "--dsn", dst),
        input=data,
        capture_output=True,
        env=env,
        timeout=120,
        preexec_fn=lambda: _small_files(1),
    )
    assert imported.returncode == 0, imported.stderr.decode()
    assert b"stdin: staged while read from the stream, no temporary file" in imported.stdout
    assert _target_rows(dst) == _target_rows(src)
    _assert_tmpdir_empty(tmp_path)

    exported = subprocess.run(
        _cli("export", "--dsn", src, "-m", str(mapping), "-o", "-", "--compression", "none"),
        capture_output=True,
        env=env,
        timeout=120,
        preexec_fn=lambda: _small_files(len(data) // 4),
    )
    err = exported.stderr.decode()
    assert exported.returncode == 1, err
    assert (
        f"in {tmpdir} failed (File too large); free space in {tmpdir} or point TMPDIR at a larger disk" in err
    )
    assert exported.stdout == b""  # nothing half-written into the pipe
    _assert_tmpdir_empty(tmp_path)
