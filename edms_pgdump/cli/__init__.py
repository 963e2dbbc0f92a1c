"""``edms-pgdump`` command line: a thin layer over the library."""

from __future__ import annotations

from edms_pgdump.cli import analysis, copy_db, core, demo, django, migrate  # noqa: F401  (each module registers its commands)
from edms_pgdump.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
