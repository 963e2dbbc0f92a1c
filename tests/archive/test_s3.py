"""Archives in object storage (issue 27, part 2): ``s3://bucket/key`` for export, import,
verify, inspect and diff, run as real processes against a local S3-compatible server
(moto's standalone server, started in this test session on a free port of 127.0.0.1:
never the network) and a real PostgreSQL.

Every command runs with its own ``TMPDIR``: after each one that folder must be empty, so
the export's scratch is proven removed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.db import subprocess_env
from tests.support.real_schemas import fetch, make_db
from tests.support.security import make_age_key

moto_server = pytest.importorskip("moto.server", reason="the s3 tests need the test extra (moto[server])")
boto3 = pytest.importorskip("boto3")

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
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **_keys())


def _keys() -> dict[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture
def bucket(endpoint: str) -> str:
    name = f"edms-{uuid.uuid4().hex[:12]}"
    _client(endpoint).create_bucket(Bucket=name)
    return name


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


def _env(tmp_path: Path, endpoint: str) -> dict[str, str]:
    env = subprocess_env()
    for name in list(env):
        if name.startswith("AWS_"):
            env.pop(name)  # this machine's own AWS settings play no part
    env.update(CREDENTIALS)
    env["AWS_ENDPOINT_URL"] = endpoint
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "no-aws-config")
    spool = tmp_path / "tmpdir"
    spool.mkdir(exist_ok=True)
    env["TMPDIR"] = str(spool)
    env["EDMS_PGDUMP_AUDIT_LOG"] = str(tmp_path / "audit.jsonl")
    env.pop("EDMS_PGDUMP_TRUSTED_KEYS", None)
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "edms_pgdump", *args]


def _run(tmp_path: Path, endpoint: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _cli(*args), capture_output=True, text=True, env={**_env(tmp_path, endpoint), **env}, timeout=120
    )


def _assert_tmpdir_empty(tmp_path: Path) -> None:
    assert list((tmp_path / "tmpdir").iterdir()) == []


def _target_rows(dst: str) -> list[tuple[object, ...]]:
    return fetch(
        dst,
        "SELECT d.number, o.username, d.title FROM docs d JOIN owners o ON o.id = d.owner_id ORDER BY d.number",
    )


def _nothing_written(dst: str) -> None:
    assert fetch(dst, "SELECT count(*) FROM owners UNION ALL SELECT count(*) FROM docs") == [(0,), (0,)]
    # not even the history table: the refusal came before the transaction
    assert fetch(dst, "SELECT count(*) FROM pg_namespace WHERE nspname = 'edms_pgdump'") == [(0,)]


def test_round_trip_through_a_bucket(
    dbs: tuple[str, str, Path], endpoint: str, bucket: str, tmp_path: Path
) -> None:
    src, dst, mapping = dbs
    url = f"s3://{bucket}/nightly/prod.edmsdump"
    exported = _run(tmp_path, endpoint, "export", "--dsn", src, "-m", str(mapping), "-o", url)
    assert exported.returncode == 0, exported.stderr
    assert f"exported {url}" in exported.stdout and f"{DOCS + 3} rows" in exported.stdout
    _assert_tmpdir_empty(tmp_path)

    # the object is the single-file form, byte for byte: manifest first
    s3 = _client(endpoint)
    saved = tmp_path / "saved.edmsdump"
    s3.download_file(bucket, "nightly/prod.edmsdump", str(saved))
    with tarfile.open(saved) as tar:
        assert tar.getnames() == ["manifest.json", "data/0001.copy.zst", "data/0002.copy.zst"]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    # an existing object is kept unless --force
    again = _run(tmp_path, endpoint, "export", "--dsn", src, "-m", str(mapping), "-o", url)
    assert again.returncode == 2 and f"{url} exists; give --force" in again.stderr

    inspected = _run(tmp_path, endpoint, "inspect", url)
    assert inspected.returncode == 0, inspected.stderr
    assert f"archive {url}" in inspected.stdout and "public.docs" in inspected.stdout

    verified = _run(tmp_path, endpoint, "verify", url)
    assert verified.returncode == 0, verified.stderr
    assert "archive OK" in verified.stdout and f"ok  public.docs  {DOCS} rows" in verified.stdout

    imported = _run(tmp_path, endpoint, "import", url, "--dsn", dst, "-j", "2")
    assert imported.returncode == 0, imported.stderr
    assert f"import {url} -> " in imported.stdout and f"{DOCS + 3} inserted" in imported.stdout
    assert _target_rows(dst) == _target_rows(src) and len(_target_rows(dst)) == DOCS
    assert min(r[0] for r in fetch(dst, "SELECT id FROM owners")) > 500  # the target's own ids

    diffed = _run(tmp_path, endpoint, "diff", url, "--dsn", dst)
    assert diffed.returncode == 0, diffed.stderr
    assert f"diff {url} -> " in diffed.stdout
    two = _run(tmp_path, endpoint, "diff", url, str(saved))
    assert two.returncode == 0, two.stderr
    _assert_tmpdir_empty(tmp_path)


def test_encrypted_archive_in_a_bucket(
    dbs: tuple[str, str, Path], endpoint: str, bucket: str, tmp_path: Path
) -> None:
    src, dst, mapping = dbs
    key = make_age_key(tmp_path, "reader")
    url = f"s3://{bucket}/prod.edmsdump.age"
    exported = _run(
        tmp_path,
        endpoint,
        "export",
        "--dsn",
        src,
        "-m",
        str(mapping),
        "-o",
        url,
        "--encrypt-to",
        key.recipient,
    )
    assert exported.returncode == 0, exported.stderr
    body = _client(endpoint).get_object(Bucket=bucket, Key="prod.edmsdump.age")["Body"].read()
    assert body.startswith(b"age-encryption.org/v1\n")

    missing = _run(tmp_path, endpoint, "import", url, "--dsn", dst)
    assert missing.returncode == 1
    assert f"{url}: the archive is encrypted with age; pass --identity FILE" in missing.stderr

    imported = _run(
        tmp_path, endpoint, "import", url, "--dsn", dst, "-j", "2", "--identity", str(key.identity_file)
    )
    assert imported.returncode == 0, imported.stderr
    assert _target_rows(dst) == _target_rows(src)
    _assert_tmpdir_empty(tmp_path)


def _flip_member_byte(data: bytes, member: str, at: int) -> bytes:
    path = Path("/dev/shm" if Path("/dev/shm").is_dir() else "/tmp") / f"s3flip-{os.getpid()}.tar"
    path.write_bytes(data)
    try:
        with tarfile.open(path) as tar:
            offset = tar.getmember(member).offset_data + at
    finally:
        path.unlink()
    changed = bytearray(data)
    changed[offset] ^= 0x01
    return bytes(changed)


def test_one_byte_changed_in_the_bucket_is_refused_before_any_write(
    dbs: tuple[str, str, Path], endpoint: str, bucket: str, tmp_path: Path
) -> None:
    src, dst, mapping = dbs
    url = f"s3://{bucket}/prod.edmsdump"
    exported = _run(tmp_path, endpoint, "export", "--dsn", src, "-m", str(mapping), "-o", url)
    assert exported.returncode == 0, exported.stderr
    s3 = _client(endpoint)
    data = s3.get_object(Bucket=bucket, Key="prod.edmsdump")["Body"].read()
    s3.put_object(Bucket=bucket, Key="prod.edmsdump", Body=_flip_member_byte(data, "data/0002.copy.zst", 200))

    for jobs in ("1", "2"):
        imported = _run(tmp_path, endpoint, "import", url, "--dsn", dst, "-j", jobs)
        assert imported.returncode == 1, imported.stderr
        assert imported.stderr.startswith(
            f"error: {url}: public.docs: member 'data/0002.copy.zst' SHA-256 mismatch"
        )
        assert "nothing was imported" in imported.stderr and "Traceback" not in imported.stderr
        _nothing_written(dst)

    verified = _run(tmp_path, endpoint, "verify", url)
    assert verified.returncode == 1
    assert "member 'data/0002.copy.zst' SHA-256 mismatch" in verified.stdout + verified.stderr
    _assert_tmpdir_empty(tmp_path)

    # the object put back whole: -j 1 reads it once, front to back, staging while it reads
    s3.put_object(Bucket=bucket, Key="prod.edmsdump", Body=data)
    imported = _run(tmp_path, endpoint, "import", url, "--dsn", dst)
    assert imported.returncode == 0, imported.stderr
    assert f"{url}: staged while read from the stream, no temporary file" in imported.stdout
    assert _target_rows(dst) == _target_rows(src)


def test_missing_key_missing_bucket_bad_credentials_and_missing_extra(
    dbs: tuple[str, str, Path], endpoint: str, bucket: str, tmp_path: Path
) -> None:
    src, dst, mapping = dbs
    url = f"s3://{bucket}/nightly/nothing-here.edmsdump"
    for command in (["import", url, "--dsn", dst], ["verify", url]):
        got = _run(tmp_path, endpoint, *command)
        assert got.returncode == 1, got.stderr
        assert got.stderr.startswith(
            f"error: {url}: archive not found (no object 'nightly/nothing-here.edmsdump' in bucket "
            f"'{bucket}'); check the key (aws s3 ls s3://{bucket}/nightly/)"
        ), got.stderr
        assert "Traceback" not in got.stderr
    _nothing_written(dst)

    nowhere = "s3://no-such-bucket-edms/prod.edmsdump"
    got = _run(tmp_path, endpoint, "import", nowhere, "--dsn", dst)
    assert got.returncode == 1
    assert f"error: {nowhere}: bucket 'no-such-bucket-edms' does not exist at {endpoint}" in got.stderr
    # the export finds out before it copies a table, and leaves nothing behind
    got = _run(tmp_path, endpoint, "export", "--dsn", src, "-m", str(mapping), "-o", nowhere, "--force")
    assert got.returncode == 1
    assert f"error: {nowhere}: bucket 'no-such-bucket-edms' does not exist" in got.stderr
    _assert_tmpdir_empty(tmp_path)

    unreachable = _run(
        tmp_path,
        endpoint,
        "inspect",
        url,
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{_free_port()}",
        AWS_MAX_ATTEMPTS="1",
    )
    assert unreachable.returncode == 1
    assert f"error: {url}: cannot reach http://127.0.0.1:" in unreachable.stderr
    assert "check AWS_ENDPOINT_URL" in unreachable.stderr

    env = _env(tmp_path, endpoint)
    for name in CREDENTIALS:
        env.pop(name)
    env["AWS_EC2_METADATA_DISABLED"] = "true"  # no instance role to ask for either
    no_keys = subprocess.run(_cli("inspect", url), capture_output=True, text=True, env=env, timeout=120)
    assert no_keys.returncode == 1
    assert f"error: {url}: no AWS credentials to read it" in no_keys.stderr
    assert "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in no_keys.stderr
    profile = subprocess.run(
        _cli("inspect", url), capture_output=True, text=True, env={**env, "AWS_PROFILE": "nope"}, timeout=120
    )
    assert profile.returncode == 1
    assert "The config profile (nope) could not be found; check AWS_PROFILE" in profile.stderr

    # without the extra: the command names it (and exits as a usage error)
    no_boto = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['boto3'] = None; from edms_pgdump.cli import main; main()",
            "inspect",
            url,
        ],
        capture_output=True,
        text=True,
        env=_env(tmp_path, endpoint),
        timeout=120,
    )
    assert no_boto.returncode == 2, no_boto.stderr
    assert "s3:// archives need the optional extra s3 (boto3), which is not installed: " in no_boto.stderr
    assert "pip install 'edms-pgdump[s3]'" in no_boto.stderr


class _HoldingProxy:
    """A TCP proxy in front of the S3 server that forwards every connection, except that a
    request naming ``hold`` is never forwarded: the uploader waits there for its answer,
    mid-upload, for as long as the test wants."""

    def __init__(self, endpoint: str, hold: bytes) -> None:
        self.upstream = endpoint.removeprefix("http://").split(":")
        self.hold = hold
        self.held = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection((self.upstream[0], int(self.upstream[1])))
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, upward: bool) -> None:
        try:
            while data := src.recv(65536):
                if upward and self.hold in data:
                    self.held.set()
                    return  # never forwarded, never answered
                dst.sendall(data)
        except OSError:
            pass
        finally:
            if not (upward and self.held.is_set()):
                dst.close()

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("stop", ["kill", "interrupt"])
def test_an_interrupted_upload_leaves_no_object(
    new_db, endpoint: str, bucket: str, tmp_path: Path, stop: str
) -> None:
    # ~10 MB of incompressible COPY text: two parts of 8 MiB
    src = make_db(
        new_db,
        "CREATE TABLE blobs (name text PRIMARY KEY, body text NOT NULL)",
        "INSERT INTO blobs SELECT 'b' || g, repeat(md5(g::text), 8) FROM generate_series(1, 40000) g",
    )
    mapping = tmp_path / "map.yaml"
    mapping.write_text("version: 1\ntables:\n  public.blobs:\n    natural_key: [name]\n")
    s3 = _client(endpoint)
    s3.put_object(Bucket=bucket, Key="prod.edmsdump", Body=b"the previous archive")
    url = f"s3://{bucket}/prod.edmsdump"
    proxy = _HoldingProxy(endpoint, b"partNumber=2")
    try:
        env = {**_env(tmp_path, endpoint), "AWS_ENDPOINT_URL": proxy.url}
        proc = subprocess.Popen(
            _cli("export", "--dsn", src, "-m", str(mapping), "-o", url, "--force", "--compression", "none"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proxy.held.wait(120), "the upload never reached its second part"
        uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        assert [u["Key"] for u in uploads] == ["prod.edmsdump"]
        parts = s3.list_parts(Bucket=bucket, Key="prod.edmsdump", UploadId=uploads[0]["UploadId"])
        assert [p["PartNumber"] for p in parts["Parts"]] == [1]
        os.kill(proc.pid, signal.SIGKILL if stop == "kill" else signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proxy.close()

    # the key still holds what it held: the half-uploaded archive is no object
    assert s3.get_object(Bucket=bucket, Key="prod.edmsdump")["Body"].read() == b"the previous archive"
    left = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    if stop == "kill":
        assert proc.returncode == -signal.SIGKILL
        # what SIGKILL leaves: parts of an upload never completed (a lifecycle rule removes them)
        assert len(left) == 1
    else:
        assert proc.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        assert left == []  # Ctrl-C aborts the upload: no parts left either
        _assert_tmpdir_empty(tmp_path)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("AccessDenied", "access denied (AccessDenied): these credentials may not read it; check the bucket policy"),
        ("403", "access denied (403): these credentials may not read it"),
        ("InvalidAccessKeyId", "refused the credentials (InvalidAccessKeyId); check AWS_PROFILE"),
        ("ExpiredToken", "refused the credentials (ExpiredToken)"),
        ("PreconditionFailed", "the object was replaced while it was being read (its ETag changed)"),
    ],
)
def test_refusals_the_local_server_cannot_give_are_named(code: str, expected: str) -> None:
    """moto's server lets any key do anything: a forbidden key and refused credentials are
    S3's answers, given here as botocore raises them (no server involved)."""
    from botocore.exceptions import ClientError

    from edms_pgdump.archive.object_store import storage_error

    url = "s3://backups/prod.edmsdump"
    exc = ClientError({"Error": {"Code": code, "Message": "as S3 says it"}}, "GetObject")
    message = str(storage_error(url, exc, "read"))
    assert message.startswith(f"{url}: ") and expected in message


