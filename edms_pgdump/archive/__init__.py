"""The archive: one self-describing package of a manifest and one member per table.

``package`` reads and writes it (file or folder), ``manifest`` is its typed description,
``integrity`` proves sizes, SHA-256 and counts before anything is written, ``encryption``
and ``signing`` are age and minisign, ``keys`` reads their key files, ``streams`` wraps
members in decompressing and decrypting readers.
"""
