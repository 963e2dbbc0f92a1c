"""Queries ``check`` reads application shapes with: rows of excluded tables, and ids
written inside JSON or text (StreamField blocks, rich-text links, revision content)."""

from __future__ import annotations

from psycopg import sql

from edms_pgdump.catalog.names import QualifiedName
from edms_pgdump.sqlgen.common import ident, qualified_literal, table_ident

# how many rows of a column are read for ids inside it: a bounded look, not a scan
EMBEDDED_SAMPLE = 10_000

# An integer where a CMS keeps a chooser's id, in JSON (jsonb's text form, and JSON
# stored as a string inside JSON, whose quotes are escaped) or in rich-text markup:
#   "id": 12 / "image": 12 / "page": 12 ...   {"type": "image", "value": 12}
#   <a linktype="page" id="12">   <embed embedtype="image" id="12"/>
_Q = r'\\?"'
EMBEDDED_ID_PATTERN = "|".join(
    (
        _Q + r"(id|pk|image|page|document|snippet|image_id|page_id|document_id)" + _Q + r": ?[0-9]+",
        _Q + r"type" + _Q + r": ?" + _Q + r"[a-z_]*(image|page|document|snippet)[a-z_]*" + _Q
        + r", ?" + _Q + r"value" + _Q + r": ?[0-9]+",
        r"(linktype|embedtype)=" + _Q + r"[a-z_]+" + _Q + r"[^>]*id=" + _Q + r"[0-9]+",
        r"id=" + _Q + r"[0-9]+" + _Q + r"[^>]*(linktype|embedtype)=",
    )
)


def can_select(table: QualifiedName) -> sql.Composed:
    """Whether this role may read ``table`` (an export role need not read excluded tables)."""
    return sql.SQL("SELECT has_table_privilege({}::regclass, 'SELECT')").format(qualified_literal(table))


def row_count(table: QualifiedName) -> sql.Composed:
    return sql.SQL("SELECT count(*) FROM {}").format(table_ident(table))


def embedded_ids(table: QualifiedName, column: str, sample: int = EMBEDDED_SAMPLE) -> sql.Composed:
    """(rows read, rows with an id-like integer inside, one such match) of ``column``."""
    value = sql.SQL("s.v")
    return sql.SQL(
        "SELECT count(*), count(*) FILTER (WHERE {v} ~ {p}), "
        "min(regexp_substr({v}, {p})) FROM (SELECT t.{c}::text AS v FROM {t} AS t "
        "WHERE t.{c} IS NOT NULL LIMIT {n}) AS s"
    ).format(
        v=value,
        p=sql.Literal(EMBEDDED_ID_PATTERN),
        c=ident(column),
        t=table_ident(table),
        n=sql.Literal(sample),
    )


def materialized_path_counts(table: QualifiedName, samples: int = 5) -> sql.Composed:
    """Nodes of a materialized-path tree (treebeard ``path``/``depth``/``numchild``) whose
    ``numchild`` is not their number of children, or whose parent's path holds no node:
    (total, path, numchild, children). A node's parent path is its path minus one step
    (``length(path) / depth`` characters)."""
    parent = sql.SQL("substr(c.path, 1, length(c.path) - length(c.path) / NULLIF(c.depth, 0))")
    return sql.SQL(
        "SELECT count(*) OVER (), x.path, x.numchild, x.children FROM ("
        "SELECT p.path::text AS path, p.numchild::bigint AS numchild, coalesce(k.n, 0) AS children "
        "FROM {t} AS p LEFT JOIN (SELECT {parent} AS parent, count(*) AS n FROM {t} AS c "
        "WHERE c.depth > 1 GROUP BY 1) AS k ON k.parent = p.path::text "
        "WHERE p.numchild IS DISTINCT FROM coalesce(k.n, 0) "
        "UNION ALL SELECT c.path::text, c.numchild::bigint, NULL FROM {t} AS c WHERE c.depth > 1 "
        "AND NOT EXISTS (SELECT FROM {t} AS p WHERE p.path::text = {parent})"
        ") AS x ORDER BY 2 LIMIT {n}"
    ).format(t=table_ident(table), parent=parent, n=sql.Literal(samples))
