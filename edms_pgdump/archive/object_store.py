"""Archives in S3-compatible object storage: ``s3://bucket/key`` wherever an archive path goes.

The object holds exactly the bytes of the single-file form (the tar with
``manifest.json`` first, age-encrypted as a whole when asked), so ``aws s3 cp`` of it
is an ordinary archive file and the reverse.

Client: boto3 (the optional extra ``edms-pgdump[s3]``), for the standard AWS
configuration chain (``AWS_PROFILE`` and ``~/.aws/config``, ``AWS_ACCESS_KEY_ID`` …,
``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3``, SSO, assume-role, instance roles) and the
low-level multipart calls; docs/design.md says why not obstore.

Writing (``MultipartUpload``): the export builds its members in a private scratch folder
as for ``-o -`` (the manifest, first in the tar, holds every member's checksum), then
streams the tar into a multipart upload, one part in memory at a time. The object
exists only once ``CompleteMultipartUpload`` succeeds, which is the last step: an
export that fails or is interrupted aborts the upload, and one killed outright leaves
only an incomplete multipart upload, never an object (a bucket lifecycle rule
``AbortIncompleteMultipartUpload`` removes its parts).

Reading (``RemoteObject``): a seekable read-only file over ranged GETs, each pinned
to the ETag the first HEAD saw (``If-Match``), so an object replaced while it is read
fails with a message instead of mixing two archives. tarfile finds the members'
offsets by reading their headers through it; each member is then read by ranges, and
each ``import -j N`` loader opens its own ``RemoteObject`` (``reopen``): N members
download in parallel. Nothing goes to local disk; the import reads every member twice
(once to prove it before the transaction, once to load it), as it does a file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache
from typing import Any

from edms_pgdump.archive.streams import SeekableBytes
from edms_pgdump.errors import ArchiveError, UsageError

SCHEME = "s3://"
EXTRA = "pip install 'edms-pgdump[s3]'"
MIN_PART = 8 * 1024 * 1024  # S3's minimum is 5 MiB for every part but the last
MAX_PARTS = 10_000
FIRST_WINDOW = 64 * 1024  # after a seek: a tar header, a manifest
MAX_WINDOW = 4 * 1024 * 1024  # while reading on: one GET per window, one window in memory
COMPLETE_TIMEOUT = 900  # seconds


def is_s3(path: object) -> bool:
    """Whether ``path`` names an object: ``s3://bucket/key``."""
    return isinstance(path, str) and path.startswith(SCHEME)


def split_url(url: str) -> tuple[str, str]:
    """``(bucket, key)`` of ``s3://bucket/key``; a URL without both is a UsageError."""
    bucket, _, key = url[len(SCHEME) :].partition("/")
    if not bucket or not key or key.endswith("/"):
        raise UsageError(
            f"{url}: an archive in object storage is one object: give s3://BUCKET/KEY "
            "(for example s3://backups/prod.edmsdump)"
        )
    return bucket, key


def _boto() -> Any:
    try:
        import boto3
    except ImportError:
        raise UsageError(
            f"s3:// archives need the optional extra s3 (boto3), which is not installed: {EXTRA}"
        ) from None
    return boto3


@lru_cache(maxsize=1)
def _session() -> Any:
    """One session per process: it reads the configuration once, and its clients share the
    service model it loads (about 10 MB of JSON per session)."""
    return _boto().session.Session()  # AWS_PROFILE, AWS_DEFAULT_REGION, AWS_CONFIG_FILE …


def make_client(url: str, read_timeout: int = 60) -> Any:
    """An S3 client configured the standard AWS way (environment, profile, config files)."""
    _boto()
    from botocore.config import Config

    with _calls(url, "reach", None):
        session = _session()
        # AWS_ENDPOINT_URL(_S3) and AWS_MAX_ATTEMPTS are read by botocore itself; retries in
        # standard mode (backoff, throttling) unless AWS_RETRY_MODE says otherwise
        retries = {} if os.environ.get("AWS_RETRY_MODE") else {"mode": "standard"}
        return session.client("s3", config=Config(retries=retries, read_timeout=read_timeout))


def _code(exc: Any) -> str:
    error = getattr(exc, "response", {}).get("Error", {})
    return str(error.get("Code", ""))


