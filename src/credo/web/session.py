"""Signing in to the pages: a bearer token exchanged once for a signed, HTTP-only session cookie.

The cookie never holds the token. It holds the token's SHA-256 (what the store keeps,
``credo.principals``), a random nonce and an expiry, signed with HMAC-SHA256 under a key
of the serving processes, so signing in writes nothing and every worker process of
``credo serve --workers N`` accepts it: they derive the key from the hub's own secret
(``CREDO_HUB``); a process serving alone draws one at random, so its sessions end when
it stops. Signing out ends the session on the server too: its nonce is stored
(``ended_sessions``) and every process's directory refuses it from then on. The
principal is looked up again on every request, so a token revoked or expired ends its
sessions at once.

Forms are safe against cross-site requests twice over: the cookie is ``SameSite=Strict``
and every form carries a token derived from the session's nonce. The sign-in form,
before there is a session, carries one derived from a short-lived cookie of its own
(so nobody can sign a visitor in as someone else).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from credo.principals import Directory, Principal

COOKIE = "credo_session"
SIGNIN_COOKIE = "credo_signin"
LIFETIME = 8 * 3600
"""Seconds a session lasts; signing in again starts a new one."""
SIGNIN_LIFETIME = 3600


@dataclass(frozen=True)
class Session:
    token_hash: str
    nonce: str
    expires: int


def token_hash(token: str) -> str:
    """The digest the directory keys tokens by (``credo.principals``)."""
    return hashlib.sha256(token.encode()).hexdigest()


def process_key() -> bytes:
    """The signing key: derived from the hub's secret when worker processes share one, else random."""
    hub = os.environ.get("CREDO_HUB")
    if hub:
        from credo.serving.remote import Address

        secret = bytes.fromhex(Address.from_env(hub).key)
        return hmac.new(secret, b"credo.web.sessions", hashlib.sha256).digest()
    return secrets.token_bytes(32)


class Sessions:
    """Issues and reads session cookies, and the form tokens bound to them."""

    def __init__(self, key: bytes, lifetime: int = LIFETIME) -> None:
        self._key = key
        self.lifetime = lifetime

    def _mac(self, purpose: str, text: str) -> str:
        return hmac.new(self._key, f"{purpose}:{text}".encode(), hashlib.sha256).hexdigest()

    # -- the session cookie -------------------------------------------------------------------
    def issue(self, token: str, now: float | None = None) -> str:
        expires = int((now or time.time()) + self.lifetime)
        body = f"{token_hash(token)}.{secrets.token_hex(16)}.{expires}"
        return f"{body}.{self._mac('session', body)}"

    def read(self, value: str | None, now: float | None = None) -> Session | None:
        """The session a cookie names, if its signature holds and it has not expired."""
        if not value or value.count(".") != 3:
            return None
        body, _, mac = value.rpartition(".")
        if not hmac.compare_digest(mac, self._mac("session", body)):
            return None
        digest, nonce, expires = body.split(".")
        if not expires.isdigit() or int(expires) <= (now or time.time()):
            return None
        return Session(digest, nonce, int(expires))

    def principal(self, session: Session, directory: Directory, clock: Callable[[], datetime]) -> Principal | None:
        """Whom the session's token names now (``clock``: city time); None once the session was signed
        out or its token revoked or expired."""
        if directory.ended(session.nonce):
            return None
        return directory.find(session.token_hash, clock)

    # -- form tokens ----------------------------------------------------------------------------
    def form_token(self, session: Session) -> str:
        return self._mac("form", session.nonce)

    def valid_form(self, session: Session, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given), self.form_token(session))

    def signin_nonce(self) -> str:
        """A fresh value for the sign-in form's own cookie."""
        return f"{secrets.token_hex(16)}.{int(time.time()) + SIGNIN_LIFETIME}"

    def signin_token(self, nonce: str) -> str:
        return self._mac("signin", nonce)

    def valid_signin(self, nonce: str | None, given: str | None) -> bool:
        if not nonce or not given or "." not in nonce:
            return False
        expires = nonce.rpartition(".")[2]
        if not expires.isdigit() or int(expires) <= time.time():
            return False
        return hmac.compare_digest(str(given), self.signin_token(nonce))

