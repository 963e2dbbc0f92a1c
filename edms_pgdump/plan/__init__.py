"""Stage 2, plan: a pure function ``(Mapping, Catalog) -> Plan``, no I/O.

``build`` decides the exported columns, how every reference (foreign key, declared,
generic) expands into the referenced table's natural key (``keys``, ``generic``), the
load order and how each cycle is broken (``order``), and collects every problem that
``check`` and ``plan`` print. ``model`` is the plain data a plan is made of;
``proposals`` guesses natural keys for ``init``.
"""
