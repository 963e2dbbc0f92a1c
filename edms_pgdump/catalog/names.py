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
        """``schema.name`` as it can be pasted into psql: parts quoted where PostgreSQL needs it."""
        return f"{quote_identifier(self.schema)}.{quote_identifier(self.name)}"

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


# Every keyword that is not UNRESERVED in PostgreSQL 18 (pg_get_keywords() catcode R, T
# and C), i.e. the words PostgreSQL's own quote_ident() quotes. Data, not a guess: a test
# compares it with the running server's pg_get_keywords(). Older servers have a subset
# (PostgreSQL 15 lacks the json_* words, merge_action and system_user); quoting those
# there too is harmless.
QUOTED_KEYWORDS: frozenset[str] = frozenset(
    (
        "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "authorization",
        "between", "bigint", "binary", "bit", "boolean", "both", "case", "cast", "char", "character",
        "check", "coalesce", "collate", "collation", "column", "concurrently", "constraint", "create",
        "cross", "current_catalog", "current_date", "current_role", "current_schema", "current_time",
        "current_timestamp", "current_user", "dec", "decimal", "default", "deferrable", "desc",
        "distinct", "do", "else", "end", "except", "exists", "extract", "false", "fetch", "float",
        "for", "foreign", "freeze", "from", "full", "grant", "greatest", "group", "grouping", "having",
        "ilike", "in", "initially", "inner", "inout", "int", "integer", "intersect", "interval", "into",
        "is", "isnull", "join", "json", "json_array", "json_arrayagg", "json_exists", "json_object",
        "json_objectagg", "json_query", "json_scalar", "json_serialize", "json_table", "json_value",
        "lateral", "leading", "least", "left", "like", "limit", "localtime", "localtimestamp",
        "merge_action", "national", "natural", "nchar", "none", "normalize", "not", "notnull", "null",
        "nullif", "numeric", "offset", "on", "only", "or", "order", "out", "outer", "overlaps",
        "overlay", "placing", "position", "precision", "primary", "real", "references", "returning",
        "right", "row", "select", "session_user", "setof", "similar", "smallint", "some", "substring",
        "symmetric", "system_user", "table", "tablesample", "then", "time", "timestamp", "to",
        "trailing", "treat", "trim", "true", "union", "unique", "user", "using", "values", "varchar",
        "variadic", "verbose", "when", "where", "window", "with", "xmlattributes", "xmlconcat",
        "xmlelement", "xmlexists", "xmlforest", "xmlnamespaces", "xmlparse", "xmlpi", "xmlroot",
        "xmlserialize", "xmltable"
    )
)

_PLAIN_FIRST = frozenset("abcdefghijklmnopqrstuvwxyz_")
_PLAIN_REST = _PLAIN_FIRST | frozenset("0123456789")


def quote_identifier(part: str) -> str:
    """One identifier the way PostgreSQL's quote_ident() writes it.

    Left bare only when psql reads it back unchanged: lower-case ASCII letters, digits
    and underscores, not starting with a digit, and not a keyword that needs quotes
    (``limit``, ``user``, ``int``, ...). Anything else is double-quoted, inner quotes doubled.
    """
    plain = (
        bool(part)
        and part[0] in _PLAIN_FIRST
        and all(c in _PLAIN_REST for c in part)
        and part not in QUOTED_KEYWORDS
    )
    return part if plain else '"' + part.replace('"', '""') + '"'


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
