"""Stage 1, catalog: the only reader of ``pg_catalog``.

``read.read_catalog`` reads a database once (tables, columns, keys, foreign keys,
partitions, inheritance, sequences, triggers, rules, RLS, collations) and returns plain
frozen data; ``queries`` holds its SQL and ``names`` the ``schema.table`` names with
psql's quoting rules. Nothing else in the package queries the catalog.
"""
