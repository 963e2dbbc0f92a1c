"""Files shipped with the tool: sample DDL and mapping (wheel or source checkout)."""

from __future__ import annotations

from pathlib import Path

# the package folder: the wheel carries sql/ and config/ there as _sql/ and _config/
_PKG = Path(__file__).resolve().parents[1]


def _first(*candidates: Path) -> Path:
    for c in candidates:
        if c.exists():
            return c
    return candidates[-1]


def sample_schema_path() -> Path:
    return _first(_PKG / "_sql" / "edms_schema.sql", _PKG.parent / "sql" / "edms_schema.sql")


def sample_mapping_path() -> Path:
    return _first(_PKG / "_config" / "edms.yaml", _PKG.parent / "config" / "edms.yaml")
