"""Reading a Django JSON fixture as a stream, and writing its values as COPY text.

A ``dumpdata`` backup can be larger than memory, so objects come one at a time from a
streaming parser (ijson), never from ``json.load``. The file may be plain, gzip or
zstd (sniffed from its first bytes, not trusted from its name). Values are written in
COPY's text format with Django's serialisation rules undone: ``BinaryField`` values
are base64, ``ArrayField`` values a JSON list in a string, ``JSONField`` values any
JSON value.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import gzip
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from edms_pgdump.errors import EdmsPgdumpError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
NULL = "\\N"


class FixtureError(EdmsPgdumpError):
    """The fixture file cannot be read, or names something the mapping or target lacks."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class _Hashing:
    """A binary reader that hashes what passes through it (the history names the file
    by its SHA-256)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        return data


@contextmanager
def open_fixture(path: Path, digest: list[str] | None = None) -> Iterator[Any]:
    """The decompressed bytes of ``path``; with ``digest``, the raw file's SHA-256 is
    appended to it once the stream was read to the end."""
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise FixtureError(f"{path}: cannot read the fixture ({exc.strerror}); check the path") from None
    try:
        head = raw.read(4)
        raw.seek(0)
        hashing: Any = _Hashing(raw)
        stream: Any
        if head.startswith(GZIP_MAGIC):
            stream = gzip.GzipFile(fileobj=hashing, mode="rb")
        elif head == ZSTD_MAGIC:
            import zstandard

            stream = zstandard.ZstdDecompressor().stream_reader(hashing, read_across_frames=True)
        else:
            stream = hashing
        yield stream
        if digest is not None:
            while hashing.read(1 << 20):
                pass
            digest.append(hashing.digest.hexdigest())
    finally:
        raw.close()


def iter_objects(path: Path, digest: list[str] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(position, object) for every object of the fixture's top-level list, validated
    as far as Django's format goes: ``model`` a string, ``fields`` a mapping."""
    import ijson

    position = 0
    with open_fixture(path, digest) as stream:
        try:
            for position, obj in enumerate(ijson.items(stream, "item", use_float=True), start=1):
                if not isinstance(obj, dict) or not isinstance(obj.get("model"), str):
                    raise FixtureError(
                        f"{path}: object {position} is not a Django fixture object "
                        '({"model": "app.model", "fields": {...}}); pass a dumpdata JSON file'
                    )
                if not isinstance(obj.get("fields", {}), dict):
                    raise FixtureError(f"{path}: object {position} ({obj['model']}): fields is not a mapping")
                yield position, obj
        except ijson.JSONError as exc:
            raise FixtureError(
                f"{path}: not valid JSON after object {position} ({_first_line(exc)}); the file is "
                "truncated or damaged: dump it again (nothing was imported)"
            ) from None
        except (OSError, EOFError, ValueError) as exc:
            if isinstance(exc, FixtureError):
                raise
            raise FixtureError(
                f"{path}: cannot decompress the fixture after object {position} ({_first_line(exc)}); "
                "the file is truncated or damaged: dump it again (nothing was imported)"
            ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _escape(text: str) -> str:
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _array_literal(values: list[Any]) -> str:
    items: list[str] = []
    for v in values:
        if v is None:
            items.append("NULL")
        elif isinstance(v, list):
            items.append(_array_literal(v))
        else:
            text = ("t" if v else "f") if isinstance(v, bool) else str(v)
            items.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(items) + "}"


def copy_value(value: Any, pg_type: str, where: str) -> str:
    """One value as a COPY text field for a column of ``pg_type``."""
    if value is None:
        return NULL
    if pg_type in ("jsonb", "json"):
        if isinstance(value, str) and value[:1] in ("[", "{"):
            # a field that dumps its JSON as text (Wagtail's StreamField): loaddata parses it
            try:
                return _escape(json.dumps(json.loads(value), ensure_ascii=False))
            except ValueError:
                pass
        return _escape(json.dumps(value, ensure_ascii=False))
    if pg_type.endswith("[]"):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise FixtureError(f"{where}: {value!r} is not an array (a JSON list)") from None
        if not isinstance(value, list):
            raise FixtureError(f"{where}: expected a list for a {pg_type} column, got {value!r}")
        return _escape(_array_literal(value))
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (dict, list)):
        raise FixtureError(
            f"{where}: a {type(value).__name__} for a {pg_type} column; the fixture does not match "
            "the target's schema (migrate the target to the models the backup was made with)"
        )
    if pg_type == "bytea" and isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise FixtureError(f"{where}: a BinaryField value must be base64, got {value[:40]!r}") from None
        return "\\\\x" + raw.hex()
    return _escape(str(value))


def _pg_fraction(dt_text: str) -> str:
    """PostgreSQL's way with fractional seconds: trailing zeros dropped, no dot for none."""
    head, dot, frac = dt_text.partition(".")
    frac = frac.rstrip("0")
    return f"{head}.{frac}" if dot and frac else head


def jsonb_key_value(value: Any, pg_type: str) -> Any:
    """A natural-key value from the fixture as ``jsonb_build_array`` writes the typed
    column in the import's UTC session, so a generic reference's carried key (built
    here, from the JSON) equals the one the target side builds from its columns:
    ``"2026-12-07T04:55:35.569Z"`` (Django) is ``"2026-12-07T04:55:35.569+00:00"``
    (PostgreSQL), a DecimalField's ``"1.50"`` a number. Other values are left as they are."""
    if value is None or isinstance(value, bool):
        return value
    base = pg_type.split("(")[0].strip()
    if isinstance(value, str) and base in ("timestamp with time zone", "timestamptz"):
        try:
            parsed = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if parsed.tzinfo is None:
            return value  # a naive value: PostgreSQL reads it in its session's zone, not ours to guess
        utc = parsed.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return _pg_fraction(utc.isoformat(timespec="microseconds")) + "+00:00"
    if isinstance(value, str) and base in ("timestamp without time zone", "timestamp"):
        try:
            parsed = _dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        return _pg_fraction(parsed.replace(tzinfo=None).isoformat(timespec="microseconds"))
    if isinstance(value, str) and base in ("time without time zone", "time"):
        try:
            return _pg_fraction(_dt.time.fromisoformat(value).isoformat(timespec="microseconds"))
        except ValueError:
            return value
    if isinstance(value, str) and base in ("numeric", "decimal", "real", "double precision"):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    return value
