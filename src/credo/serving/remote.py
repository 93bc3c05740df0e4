"""The hub across processes: ``credo serve --workers N`` keeps the database in its own process.

DuckDB lets one process write a database file, so worker processes cannot each
open it. The serving process holds the ``Core`` and answers the workers over a
Unix socket (``multiprocessing.connection``, authenticated with a random key,
readable by the owner only); each worker holds a ``RemoteHub``, the same ``Hub`` as
the ``Core``. A worker sends one typed message per call (``Ask``: a method of the ``Hub``
protocol, or for a service call the ``Credo`` method behind it, and its arguments), and the
hub answers from one table (``answers``) built from the protocol; anything else is refused.
The generation counter is a shared 8-byte memory map, so a worker notices another's write
without asking. Each worker gathers its own requests' audit entries into one message per
group, and the core commits the groups of all workers together.
"""

from __future__ import annotations

import mmap
import os
import queue
import secrets
import struct
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import orjson

from credo import audit, index
from credo.policy import Policy
from credo.principals import Directory
from credo.service import Credo
from credo.serving.commit import GroupCommit
from credo.serving.core import Core
from credo.serving.hub import SERVED, Change, Hub

P = ParamSpec("P")
T = TypeVar("T")

ENV = "CREDO_HUB"
"""Set by ``credo serve`` for its worker processes only: where the hub listens (JSON)."""


@dataclass(frozen=True)
class Address:
    socket: str
    key: str
    generation: str

    def to_env(self) -> str:
        return orjson.dumps(self.__dict__).decode()

    @classmethod
    def from_env(cls, text: str) -> Address:
        return cls(**orjson.loads(text))


@dataclass(frozen=True)
class Ask:
    """One call from a worker: which operation, and its arguments. Functions travel by name (pickle
    sends a module-level function as a reference), so the hub receives its own ``Credo.standing`` or
    ``Hub.index_rows`` and looks it up in ``answers``."""

    operation: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class Answer:
    """The hub's reply: the call's result, or the exception it raised."""

    value: Any = None
    error: BaseException | None = None


def answers(core: Core) -> dict[Callable[..., Any], Callable[..., Any]]:
    """The one table the hub answers workers from: every service operation of the ``Hub`` protocol
    (``hub.SERVED``) as a service call, and the hub's own reads and audit log."""
    served: dict[Callable[..., Any], Callable[..., Any]] = {op: partial(core.service, op) for op in SERVED}
    return {**served, Hub.changes_since: core.changes_since, Hub.index_rows: core.index_rows,
            Hub.policy: core.policy, Hub.principals: core.principals, Hub.stats: core.stats,
            Core.log_wait: core.log_wait}


class CoreServer:
    """Serves a ``Core`` to worker processes: one thread per connection."""

    def __init__(self, core: Core, folder: Path) -> None:
        self.core = core
        self._answers = answers(core)
        key = secrets.token_bytes(32)
        self.address = Address(str(folder / "hub.sock"), key.hex(), str(folder / "generation"))
        self._listener = Listener(self.address.socket, family="AF_UNIX", authkey=key)
        os.chmod(self.address.socket, 0o600)
        self._thread = threading.Thread(target=self._accept, name="hub-accept", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, db: Path | str | None) -> CoreServer:
        folder = Path(tempfile.mkdtemp(prefix="credo-hub-"))
        return cls(Core(db, generation_file=folder / "generation"), folder)

    def _accept(self) -> None:
        while True:
            try:
                conn = self._listener.accept()
            except (OSError, EOFError):
                return
            except Exception:  # a failed handshake (wrong key): refuse that one, keep serving
                continue
            threading.Thread(target=self._serve, args=(conn,), name="hub-conn", daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        with conn:
            while True:
                try:
                    ask = conn.recv()
                except (EOFError, OSError):
                    return
                try:
                    conn.send(Answer(self._answer(ask)))
                except Exception as exc:
                    try:
                        conn.send(Answer(error=exc))
                    except Exception:  # not picklable: send what it said
                        conn.send(Answer(error=RuntimeError(f"{type(exc).__name__}: {exc}")))

    def _answer(self, ask: Any) -> Any:
        answer = self._answers.get(ask.operation) if isinstance(ask, Ask) else None
        if answer is None:
            raise AttributeError(f"the hub does not answer {getattr(ask, 'operation', ask)!r}")
        return answer(*ask.args, **ask.kwargs)

    def close(self) -> None:
        self._listener.close()
        self.core.close()
        folder = Path(self.address.socket).parent
        for name in ("hub.sock", "generation"):
            (folder / name).unlink(missing_ok=True)
        folder.rmdir()


class RemoteHub(Hub):
    """A worker's view of the hub: the ``Hub`` interface, over a pool of connections."""

    def __init__(self, address: Address) -> None:
        self.address = address
        self._key = bytes.fromhex(address.key)
        self._pool: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        with open(address.generation, "rb") as f:
            self._map = mmap.mmap(f.fileno(), 8, access=mmap.ACCESS_READ)
        self._writer: GroupCommit[Sequence[Any]] = GroupCommit(self._send_log, "audit-sender")

    @classmethod
    def from_env(cls) -> RemoteHub:
        return cls(Address.from_env(os.environ[ENV]))

    def _ask(self, operation: Callable[Concatenate[Any, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Ask the hub to run ``operation`` (a ``Credo`` or ``Hub`` method) and wait for its answer."""
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = Client(self.address.socket, family="AF_UNIX", authkey=self._key)
        try:
            conn.send(Ask(operation, args, kwargs))
            answer: Answer = conn.recv()
        except BaseException:
            conn.close()  # its state is unknown: never reuse it
            raise
        self._pool.put(conn)
        if answer.error is not None:
            raise answer.error
        return cast(T, answer.value)

    def service(self, operation: Callable[Concatenate[Credo, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._ask(operation, *args, **kwargs)

    def generation(self) -> int:
        return int(struct.unpack_from("q", self._map, 0)[0])

    def changes_since(self, generation: int) -> tuple[int, int, list[Change] | None]:
        return self._ask(Hub.changes_since, generation)

    def index_rows(self, scope: index.Keys | None, now: datetime) -> tuple[index.Rows, int]:
        return self._ask(Hub.index_rows, scope, now)

    def policy(self) -> Policy:
        return self._ask(Hub.policy)

    def principals(self) -> Directory:
        return self._ask(Hub.principals)

    async def log(self, entries: Sequence[Sequence[Any]]) -> audit.Receipts:
        receipts = await self._writer.submit(entries)
        assert receipts is not None  # _send_log always returns them
        return receipts

    def _send_log(self, entries: list[Sequence[Any]]) -> audit.Receipts:
        """One message for this worker's group; the hub answers with the group's receipts."""
        return self._ask(Core.log_wait, [tuple(e) for e in entries])

    def stats(self) -> dict[str, float]:
        stats = self._ask(Hub.stats)
        alive = stats.get("audit_writer_alive", 0) and self._writer.alive
        return {**stats, "audit_writer_alive": float(alive)}

    def close(self) -> None:
        self._writer.close()
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                break
        self._map.close()
