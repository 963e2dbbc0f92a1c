"""Positions of trees that store them (``tree:``), computed by the import, set-based.

Materialized path (django-treebeard ``MP_Node``): before the writes, in the table's final
staging table, a node the target already holds (matched by natural key) keeps the target's
``path`` and ``depth``; a node to insert gets the next free step under its parent in the
target (after the last existing child: ``max(path)`` of the parent's children, read in
"C" order, plus its rank among its new siblings in the source's order); a node below a
new node keeps the rest of its source path under its new ancestor, all in one statement
without recursion. The nodes the target holds keep their ``numchild`` in
staging; after the inserts every parent of new nodes is recounted.

Nested sets (django-mptt): inserted nodes keep the source's numbers as placeholders, then
after the writes each
tree touched (the trees of the existing parents of inserted nodes, and new roots) is
renumbered from its ``parent_id`` links: ``lft = 2*pre - level - 1`` and
``rght = 2*post + level`` from each node's pre-order and post-order rank (siblings in
their existing ``lft`` order, new ones after them), ``level`` its depth, ``tree_id`` its
root's (new roots after the target's last one).
"""

from __future__ import annotations

from psycopg import sql

from edms_pgdump.plan.model import Plan, TablePlan
from edms_pgdump.plan.tree import parent_field_name
from edms_pgdump.sqlgen.common import equals, ident
from edms_pgdump.sqlgen.export import key_relation, own_rel
from edms_pgdump.sqlgen.staging import StagingNames


def _setting(tp: TablePlan, name: str) -> str:
    assert tp.tree is not None
    return str(tp.tree.get(name))


def _pk(tp: TablePlan) -> str:
    return tp.primary_key[0]


def _key(tp: TablePlan, alias: str) -> sql.Composable:
    """A staged or keyed row's natural key as the archive's parent field carries it."""
    return sql.SQL("pg_catalog.jsonb_build_array({})").format(
        sql.SQL(", ").join(sql.SQL("{}.{}").format(ident(alias), ident(kf.name)) for kf in tp.key_fields)
    )


def _segment(tp: TablePlan, number: sql.Composable) -> sql.Composable:
    """``number`` written as one fixed-width step of ``steplen`` digits of the alphabet."""
    alphabet, step = _setting(tp, "alphabet"), int(_setting(tp, "steplen"))
    base = len(alphabet)
    digits = [
        sql.SQL("pg_catalog.substr({a}, (({n}) / {p} % {b})::int + 1, 1)").format(
            a=sql.Literal(alphabet), n=number, p=sql.Literal(base ** (step - 1 - i)), b=sql.Literal(base)
        )
        for i in range(step)
    ]
    return sql.SQL("({})").format(sql.SQL(" || ").join(digits))


def _number(tp: TablePlan, segment: sql.Composable) -> sql.Composable:
    """A step of the path read back as a number (0 for NULL: no child yet)."""
    alphabet, step = _setting(tp, "alphabet"), int(_setting(tp, "steplen"))
    base = len(alphabet)
    terms = [
        sql.SQL("(pg_catalog.strpos({a}, pg_catalog.substr({s}, {i}, 1)) - 1)::bigint * {p}").format(
            a=sql.Literal(alphabet), s=segment, i=sql.Literal(i + 1), p=sql.Literal(base ** (step - 1 - i))
        )
        for i in range(step)
    ]
    return sql.SQL("coalesce({}, 0)").format(sql.SQL(" + ").join(terms))


