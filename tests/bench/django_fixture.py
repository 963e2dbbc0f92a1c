"""Benchmark: ``import-fixture`` against Django's ``loaddata`` on the same fixture.

    python tests/bench/django_fixture.py [--documents N] [--dsn ADMIN_DSN] [--json-out PATH]

Migrates the test project (tests/django_project) into a source database, seeds N
documents (default 20,000) with two workflows each, a parent for four in five and tags
for one in three, and dumps it with ``dumpdata --natural-foreign --natural-primary``
(content types, permissions, sessions and admin log left out; comments and links, whose
generic object ids name documents and tags without pks, are in: see docs/django.md). Then, each into its own freshly migrated
target: ``loaddata`` (Django's restore) and ``api.import_fixture`` (timed around the
library call, in this process), and compares the two targets by natural key. Needs the
django extra. Without ``--dsn`` an embedded PostgreSQL is started. Exit 1 when the two
targets differ. This file is not a test module.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from edms_pgdump import api  # noqa: E402
from edms_pgdump.demo.servers import start_embedded, stop_embedded  # noqa: E402
from tests.django_project import harness  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=20_000)
    parser.add_argument("--dsn", help="admin DSN of a server to use (default: embedded PostgreSQL)")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    server = None
    if args.dsn:
        admin_dsn = args.dsn
    else:
        server = start_embedded()
        admin_dsn = server.admin_dsn
    names: list[str] = []

    def new_db() -> str:
        name = f"edms_djbench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        names.append(name)
        return psycopg.conninfo.make_conninfo(admin_dsn, dbname=name)

    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            source = new_db()
            harness.migrate(source)
            t0 = time.perf_counter()
            harness.seed(source, args.documents)
            seed_s = time.perf_counter() - t0
            fixture = harness.dumpdata(
                source, work / "backup.json", "--natural-foreign", "--natural-primary",
                *harness.EXCLUDE_STATE,
            )
            mapping = work / "mapping.yaml"
            harness.run(source, "-m", "edms_pgdump", "init", "--django", "settings", "-o", str(mapping))
            by_loaddata, by_us = new_db(), new_db()
            harness.migrate(by_loaddata)
            harness.migrate(by_us)
            objects = len(json.loads(fixture.read_text()))
            t0 = time.perf_counter()
            harness.django(by_loaddata, "loaddata", str(fixture))
            loaddata_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            result = api.import_fixture(by_us, fixture, mapping, audit_log=False)
            ours_s = time.perf_counter() - t0
            same = harness.natural_view(by_us) == harness.natural_view(by_loaddata)
            report = {
                "documents": args.documents,
                "objects": objects,
                "fixture_bytes": fixture.stat().st_size,
                "rows_inserted": result.inserted,
                "seed_seconds": round(seed_s, 2),
                "loaddata_seconds": round(loaddata_s, 2),
                "import_fixture_seconds": round(ours_s, 2),
                "speedup": round(loaddata_s / ours_s, 1),
                "same_database": same,
                "profile": [p for p in result.profile if p["step"] in ("read fixture", "spool fixture")],
            }
            print(
                f"| objects | loaddata | import-fixture | speed-up | same database |\n"
                f"|---|---|---|---|---|\n"
                f"| {objects:,} | {loaddata_s:.1f} s | {ours_s:.2f} s | {loaddata_s / ours_s:.0f}x | {same} |"
            )
            print(json.dumps(report, indent=1))
            if args.json_out:
                args.json_out.write_text(json.dumps(report, indent=1))
            return 0 if same else 1
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
        if server is not None:
            stop_embedded(server)


if __name__ == "__main__":
    sys.exit(main())
