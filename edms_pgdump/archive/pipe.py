"""Archives through pipes: ``-`` as the archive names stdout (export) or stdin (readers).

A stream carries exactly the bytes of the single-file form (the tar with
``manifest.json`` first, age-encrypted as a whole when asked): the export already
builds every member in a scratch folder before it writes the tar, so it knows the
checksums before the first byte goes down the pipe, and ``export -o - > f`` is an
ordinary archive file.

``import -`` with one connection reads the stream once and stages it while it reads
(``stream_reader.py``, ``load/stream_staging.py``): every member is proven as its last
byte arrives, into staging tables of the import's own transaction, and nothing is
written to a real table before the stream's end, so no temporary file is needed.

The other readers (``verify -``, ``inspect -``, ``diff``, ``import -j N -``) spool the
stream to a private temporary file first (``$TMPDIR``, mode 0600, removed at close) and
read that file as any archive: verify and inspect report on the whole archive, and
parallel staging needs a reader per connection, which a pipe cannot give. It costs disk
of the archive's size (compressed, as piped) and one extra sequential write and read.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

from edms_pgdump.archive.streams import CHUNK
from edms_pgdump.errors import ArchiveError, UsageError

STREAM = "-"
STDIN = "stdin"
STDOUT = "stdout"


def is_stream(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is ``-``: stdin for a reader, stdout for the export."""
    return os.fspath(path) == STREAM


def _tmp_dir() -> str:
    return os.environ.get("TMPDIR") or tempfile.gettempdir()


def stdout_for_archive() -> BinaryIO:
    """stdout's binary stream, refused when it is a terminal (an archive is binary)."""
    if sys.stdout.isatty():
        raise UsageError(
            "-o -: stdout is a terminal; pipe the archive into a command or a file "
            "(edms-pgdump export … -o - | edms-pgdump import - …), or give -o FILE"
        )
    return sys.stdout.buffer


def stdout_broken(exc: OSError) -> ArchiveError:
    """The reader of the pipe went away: what it got is a truncated archive."""
    return ArchiveError(
        f"{STDOUT}: the pipe closed before the archive was written whole ({exc.strerror or exc}); "
        "the reading side got a truncated archive, which edms-pgdump refuses: check that command "
        "and export again"
    )


def export_scratch() -> Path:
    """A private scratch folder for an export to stdout (0700, in ``$TMPDIR``)."""
    return Path(tempfile.mkdtemp(prefix="edms-pgdump-export-", dir=_tmp_dir()))


def stdin_for_archive() -> BinaryIO:
    """stdin's binary stream, refused when it is a terminal."""
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError(
            f"{STDIN}: is a terminal; pipe an archive in (edms-pgdump export … -o - | "
            "edms-pgdump import - …, or < FILE), or give the archive's path"
        )
    return sys.stdin.buffer


def spool_stdin(source: BinaryIO | None = None) -> Path:
    """Copy stdin to a private temporary file and return its folder (``stream`` inside).

    The caller removes the folder (``remove_spool``). Refuses a terminal and an empty
    stream; a full disk names ``$TMPDIR`` and the way out."""
    if source is None:
        source = stdin_for_archive()
    folder = Path(tempfile.mkdtemp(prefix="edms-pgdump-stdin-", dir=_tmp_dir()))
    target = folder / "stream"
    size = 0
    try:
        with open(target, "wb") as fh:
            while block := source.read(CHUNK):
                fh.write(block)
                size += len(block)
    except OSError as exc:
        remove_spool(folder)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise ArchiveError(
                f"{STDIN}: the stream does not fit in {folder.parent} ({exc.strerror}, after "
                f"{size} bytes); "
                "reading an archive from a pipe needs temporary disk of the archive's size: point "
                "TMPDIR at a larger disk, or save the archive to a file and give its path"
            ) from None
        raise ArchiveError(
            f"{STDIN}: reading the stream into {folder.parent} failed ({exc.strerror or exc}); "
            "set TMPDIR to a writable folder, or save the archive to a file and give its path"
        ) from None
    except BaseException:
        remove_spool(folder)
        raise
    if size == 0:
        remove_spool(folder)
        raise ArchiveError(
            f"{STDIN}: the stream is empty; pipe an archive in (edms-pgdump export … -o - | "
            "edms-pgdump import - …), and check that the command before the pipe succeeded"
        )
    return folder


def remove_spool(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


__all__ = [
    "STDIN",
    "STDOUT",
    "STREAM",
    "export_scratch",
    "is_stream",
    "remove_spool",
    "spool_stdin",
    "stdin_for_archive",
    "stdout_broken",
    "stdout_for_archive",
]