def _mp_ctes(plan: Plan, tp: TablePlan, names: StagingNames) -> sql.Composed:
    """known: the target's nodes by key; kids: the staged nodes to insert, ranked among
    their new siblings; last: per target path, its last child step and its children;
    anchor: the nodes to insert whose parent the target holds (or roots), each given the
    next free step under it; placed: each node to insert with its new path.

    Below an anchor every node is new (its parent is in the archive, not in the target),
    so its path is the anchor's new path followed by the rest of its source path: the
    parent-prefix relation is kept, and nothing of the target's lies under a free step.
    Each node's anchor is the deepest anchor whose source path prefixes its own, found by
    one hash join over the node's prefixes (depth times the nodes): no recursion, no
    level-by-level loop."""
    path, step = ident(_setting(tp, "path")), sql.Literal(int(_setting(tp, "steplen")))
    pk = ident(_pk(tp))
    parent = ident(parent_field_name(tp.tree)) if tp.tree is not None else ident("")
    eq = equals()
    return sql.SQL(
        "known AS (SELECT {tkey} AS key, t.{path}::text AS path FROM ({keys}) AS k "
        "JOIN {table} AS t ON t.{pk} {eq} k.{pk}), "
        "kids AS (SELECT s.{pk} AS id, {skey} AS key, s.{parent} AS parent, s.{path}::text AS src, "
        "pg_catalog.row_number() OVER "
        '(PARTITION BY s.{parent} ORDER BY s.{path}::text COLLATE "C") AS n '
        "FROM {final} AS s WHERE s.{new}), "
        "last AS (SELECT pg_catalog.substr(c.{path}, 1, pg_catalog.length(c.{path}) - {step})::text AS path, "
        "pg_catalog.max(pg_catalog.substr(c.{path}, pg_catalog.length(c.{path}) - {step} + 1)::text "
        'COLLATE "C") AS seg, pg_catalog.count(*) AS children FROM {table} AS c GROUP BY 1), '
        "anchor AS (SELECT k.id, k.src, coalesce(p.path, '') AS ppath, {last} + k.n AS number "
        "FROM kids AS k LEFT JOIN known AS p ON p.key {eq} k.parent "
        "LEFT JOIN last AS l ON l.path {eq} coalesce(p.path, '') "
        "WHERE k.parent IS NULL OR p.path IS NOT NULL), "
        "placed AS (SELECT DISTINCT ON (k.id) k.id, (a.ppath || {aseg} || "
        "pg_catalog.substr(k.src, pg_catalog.length(a.src) + 1))::text AS path FROM kids AS k "
        "CROSS JOIN LATERAL pg_catalog.generate_series(1, pg_catalog.length(k.src) / {step}) AS d(n) "
        "JOIN anchor AS a ON a.src {eq} pg_catalog.substr(k.src, 1, d.n * {step}) "
        "ORDER BY k.id, d.n DESC)"
    ).format(
        tkey=_key(tp, "k"),
        keys=key_relation(plan, tp),
        table=own_rel(tp),
        path=path,
        pk=pk,
        eq=eq,
        skey=_key(tp, "s"),
        parent=parent,
        final=names.final,
        new=ident(tp.new_marker),
        step=step,
        last=_number(tp, sql.SQL("l.seg")),
        aseg=_segment(tp, sql.SQL("a.number")),
    )


def mp_unplaced(plan: Plan, tp: TablePlan, names: StagingNames, samples: int = 5) -> sql.Composed:
    """Nodes to insert that cannot be placed: a parent named by a key that is neither in
    the target nor among the nodes to insert, or no free step left under the parent.
    (total, node key, parent key, problem)."""
    base = len(_setting(tp, "alphabet")) ** int(_setting(tp, "steplen"))
    return sql.SQL(
        "WITH {ctes} SELECT pg_catalog.count(*) OVER (), x.key::text, x.parent::text, x.problem "
        "FROM (SELECT k.key, k.parent, 'parent not found' AS problem FROM kids AS k "
        "WHERE k.parent IS NOT NULL AND NOT EXISTS (SELECT FROM known AS p WHERE p.key {eq} k.parent) "
        "AND NOT EXISTS (SELECT FROM kids AS o WHERE o.key {eq} k.parent) "
        "UNION ALL SELECT k.key, k.parent, 'no free position under the parent' FROM kids AS k "
        "JOIN anchor AS a ON a.id {eq} k.id WHERE a.number >= {base}) AS x "
        "ORDER BY 2 LIMIT {n}"
    ).format(ctes=_mp_ctes(plan, tp, names), eq=equals(), base=sql.Literal(base), n=sql.Literal(samples))


def mp_positions(plan: Plan, tp: TablePlan, names: StagingNames) -> sql.Composed:
    """Every staged node's path, depth and numchild: the target's for the nodes it holds
    (their numchild is recounted after the inserts), new ones for the nodes to insert."""
    path, depth, numchild = (ident(_setting(tp, c)) for c in ("path", "depth", "numchild"))
    pk, new = ident(_pk(tp)), ident(tp.new_marker)
    return sql.SQL(
        "WITH {ctes}, "
        "newkids AS (SELECT k.parent, pg_catalog.count(*) AS n FROM kids AS k "
        "WHERE k.parent IS NOT NULL GROUP BY 1), "
        "pos AS (SELECT s.{pk} AS id, coalesce(t.{path}::text, pl.path) AS path, "
        "CASE WHEN s.{new} THEN pg_catalog.length(pl.path) / {step} ELSE t.{depth} END AS depth, "
        "CASE WHEN s.{new} THEN coalesce(nk.n, 0) ELSE t.{numchild} END AS numchild "
        "FROM {final} AS s LEFT JOIN {table} AS t ON NOT s.{new} AND t.{pk} {eq} s.{pk} "
        "LEFT JOIN placed AS pl ON s.{new} AND pl.id {eq} s.{pk} "
        "LEFT JOIN newkids AS nk ON s.{new} AND nk.parent {eq} {skey}) "
        "UPDATE {final} AS s SET {path} = pos.path, {depth} = pos.depth, {numchild} = pos.numchild "
        "FROM pos WHERE pos.id {eq} s.{pk}"
    ).format(
        ctes=_mp_ctes(plan, tp, names),
        pk=pk,
        new=new,
        path=path,
        depth=depth,
        numchild=numchild,
        step=sql.Literal(int(_setting(tp, "steplen"))),
        final=names.final,
        table=own_rel(tp),
        eq=equals(),
        skey=_key(tp, "s"),
    )


