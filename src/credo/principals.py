"""Who is asking: principals and their bearer tokens (spec §1 roles).

A token is shown once and stored only as its SHA-256; lookups compare hashes
in constant time. Each token is bound to one role and, for agencies,
providers and residents, to one of them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

import duckdb

from credo.errors import CredoError, Unauthorized

ROLES = ("operator", "agency", "provider", "resident", "auditor")


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    agency: str | None = None
    provider: str | None = None
    resident: int | None = None


OPERATOR_CLI = Principal("cli", "operator")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(con: duckdb.DuckDBPyConnection, role: str, *, agency: str | None = None, provider: str | None = None,
           resident: int | None = None, now: datetime) -> tuple[str, Principal]:
    """A new token (returned once) bound to a role and its subject."""
    needs = {"agency": agency, "provider": provider, "resident": resident}
    if role not in ROLES:
        raise CredoError(f"role must be one of {', '.join(ROLES)}", code="bad_role")
    if role in needs and needs[role] is None:
        raise CredoError(f"a {role} token needs --{role}", code="bad_role")
    token = "credo_" + secrets.token_urlsafe(32)
    name = f"{role}:{agency or provider or resident or secrets.token_hex(3)}"
    con.execute("INSERT INTO principals VALUES (?, ?, ?, ?, ?, ?, ?)",
                [_hash(token), role, agency, provider, resident, name, now])
    return token, Principal(name, role, agency, provider, resident)


def authenticate(con: duckdb.DuckDBPyConnection, token: str) -> Principal:
    digest = _hash(token)
    rows = con.execute("SELECT token_hash, role, agency, provider, resident, label FROM principals "
                       "WHERE token_hash = ?", [digest]).fetchall()
    if not rows or not hmac.compare_digest(rows[0][0], digest):
        raise Unauthorized("unknown or revoked token")
    _, role, agency, provider, resident, label = rows[0]
    return Principal(label, role, agency, provider, resident)
