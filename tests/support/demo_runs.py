"""Demo runs that several test modules check, made once per test session (a pytest
plugin, registered by tests/conftest.py): each demo run creates and fills four
databases and runs pg_dump and pg_restore, so the suite makes each kind of run once."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from edms_pgdump.demo.servers import Server
from edms_pgdump.demo.story import run_demo
from edms_pgdump.results import DemoResult

# The smallest scale whose counts tell the tables apart (10 users, 20 documents, 40
# versions, 20 workflows): the story needs no more rows to lose.
DEMO_SCALE = 20


@pytest.fixture(scope="session")
def kept_demo(pg_server: Server, admin: psycopg.Connection) -> Iterator[DemoResult]:
    """``run_demo(keep=True)`` on the test server, with pg_dump: its databases and files stay
    until the session ends, then are dropped here."""
    result = run_demo(scale=DEMO_SCALE, dsn=pg_server.admin_dsn, keep=True)
    try:
        yield result
    finally:
        for name in (k for k in result.kept if k.startswith("edms_demo_")):
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
        if "archive" in result.kept:
            shutil.rmtree(Path(result.kept["archive"]).parent, ignore_errors=True)
