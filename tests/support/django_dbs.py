"""Databases of the Django test project, shared by the Django test modules (import them
into a module to use them there): the project migrated once per test session (a pytest
plugin, registered by tests/conftest.py: a session fixture imported into several modules
would be made once per module), a source seeded with ``SEED_DOCUMENTS`` documents (a
module-level constant of the test module, default 60), and the mapping ``init --django``
writes from it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from edms_pgdump.demo.servers import Server
from tests.django_project import harness


@pytest.fixture(scope="session")
def django_migrated_template(pg_server: Server, admin: psycopg.Connection) -> Iterator[str]:
    """A database the project was migrated into, once per session (``migrate`` takes seconds):
    the template of re-initialised targets. Nobody connects to it but CREATE DATABASE."""
    name = f"edms_dj_tpl_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    harness.migrate(pg_server.dsn(name))
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


# -- the Wagtail site (issue 24): its own template, migrated once per session -----------
@pytest.fixture(scope="session")
def wagtail_migrated_template(pg_server: Server, admin: psycopg.Connection) -> Iterator[str]:
    """A database the Wagtail site was migrated into once per session (root page, home page,
    root collection, default site; ``migrate`` takes tens of seconds): the template of
    sources and targets. Nobody connects to it but CREATE DATABASE."""
    pytest.importorskip("wagtail")
    from tests.django_wagtail import harness as wagtail_harness

    name = f"edms_wt_tpl_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    wagtail_harness.migrate(pg_server.dsn(name))
    yield name
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def wagtail_migrated(wagtail_migrated_template: str) -> str:
    """The session's migrated Wagtail template, under the name the test modules import (a
    session fixture imported into a module would be made again there)."""
    return wagtail_migrated_template


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
