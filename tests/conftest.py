"""Real PostgreSQL for every test: EDMS_PGDUMP_TEST_DSN, else the embedded wheel,
else testcontainers when Docker answers. Each test gets fresh databases."""

from __future__ import annotations

import itertools
import os
import queue
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from edms_pgdump.demo import sample
from edms_pgdump.demo.servers import Server, embedded_bin_dir, start_embedded, stop_embedded

ROOT = Path(__file__).resolve().parent.parent

# Session fixtures shared by several modules (the Django project's migrated template, the
# kept demo run) are defined once, here: a session fixture imported into two modules
# would be made twice.
pytest_plugins = ["tests.support.django_dbs", "tests.support.demo_runs"]


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


# A test reaches a server through pg_server (every fixture below, and the Django and
# module fixtures of the test files, are built on it): such a test is marked ``db``.
# A test that reaches one another way (its own embedded server, the PostgreSQL 15 of the
# cross-version suite) carries the mark itself.
SERVER_FIXTURE = "pg_server"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURE in getattr(item, "fixturenames", ()) and item.get_closest_marker("db") is None:
            item.add_marker(pytest.mark.db)
        module = getattr(item, "module", None)
        stem = Path(module.__file__).stem if module is not None and module.__file__ else ""
        name = getattr(item, "originalname", item.name)
        sensitive = stem in VERSION_SENSITIVE or f"{stem}::{name}" in VERSION_SENSITIVE
        if sensitive and item.get_closest_marker("version_sensitive") is None:
            item.add_marker(pytest.mark.version_sensitive)


# What can behave differently on another server version (the rule: docs/design.md,
# "Tests"). These run on the embedded 18 and again on the PostgreSQL 15 in CI; the rest
# runs on 18 only. A module's file name marks all its tests, wherever the file sits;
# "module::test" marks one test; a test may also carry @pytest.mark.version_sensitive.
# When in doubt, list it: an unmarked test is never run on 15.
VERSION_SENSITIVE = frozenset(
    {
        # reading the catalog: partitions, collations, keywords, NULLS NOT DISTINCT
        "test_catalog",
        "test_names",
        "test_nulls_not_distinct",
        "test_collation_changes",  # nondeterministic ICU collations: only 15 has ICU here
        "test_reliability_keys",  # case-insensitive (ICU) targets, index entry size limits
        "test_unchanged_rows",  # unchanged rows set aside: an anti-join on ctid, planner settings
        # xmin, snapshots and subtransaction ids, catalog types and privileges: the import
        # proven in place (the module's other tests are the tool's own logic)
        "test_certificate::test_the_same_archive_again_is_proven_in_place",
        "test_certificate::test_any_write_since_runs_the_import_in_full",
        "test_certificate::test_a_transaction_open_across_the_import_is_seen",
        "test_certificate::test_types_and_tables_changed_without_a_row_written_run_in_full",
        "test_certificate::test_a_check_the_role_may_no_longer_run_runs_the_import_in_full",
        "test_plan_real_schemas",
        "test_real_schemas_fixes",
        "test_real_schemas_ids",
        "test_real_schemas_keys",
        "test_real_schemas_partitions",
        "test_real_schemas_refs",
        "test_archive_format_v2",  # NULL keys and MATCH SIMPLE composites, on 15 and 18
        # privileges, ownership, RLS, the public schema's CREATE right (changed in 15)
        "test_reliability_privilege",
        "test_audit",
        # ownership, lock levels, pooled sessions (the modes' outcomes are the tool's own)
        "test_perf_modes::test_auto_keeps_the_keys_when_a_reader_holds_the_tables",
        "test_perf_modes::test_documented_locks",
        "test_perf_modes::test_recreate_needs_ownership",
        "test_perf_modes::test_pooled_session_that_used_temp_tables_still_imports",
        "test_perf_modes::test_keys_are_validated_with_fresh_statistics",
        # read-only transactions and functions, subset scopes
        "test_subset_refusals",
        "test_subset_mirror",
        "test_subset_diff",
        # the server's error wording, cancellation and lost connections
        "test_export_pipeline",
        "test_schema_drift",
        "test_import_rules",
        "test_cli_basics",
        # lock waits, deadlocks and snapshots against concurrent sessions
        "test_reliability_concurrency::test_import_lock_timeout_is_clean_rollback",
        "test_reliability_concurrency::test_lock_order_deadlock_with_a_writer_ends_cleanly",
        "test_reliability_concurrency::test_export_is_one_snapshot_with_writer_between_tables",
        "test_reliability_concurrency::test_two_imports_of_the_same_archive_at_once",
        "test_demo::test_demo_with_a_role_without_createdb_says_so_and_leaves_nothing",
        # psql runbooks (psql is the 15 client) and SQL pasted into the server
        "test_runbook",
        "test_runbook_checks",
        "test_subset_runbook",
        "test_partly_null_references",
        "test_init_proposals",
        # hostile schemas and session defaults, byte-identical COPY text, other versions
        "test_reliability_hostile",
        "test_reliability_roundtrip",
        "test_reliability_crossversion",
        # generic references, parallel staging; ids inside JSON and text (jsonb functions,
        # regular expressions, "not JSON" errors on 15 where pg_input_is_valid is missing)
        "test_generic_references",
        "test_embedded_references::test_round_trip_through_natural_values",
        "test_embedded_references::test_value_not_json_refused_by_name",
        "test_embedded_references::test_dangling_id_refused_at_export",
        "test_embedded_references::test_dangling_key_refused_at_import_before_any_write",
        "test_embedded_references::test_psql_runbooks_do_the_same",
        # the private schema, its advisory lock and a role that may not create one
        "test_parallel_staging::test_parallel_staging_writes_what_one_connection_writes",
        "test_parallel_staging::test_role_that_may_not_create_a_schema_stages_on_one_connection",
        "test_parallel_staging::test_an_import_while_the_same_archive_stages_next_door",
        "test_parallel_staging::test_cleanup_leaves_a_running_imports_schema_alone",
        # copy: two databases, snapshots shared across connections, the server's error wording
        "test_copy::test_unreachable_databases_and_a_mismatched_target_are_clear",
        "test_copy::test_jobs_2_reads_every_table_on_one_snapshot",
        "test_copy::test_the_source_lost_mid_stream_leaves_the_target_unchanged",
        # what the transaction did (pg_stat_xact counters kept across a session's
        # transactions on 15), FK actions, triggers, rules; both interpreters
        "test_import_proof",
        "test_one_transaction",
        # tree positions: "C" ordering of path steps, planned updates observed, both interpreters
        "test_tree_positions",
        "test_export_program",
        "test_honest_messages",
        # the target's own machinery: INHERITS, identity, unowned sequences, collations
        # (ICU on 15 only), citext and the role's session, moving primary keys, key shapes
        # (NOT ENFORCED and PERIOD on 18 only)
        "test_inheritance",
        "test_identity_columns",
        "test_unowned_sequences",
        "test_collation_keys",
        "test_target_session",
        "test_primary_key_outside_natural_key",
        "test_unique_reference_skip",
        "test_real_schemas_shapes",
        # plain-SQL schemas shaped like Django apps (catalog and runbook), not Django itself
        "test_django_crashes",
        "test_django_tree_positions",
    }
)


