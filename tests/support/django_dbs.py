"""Databases of the Django test project, shared by the Django test modules (import them
into a module to use them there): the project migrated once per test session (a pytest
plugin, registered by tests/conftest.py: a session fixture imported into several modules
would be made once per module), a source seeded with ``SEED_DOCUMENTS`` documents (a
module-level constant of the test module, default 60), and the mapping ``init --django``
writes from it."""

from __future__ import annotations

import fcntl
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from edms_pgdump.demo.servers import Server
from tests.django_project import harness


def migrated_once(
    pg_server: Server,
    name: str,
    migrate: Callable[[str], None],
    key: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """``migrate`` the (new, empty) database ``name``, once per run: under pytest-xdist the
    first worker dumps what it migrated into the run's shared temporary folder, and the
    others restore the dump into their own embedded server (seconds, where the Wagtail
    site's ``migrate`` takes about 20 s). A shared server (EDMS_PGDUMP_TEST_DSN) migrates."""
    dsn = pg_server.dsn(name)
    tools = pg_server.bin_dir
    if not os.environ.get("PYTEST_XDIST_WORKER") or os.environ.get("EDMS_PGDUMP_TEST_DSN") or tools is None:
        migrate(dsn)
        return
    shared = tmp_path_factory.getbasetemp().parent
    dump = shared / f"{key}.dump"
    with open(shared / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if dump.exists():
            subprocess.run([str(tools / "pg_restore"), "--no-owner", "-d", dsn, str(dump)], check=True)
            return
        migrate(dsn)
        part = dump.with_suffix(".part")
        subprocess.run([str(tools / "pg_dump"), "-Fc", "-f", str(part), dsn], check=True)
        part.rename(dump)


@pytest.fixture(scope="session")
def django_migrated_template(
    pg_server: Server, admin: psycopg.Connection, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database the project was migrated into, once per session (``migrate`` takes seconds):
    the template of re-initialised targets. Nobody connects to it but CREATE DATABASE."""
    name = f"edms_dj_tpl_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    migrated_once(pg_server, name, harness.migrate, "django_migrated", tmp_path_factory)
    yield name
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def migrated(django_migrated_template: str) -> str:
    """The session's migrated template, under the name the test modules use."""
    return django_migrated_template


@pytest.fixture(scope="module")
def source(
    request: pytest.FixtureRequest, pg_server: Server, admin: psycopg.Connection, migrated: str
) -> Iterator[str]:
    name = f"edms_dj_src_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{migrated}"')
    dsn = pg_server.dsn(name)
    harness.seed(dsn, getattr(request.module, "SEED_DOCUMENTS", 60))
    yield dsn
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def mapping_file(source: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dj") / "mapping.yaml"
    proc = harness.run(source, "-m", "edms_pgdump", "init", "--django", "settings", "-o", str(out))
    assert "passes check" in proc.stderr
    return out


# -- the Wagtail site (issue 24): its own template, migrated once per session -------------
@pytest.fixture(scope="session")
def wagtail_migrated(
    pg_server: Server, admin: psycopg.Connection, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database the Wagtail site was migrated into once per session (root page, home
    page, root collection, default site): the template of every Wagtail module's source
    and targets. Nobody connects to it but CREATE DATABASE."""
    pytest.importorskip("wagtail")
    from tests.django_wagtail import harness as wagtail_harness

    name = f"edms_wt_tpl_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    migrated_once(pg_server, name, wagtail_harness.migrate, "wagtail_migrated", tmp_path_factory)
    yield name
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def wagtail_source(
    request: pytest.FixtureRequest, pg_server: Server, admin: psycopg.Connection, wagtail_migrated: str
) -> Iterator[str]:
    from tests.django_wagtail import harness as wagtail_harness

    name = f"edms_wt_src_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{wagtail_migrated}"')
    dsn = pg_server.dsn(name)
    wagtail_harness.seed_source(dsn, getattr(request.module, "WAGTAIL_PAGES", 120))
    yield dsn
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def wagtail_target(pg_server: Server, admin: psycopg.Connection, wagtail_migrated: str) -> Iterator[str]:
    """A migrated site with content of its own at the first tree positions."""
    from tests.django_wagtail import harness as wagtail_harness

    name = f"edms_wt_dst_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{wagtail_migrated}"')
    dsn = pg_server.dsn(name)
    wagtail_harness.seed_target(dsn)
    yield dsn
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