def mp_recount_parents(tp: TablePlan, names: StagingNames) -> sql.Composed:
    """After the inserts: the target nodes that received new children (held by the
    archive or not) get their numchild recounted. Apart from the UPDATE of changed rows,
    so ``on_conflict: skip`` or ``error`` never sees a counter as a change."""
    path, numchild = ident(_setting(tp, "path")), ident(_setting(tp, "numchild"))
    pk, step = ident(_pk(tp)), sql.Literal(int(_setting(tp, "steplen")))
    return sql.SQL(
        "UPDATE {table} AS t SET {numchild} = c.n FROM (SELECT pg_catalog.substr(c.{path}, 1, "
        "pg_catalog.length(c.{path}) - {step})::text AS path, pg_catalog.count(*) AS n FROM {table} AS c "
        "GROUP BY 1) AS c WHERE c.path {eq} t.{path}::text "
        "AND t.{path}::text IN (SELECT pg_catalog.substr(s.{path}, 1, pg_catalog.length(s.{path}) - {step}) "
        "FROM {final} AS s WHERE s.{new}) "
        "AND t.{numchild} IS DISTINCT FROM c.n"
    ).format(
        table=own_rel(tp),
        numchild=numchild,
        path=path,
        step=step,
        eq=equals(),
        final=names.final,
        new=ident(tp.new_marker),
        pk=pk,
    )


def mp_recount_all(tp: TablePlan) -> sql.Composed:
    """After ``--delete-missing`` removed nodes: every node whose numchild is not its
    number of children is recounted (a parent that lost children)."""
    path, numchild = ident(_setting(tp, "path")), ident(_setting(tp, "numchild"))
    step = sql.Literal(int(_setting(tp, "steplen")))
    return sql.SQL(
        "UPDATE {table} AS t SET {numchild} = coalesce(c.n, 0) FROM {table} AS t2 LEFT JOIN "
        "(SELECT pg_catalog.substr(x.{path}, 1, pg_catalog.length(x.{path}) - {step})::text AS path, "
        "pg_catalog.count(*) AS n FROM {table} AS x GROUP BY 1) AS c ON c.path {eq} t2.{path}::text "
        "WHERE t2.ctid {eq} t.ctid AND t.{numchild} IS DISTINCT FROM coalesce(c.n, 0)"
    ).format(table=own_rel(tp), numchild=numchild, path=path, step=step, eq=equals())


# -- nested sets -------------------------------------------------------------------------
def ns_keep_positions(tp: TablePlan, names: StagingNames) -> sql.Composed:
    """Before the writes: staged nodes the target holds keep its lft, rght, tree_id and
    level (so the UPDATE leaves them alone); nodes to insert keep the source's values as
    placeholders (their lft orders new siblings as in the source), which the renumbering
    after the writes replaces."""
    cols = [ident(_setting(tp, c)) for c in ("left", "right", "tree_id", "level")]
    pk, new = ident(_pk(tp)), ident(tp.new_marker)
    return sql.SQL(
        "UPDATE {final} AS s SET {sets} FROM (SELECT f.{pk}, {values} FROM {final} AS f "
        "LEFT JOIN {table} AS t ON NOT f.{new} AND t.{pk} {eq} f.{pk}) AS x WHERE x.{pk} {eq} s.{pk}"
    ).format(
        final=names.final,
        sets=sql.SQL(", ").join(sql.SQL("{c} = x.{c}").format(c=c) for c in cols),
        values=sql.SQL(", ").join(sql.SQL("coalesce(t.{c}, f.{c}) AS {c}").format(c=c) for c in cols),
        table=own_rel(tp),
        new=new,
        pk=pk,
        eq=equals(),
    )


