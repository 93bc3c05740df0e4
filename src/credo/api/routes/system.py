"""The policy in force, backups, who am I, health, readiness and metrics."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import PlainTextResponse, Response

from credo import settings
from credo.api.auth import Allow
from credo.api.errors import Unprocessable, documented
from credo.api.http import json, read_body
from credo.api.schemas import BackupIn, BackupOut
from credo.audit import Entry, Event
from credo.ids import resident_id_from_key
from credo.permissions import Op
from credo.principals import Principal
from credo.serving.asgi import blocking, runtime
from credo.serving.metrics import CONTENT_TYPE

router = APIRouter(tags=["system"])
POLICY = Allow(Op.READ_POLICY)
APPLY = Allow(Op.APPLY_POLICY)
BACKUP = Allow(Op.BACKUP)
ME = Allow(Op.WHO_AM_I)
METRICS = Allow(Op.METRICS)


@router.get("/v1/policy", openapi_extra=POLICY.openapi, responses=POLICY.responses)
def policy(request: Request, who: Annotated[Principal, Depends(POLICY)]) -> Response:
    """The policy in force: its version label, its digest and the document (actions, measures, ...)."""
    p = runtime(request).index.policy
    return json({"policy": p.label, "name": p.name, "version": p.version, "sha256": p.sha256,
                 "timezone": p.tz, "document": p.doc.model_dump(mode="json"), "text": p.text})


@router.put("/v1/policy", openapi_extra={**APPLY.openapi, "requestBody": {
    "required": True, "content": {"application/yaml": {"schema": {"type": "string"}}}}},
    responses={**APPLY.responses, **documented(413)})
async def apply_policy(request: Request, who: Annotated[Principal, Depends(APPLY)]) -> Response:
    """Check, then apply a policy (YAML body) as a new version; everyone is rescored under it."""
    rt = runtime(request)
    text = (await read_body(request, rt.max_body)).decode("utf-8", "replace")

    def apply() -> Response:
        applied = rt.hub.apply_policy(text, who)
        rt.sync()
        return json({"policy": applied.label, "warnings": [str(w) for w in applied.warnings]})

    return await blocking(apply)


@router.post("/v1/admin/backup", response_model=BackupOut, openapi_extra=BACKUP.openapi,
             responses=BACKUP.responses)
async def backup(request: Request, who: Annotated[Principal, Depends(BACKUP)], body: BackupIn) -> Response:
    """A consistent snapshot of the database into a folder on the server's machine, while serving.

    The server holds the database file, so nothing else can open it: the snapshot is taken by the
    server's own connection, in one read transaction (``credo backup DIR`` comes here when it finds
    the database locked). Writes wait for it; the backup is audited. Its manifest holds every file's
    SHA-256 and is signed with the server's signing key (CREDO_AUDIT_KEY, else beside the database).
    """
    rt = runtime(request)
    folder = backup_folder(body.dir)
    try:
        manifest = await blocking(rt.hub.backup, folder)
    except OSError as exc:
        raise Unprocessable(f"cannot write the backup into {folder}: {exc.strerror or exc}", code="bad_path",
                            details={"field": "dir"}) from None
    detail = orjson.dumps({"dir": str(folder), "counts": manifest["counts"],
                           "signed_by": manifest["signed_by"]}).decode()
    await rt.hub.log([Entry(rt.now(), who.name, who.role, Event.BACKUP_TAKEN, detail=detail)])
    return json({**manifest, "dir": str(folder)})


def backup_folder(given: str) -> Path:
    """Where a backup asked for over HTTP may go: inside CREDO_BACKUP_DIR (default: ``backups`` beside the
    database file), so that an operator token cannot make the server write anywhere else on its disk."""
    root = (settings.current().backup_dir or settings.db_path().resolve().parent / "backups").resolve()
    if "\0" in given:
        raise Unprocessable("dir holds a NUL character", code="bad_path", details={"field": "dir"})
    folder = (root / given).resolve()
    if root not in folder.parents:
        raise Unprocessable(f"a backup goes into a folder under {root} (CREDO_BACKUP_DIR)", code="outside_backup_dir",
                            details={"field": "dir", "root": str(root)})
    return folder


@router.get("/v1/me", openapi_extra=ME.openapi, responses=ME.responses)
def me(who: Annotated[Principal, Depends(ME)]) -> Response:
    """The principal the token names."""
    return json({"principal": who.name, "role": who.role, "agency": who.agency, "provider": who.provider,
                 "resident_id": None if who.resident is None else resident_id_from_key(who.resident)})


@router.get("/healthz")
async def healthz() -> Response:
    """The process answers (no token needed)."""
    return json({"status": "ok"})


@router.get("/readyz")
def readyz(request: Request) -> Response:
    """The database answers, the audit writer runs, the audit journal moves into the database and the
    decision index is loaded (no token needed)."""
    rt = runtime(request)
    try:
        stats = rt.hub.stats()
    except Exception as exc:  # readiness reports, it does not fail
        return json({"status": "not ready", "why": str(exc)}, status=503)
    if not stats.get("audit_writer_alive", 0):
        return json({"status": "not ready", "why": "the audit writer stopped"}, status=503)
    if stats.get("audit_mover_failing", 0):
        return json({"status": "not ready", "why": "the audit journal cannot be moved into the database "
                     "(its entries are kept; see the server's log)"}, status=503)
    idx = rt.index
    return json({"status": "ready", "residents": idx.registered, "measured": idx.measured,
                 "policy": idx.policy.label, "pid": os.getpid()})


@router.get("/metrics", response_class=PlainTextResponse, openapi_extra=METRICS.openapi,
            responses=METRICS.responses)
def metrics(request: Request, who: Annotated[Principal, Depends(METRICS)]) -> Response:
    """Prometheus text: requests by route and status, latency, decisions, audit commits, index size."""
    return Response(runtime(request).metrics.render(), media_type=CONTENT_TYPE)
