"""Peak memory of an encrypted import stays flat: a client that read the archive (or one
member) whole would need more than the archive's size; ours needs a few chunks more than
a tiny import does. Measured in subprocesses (VmHWM, Linux), against a real PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edms_pgdump import export_archive, load_mapping_text
from tests.support.db import execute, scalar, subprocess_env
from tests.support.security import make_age_key

MB = 1024 * 1024
ROWS = 110_000  # about 130 MB of COPY text, stored uncompressed so the archive is as big
SCHEMA = """
CREATE TABLE public.blobs (id serial PRIMARY KEY, name text NOT NULL UNIQUE, body text NOT NULL)
"""
MAPPING = "version: 1\ntables:\n  public.blobs: {natural_key: [name]}\n"

IMPORT = """
import json, sys
from edms_pgdump.api import import_archive
result = import_archive(sys.argv[1], sys.argv[2], identities=[sys.argv[3]], audit_log=False, history=False)
# VmHWM: this process image's peak RSS (ru_maxrss would carry the forking parent's peak)
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
print(json.dumps({"committed": result.committed, "inserted": result.inserted, "peak": peak}))
"""


def _import_peak(dsn: str, archive: Path, identity: Path) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT, dsn, str(archive), str(identity)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS is read from /proc (Linux)")
def test_large_encrypted_import_keeps_peak_rss_flat(new_db, tmp_path: Path) -> None:
    alice = make_age_key(tmp_path, "alice")
    src, small_src, dst, small_dst = new_db(), new_db(), new_db(), new_db()
    for dsn in (src, small_src, dst, small_dst):
        execute(dsn, SCHEMA)
    fill = (
        "INSERT INTO public.blobs (name, body) SELECT 'blob-' || i, repeat(md5(i::text || random()::text), 36) "
        "FROM generate_series(1, {}) AS i"
    )
    execute(src, fill.format(ROWS))
    execute(small_src, fill.format(100))

    mapping = load_mapping_text(MAPPING)
    big, small = tmp_path / "big.edms", tmp_path / "small.edms"
    for dsn, out in ((src, big), (small_src, small)):
        export_archive(
            dsn, mapping, out, compression="none", encrypt_to=[alice.recipient], audit_log=False
        )
    size = big.stat().st_size
    assert size > 120 * MB

    baseline = _import_peak(small_dst, small, alice.identity_file)
    measured = _import_peak(dst, big, alice.identity_file)
    assert measured["committed"] and measured["inserted"] == ROWS
    assert scalar(dst, "SELECT count(*) FROM public.blobs") == ROWS
    growth = measured["peak"] - baseline["peak"]
    print(f"archive {size / MB:.0f} MB; peak RSS {baseline['peak'] / MB:.0f} MB (100 rows) -> "
          f"{measured['peak'] / MB:.0f} MB ({ROWS} rows), growth {growth / MB:.1f} MB")
    assert growth < 40 * MB, f"peak RSS grew by {growth / MB:.0f} MB for a {size / MB:.0f} MB archive"
    assert measured["peak"] < size
