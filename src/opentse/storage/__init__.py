"""Storage adapters implementing ``engine.ports.TSEStore``.

``sqlite.SQLiteStore`` (embedded, group commit), ``postgres.PostgresStore``
(server); ``migrations.apply(connection, dialect)`` runs the numbered SQL files of
``migrations/<dialect>/``; ``rows`` holds the row conversions both share.
Modules are imported on demand so the embedded path never loads psycopg.
"""
