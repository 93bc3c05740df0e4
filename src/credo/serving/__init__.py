"""The serving layer: the machinery that owns the database while ``credo serve`` runs.

Below the fronts (``credo.api``, ``credo.web``) and above the library. ``hub`` holds the store
(one connection, the audit writer and mover, the change generations); ``remote`` reaches it
from worker processes over a Unix socket; ``commit`` is the audit log's group commit;
``runtime`` is one process's state (decision index, tokens, rate limits, metrics); ``asgi``
what both fronts use inside a request; ``metrics`` the Prometheus counters; ``server`` starts
the hub and the workers; ``client`` lets the CLI ask a running server.
"""
