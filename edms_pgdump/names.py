"""Qualified table names in SQL identifier syntax, as users write them in YAML.

``public.users`` and ``reg."Contract"`` follow psql's rules: unquoted parts fold to
lower case, quoted parts are exact and may contain dots and doubled quotes.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql


@dataclass(frozen=True, order=True)
class QualifiedName:
    schema: str
    name: str

    def __str__(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


def _needs_quotes(part: str) -> bool:
    if not part or not (part[0].islower() or part[0] == "_"):
        return True
    return not all(c.islower() or c.isdigit() or c in "_$" for c in part) or part.upper() in {
        "USER",
        "TABLE",
        "SELECT",
        "ORDER",
        "GROUP",
        "FROM",
        "WHERE",
    }


def quote_ident(part: str) -> str:
    """Quote one identifier only when psql would need it, for readable messages."""
    if _needs_quotes(part):
        return '"' + part.replace('"', '""') + '"'
    return part


def parse_qualified_name(text: str) -> QualifiedName:
    """Parse ``schema.table``; raise ValueError with the reason when it is not one."""
    parts: list[str] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == '"':
            j = i + 1
            buf: list[str] = []
            while True:
                if j >= n:
                    raise ValueError(f"unterminated quoted identifier in {text!r}")
                if text[j] == '"':
                    if j + 1 < n and text[j + 1] == '"':
                        buf.append('"')
                        j += 2
                        continue
                    break
                buf.append(text[j])
                j += 1
            part = "".join(buf)
            if not part:
                raise ValueError(f"empty quoted identifier in {text!r}")
            parts.append(part)
            i = j + 1
        else:
            j = i
            while j < n and text[j] not in '."':
                j += 1
            raw = text[i:j].strip()
            if not raw or any(c.isspace() for c in raw):
                raise ValueError(
                    f'{text!r} is not schema.table; quote names with spaces or capitals like reg."My Table"'
                )
            parts.append(raw.lower())
            i = j
        if i >= n:
            break
        if text[i] != ".":
            raise ValueError(f"unexpected {text[i]!r} in {text!r}")
        i += 1
    if len(parts) != 2:
        raise ValueError(f"{text!r} must be schema.table (for example public.users)")
    return QualifiedName(parts[0], parts[1])
