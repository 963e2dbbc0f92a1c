"""Stage 3, program: the import written once, as a list of typed steps.

``build.import_program(plan, catalog, options)`` returns the steps (``steps`` is their
vocabulary; ``base``, ``ids`` and ``constraints`` build parts of it). Two interpreters read
the same list: ``run`` executes it with psycopg, ``render_psql`` writes it as the psql
runbook ``import.sql``. A change to the import is a change to this list.
"""
