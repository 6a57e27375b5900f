"""Secrets of a local cluster: the service-account key pair and the static admin token."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path


def ensure_sa_keypair(key: Path, pub: Path) -> None:
    """Create an RSA service-account key pair with the openssl CLI unless both files exist."""
    if key.is_file() and pub.is_file():
        return
    key.parent.mkdir(parents=True, exist_ok=True)
    # Private key must never be world-readable, even between creation and chmod.
    old = os.umask(0o077)
    try:
        subprocess.run(
            ["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True
        )
        subprocess.run(
            ["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)],
            check=True,
            capture_output=True,
        )
    finally:
        os.umask(old)


def write_token_file(path: Path) -> str:
    """Write a static token file with a fresh admin token in system:masters; return the token."""
    token = secrets.token_hex(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f'{token},admin,admin,"system:masters"\n')
    os.chmod(path, 0o600)
    return token
