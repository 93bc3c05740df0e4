"""Who is asking: principals, their bearer tokens and the web sessions opened with them (spec §1, §7).

A token is shown once and stored only as its SHA-256; lookups compare hashes
in constant time. Each token is bound to one role and, for agencies,
providers and residents, to one of them (and to nothing else: a field that
does not belong to the role is refused, not folded into the name). A token has
a number (``id``) for listing and revoking, and may have an expiry.

Revocations and signed-out sessions are appended (``token_revocations``,
``ended_sessions``), never written over the token's row: who revoked what, and
when, stays on record. An expired token stays in the directory and is refused
by the clock (``credo.settings.now``) at the moment it expires, with no write
needed.

The server authenticates from a ``Directory`` held in memory (a DuckDB point
query costs about a millisecond, more than a whole decision): while it runs it
holds the database, so tokens can only change through it, and every process
re-reads the directory when the hub's change feed says they did
(``credo.serving.runtime``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from credo import ids
from credo.errors import Conflict, CredoError, NotFound, Unauthorized
from credo.sql import q
from credo.store import next_id
from credo.times import iso, parse_when

ROLES = ("operator", "agency", "provider", "resident", "auditor")
SUBJECTS = ("agency", "provider", "resident")
"""The roles bound to one subject, each named by the field of the same name."""

_DURATION = re.compile(r"^([1-9][0-9]{0,5})([hd])$")


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
    actions: tuple[str, ...] | None = None
    """A provider's scope: the only actions it may ask about and sees in its feed (None: every action)."""


OPERATOR_CLI = Principal("cli", "operator")


@dataclass(frozen=True)
class Token:
    """A token the directory holds: its number, whom it names, and until when (None: no expiry)."""

    id: int
    principal: Principal
    expires_at: datetime | None

    def live(self, clock: Callable[[], datetime]) -> bool:
        """Not expired by ``clock()``, read only for a token that can expire (it costs more than the
        rest of a lookup)."""
        return self.expires_at is None or clock() < self.expires_at


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_subject(role: str, subjects: dict[str, str | None]) -> None:
    """A role with the one subject it needs and no other; a subject's name is printable and not empty.
    ``subjects`` maps ``agency``/``provider``/``resident`` to what was given (None: not given)."""
    if role not in ROLES:
        raise CredoError(f"role must be one of {', '.join(ROLES)}", code="bad_role", details={"field": "role"})
    for field, value in subjects.items():
        if value is not None and field != role:
            raise CredoError(f"{a_role(role)} token takes no --{field}",
                             code="bad_role", details={"field": field})
    if role not in SUBJECTS:
        return
    value = subjects.get(role)
    if value is None:
        raise CredoError(f"{a_role(role)} token needs --{role}", code="bad_role",
                         details={"field": role})
    if not value.strip():
        raise CredoError(f"--{role} is empty", code="bad_name", details={"field": role})
    if any(unicodedata.category(c).startswith("C") for c in value):
        raise CredoError(f"--{role} holds a control character", code="bad_name", details={"field": role})


def check_actions(role: str, actions: list[str] | None, known: Iterable[str]) -> tuple[str, ...] | None:
    """A provider token's actions (``--actions A,B``): each one the policy names, at least one, no other
    role; None (not given) is every action."""
    if actions is None:
        return None
    if role != "provider":
        raise CredoError(f"{a_role(role)} token takes no --actions", code="bad_role", details={"field": "actions"})
    named = tuple(sorted({a.strip() for a in actions if a.strip()}))
    if not named:
        raise CredoError("--actions names no action", code="bad_actions", details={"field": "actions"})
    unknown = [a for a in named if a not in set(known)]
    if unknown:
        raise CredoError(f"--actions names actions the policy does not: {', '.join(unknown)}",
                         code="unknown_action", details={"field": "actions", "actions": sorted(known)})
    return named


def expiry(text: str, now: datetime, tz: str) -> datetime:
    """When a token given ``--expires TEXT`` stops: a duration from now (``12h``, ``30d``) or a date or
    date-time (the feed rule: a bare date is midnight at its start, city time); it must be later than now."""
    m = _DURATION.match(text.strip())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        return now + (timedelta(hours=n) if unit == "h" else timedelta(days=n))
    try:
        when = parse_when(text, tz)
    except ValueError:
        raise CredoError(f"--expires is not a duration (12h, 30d) or an ISO 8601 date: {text!r}",
                         code="bad_expiry", details={"field": "expires"}) from None
    if when <= now:
        raise CredoError(f"--expires {text} is not in the future (now {iso(now, tz)})", code="bad_expiry",
                         details={"field": "expires"})
    return when


def create(con: duckdb.DuckDBPyConnection, role: str, *, agency: str | None = None,
           provider: str | None = None, resident: int | None = None, expires_at: datetime | None = None,
           actions: tuple[str, ...] | None = None, now: datetime) -> tuple[str, Token]:
    """A new token (returned once) bound to a role and its subject (checked by ``check_subject``), and a
    provider's to its actions (``check_actions``)."""
    token = "credo_" + secrets.token_urlsafe(32)
    name = _name(role, resident, f"{role}:{agency or provider or secrets.token_hex(3)}")
    number = next_id(con, "principals", "id")
    con.execute(q("principals.insert"), [_hash(token), role, agency, provider, resident, name, now, number, expires_at,
                                         None if actions is None else list(actions)])
    return token, Token(number, Principal(name, role, agency, provider, resident, actions), expires_at)


