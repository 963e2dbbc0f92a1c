"""Real PostgreSQL for every test: EDMS_PGDUMP_TEST_DSN, else the embedded wheel,
else testcontainers when Docker answers. Each test gets fresh databases."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from edms_pgdump.demo import sample
from edms_pgdump.demo.servers import Server, embedded_bin_dir, start_embedded, stop_embedded

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", help="rewrite golden files (sql/ runbooks)"
    )


def _testcontainers_server() -> Server | None:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception:
        return None
    from testcontainers.postgres import PostgresContainer  # type: ignore[import-untyped]

    container = PostgresContainer("postgres:18", driver=None)
    container.start()
    return Server(container.get_connection_url(), None, container)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    dsn = os.environ.get("EDMS_PGDUMP_TEST_DSN")
    if dsn:
        yield Server(dsn, embedded_bin_dir())
        return
    try:
        server = start_embedded()
    except Exception:
        tc = _testcontainers_server()
        if tc is None:
            raise
        yield tc
        tc.handle.stop()  # type: ignore[attr-defined]
        return
    yield server
    stop_embedded(server)


@pytest.fixture(scope="session", autouse=True)
def _private_audit_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep the suite's audit lines out of the user's real audit log."""
    path = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    old = os.environ.get("EDMS_PGDUMP_AUDIT_LOG")
    os.environ["EDMS_PGDUMP_AUDIT_LOG"] = str(path)
    yield path
    if old is None:
        os.environ.pop("EDMS_PGDUMP_AUDIT_LOG", None)
    else:
        os.environ["EDMS_PGDUMP_AUDIT_LOG"] = old


_counter = itertools.count()
_run = uuid.uuid4().hex[:6]


@pytest.fixture(scope="session")
def admin(pg_server: Server) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def sample_template(pg_server: Server, admin: psycopg.Connection) -> Iterator[str]:
    """A database holding the sample schema, cloned with CREATE DATABASE ... TEMPLATE."""
    name = f"edms_tpl_{_run}"
    admin.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(pg_server.dsn(name), autocommit=True) as c:
        sample.create_schema(c)
    yield name
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


NewDb = Callable[..., str]


@pytest.fixture
def new_db(pg_server: Server, admin: psycopg.Connection) -> Iterator[NewDb]:
    """Factory: create an empty (or templated) database, return its DSN; dropped after."""
    created: list[str] = []

    def make(template: str | None = None) -> str:
        name = f"edms_t_{_run}_{next(_counter)}"
        tpl = f' TEMPLATE "{template}"' if template else ""
        admin.execute(f'CREATE DATABASE "{name}"{tpl}')
        created.append(name)
        return pg_server.dsn(name)

    yield make
    for name in created:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sample_dbs(new_db: NewDb, sample_template: str) -> tuple[str, str]:
    """(source DSN with small sample data, re-initialised target DSN)."""
    src = new_db(sample_template)
    dst = new_db(sample_template)
    with psycopg.connect(src, autocommit=True) as c:
        sample.populate(c, sample.SampleSize.from_documents(200))
    with psycopg.connect(dst, autocommit=True) as c:
        sample.reinitialise(c)
    return src, dst
