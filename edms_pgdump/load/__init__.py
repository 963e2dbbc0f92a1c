"""Stage 4b, load: the import's one transaction and what surrounds it.

``prepare`` compares the archive with the target (drift, plan); ``transaction`` opens the
one transaction and runs the import program in it; ``staging_area`` and
``parallel_staging`` are ``-j N``'s private schema and its loaders; ``subset_scope`` finds
a subset's scope on the target; ``diff`` compares an archive with a database through the
same program; ``history`` and ``audit`` record what was done, in the target and locally.
"""
