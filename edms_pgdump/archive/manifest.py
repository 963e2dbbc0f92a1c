"""The archive's ``manifest.json`` as frozen dataclasses, validated once on the way in.

Why typed: five modules used to pass the parsed JSON around as a dict and each
looked keys up (and guessed defaults) on its own. ``Manifest.from_json`` is now the
only place that decides whether a manifest can be trusted; everything after it reads
attributes. Keys this release does not know are kept in ``extra`` and written back
unchanged, so a later format can add fields without older tools dropping them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any

from edms_pgdump.errors import ArchiveError

FORMAT_NAME = "edms-pgdump"
# 2: a reference carries whether it is present (``<label>.#present``) and a partly NULL
# composite reference its columns as values (``<label>.#value.<column>``), docs/archive-format.md
FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)  # version 1 has neither field: a reference is present when a key field is set
MANIFEST_NAME = "manifest.json"
# minisign signature of the exact bytes of MANIFEST_NAME (signing.py); optional
SIGNATURE_NAME = "manifest.json.minisig"
MANIFEST_CHECKSUM = "manifest_checksum"
COMPRESSIONS = ("zstd", "none")


def check_member_name(name: str, origin: str) -> None:
    """Refuse member paths that could escape the archive when read or extracted."""
    p = PurePosixPath(name)
    if p.is_absolute() or name.startswith("/") or "\\" in name:
        raise ArchiveError(f"{origin}: member {name!r} has an absolute path; refusing the archive")
    if ".." in p.parts:
        raise ArchiveError(f"{origin}: member {name!r} contains '..'; refusing the archive")


def _json_bytes(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=False) + "\n").encode()


def manifest_checksum(data: dict[str, Any]) -> str:
    """SHA-256 of the manifest's own JSON without this field: member hashes protect the
    data, this protects the manifest (row counts, fields, the mapping used to import).
    Archives written before it existed have no such field and are read as before."""
    body = {k: v for k, v in data.items() if k != MANIFEST_CHECKSUM}
    return "sha256:" + hashlib.sha256(_json_bytes(body)).hexdigest()


_REQUIRED: Any = object()  # a default that means "this key must be present"


class _Fields:
    """Typed reads from one JSON object; a wrong type names the path and says the
    manifest is damaged (never a KeyError or TypeError later)."""

    def __init__(self, data: dict[str, Any], where: str, origin: str) -> None:
        self.data = data
        self.where = where
        self.origin = origin
        self.used: set[str] = set()

    def _bad(self, key: str, kind: str) -> ArchiveError:
        return ArchiveError(
            f"{self.origin}: {MANIFEST_NAME} {self.where}{key} is missing or not a {kind}; "
            "the manifest is damaged"
        )

    def _get(self, key: str, default: Any, kinds: tuple[type, ...], kind: str) -> Any:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            if default is _REQUIRED:
                raise self._bad(key, kind)
            return default
        value = self.data[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self._bad(key, kind)
        return value

    def text(self, key: str, default: Any = "") -> str:
        return str(self._get(key, default, (str,), "str"))

    def optional_text(self, key: str) -> str | None:
        value = self._get(key, None, (str,), "str")
        return None if value is None else str(value)

    def integer(self, key: str, default: Any = 0) -> int:
        return int(self._get(key, default, (int,), "int"))

    def optional_int(self, key: str) -> int | None:
        value = self._get(key, None, (int,), "int")
        return None if value is None else int(value)

    def flag(self, key: str, default: bool = False) -> bool:
        return bool(self._get(key, default, (bool,), "bool"))

    def obj(self, key: str) -> dict[str, Any]:
        return dict(self._get(key, {}, (dict,), "object"))

    def items(self, key: str, default: Any = ()) -> list[Any]:
        return list(self._get(key, default, (list,), "list"))

    def texts(self, key: str) -> tuple[str, ...]:
        values = self.items(key)
        if not all(isinstance(v, str) for v in values):
            raise self._bad(key, "list of strings")
        return tuple(values)

    def objects(self, key: str) -> tuple[dict[str, Any], ...]:
        values = self.items(key)
        if not all(isinstance(v, dict) for v in values):
            raise self._bad(key, "list of objects")
        return tuple(dict(v) for v in values)

    def extra(self) -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if k not in self.used}


@dataclass(frozen=True)
class FieldEntry:
    """One exported field: a column, or a natural-key part standing in for a reference."""

    name: str
    type: str
    role: str = "column"
    column: str | None = None
    reference: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, data: Any, where: str, origin: str) -> FieldEntry:
        if not isinstance(data, dict):
            raise ArchiveError(f"{origin}: {MANIFEST_NAME} {where} is not an object; the manifest is damaged")
        f = _Fields(data, where + ".", origin)
        entry = cls(
            name=f.text("name", _REQUIRED),
            type=f.text("type", _REQUIRED),
            role=f.text("role", "column"),
            column=f.optional_text("column"),
            reference=f.optional_text("reference"),
        )
        return replace(entry, extra=f.extra())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "role": self.role}
        if self.column:
            out["column"] = self.column
        if self.reference:
            out["reference"] = self.reference
        return {**out, **self.extra}


@dataclass(frozen=True, kw_only=True)
class TableShape:
    """What the plan knew about a table at export: enough to import it without the
    source database. Lookup tables (referenced, not exported) carry only this."""

    table: str
    schema: str = ""
    name: str = ""
    natural_key: tuple[str, ...] = ()
    key_fields: tuple[str, ...] = ()
    fields: tuple[FieldEntry, ...] = ()
    expansions: tuple[dict[str, Any], ...] = ()  # plan.Expansion.to_dict()
    dropped_columns: tuple[str, ...] = ()
    estimated_rows: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def shape_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "schema": self.schema,
            "name": self.name,
            "natural_key": list(self.natural_key),
            "key_fields": list(self.key_fields),
            "fields": [f.to_dict() for f in self.fields],
            "expansions": [dict(e) for e in self.expansions],
            "dropped_columns": list(self.dropped_columns),
            "estimated_rows": self.estimated_rows,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.shape_dict(), **self.extra}

    @property
    def scope(self) -> dict[str, Any] | None:
        """A subset export's rule for this table (subset.TableScope.to_dict, plus
        ``rows_in_scope``): ``rule`` is where, owned, needed or whole. None: not a subset."""
        scope = self.extra.get("scope")
        return dict(scope) if isinstance(scope, dict) else None

    @staticmethod
    def _shape_args(f: _Fields, fields_required: bool) -> dict[str, Any]:
        raw_fields = f.items("fields", _REQUIRED if fields_required else ())
        return {
            "table": f.text("table", _REQUIRED),
            "schema": f.text("schema"),
            "name": f.text("name"),
            "natural_key": f.texts("natural_key"),
            "key_fields": f.texts("key_fields"),
            "fields": tuple(
                FieldEntry.from_dict(x, f"{f.where}fields[{j}]", f.origin) for j, x in enumerate(raw_fields)
            ),
            "expansions": f.objects("expansions"),
            "dropped_columns": f.texts("dropped_columns"),
            "estimated_rows": f.optional_int("estimated_rows"),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str, origin: str) -> TableShape:
        f = _Fields(data, where + ".", origin)
        args = cls._shape_args(f, fields_required=False)
        return cls(**args, extra=f.extra())


@dataclass(frozen=True, kw_only=True)
class TableEntry(TableShape):
    """An exported table: its shape plus the member holding its rows and the facts
    that prove the member is whole (sizes and SHA-256 of stored bytes and of the text)."""

    member: str
    rows: int
    bytes: int  # stored (possibly compressed) size
    sha256: str  # of the stored bytes
    compression: str
    data_bytes: int | None = None  # COPY text size (absent in the oldest archives)
    data_sha256: str = ""  # of the COPY text ("" when absent)

    def to_dict(self) -> dict[str, Any]:
        out = self.shape_dict()
        out.update(member=self.member, rows=self.rows, bytes=self.bytes, sha256=self.sha256)
        if self.data_bytes is not None:
            out["data_bytes"] = self.data_bytes
        if self.data_sha256:
            out["data_sha256"] = self.data_sha256
        out["compression"] = self.compression
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str, origin: str) -> TableEntry:
        f = _Fields(data, where + ".", origin)
        f.text("table", _REQUIRED)  # checked first: later messages name the table
        required: dict[str, Any] = {
            "member": f.text("member", _REQUIRED),
            "rows": f.integer("rows", _REQUIRED),
            "bytes": f.integer("bytes", _REQUIRED),
            "sha256": f.text("sha256", _REQUIRED),
            "compression": f.text("compression", _REQUIRED),
        }
        args = cls._shape_args(f, fields_required=True)
        entry = cls(
            **args,
            **required,
            data_bytes=f.optional_int("data_bytes"),
            data_sha256=f.text("data_sha256"),
        )
        return replace(entry, extra=f.extra())


@dataclass(frozen=True)
class Source:
    """Where and when the rows were read: server, database, role and snapshot."""

    server: str = ""
    database: str = ""
    server_version: str = ""
    server_version_num: int | None = None
    snapshot: str = ""
    role: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str) -> Source:
        f = _Fields(data, "source.", origin)
        src = cls(
            server=f.text("server"),
            database=f.text("database"),
            server_version=f.text("server_version"),
            server_version_num=f.optional_int("server_version_num"),
            snapshot=f.text("snapshot"),
            role=f.text("role"),
        )
        return replace(src, extra=f.extra())

    def to_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "database": self.database,
            "server_version": self.server_version,
            "server_version_num": self.server_version_num,
            "snapshot": self.snapshot,
            "role": self.role,
            **self.extra,
        }


@dataclass(frozen=True)
class Manifest:
    """The whole manifest. ``sha256`` identifies the archive in the audit log and the
    history table: for a manifest read from an archive it is the hash of the stored
    bytes, so it names exactly what was read."""

    archive_id: str
    created_at: str
    tables: tuple[TableEntry, ...]
    mapping: dict[str, Any]
    format_version: int = FORMAT_VERSION
    tool_version: str = ""
    source: Source = field(default_factory=Source)
    settings: dict[str, str] = field(default_factory=dict)
    mapping_sha256: str = ""
    sorted_rows: bool = False
    mapping_text: str = ""
    load_order: tuple[str, ...] = ()
    components: tuple[tuple[str, ...], ...] = ()
    unmapped_tables: tuple[str, ...] = ()
    problems: tuple[dict[str, Any], ...] = ()  # plan.Problem.to_dict()
    lookups: tuple[TableShape, ...] = ()
    checksum: str | None = None  # "sha256:…" over the JSON without this field
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    stored: bytes | None = field(default=None, compare=False, repr=False)

    def table(self, name: str) -> TableEntry:
        for t in self.tables:
            if t.table == name:
                return t
        raise KeyError(name)

    @property
    def filters(self) -> dict[str, str]:
        """A subset export's filters, table -> the expression as written; {} for a full export."""
        found = self.extra.get("filters")
        if not isinstance(found, dict):
            return {}
        return {str(k): str(v) for k, v in found.items()}

    def entry_for_member(self, member: str) -> TableEntry | None:
        return next((t for t in self.tables if t.member == member), None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT_NAME,
            "format_version": self.format_version,
            "tool_version": self.tool_version,
            "archive_id": self.archive_id,
            "created_at": self.created_at,
            "source": self.source.to_dict(),
            "settings": dict(self.settings),
            "mapping": self.mapping,
            "mapping_sha256": self.mapping_sha256,
            "sorted_rows": self.sorted_rows,
            "mapping_text": self.mapping_text,
            "load_order": list(self.load_order),
            "components": [list(c) for c in self.components],
            "unmapped_tables": list(self.unmapped_tables),
            "problems": [dict(p) for p in self.problems],
            "tables": [t.to_dict() for t in self.tables],
            "lookups": [t.to_dict() for t in self.lookups],
            **self.extra,
        }
        if self.checksum is not None:
            out[MANIFEST_CHECKSUM] = self.checksum
        return out

    def to_json(self) -> bytes:
        """The stored bytes when read from an archive, else the canonical JSON."""
        return self.stored if self.stored is not None else _json_bytes(self.to_dict())

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_json()).hexdigest()

    def sealed(self) -> Manifest:
        """This manifest with its checksum filled in, as it is written to an archive."""
        body = replace(self, checksum=None, stored=None).to_dict()
        return replace(self, checksum=manifest_checksum(body), stored=None)

    @classmethod
    def from_json(cls, raw: bytes, origin: str) -> Manifest:
        """Parse and validate; every refusal names the archive, the key and the fix."""
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            if _looks_truncated(raw, exc):
                raise ArchiveError(
                    f"{origin}: {MANIFEST_NAME} is truncated (JSON ends early at byte {exc.pos} of "
                    f"{len(raw)}); the archive was cut short, copy or re-export it"
                ) from None
            raise ArchiveError(
                f"{origin}: {MANIFEST_NAME} is corrupt ({exc.__class__.__name__} at byte "
                f"{exc.pos}); the archive cannot be trusted, re-export it"
            ) from None
        except UnicodeDecodeError as exc:
            raise ArchiveError(
                f"{origin}: {MANIFEST_NAME} is corrupt ({exc.__class__.__name__} at byte "
                f"{exc.start}); the archive cannot be trusted, re-export it"
            ) from None
        return replace(cls.from_dict(data, origin), stored=bytes(raw))

    @classmethod
    def from_dict(cls, data: Any, origin: str) -> Manifest:
        _check_header(data, origin)
        tables = data.get("tables")
        if not isinstance(tables, list):
            raise ArchiveError(f"{origin}: {MANIFEST_NAME} has no tables list; the manifest is damaged")
        entries = tuple(_table_entry(t, i, origin) for i, t in enumerate(tables))
        _check_unique(entries, origin)
        for key in ("mapping", "archive_id", "created_at"):
            if key not in data:
                raise ArchiveError(f"{origin}: {MANIFEST_NAME} lacks {key!r}; the manifest is damaged")
        f = _Fields(data, "", origin)
        f.used.update({"format", "tables", MANIFEST_CHECKSUM})
        lookups = f.items("lookups")
        for i, t in enumerate(lookups):
            if not isinstance(t, dict):
                raise ArchiveError(f"{origin}: {MANIFEST_NAME} lookups[{i}] is not an object")
        components = f.items("components")
        if not all(isinstance(c, list) and all(isinstance(n, str) for n in c) for c in components):
            raise ArchiveError(
                f"{origin}: {MANIFEST_NAME} components is not a list of table-name lists; "
                "the manifest is damaged"
            )
        manifest = cls(
            archive_id=f.text("archive_id", _REQUIRED),
            created_at=f.text("created_at", _REQUIRED),
            tables=entries,
            mapping=f.obj("mapping"),
            format_version=f.integer("format_version", _REQUIRED),
            tool_version=f.text("tool_version"),
            source=Source.from_dict(f.obj("source"), origin),
            settings={str(k): str(v) for k, v in f.obj("settings").items()},
            mapping_sha256=f.text("mapping_sha256"),
            sorted_rows=f.flag("sorted_rows"),
            mapping_text=f.text("mapping_text"),
            load_order=f.texts("load_order"),
            components=tuple(tuple(c) for c in components),
            unmapped_tables=f.texts("unmapped_tables"),
            problems=f.objects("problems"),
            lookups=tuple(TableShape.from_dict(t, f"lookups[{i}]", origin) for i, t in enumerate(lookups)),
            checksum=data.get(MANIFEST_CHECKSUM),
        )
        return replace(manifest, extra=f.extra())