def test_part_size_fits_ten_thousand_parts() -> None:
    from edms_pgdump.archive.object_store import MAX_PARTS, MIN_PART, MultipartUpload

    class NoClient:
        def create_multipart_upload(self, **_: object) -> dict[str, str]:
            return {"UploadId": "u"}

    small = MultipartUpload("s3://b/k", 10 << 30, client=NoClient())
    assert small.part_size == MIN_PART  # 10 GB: 1,280 parts of 8 MiB
    huge = MultipartUpload("s3://b/k", 5 << 40, client=NoClient())  # 5 TB, S3's largest object
    assert huge.part_size * (MAX_PARTS - 100) >= (5 << 40) and huge.part_size % (1 << 20) == 0


def test_an_object_replaced_while_it_is_read_is_refused(
    endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every ranged GET is pinned to the ETag the first HEAD saw: the new object's bytes are
    never mixed with the old one's, and an -j reader opened after the swap is refused too."""
    from edms_pgdump.archive import object_store
    from edms_pgdump.errors import ArchiveError

    for name, value in _env(tmp_path, endpoint).items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    object_store._session.cache_clear()
    s3 = _client(endpoint)
    s3.put_object(Bucket=bucket, Key="a.edmsdump", Body=b"A" * 200_000)
    url = f"s3://{bucket}/a.edmsdump"
    remote = object_store.RemoteObject(url)
    try:
        assert remote.read(10) == b"A" * 10
        s3.put_object(Bucket=bucket, Key="a.edmsdump", Body=b"B" * 200_000)
        remote.seek(150_000)  # outside the first window: a new GET
        with pytest.raises(ArchiveError, match=r"the object was replaced while it was being read"):
            remote.read(10)
        with pytest.raises(ArchiveError, match=r"the object was replaced while it was being read"):
            remote.reopened()
    finally:
        remote.close()
        object_store._session.cache_clear()
