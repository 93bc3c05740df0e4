"""The hub across processes: ``credo serve --workers N`` keeps the database in its own process.

DuckDB lets one process write a database file, so worker processes cannot each
open it. The serving process holds the ``Core`` and answers the workers over a
Unix socket (``multiprocessing.connection``, authenticated with a random key,
readable by the owner only); each worker holds a ``RemoteHub`` with the same
interface as the ``Core``. The generation counter is a shared 8-byte memory map,
so a worker notices another's write without asking. Each worker gathers its
own requests' audit entries into one message per group, and the core commits
the groups of all workers together.
"""

from __future__ import annotations

import mmap
import os
import queue
import secrets
import struct
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

import orjson

from credo import audit, index
from credo.policy import Policy
from credo.principals import Directory
from credo.serving.commit import GroupCommit
from credo.serving.hub import Change, Core

ENV = "CREDO_HUB"
"""Set by ``credo serve`` for its worker processes only: where the hub listens (JSON)."""

OPERATIONS = frozenset({"call", "generation", "changes_since", "index_rows", "policy", "principals",
                        "log_wait", "stats"})


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


class CoreServer:
    """Serves a ``Core`` to worker processes: one thread per connection."""

    def __init__(self, core: Core, folder: Path) -> None:
        self.core = core
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
                    op, args, kwargs = conn.recv()
                except (EOFError, OSError):
                    return
                try:
                    if op not in OPERATIONS:
                        raise AttributeError(f"the hub has no operation {op!r}")
                    conn.send((True, getattr(self.core, op)(*args, **kwargs)))
                except Exception as exc:
                    try:
                        conn.send((False, exc))
                    except Exception:  # not picklable: send what it said
                        conn.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))

    def close(self) -> None:
        self._listener.close()
        self.core.close()
        folder = Path(self.address.socket).parent
        for name in ("hub.sock", "generation"):
            (folder / name).unlink(missing_ok=True)
        folder.rmdir()


class RemoteHub:
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

    def _rpc(self, op: str, *args: Any, **kwargs: Any) -> Any:
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = Client(self.address.socket, family="AF_UNIX", authkey=self._key)
        try:
            conn.send((op, args, kwargs))
            ok, value = conn.recv()
        except BaseException:
            conn.close()  # its state is unknown: never reuse it
            raise
        self._pool.put(conn)
        if not ok:
            raise value
        return value

    def call(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        return self._rpc("call", name, *args, **kwargs)

    def generation(self) -> int:
        return int(struct.unpack_from("q", self._map, 0)[0])

    def changes_since(self, generation: int) -> tuple[int, list[Change] | None]:
        result: tuple[int, list[Change] | None] = self._rpc("changes_since", generation)
        return result

    def index_rows(self, scope: index.Keys | None, now: datetime) -> index.Rows:
        rows: index.Rows = self._rpc("index_rows", scope, now)
        return rows

    def policy(self) -> Policy:
        policy: Policy = self._rpc("policy")
        return policy

    def principals(self) -> Directory:
        directory: Directory = self._rpc("principals")
        return directory

    async def log(self, entries: Sequence[Sequence[Any]]) -> audit.Receipts:
        receipts = await self._writer.submit(entries)
        assert receipts is not None  # _send_log always returns them
        return receipts

    def _send_log(self, entries: list[Sequence[Any]]) -> audit.Receipts:
        """One message for this worker's group; the hub answers with the group's receipts."""
        receipts: audit.Receipts = self._rpc("log_wait", [tuple(e) for e in entries])
        return receipts

    def stats(self) -> dict[str, float]:
        stats: dict[str, float] = self._rpc("stats")
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
