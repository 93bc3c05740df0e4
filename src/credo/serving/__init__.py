"""The serving layer: the machinery that owns the database while ``credo serve`` runs.

Below the fronts (``credo.api``, ``credo.web``) and above the library. ``hub`` is the typed
interface the fronts call (``Hub``: one method per operation, the change feed, the index rows,
the audit log); ``core`` implements it where the database is held (``owner``: the one thread
that uses the connection; ``journal``: the audit journal; ``commit``: its group commit);
``remote`` implements it in worker processes over a Unix socket; ``runtime`` is one process's
state (decision index, tokens, rate limits, metrics); ``asgi`` what both fronts use inside a
request; ``metrics`` the Prometheus counters; ``server`` starts the hub and the workers;
``client`` lets the CLI ask a running server.
"""
