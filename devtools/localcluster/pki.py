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


def add_token_users(path: Path, users: dict[str, str]) -> dict[str, str]:
    """Append a fresh token per user to a token file; ``users`` maps user name to its groups
    (comma-separated, may be empty). Return user name -> token."""
    tokens = {user: secrets.token_hex(24) for user in users}
    with open(path, "a") as fh:
        for user, groups in users.items():
            fh.write(f'{tokens[user]},{user},{user},"{groups}"\n')
    return tokens


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def ensure_kubelet_client_pki(directory: Path) -> tuple[Path, Path, Path]:
    """A CA that kubelets trust and the API server's client certificate signed by it (created
    once per state dir with the openssl CLI); return (ca.crt, client.crt, client.key)."""
    ca_crt, ca_key = directory / "kubelet-ca.crt", directory / "kubelet-ca.key"
    crt, key = (
        directory / "apiserver-kubelet-client.crt",
        directory / "apiserver-kubelet-client.key",
    )
    if all(p.is_file() for p in (ca_crt, crt, key)):
        return ca_crt, crt, key
    directory.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    old = os.umask(0o077)
    try:
        _openssl(
            "req",
            "-x509",
            *ec,
            "-keyout",
            str(ca_key),
            "-out",
            str(ca_crt),
            "-days",
            "3650",
            "-subj",
            "/CN=onyxia-local-kubelet-client-ca",
        )
        csr = directory / "apiserver-kubelet-client.csr"
        _openssl(
            "req",
            *ec,
            "-keyout",
            str(key),
            "-out",
            str(csr),
            "-subj",
            "/O=system:masters/CN=kube-apiserver-kubelet-client",
        )
        ext = directory / "client.ext"
        ext.write_text("extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n")
        _openssl(
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(ca_crt),
            "-CAkey",
            str(ca_key),
            "-set_serial",
            str(secrets.randbits(63)),
            "-days",
            "3650",
            "-extfile",
            str(ext),
            "-out",
            str(crt),
        )
        csr.unlink()
        ext.unlink()
    finally:
        os.umask(old)
    return ca_crt, crt, key
