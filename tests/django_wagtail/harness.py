"""Drive the Wagtail test site in subprocesses (settings are process-global) against a
real PostgreSQL: migrate, seed, run ``edms-pgdump``, ask Wagtail about its trees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SITE = Path(__file__).resolve().parent
ROOT = SITE.parents[1]


def env(dsn: str) -> dict[str, str]:
    out = dict(os.environ)
    out["EDMS_PGDUMP_DJANGO_DSN"] = dsn
    out["DJANGO_SETTINGS_MODULE"] = "settings"
    out["PYTHONPATH"] = os.pathsep.join([str(SITE), str(ROOT), out.get("PYTHONPATH", "")])
    return out


def run(dsn: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in the site's folder with the test database's DSN."""
    proc = subprocess.run(
        [sys.executable, *args], cwd=SITE, env=env(dsn), capture_output=True, text=True, timeout=900
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def migrate(dsn: str) -> None:
    run(dsn, "-m", "django", "migrate", "-v0")


def seed_source(dsn: str, pages: int) -> None:
    run(dsn, "seed.py", "source", str(pages))


def seed_target(dsn: str) -> None:
    run(dsn, "seed.py", "target")


TREE_PROBLEMS = (
    "from wagtail.models import Collection, Page; "
    "print(len([x for x in Page.find_problems() if x]), len([x for x in Collection.find_problems() if x]))"
)


def tree_problems(dsn: str) -> tuple[int, int]:
    """How many kinds of treebeard problems Wagtail's pages and collections have."""
    out = run(dsn, "-c", "import django; django.setup(); " + TREE_PROBLEMS).stdout.split()
    return int(out[0]), int(out[1])
