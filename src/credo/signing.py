"""Ed25519 signing for what must be provable later: audit checkpoints and backup manifests.

Why a key outside the database: whoever can write the database can cut the audit log's tail or
rewrite it and re-hash the chain; a signature made with a key they do not hold cannot be forged that
way. The private key lives in a file of its own (mode 0600, ``CREDO_AUDIT_KEY`` or
``<db>.audit-key`` beside the database); its public half (``<key>.pub``) is what the auditor keeps
and gives to ``credo audit verify`` or ``credo restore``.

Keys and signatures are written as base64 text of their raw bytes (32 and 64 bytes), so they fit in
a JSON line, a table cell or a command-line argument.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from credo import settings
from credo.errors import CredoError

_RAW = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_path(db: Path | str | None) -> Path:
    """Where the signing key is: ``CREDO_AUDIT_KEY``, else beside the database (``CREDO_DB`` when None)."""
    configured = settings.current().audit_key
    if configured:
        return configured
    path = Path(db) if db is not None else settings.db_path()
    return path.with_name(path.name + ".audit-key")


def public_path(key: Path) -> Path:
    return key.with_name(key.name + ".pub")


def _text(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def make_key(path: Path) -> str:
    """Write a new private key (PEM, mode 0600) and its public half beside it; the public key's text.
    An existing key is never overwritten: checkpoints already signed with it would become unprovable."""
    if path.exists():
        raise CredoError(f"{path} already exists: a signing key is never replaced in place", code="key_exists")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public = _text(key.public_key().public_bytes(*_RAW))
    public_path(path).write_text(public + "\n")
    return public


@dataclass(frozen=True)
class Signer:
    """A loaded private key."""

    key: Ed25519PrivateKey
    public: str

    @classmethod
    def load(cls, path: Path) -> Signer | None:
        """The key in ``path``; None when there is no such file (signing is then off)."""
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except ValueError as exc:
            raise CredoError(f"{path} is not a signing key: {exc}", code="bad_key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise CredoError(f"{path} is not an Ed25519 key", code="bad_key")
        return cls(key, _text(key.public_key().public_bytes(*_RAW)))

    def sign(self, data: bytes) -> str:
        return _text(self.key.sign(data))


def verify(public: str, data: bytes, signature: str) -> bool:
    """Whether ``signature`` is ``public``'s signature of ``data`` (False for any malformed input)."""
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public, validate=True))
        key.verify(base64.b64decode(signature, validate=True), data)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def load_public(text_or_path: str) -> str:
    """A public key given to the auditor: its base64 text, or a file that holds it."""
    candidate = Path(text_or_path)
    text = candidate.read_text().strip() if candidate.is_file() else text_or_path.strip()
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error) as exc:
        raise CredoError(f"not an Ed25519 public key: {text_or_path!r}", code="bad_key") from exc
    return text


def trusted_public(db: Path | str | None, given: str | None = None) -> str | None:
    """The public key a signature about database ``db`` is checked against: the one ``given`` (its text
    or a file), else the ``.pub`` beside the signing key for ``db``, else that key's own public half;
    None when there is none."""
    if given:
        return load_public(given)
    key = key_path(db)
    public = public_path(key)
    if public.is_file():
        return load_public(str(public))
    signer = Signer.load(key)
    return signer.public if signer else None
