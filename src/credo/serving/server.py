"""Running the API: this process holds the database (the hub), N uvicorn worker processes answer.

Why a separate hub even for one worker: on two cores, the audit log's hashing and
DuckDB's inserts and commits are half the work of a decision, and in one Python
process they would share a single GIL with the event loop answering requests. In
the hub process they run beside the worker, not between its requests. The workers
reach the hub over a Unix socket (see ``credo.serving.remote``). ``create_app`` without
``CREDO_HUB`` still opens the database itself, for tests and embedding.

uvicorn's ``[standard]`` extras (uvloop, httptools) nearly double throughput on
this kind of machine; access logs are off because a line per decision would
cost more than the decision. The workers count into files of a folder of this run
(``credo.serving.metrics``), so that ``/metrics`` reports them all whichever answers.
"""

from __future__ import annotations

import os
from pathlib import Path

import uvicorn
from uvicorn.supervisors import Multiprocess

from credo import settings
from credo.serving.metrics import shared_between_workers
from credo.serving.remote import ENV, CoreServer

APP = "credo.app:create_app"


def run(host: str, port: int, workers: int = 1, *, app: str = APP, db: Path | None = None,
        log_level: str = "warning") -> None:
    """Serve until interrupted; the database is closed (and the audit log flushed) on the way out."""
    config = uvicorn.Config(app, host=host, port=port, factory=True, workers=max(workers, 1),
                            log_level=log_level, access_log=False, loop="uvloop", http="httptools",
                            timeout_graceful_shutdown=10)
    hub = CoreServer.start(db or settings.db_path())
    os.environ[ENV] = hub.address.to_env()
    try:
        with shared_between_workers():  # one scrape of any worker counts the requests of all
            Multiprocess(config, sockets=[config.bind_socket()]).run()
    finally:
        os.environ.pop(ENV, None)
        hub.close()
