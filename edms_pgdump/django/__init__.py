"""Django: mappings from models (``scaffold``) and ``import-fixture`` of dumpdata backups.

``fixture_read`` streams a fixture, ``fixture_plan`` turns it into per-model staging, and
``fixture_import`` runs the import program over it in one transaction.
"""
