"""check, plan, sql."""

from __future__ import annotations
