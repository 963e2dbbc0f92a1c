"""What a PostgreSQL user has in their fingers: psql's connection options, one-line usage
errors, ``--debug`` anywhere, and help that names what to type.

psql, pg_dump and pg_restore take ``-d/-h/-p/-U`` and fill the rest from the libpq
environment (PGHOST, PGPORT, PGUSER, PGDATABASE, PGSERVICE, PGPASSWORD, .pgpass); every
command that connects does the same here, by handing libpq the parts given and letting
it do the rest (``--dsn`` stays, as a synonym of ``-d``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import typer
from typer import _click as click  # typer vendors click (0.20+): its exceptions are these
from typer.core import TyperArgument, TyperGroup, TyperOption
from typer.exceptions import Abort

EXIT_USAGE = 2


@dataclass
class Settings:
    debug: bool = False


SETTINGS = Settings()

# --debug is taken out of the command line wherever it stands (after the command too)
DEBUG_FLAG = "--debug"

# metavars a person reads, by parameter name; anything else falls back on its type
METAVARS: dict[str, str] = {
    "dsn": "DSN",
    "source": "DSN",
    "target": "DSN",
    "host": "HOST",
    "port": "PORT",
    "username": "USER",
    "mapping": "FILE",
    "output": "FILE",
    "audit_log": "FILE",
    "identity": "FILE",
    "trusted_key": "FILE",
    "recipients_file": "FILE",
    "sign_key": "FILE",
    "encrypt_to": "RECIPIENT",
    "jobs": "N",
    "level": "N",
    "scale": "N",
    "max_deletes": "N|all",
    "compression": "zstd|none",
    "fmt": "file|dir",
    "constraints": "auto|keep|recreate",
    "on_conflict": "POLICY",
    "lock_timeout": "DURATION",
    "statement_timeout": "DURATION",
    "work_mem": "SIZE",
    "ignore_column": "TABLE.COLUMN",
    "skip_table": "TABLE",
    "allow_side_effects": "TABLE",
    "table": "APP.MODEL=TABLE",
    "include_app": "APP",
    "django": "SETTINGS",
}
# per command, where the same name means something else
COMMAND_METAVARS: dict[tuple[str, str], str] = {("sql", "output"): "DIR"}


def _metavar(command: str, param: Any) -> str:
    name = param.name or ""
    found = COMMAND_METAVARS.get((command, name)) or METAVARS.get(name)
    if found:
        return found
    kind = getattr(getattr(param, "type", None), "name", "")
    return {"path": "FILE", "integer": "N", "float": "NUMBER"}.get(kind, "TEXT")


def _humanize(group: TyperGroup) -> None:
    """Give every option and argument a metavar (typer's default reads ``<list[Path]>``)."""
    for name, command in group.commands.items():
        for param in command.params:
            if param.metavar is not None:
                continue
            if isinstance(param, TyperArgument):
                word = (param.name or "ARG").upper()
                param.metavar = word
                # the usage line reads ``import ARCHIVE``, the list ``ARCHIVE  help`` (typer's
                # defaults: ``{archive}`` and ``ARCHIVE <path>``)
                usage = word if param.required else f"[{word}]"
                param._usage_display_name = lambda usage=usage: usage  # type: ignore[method-assign,misc]
                param.display_type_rich = lambda ctx: ""  # type: ignore[method-assign]
            elif isinstance(param, TyperOption) and not param.is_flag:
                param.metavar = _metavar(name, param)


def usage_error(message: str, json_output: bool) -> None:
    """The one form of every usage error: ``error: …`` on stderr, a JSON document on stdout
    under --json, exit 2."""
    line = " ".join(message.split())
    if json_output:
        sys.stdout.write(json.dumps({"ok": False, "error": line, "kind": "UsageError"}, indent=2) + "\n")
    sys.stderr.write(f"error: {line}\n")
    sys.exit(EXIT_USAGE)


class EdmsGroup(TyperGroup):
    """The root command: strips --debug wherever it is, and turns click's three-line usage
    errors into one line (naming the option, and how to see the help)."""

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> Any:
        from edms_pgdump.errors import EdmsPgdumpError

        argv = list(sys.argv[1:] if args is None else args)
        head, sep, tail = (argv, [], []) if "--" not in argv else _split(argv)
        SETTINGS.debug = DEBUG_FLAG in head
        argv = [a for a in head if a != DEBUG_FLAG] + sep + tail
        json_output = "--json" in head
        _humanize(self)
        extra.pop("standalone_mode", None)
        try:
            rv = super().main(argv, prog_name or "edms-pgdump", standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.UsageError as exc:
            hint = ""
            if exc.ctx is not None and exc.ctx.command is not self:
                hint = f" (edms-pgdump {exc.ctx.info_name} --help lists the options)"
            usage_error(exc.format_message() + hint, json_output)
        except click.exceptions.ClickException as exc:
            usage_error(exc.format_message(), json_output)
        except EdmsPgdumpError as exc:  # raised before a command's run(): a connection option
            if SETTINGS.debug:
                raise
            if exc.exit_code == EXIT_USAGE:
                usage_error(str(exc), json_output)
            sys.stderr.write(f"error: {' '.join(str(exc).split())}\n")
            sys.exit(exc.exit_code)
        except Abort:
            sys.stderr.write("aborted\n")
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


def _split(argv: list[str]) -> tuple[list[str], list[str], list[str]]:
    i = argv.index("--")
    return argv[:i], ["--"], argv[i + 1 :]


# -- connection options ------------------------------------------------------------

DSN_HELP = (
    "Database: a name, a connection string (postgresql://user@host:5432/dbname or "
    "'host=... dbname=...'); default $PGDATABASE. --dsn is the same option."
)


def dbname_option(help: str = DSN_HELP) -> Any:
    return typer.Option(None, "--dbname", "-d", "--dsn", help=help, show_default=False)


def host_option() -> Any:
    return typer.Option(
        None, "--host", "-h", help="Server host or socket directory (default $PGHOST).", show_default=False
    )


def port_option() -> Any:
    return typer.Option(
        None, "--port", "-p", help="Server port (default $PGPORT, else 5432).", show_default=False
    )


def username_option() -> Any:
    return typer.Option(
        None, "--username", "-U", help="Role to connect as (default $PGUSER).", show_default=False
    )


NO_DATABASE = (
    "no database given: use -d/--dbname NAME or a connection string (--dsn is the same), "
    "or set PGDATABASE (or PGSERVICE)"
)


def target_dsn(
    dsn: str | None, host: str | None = None, port: str | None = None, user: str | None = None
) -> str:
    """The connection string for what was given, as psql builds it: -d (a name or a DSN),
    then -h/-p/-U over it; what is missing libpq takes from its environment. Nothing given
    and no PGDATABASE (or PGSERVICE): a usage error, never libpq's silent default database."""
    found = optional_dsn(dsn, host, port, user, environment=True)
    if found is None:
        from edms_pgdump.errors import UsageError

        raise UsageError(NO_DATABASE)
    return found


def optional_dsn(
    dsn: str | None,
    host: str | None = None,
    port: str | None = None,
    user: str | None = None,
    *,
    environment: bool = False,
) -> str | None:
    """As ``target_dsn`` for commands where the database is optional (verify, diff with a
    second archive, check ARCHIVE): None when nothing was given. ``environment``: whether
    PGDATABASE alone counts as given (for verify it never does: a comparison with a
    database is asked for, never implied)."""
    from psycopg.conninfo import make_conninfo

    from edms_pgdump.db import conninfo_for

    parts = {k: v for k, v in (("host", host), ("port", port), ("user", user)) if v}
    if dsn is not None:
        base = conninfo_for(dsn)  # a bare name means dbname=NAME; an empty one is refused
        return make_conninfo(base, **parts) if parts else dsn
    if parts:
        return make_conninfo("", **parts)
    if environment:
        if os.environ.get("PGDATABASE"):
            return make_conninfo("", dbname=os.environ["PGDATABASE"])
        if os.environ.get("PGSERVICE"):
            return make_conninfo("", service=os.environ["PGSERVICE"])
    return None
