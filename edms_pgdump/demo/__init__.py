"""The demo: an id-based restore beside a natural-key import on an embedded PostgreSQL.

``story`` runs it, ``sample`` builds the sample document-management database,
``servers`` starts the embedded server, ``resources`` finds the packaged schema and mapping.
"""
