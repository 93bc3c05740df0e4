"""The signing key: made once, private, and signatures that only it can make."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from credo import signing
from credo.errors import CredoError


def test_a_key_is_private_never_overwritten_and_signs_what_its_public_half_verifies(tmp_path: Path) -> None:
    path = tmp_path / "k"
    public = signing.make_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing.load_public(str(signing.public_path(path))) == public
    signer = signing.Signer.load(path)
    assert signer is not None and signer.public == public
    sig = signer.sign(b"12:abc")
    assert signing.verify(public, b"12:abc", sig)
    assert not signing.verify(public, b"13:abc", sig)
    other = signing.make_key(tmp_path / "other")
    assert not signing.verify(other, b"12:abc", sig)
    assert not signing.verify(public, b"12:abc", "not base64!")
    with pytest.raises(CredoError, match="already exists"):
        signing.make_key(path)
    assert signing.Signer.load(tmp_path / "absent") is None


def test_a_public_key_that_is_not_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CredoError, match="public key"):
        signing.load_public("c2hvcnQ=")


def test_credo_audit_key_writes_beside_the_database_or_where_configured(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CREDO_AUDIT_KEY"}
    run = subprocess.run([sys.executable, "-m", "credo.cli", "--db", str(tmp_path / "c.duckdb"), "audit", "key"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert signing.load_public(str(tmp_path / "c.duckdb.audit-key.pub")) == run.stdout.strip()
    configured = tmp_path / "elsewhere" / "key"
    configured.parent.mkdir()
    run = subprocess.run([sys.executable, "-m", "credo.cli", "audit", "key"], capture_output=True, text=True,
                         env={**env, "CREDO_AUDIT_KEY": str(configured)}, timeout=60)
    assert run.returncode == 0 and configured.exists(), run.stderr
    again = subprocess.run([sys.executable, "-m", "credo.cli", "audit", "key"], capture_output=True, text=True,
                           env={**env, "CREDO_AUDIT_KEY": str(configured)}, timeout=60)
    assert again.returncode != 0 and "already exists" in again.stderr and "Traceback" not in again.stderr
