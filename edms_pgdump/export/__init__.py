"""Stage 4a, export: one snapshot, one ``COPY (SELECT … JOIN …) TO STDOUT`` per table.

``write.write_archive`` opens the snapshot, runs the refusals, computes a subset's closure
(``subset``) and streams every table through ``copy_blocks`` (COPY read from libpq in
large blocks) into ``member_writer`` (hash, compress and write on a thread).
"""