@contextmanager
def _fast_commits_on_a_shared_server() -> Iterator[None]:
    """synchronous_commit=off for every connection of the session (libpq's PGOPTIONS, which
    subprocesses and psql inherit): a shared server is not reconfigured, but the suite does
    not wait for its WAL flushes either."""
    old = os.environ.get("PGOPTIONS")
    os.environ["PGOPTIONS"] = " ".join(filter(None, [old, "-c synchronous_commit=off"]))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PGOPTIONS", None)
        else:
            os.environ["PGOPTIONS"] = old


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    dsn = os.environ.get("EDMS_PGDUMP_TEST_DSN")
    if dsn:
        with _fast_commits_on_a_shared_server():
            yield Server(dsn, embedded_bin_dir())
        return
    try:
        server = start_embedded(durable=False)  # thrown away after the session
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


class _Dropper:
    """Drops the tests' databases on threads of their own. DROP DATABASE waits on the server
    (0.5 to 3 s a database on the shared PostgreSQL 15 under load, and four drops at once take
    the time of one): the next test need not wait for it. Every drop is done before the
    session's server goes."""

    THREADS = 4

    def __init__(self, dsn: str) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.failures: list[str] = []
        self._threads = [
            threading.Thread(target=self._run, args=(dsn,), daemon=True) for _ in range(self.THREADS)
        ]
        for thread in self._threads:
            thread.start()

    def drop(self, name: str) -> None:
        self._queue.put(name)

    def _run(self, dsn: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while (name := self._queue.get()) is not None:
                try:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                except psycopg.Error as exc:
                    self.failures.append(f"{name}: {exc}")

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=600)


@pytest.fixture(scope="session")
def _dropper(pg_server: Server) -> Iterator[_Dropper]:
    dropper = _Dropper(pg_server.admin_dsn)
    yield dropper
    dropper.close()
    if dropper.failures:
        warnings.warn("test databases left behind: " + "; ".join(dropper.failures), stacklevel=1)


NewDb = Callable[..., str]


@pytest.fixture
def new_db(pg_server: Server, admin: psycopg.Connection, _dropper: _Dropper) -> Iterator[NewDb]:
    """Factory: create an empty (or templated) database, return its DSN; dropped after
    (in the background: see _Dropper)."""
    created: list[str] = []

    def make(template: str | None = None) -> str:
        name = f"edms_t_{_run}_{next(_counter)}"
        tpl = f' TEMPLATE "{template}"' if template else ""
        admin.execute(f'CREATE DATABASE "{name}"{tpl}')
        created.append(name)
        return pg_server.dsn(name)

    yield make
    for name in created:
        _dropper.drop(name)


@pytest.fixture(scope="session")
def _sample_dbs_templates(
    pg_server: Server, admin: psycopg.Connection, sample_template: str
) -> Iterator[tuple[str, str]]:
    """The two databases sample_dbs copies, made once per session: the sample populated with
    200 documents, and the re-initialised target. Both are deterministic (fixed names,
    timestamps and sequences), so a copy holds what populating afresh would."""
    names = (f"edms_tpl_{_run}_src", f"edms_tpl_{_run}_dst")
    for name in names:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{sample_template}"')
    with psycopg.connect(pg_server.dsn(names[0]), autocommit=True) as c:
        sample.populate(c, sample.SampleSize.from_documents(200))
    with psycopg.connect(pg_server.dsn(names[1]), autocommit=True) as c:
        sample.reinitialise(c)
    yield names
    for name in names:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sample_dbs(new_db: NewDb, _sample_dbs_templates: tuple[str, str]) -> tuple[str, str]:
    """(source DSN with small sample data, re-initialised target DSN): copies of the
    session's two templates (CREATE DATABASE ... TEMPLATE)."""
    src_template, dst_template = _sample_dbs_templates
    return new_db(src_template), new_db(dst_template)