def ns_renumber(tp: TablePlan, names: StagingNames) -> sql.Composed:
    """After the inserts: the trees touched renumbered from their parent links. Returns
    the rows it changed (in the target) through ``UPDATE``'s count."""
    lft, rght, tree_id, level = (ident(_setting(tp, c)) for c in ("left", "right", "tree_id", "level"))
    parent, pk, new = ident(_setting(tp, "parent")), ident(_pk(tp)), ident(tp.new_marker)
    table, eq = own_rel(tp), equals()
    return sql.SQL(
        "WITH RECURSIVE news AS (SELECT s.{pk} AS id FROM {final} AS s WHERE s.{new}), "
        # the trees touched: those holding an existing parent of a new node, and new roots
        "touched AS (SELECT DISTINCT p.{tree_id} AS tree FROM {table} AS c JOIN news ON news.id {eq} c.{pk} "
        "JOIN {table} AS p ON p.{pk} {eq} c.{parent} WHERE NOT EXISTS (SELECT FROM news AS o "
        "WHERE o.id {eq} p.{pk})), "
        "ordinal AS (SELECT c.{pk} AS id, c.{parent} AS parent, pg_catalog.row_number() OVER "
        "(PARTITION BY c.{parent} ORDER BY (n.id IS NOT NULL), c.{lft}, c.{pk}) AS o FROM {table} AS c "
        "LEFT JOIN news AS n ON n.id {eq} c.{pk}), "
        "roots AS (SELECT r.{pk} AS id, r.{tree_id} AS tree, n.id IS NOT NULL AS new FROM {table} AS r "
        "LEFT JOIN news AS n ON n.id {eq} r.{pk} WHERE r.{parent} IS NULL AND (n.id IS NOT NULL "
        "OR r.{tree_id} IN (SELECT tree FROM touched))), "
        "numbered AS (SELECT r.id, CASE WHEN r.new THEN (SELECT coalesce(pg_catalog.max(x.{tree_id}), 0) "
        "FROM {table} AS x WHERE x.{parent} IS NULL AND NOT EXISTS (SELECT FROM news AS o "
        "WHERE o.id {eq} x.{pk})) + pg_catalog.row_number() OVER (PARTITION BY r.new ORDER BY r.tree, r.id) "
        "ELSE r.tree END AS tree FROM roots AS r), "
        "walk (id, tree, level, sort) AS (SELECT n.id, n.tree, 0, ARRAY[]::bigint[] FROM numbered AS n "
        "UNION ALL SELECT o.id, w.tree, w.level + 1, w.sort || o.o FROM ordinal AS o "
        "JOIN walk AS w ON o.parent {eq} w.id), "
        "ranked AS (SELECT w.id, w.tree, w.level, pg_catalog.row_number() OVER (PARTITION BY w.tree "
        "ORDER BY w.sort) AS pre, pg_catalog.row_number() OVER (PARTITION BY w.tree "
        "ORDER BY w.sort || ARRAY[9223372036854775807]::bigint[]) AS post FROM walk AS w) "
        "UPDATE {table} AS t SET {lft} = 2 * r.pre - r.level - 1, {rght} = 2 * r.post + r.level, "
        "{tree_id} = r.tree, {level} = r.level FROM ranked AS r WHERE t.{pk} {eq} r.id "
        "AND (t.{lft}, t.{rght}, t.{tree_id}, t.{level}) IS DISTINCT FROM "
        "(2 * r.pre - r.level - 1, 2 * r.post + r.level, r.tree, r.level)"
    ).format(
        pk=pk,
        final=names.final,
        new=new,
        tree_id=tree_id,
        table=table,
        eq=eq,
        parent=parent,
        lft=lft,
        rght=rght,
        level=level,
    )


def sync_staged(tp: TablePlan, names: StagingNames) -> sql.Composed:
    """After the recount or renumbering: the staged rows take the positions the target
    now holds, so comparing written rows with staged ones sees what was written."""
    assert tp.tree is not None
    cols = [ident(c) for c in tp.tree.position_columns]
    pk = ident(_pk(tp))
    return sql.SQL("UPDATE {final} AS s SET {sets} FROM {table} AS t WHERE t.{pk} {eq} s.{pk}").format(
        final=names.final,
        sets=sql.SQL(", ").join(sql.SQL("{c} = t.{c}").format(c=c) for c in cols),
        table=own_rel(tp),
        pk=pk,
        eq=equals(),
    )


def mp_orphans(tp: TablePlan) -> sql.Composed:
    """At export: nodes below the top level whose parent's path holds no row (a broken
    tree). Their parent's key would travel as NULL and the import would make them roots,
    so the export refuses them. (total, path)."""
    path, step = ident(_setting(tp, "path")), sql.Literal(int(_setting(tp, "steplen")))
    return sql.SQL(
        "SELECT pg_catalog.count(*) OVER (), t.{path}::text FROM {table} AS t "
        "WHERE pg_catalog.length(t.{path}) > {step} AND NOT EXISTS (SELECT FROM {table} AS p "
        "WHERE p.{path} {eq} pg_catalog.substr(t.{path}, 1, pg_catalog.length(t.{path}) - {step})) "
        "ORDER BY 2 LIMIT 5"
    ).format(path=path, table=own_rel(tp), step=step, eq=equals())
