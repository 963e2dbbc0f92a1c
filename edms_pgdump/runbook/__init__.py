"""psql runbooks: ``export.sql`` and ``import.sql`` rendered from the library's own steps.

``scripts`` writes both files (the import through ``program.render_psql``);
``export_checks`` renders the export's refusals of the data with the library's messages.
"""
