"""Who is asking: principals and their bearer tokens (spec §1 roles).

A token is shown once and stored only as its SHA-256; lookups compare hashes
in constant time. Each token is bound to one role and, for agencies,
providers and residents, to one of them.

The server authenticates from a ``Directory`` held in memory (a DuckDB point
query costs about a millisecond, more than a whole decision): while it runs it
holds the database, so tokens can only change through it, and it reloads the
directory when they do.
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


def a_role(role: str) -> str:
    """A role with its article, for messages: "an agency", "an operator", "a provider"."""
    return ("an " if role[0] in "aeiou" else "a ") + role


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


def create(con: duckdb.DuckDBPyConnection, role: str, *, agency: str | None = None,
           provider: str | None = None,
           resident: int | None = None, now: datetime) -> tuple[str, Principal]:
    """A new token (returned once) bound to a role and its subject."""
    needs = {"agency": agency, "provider": provider, "resident": resident}
    if role not in ROLES:
        raise CredoError(f"role must be one of {', '.join(ROLES)}", code="bad_role")
    if role in needs and needs[role] is None:
        raise CredoError(f"{a_role(role)} token needs --{role}", code="bad_role")
    token = "credo_" + secrets.token_urlsafe(32)
    name = f"{role}:{agency or provider or resident or secrets.token_hex(3)}"
    con.execute("INSERT INTO principals VALUES (?, ?, ?, ?, ?, ?, ?)",
                [_hash(token), role, agency, provider, resident, name, now])
    return token, Principal(name, role, agency, provider, resident)


def _row_principal(row: tuple[object, ...]) -> Principal:
    _, role, agency, provider, resident, label = row
    return Principal(str(label), str(role), agency if agency is None else str(agency),
                     provider if provider is None else str(provider),
                     resident if resident is None else int(str(resident)))


class Directory:
    """Every principal by token hash, in memory."""

    def __init__(self, rows: list[tuple[object, ...]]) -> None:
        self._by_hash = {str(r[0]): (str(r[0]), _row_principal(r)) for r in rows}

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> Directory:
        return cls(con.execute("SELECT token_hash, role, agency, provider, resident, label FROM principals")
                   .fetchall())

    def rows(self) -> list[tuple[object, ...]]:
        """What ``Directory(rows)`` rebuilds from (sent to worker processes)."""
        return [(h, p.role, p.agency, p.provider, p.resident, p.name) for h, p in self._by_hash.values()]

    def authenticate(self, token: str) -> Principal:
        """The hash picks the candidate (an attacker cannot aim at a hash prefix); the final
        comparison is constant-time all the same."""
        digest = _hash(token)
        stored, who = self._by_hash.get(digest, ("", None))
        if who is None or not hmac.compare_digest(stored, digest):
            raise Unauthorized("unknown or revoked token")
        return who

    def __len__(self) -> int:
        return len(self._by_hash)


def authenticate(con: duckdb.DuckDBPyConnection, token: str) -> Principal:
    digest = _hash(token)
    rows = con.execute("SELECT token_hash, role, agency, provider, resident, label FROM principals "
                       "WHERE token_hash = ?", [digest]).fetchall()
    if not rows or not hmac.compare_digest(rows[0][0], digest):
        raise Unauthorized("unknown or revoked token")
    _, role, agency, provider, resident, label = rows[0]
    return Principal(label, role, agency, provider, resident)
