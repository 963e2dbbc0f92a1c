"""edms_pgdump: natural-key logical export/import for PostgreSQL at COPY speed."""

from __future__ import annotations

__version__ = "0.1.0"
