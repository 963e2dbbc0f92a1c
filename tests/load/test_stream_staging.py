"""``import -`` stages the stream while it reads it (issue 27, item 1): no temporary
file, every member proven before the first write to a real table.

Real processes joined by real pipes, on a real PostgreSQL. Each refusal is checked for
its message (naming the member), for the target being untouched (no rows, not even the
history table, which the import creates in its own transaction) and for no staging
schema or temporary file being left behind."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.db import subprocess_env
from tests.support.real_schemas import fetch, make_db
from tests.support.security import make_age_key, make_sign_key, read_tar, write_tar

SCHEMA = (
    "CREATE TABLE owners (id serial PRIMARY KEY, username text UNIQUE NOT NULL)",
    "CREATE TABLE docs (id serial PRIMARY KEY, number text UNIQUE NOT NULL,"
    " owner_id int NOT NULL REFERENCES owners (id), title text)",
    "CREATE TABLE notes (id serial PRIMARY KEY, doc_id int NOT NULL REFERENCES docs (id),"
    " n int NOT NULL, body text, UNIQUE (doc_id, n))",
)
MAPPING = """version: 1
tables:
  public.owners:
    natural_key: [username]
  public.docs:
    natural_key: [number]
  public.notes:
    natural_key: [doc_id, n]