def revoke(con: duckdb.DuckDBPyConnection, number: int, *, principal: str, now: datetime) -> Principal:
    """Append the revocation of token ``number``; whom it named. Refused when unknown or already revoked."""
    rows = con.execute(q("principals.one"), [number]).fetchall()
    if not rows:
        raise NotFound(f"no token {number}", code="unknown_token", details={"id": number})
    name, role, revoked = rows[0]
    if revoked:
        raise Conflict(f"token {number} ({name}) is already revoked", code="already_revoked",
                       details={"id": number})
    con.execute(q("principals.revoke"), [number, now, principal])
    return Principal(str(name), str(role))


def listing(con: duckdb.DuckDBPyConnection, now: datetime, tz: str) -> list[dict[str, object]]:
    """Every token ever made, without its secret (nor its hash), with its state at ``now``."""
    rows = con.execute(q("principals.listing")).fetchall()
    out: list[dict[str, object]] = []
    for number, label, role, agency, provider, resident, created, expires, revoked_at, revoked_by, actions in rows:
        name = _name(str(role), resident if resident is None else int(resident), str(label))
        state = "revoked" if revoked_at else ("expired" if expires is not None and now >= expires else "active")
        out.append({"id": number, "principal": name, "role": role, "agency": agency, "provider": provider,
                    "resident_id": None if resident is None else ids.resident_id_from_key(int(resident)),
                    "actions": actions, "created_at": iso(created, tz), "expires_at": iso(expires, tz), "status": state,
                    "revoked_at": iso(revoked_at, tz), "revoked_by": revoked_by})
    return out


def end_session(con: duckdb.DuckDBPyConnection, session: str, *, until: int, now: datetime) -> None:
    """Append a signed-out web session (its nonce), kept until ``until`` (seconds since the epoch, the
    cookie's own expiry: after it the cookie is refused anyway)."""
    con.execute(q("principals.end_session"), [session, now, until])


def _name(role: str, resident: int | None, label: str) -> str:
    """A principal's name: a resident's by the 18-character ID, also for a token made when residents
    were named by the 17-digit key; any other's as stored."""
    return ids.resident_principal(resident) if role == "resident" and resident is not None else label


def _row_token(row: tuple[object, ...]) -> Token:
    _, role, agency, provider, resident, label, number, expires, actions = row
    key = resident if resident is None else int(str(resident))
    scope = None if actions is None else tuple(str(a) for a in actions)  # type: ignore[attr-defined]
    who = Principal(_name(str(role), key, str(label)), str(role), agency if agency is None else str(agency),
                    provider if provider is None else str(provider), key, scope)
    assert expires is None or isinstance(expires, datetime)
    return Token(int(str(number)), who, expires)


class Directory:
    """Every token not revoked, by hash, and the web sessions signed out, in memory (and picklable:
    the hub sends it to worker processes)."""

    def __init__(self, tokens: Iterable[tuple[str, Token]] = (), ended: frozenset[str] = frozenset()) -> None:
        self._by_hash = {digest: (digest, token) for digest, token in tokens}
        self._ended = ended

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> Directory:
        tokens = [(str(r[0]), _row_token(r)) for r in con.execute(q("principals.live")).fetchall()]
        ended = con.execute(q("principals.ended"), [int(time.time())]).fetchall()
        return cls(tokens, frozenset(str(s) for (s,) in ended))

    def authenticate(self, token: str, clock: Callable[[], datetime]) -> Principal:
        """The hash picks the candidate (an attacker cannot aim at a hash prefix); the final comparison
        is constant-time all the same. ``clock``: city time now (``credo.settings.now``)."""
        digest = _hash(token)
        stored, found = self._by_hash.get(digest, ("", None))
        if found is None or not hmac.compare_digest(stored, digest) or not found.live(clock):
            raise Unauthorized("unknown, revoked or expired token")
        return found.principal

    def find(self, digest: str, clock: Callable[[], datetime]) -> Principal | None:
        """Whom a token's hash names now (None: unknown, revoked or expired): a web session's cookie
        holds the hash, under a signature already checked."""
        found = self._by_hash.get(digest, ("", None))[1]
        return found.principal if found is not None and found.live(clock) else None

    def ended(self, session: str) -> bool:
        """Whether a web session was signed out."""
        return session in self._ended

    def __len__(self) -> int:
        return len(self._by_hash)


def authenticate(con: duckdb.DuckDBPyConnection, token: str, clock: Callable[[], datetime]) -> Principal:
    """One token checked against the store itself (no directory), by the same rules."""
    digest = _hash(token)
    rows = con.execute(q("principals.live_by_hash"), [digest]).fetchall()
    found = _row_token(rows[0]) if rows else None
    if found is None or not hmac.compare_digest(str(rows[0][0]), digest) or not found.live(clock):
        raise Unauthorized("unknown, revoked or expired token")
    return found.principal
