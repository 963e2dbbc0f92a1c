"""ExportOptions: validated once, when made, for the library and the CLI. A wrong value is
refused before any connection with a message naming the option (and its flag) and what
to give instead; the CLI maps it to exit code 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from edms_pgdump import api
from edms_pgdump.cli import app
from edms_pgdump.errors import UsageError
from edms_pgdump.options import ExportOptions

# a server nobody listens on: an option refused first never gets to connect
NOWHERE = "postgresql://nobody@127.0.0.1:1/none"
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "options, expected",
    [
        ({"jobs": 0}, "jobs=0 (--jobs): use a whole number of at least 1"),
        ({"jobs": True}, "jobs=True (--jobs): use a whole number of at least 1"),
        ({"jobs": "2"}, "jobs='2' (--jobs): use a whole number of at least 1"),
        ({"compression": "gzip"}, "compression='gzip' (--compression): use one of zstd, none"),
        ({"level": 0}, "level=0 (--level): use a zstd level from 1 to 19"),
        ({"level": 20}, "level=20 (--level): use a zstd level from 1 to 19"),
        ({"sort_rows": "yes"}, "sort_rows='yes': use True or False"),
        (
            {"where": "status = 'x'"},
            "where=\"status = 'x'\" (--where): give (table, condition) pairs or a dict",
        ),
        (
            {"where": [("public.t",)]},
            "--where ('public.t',): give a table and an expression, --where TABLE EXPR",
        ),
        ({"encrypt_to": [1]}, "encrypt_to: 1 is no age recipient (--encrypt-to): give each as text, age1…"),
        (
            {"encrypt_to": ["age1xyz"], "directory": True},
            "--encrypt-to writes one encrypted file: drop --format dir",
        ),
        (
            {"recipients_file": "keys.txt", "directory": True},
            "--encrypt-to writes one encrypted file: drop --format dir",
        ),
        (
            {"sign_password": "secret"},
            "sign_password is the password of --sign-key: give sign_key too, or drop sign_password",
        ),
    ],
)
def test_a_wrong_option_is_refused_naming_it_and_the_fix(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(UsageError) as info:
        ExportOptions(**options)
    assert str(info.value) == expected
    # the library's keyword entry refuses it the same way, before connecting
    with pytest.raises(UsageError) as again:
        api.export_archive(NOWHERE, ROOT / "config" / "edms.yaml", "/nonexistent/out.edms", audit_log=False,
                           **options)  # fmt: skip
    assert str(again.value) == expected


def test_valid_options_are_kept_as_tuples() -> None:
    """A dict of filters becomes pairs; lists become tuples (the options cannot change)."""
    o = ExportOptions(
        where={"public.documents": "status = 'x'"}, encrypt_to=["age1a"], recipients_file="r.txt"
    )
    assert o.where == (("public.documents", "status = 'x'"),)
    assert o.encrypt_to == ("age1a",)
    assert o.recipients_file == ("r.txt",)
    assert o.encrypted
    assert "secret" not in repr(ExportOptions(sign_key="k", sign_password="secret"))
    with pytest.raises(AttributeError):
        o.jobs = 2  # type: ignore[misc]


def test_the_cli_refuses_a_wrong_option_with_exit_code_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["export", "--dsn", NOWHERE, "-m", str(ROOT / "config" / "edms.yaml"), "-o", str(tmp_path / "a.edms"),
         "--level", "42"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "level=42 (--level): use a zstd level from 1 to 19" in result.output
    assert not (tmp_path / "a.edms").exists()
