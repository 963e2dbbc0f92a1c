"""Helpers and shared test data for the suites; nothing here is collected as a test.

- ``db``: talk to a real server (digests, rows, archives) and find the second server;
- ``story``: natural-key views of the sample EDMS data;
- ``torture``: the torture schema and rows of the reliability suites;
- ``reg_schema``: the ``reg`` schema (quoted names, composite keys) of the runbook and check tests.
"""
