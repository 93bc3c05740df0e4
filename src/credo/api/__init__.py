"""The HTTP API (``credo serve``): FastAPI routes over the library facade, with roles and audit.

Layout: ``app`` builds the API's half of the application (the composition root, ``credo.app``,
mounts the pages beside it); ``routes/`` holds one module per noun; ``auth`` says who may call
what; ``fastcheck`` answers the single check without the framework's routing; ``errors`` maps
the library's errors to HTTP. What holds the database lives below, in ``credo.serving``.
"""
