"""The HTTP API (``credo serve``): FastAPI routes over the library facade, with roles and audit.

Layout: ``app`` builds the application; ``routes/`` holds one module per noun; ``auth`` says who may
call what; ``hub`` holds the database (``remote`` reaches it from worker processes); ``runtime`` is
one process's state (decision index, tokens, counters); ``commit`` is the audit log's group commit.
"""