def _looks_truncated(raw: bytes, exc: json.JSONDecodeError) -> bool:
    """A JSON error at (or within a token of) the end of the text, or an unterminated
    string, means the manifest was cut short rather than overwritten."""
    end = len(raw.rstrip())
    return exc.pos >= end - 8 or exc.msg.startswith("Unterminated string")


def _check_header(data: Any, origin: str) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise ArchiveError(f"{origin}: {MANIFEST_NAME} is not an edms-pgdump manifest")
    version = data.get("format_version")
    if version not in READ_VERSIONS or isinstance(version, bool):
        read = " and ".join(str(v) for v in READ_VERSIONS)
        raise ArchiveError(
            f"{origin}: archive format version {version!r} is not supported by this "
            f"edms-pgdump (reads versions {read}); upgrade edms-pgdump to read it, or re-export "
            "the archive with this one"
        )
    if MANIFEST_CHECKSUM in data and data[MANIFEST_CHECKSUM] != manifest_checksum(data):
        raise ArchiveError(
            f"{origin}: {MANIFEST_NAME} checksum mismatch: the manifest was edited or damaged after "
            "export (it is still valid JSON); the archive cannot be trusted, re-export it"
        )


def _table_entry(t: Any, i: int, origin: str) -> TableEntry:
    if not isinstance(t, dict):
        raise ArchiveError(f"{origin}: {MANIFEST_NAME} tables[{i}] is not an object")
    entry = TableEntry.from_dict(t, f"tables[{i}]", origin)
    check_member_name(entry.member, origin)
    if entry.rows < 0 or entry.bytes < 0:
        raise ArchiveError(
            f"{origin}: {MANIFEST_NAME} tables[{i}] has a negative or non-numeric row count or size; "
            "the manifest is damaged"
        )
    if entry.compression not in COMPRESSIONS:
        raise ArchiveError(f"{origin}: {entry.table}: unknown compression {entry.compression!r}")
    return entry


def _check_unique(entries: tuple[TableEntry, ...], origin: str) -> None:
    members: set[str] = set()
    tables: set[str] = set()
    for i, t in enumerate(entries):
        if t.member in members:
            raise ArchiveError(f"{origin}: member {t.member!r} is listed twice in the manifest")
        members.add(t.member)
        if t.table in tables:
            # the importer keys members by table: a second entry would hide the first one's rows
            raise ArchiveError(
                f"{origin}: table {t.table} is listed twice in the manifest (tables[{i}]); "
                "the manifest is damaged"
            )
        tables.add(t.table)


__all__ = [
    "COMPRESSIONS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST_CHECKSUM",
    "MANIFEST_NAME",
    "READ_VERSIONS",
    "FieldEntry",
    "Manifest",
    "Source",
    "TableEntry",
    "TableShape",
    "check_member_name",
    "manifest_checksum",
]
