"""Stage 4a, export: one snapshot, one ``COPY (SELECT … JOIN …) TO STDOUT`` per table.

The export is a program of typed steps (``program``: snapshot, settings, each refusal of
the data with its message, a subset's closure, COPY per table, counts), run here by
``run`` and rendered as export.sql by ``runbook``. ``write.export_to_archive`` plans on
the snapshot, builds and runs the program, and writes the manifest; ``subset`` holds a
subset's rules and closure statements; every table streams through ``copy_blocks`` (COPY
read from libpq in large blocks) into ``member_writer`` (hash, compress and write on a
thread).
"""