def storage_error(url: str, exc: BaseException, action: str, client: Any = None) -> ArchiveError:
    """A botocore exception as one line that names the object and the fix."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ProfileNotFound,
    )

    bucket, key = split_url(url)
    endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None) or "the default AWS endpoint"
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return ArchiveError(
            f"{url}: no AWS credentials to {action} it ({exc}); set AWS_PROFILE, or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, ProfileNotFound):
        return ArchiveError(f"{url}: {exc}; check AWS_PROFILE against ~/.aws/config")
    if isinstance(exc, EndpointConnectionError):
        return ArchiveError(
            f"{url}: cannot reach {endpoint} to {action} it ({exc}); check AWS_ENDPOINT_URL and the network"
        )
    if isinstance(exc, ClientError):
        code = _code(exc)
        if code in ("NoSuchBucket",) or (code in ("404", "NoSuchKey") and not _bucket_exists(client, bucket)):
            return ArchiveError(
                f"{url}: bucket {bucket!r} does not exist at {endpoint}; check the bucket name, "
                "AWS_ENDPOINT_URL and AWS_PROFILE"
            )
        if code in ("404", "NoSuchKey"):
            return ArchiveError(
                f"{url}: archive not found (no object {key!r} in bucket {bucket!r}); check the key "
                f"(aws s3 ls s3://{bucket}/{key.rsplit('/', 1)[0] + '/' if '/' in key else ''})"
            )
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"):
            return ArchiveError(
                f"{url}: {endpoint} refused the credentials ({code}); check AWS_PROFILE or "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        if code in ("403", "AccessDenied", "Forbidden", "AllAccessDisabled"):
            return ArchiveError(
                f"{url}: access denied ({code}): these credentials may not {action} it; check the "
                "bucket policy and the role of AWS_PROFILE"
            )
        if code in ("412", "PreconditionFailed"):
            return ArchiveError(
                f"{url}: the object was replaced while it was being read (its ETag changed); "
                "nothing read from it may be used: run the command again"
            )
        return ArchiveError(f"{url}: {action} failed ({code or exc}); {exc}")
    return ArchiveError(f"{url}: {action} failed ({exc})")


def _bucket_exists(client: Any, bucket: str) -> bool:
    if client is None:
        return True
    try:
        client.head_bucket(Bucket=bucket)
    except Exception as exc:
        return _code(exc) not in ("404", "NoSuchBucket")
    return True


@contextmanager
def _calls(url: str, action: str, client: Any) -> Iterator[None]:
    """Turn every botocore exception of the block into an ArchiveError naming ``url``."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise storage_error(url, exc, action, client) from None


def object_exists(url: str) -> bool:
    """Whether ``url`` names an existing object (export's ``--force`` check)."""
    bucket, key = split_url(url)
    client = make_client(url)
    from botocore.exceptions import ClientError

    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _code(exc) in ("404", "NoSuchKey"):
            return False
        raise storage_error(url, exc, "read", client) from None
    except Exception as exc:
        raise storage_error(url, exc, "read", client) from None
    return True


# -- reading -----------------------------------------------------------------------


class RemoteObject(SeekableBytes):
    """A seekable read-only file over one object, read by ranged GETs pinned to its ETag.

    Reads fill the buffer asked for (tarfile treats a short read as the end of the data).
    One window is held in memory: 64 KiB after a seek, doubling to 4 MiB while the
    reads go on from where the last window ended."""

    def __init__(self, url: str, *, etag: str | None = None, client: Any = None) -> None:
        super().__init__()
        self.url = url
        self.bucket, self.key = split_url(url)
        self.client = client if client is not None else make_client(url)
        extra = {"IfMatch": etag} if etag else {}
        with _calls(url, "read", self.client):
            head = self.client.head_object(Bucket=self.bucket, Key=self.key, **extra)
        self.size = int(head["ContentLength"])
        self.etag: str = head["ETag"]
        self._pos = 0
        self._buf = b""
        self._buf_at = 0
        self._window = FIRST_WINDOW
        self.requests = 0

    def reopened(self) -> RemoteObject:
        """Another reader of the same object, pinned to the same ETag (one per thread)."""
        return RemoteObject(self.url, etag=self.etag, client=self.client)

    def _fetch(self) -> None:
        start = self._pos
        sequential = start == self._buf_at + len(self._buf) and self._buf
        self._window = min(self._window * 2, MAX_WINDOW) if sequential else FIRST_WINDOW
        end = min(start + self._window, self.size) - 1
        with _calls(self.url, "read", self.client):
            got = self.client.get_object(
                Bucket=self.bucket, Key=self.key, Range=f"bytes={start}-{end}", IfMatch=self.etag
            )
            data = got["Body"].read()
        self.requests += 1
        if len(data) != end - start + 1:
            raise ArchiveError(
                f"{self.url}: a read of bytes {start}-{end} returned {len(data)} bytes; "
                "the object changed or the endpoint is faulty: run the command again"
            )
        self._buf, self._buf_at = data, start

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self.size:
            offset = self._pos - self._buf_at
            if not 0 <= offset < len(self._buf):
                self._fetch()
                offset = 0
            n = min(len(view) - done, len(self._buf) - offset)
            view[done : done + n] = self._buf[offset : offset + n]
            done += n
            self._pos += n
        return done

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self.size - self._pos
        out = bytearray(max(0, min(size, self.size - self._pos)))
        n = self.readinto(out)
        return bytes(out[:n])

    def starts_with(self, magic: bytes) -> bool:
        pos = self._pos
        self.seek(0)
        head = self.read(len(magic))
        self.seek(pos)
        return head == magic

    def close(self) -> None:
        self._buf = b""
        super().close()