"""
DOCS = 3000


@pytest.fixture
def dbs(new_db, tmp_path: Path) -> tuple[str, str, Path]:
    src = make_db(
        new_db,
        *SCHEMA,
        "INSERT INTO owners (username) VALUES ('ann'), ('bob'), ('cyd')",
        f"INSERT INTO docs (number, owner_id, title) SELECT 'D' || g, 1 + g % 3, md5(g::text) "
        f"FROM generate_series(1, {DOCS}) g",
        "INSERT INTO notes (doc_id, n, body) SELECT id, 1, 'note ' || number FROM docs",
    )
    # the target's ids are elsewhere: an id carried raw would point at the wrong row
    dst = make_db(
        new_db, *SCHEMA, "SELECT setval('owners_id_seq', 500)", "SELECT setval('docs_id_seq', 9000)"
    )
    mapping = tmp_path / "map.yaml"
    mapping.write_text(MAPPING)
    (tmp_path / "tmpdir").mkdir()
    return src, dst, mapping


def _env(tmp_path: Path) -> dict[str, str]:
    env = subprocess_env()
    env["TMPDIR"] = str(tmp_path / "tmpdir")
    env["EDMS_PGDUMP_AUDIT_LOG"] = "off"
    env.pop("EDMS_PGDUMP_TRUSTED_KEYS", None)
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "edms_pgdump", *args]


def _run(tmp_path: Path, args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(_cli(*args), input=stdin, capture_output=True, env=_env(tmp_path), timeout=120)


def _export(tmp_path: Path, src: str, mapping: Path, *extra: str) -> bytes:
    done = _run(tmp_path, ["export", "--dsn", src, "-m", str(mapping), "-o", "-", *extra])
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def _view(dsn: str) -> list[tuple[object, ...]]:
    """The natural view: every row by its natural keys, no ids."""
    return fetch(
        dsn,
        "SELECT d.number, o.username, d.title, n.n, n.body FROM docs d JOIN owners o ON o.id = d.owner_id "
        "LEFT JOIN notes n ON n.doc_id = d.id ORDER BY d.number, n.n",
    )


def _untouched(dst: str, tmp_path: Path) -> None:
    assert fetch(
        dst, "SELECT (SELECT count(*) FROM owners), (SELECT count(*) FROM docs), (SELECT count(*) FROM notes)"
    ) == [(0, 0, 0)]
    # the history table is created inside the import's transaction: rolled back with it
    assert fetch(dst, "SELECT count(*) FROM pg_namespace WHERE nspname = 'edms_pgdump'") == [(0,)]
    assert fetch(dst, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'edms_pgdump_stage_%'") == [(0,)]
    assert list((tmp_path / "tmpdir").iterdir()) == []


def _members(data: bytes, tmp_path: Path) -> tuple[dict[str, bytes], list[str]]:
    path = tmp_path / "split.edmsdump"
    path.write_bytes(data)
    files = read_tar(path)
    path.unlink()
    return files, [t["member"] for t in json.loads(files["manifest.json"])["tables"]]


def _tar(files: dict[str, bytes], tmp_path: Path) -> bytes:
    path = tmp_path / "joined.edmsdump"
    write_tar(path, files)
    data = path.read_bytes()
    path.unlink()
    return data


def test_a_piped_import_stages_while_it_reads_with_no_temporary_file(
    dbs: tuple[str, str, Path], tmp_path: Path
) -> None:
    src, dst, mapping = dbs
    env = _env(tmp_path)
    exp = subprocess.Popen(
        _cli("export", "--dsn", src, "-m", str(mapping), "-o", "-"), stdout=subprocess.PIPE, env=env
    )
    assert exp.stdout is not None
    imp = subprocess.Popen(
        _cli("import", "-", "--dsn", dst, "--json"),
        stdin=exp.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    exp.stdout.close()
    seen: set[str] = set()
    while imp.poll() is None:  # the import's TMPDIR (the export's scratch is its own affair)
        seen.update(p.name for p in (tmp_path / "tmpdir").iterdir() if p.name.startswith("edms-pgdump-stdin"))
        time.sleep(0.02)
    out, err = imp.communicate(timeout=120)
    assert exp.wait(timeout=120) == 0
    assert imp.returncode == 0, err.decode()
    assert seen == set()  # no spool of the stream, at any moment
    assert list((tmp_path / "tmpdir").iterdir()) == []
    assert _view(dst) == _view(src)
    assert len(_view(dst)) == DOCS

    report = json.loads(out)
    assert report["staging"]["read"] == "staged while read from the stream, no temporary file"
    # each table staged once, ahead of the program, with all its rows
    copies = [(e["table"], e["rows"]) for e in report["profile"] if e["step"] == "copy"]
    assert sorted(copies) == [("public.docs", DOCS), ("public.notes", DOCS), ("public.owners", 3)]
    assert [e["step"] for e in report["profile"]].count("verify archive") == 1


def test_one_byte_changed_in_the_last_member_is_refused_with_nothing_written(
    dbs: tuple[str, str, Path], tmp_path: Path
) -> None:
    src, dst, mapping = dbs
    files, order = _members(_export(tmp_path, src, mapping), tmp_path)
    last = order[-1]
    changed = bytearray(files[last])
    changed[len(changed) // 2] ^= 0x01
    damaged = _tar({**files, last: bytes(changed)}, tmp_path)

    got = _run(tmp_path, ["import", "-", "--dsn", dst], damaged)
    err = got.stderr.decode()
    assert got.returncode == 1, err
    assert err.startswith("error: stdin: ")
    # the members before it were staged already: the refusal still comes before any write
    assert f"error: stdin: public.notes: member {last!r} SHA-256 mismatch" in err
    assert "nothing was imported" in err
    assert "Traceback" not in err
    _untouched(dst, tmp_path)


def test_a_truncated_a_short_and_a_padded_stream_are_refused(
    dbs: tuple[str, str, Path], tmp_path: Path
) -> None:
    src, dst, mapping = dbs
    data = _export(tmp_path, src, mapping, "--compression", "none")
    files, order = _members(data, tmp_path)

    cut = _run(tmp_path, ["import", "-", "--dsn", dst], data[: len(data) * 3 // 4])
    err = cut.stderr.decode()
    assert cut.returncode == 1, err
    assert "error: stdin: the stream ended inside member 'data/0003.copy' of public.notes" in err
    assert "it is truncated or damaged; nothing was imported" in err
    _untouched(dst, tmp_path)

    # a member left out: the tar is whole, the manifest lists one more
    short = _tar({k: v for k, v in files.items() if k != order[1]}, tmp_path)
    got = _run(tmp_path, ["import", "-", "--dsn", dst], short)
    err = got.stderr.decode()
    assert got.returncode == 1, err
    assert f"member {order[1]!r} is missing from the stream (1 of 3 member(s) never came)" in err
    _untouched(dst, tmp_path)

    padded = _tar({**files, "data/0099.copy": b"x\n"}, tmp_path)
    got = _run(tmp_path, ["import", "-", "--dsn", dst], padded)
    err = got.stderr.decode()
    assert got.returncode == 1, err
    assert "member 'data/0099.copy' is not listed in the manifest (extra member)" in err
    _untouched(dst, tmp_path)


def test_an_unsigned_stream_is_refused_before_any_staging_when_a_key_is_required(
    dbs: tuple[str, str, Path], tmp_path: Path
) -> None:
    src, dst, mapping = dbs
    key = make_sign_key(tmp_path, "signer")
    data = _export(tmp_path, src, mapping)
    got = _run(tmp_path, ["import", "-", "--dsn", dst, "--trusted-key", str(key.public_file)], data)
    err = got.stderr.decode()
    assert got.returncode == 1, err
    assert (
        "error: stdin: the archive is not signed (no manifest.json.minisig), but trusted keys were given"
        in err
    )
    _untouched(dst, tmp_path)

    signed = _export(tmp_path, src, mapping, "--sign-key", str(key.secret_file))
    got = _run(tmp_path, ["import", "-", "--dsn", dst, "--trusted-key", str(key.public_file)], signed)
    assert got.returncode == 0, got.stderr.decode()
    assert _view(dst) == _view(src)


def test_an_encrypted_stream_is_decrypted_on_the_fly_and_a_cut_one_refused(
    dbs: tuple[str, str, Path], tmp_path: Path
) -> None:
    src, dst, mapping = dbs
    key = make_age_key(tmp_path, "reader")
    data = _export(tmp_path, src, mapping, "--compression", "none", "--encrypt-to", key.recipient)
    start = data.index(b"\n--- ") + 1
    start = data.index(b"\n", start) + 1 + 16  # the header, its MAC line, the payload nonce
    sealed = 64 * 1024 + 16
    assert len(data) - start > 2 * sealed  # several chunks
    identity = ["--identity", str(key.identity_file)]

    # cut at a chunk boundary: every chunk read authenticates, but the last is not marked last
    cut = _run(tmp_path, ["import", "-", "--dsn", dst, *identity], data[: start + 2 * sealed])
    err = cut.stderr.decode()
    assert cut.returncode == 1, err
    assert "error: stdin: the encrypted archive is truncated or its end was changed" in err
    _untouched(dst, tmp_path)

    got = _run(tmp_path, ["import", "-", "--dsn", dst, *identity], data)
    assert got.returncode == 0, got.stderr.decode()
    assert b"stdin: staged while read from the stream, no temporary file" in got.stdout
    assert _view(dst) == _view(src)
    assert list((tmp_path / "tmpdir").iterdir()) == []


def test_with_jobs_a_stream_is_spooled_and_staged_in_parallel(
    dbs: tuple[str, str, Path], tmp_path: Path
) -> None:
    src, dst, mapping = dbs
    got = _run(tmp_path, ["import", "-", "--dsn", dst, "-j", "2"], _export(tmp_path, src, mapping))
    out = got.stdout.decode()
    assert got.returncode == 0, got.stderr.decode()
    assert "staged over 2 connections in edms_pgdump_stage_" in out
    assert "staged while read" not in out
    assert _view(dst) == _view(src)
    # the spool is gone with the command, and so is the staging schema
    assert list((tmp_path / "tmpdir").iterdir()) == []
    assert fetch(dst, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'edms_pgdump_stage_%'") == [(0,)]
