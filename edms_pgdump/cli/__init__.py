"""``edms-pgdump`` command line: a thin layer over the library."""

from __future__ import annotations

from . import core  # noqa: F401  (registers commands)
from .app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