# -- writing -----------------------------------------------------------------------


class MultipartUpload:
    """A write-only stream into one object by multipart upload; one part in memory.

    ``complete()`` makes the object exist; ``abort()`` (also on any failure inside
    ``write``/``complete``) removes the uploaded parts. Until ``complete`` the key
    holds whatever it held before: no partial object is ever visible."""

    def __init__(self, url: str, expected_size: int = 0, client: Any = None) -> None:
        self.url = url
        self.bucket, self.key = split_url(url)
        self.client = client if client is not None else make_client(url)
        # 10,000 parts at most: a part size that fits the expected size with room to spare
        need = -(-expected_size * 5 // 4 // (MAX_PARTS - 100)) if expected_size else 0
        self.part_size = max(MIN_PART, -(-need // (1 << 20)) << 20)
        # one part's buffer, allocated once and sent as it is: no copy, no reallocation
        self._buf = bytearray(self.part_size)
        self._fill = 0
        self._parts: list[dict[str, Any]] = []
        self.size = 0
        self._id: str | None = None
        with _calls(url, "write", self.client):
            started = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key)
        self._id = started["UploadId"]

    @property
    def upload_id(self) -> str | None:
        return self._id

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        size = len(view)
        self.size += size
        while view:
            take = min(len(view), self.part_size - self._fill)
            self._buf[self._fill : self._fill + take] = view[:take]
            self._fill += take
            view = view[take:]
            if self._fill == self.part_size:
                self._upload(self._buf)  # botocore takes a bytearray; it is reused once sent
                self._fill = 0
        return size

    def _upload(self, part: bytes | bytearray) -> None:
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise ArchiveError(
                f"{self.url}: the archive outgrew {MAX_PARTS} parts of {self.part_size} bytes; "
                "nothing was written to the bucket"
            )
        with _calls(self.url, "write", self.client):
            done = self.client.upload_part(
                Bucket=self.bucket, Key=self.key, UploadId=self._id, PartNumber=number, Body=part
            )
        self._parts.append({"PartNumber": number, "ETag": done["ETag"]})

    def flush(self) -> None:
        """Parts go when full (S3 refuses small parts but the last); nothing to do here."""

    def tell(self) -> int:
        return self.size

    def complete(self) -> None:
        """Send the last part and make the object exist."""
        if self._fill or not self._parts:
            with memoryview(self._buf) as view:
                self._upload(bytes(view[: self._fill]))
        self._buf, self._fill = bytearray(), 0
        # its own client: CompleteMultipartUpload of a large object may take minutes to answer
        # (moto took 87 s for 1 GB), and a retry after botocore's 60 s read timeout would fail
        # an upload that did complete
        with _calls(self.url, "write", self.client):
            make_client(self.url, read_timeout=COMPLETE_TIMEOUT).complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self._id,
                MultipartUpload={"Parts": self._parts},
            )
        self._id = None

    def abort(self) -> None:
        """Remove the parts uploaded so far; the key keeps what it held before."""
        upload, self._id = self._id, None
        self._buf, self._fill = bytearray(), 0
        if upload is None:
            return
        # the failure being reported matters more than this one: the parts are not an
        # object, and a lifecycle rule (AbortIncompleteMultipartUpload) removes them
        with suppress(Exception):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload)


def check_bucket(url: str) -> None:
    """Before an export reads the database: the bucket is there and these credentials reach it."""
    bucket, _ = split_url(url)
    client = make_client(url)
    with _calls(url, "write", client):
        client.head_bucket(Bucket=bucket)


__all__ = [
    "EXTRA",
    "SCHEME",
    "MultipartUpload",
    "RemoteObject",
    "check_bucket",
    "is_s3",
    "make_client",
    "object_exists",
    "split_url",
    "storage_error",
]
