"""Secrets at rest and in cookies: AES-GCM with rotating keys, random tokens, token hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE = 12


def random_token(prefix: str = "", nbytes: int = 32) -> str:
    """An unguessable URL-safe token."""
    return prefix + secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """The SHA-256 hex digest stored instead of a bearer secret (cookie value, API token)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def derive_key(secret: str, purpose: str) -> bytes:
    """A 256-bit key for `purpose` derived from an operator secret (any length)."""
    return hmac.new(secret.encode("utf-8"), purpose.encode("utf-8"), hashlib.sha256).digest()


class Cipher:
    """Authenticated encryption; the first key encrypts, every key decrypts (rotation)."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("a cipher needs at least one key")
        self._keys = [(hashlib.sha256(k).hexdigest()[:8], AESGCM(k)) for k in keys]

    def encrypt(self, plaintext: str, context: str) -> str:
        """`plaintext` sealed to `context` (a value sealed for one use cannot serve another)."""
        kid, aead = self._keys[0]
        nonce = os.urandom(_NONCE)
        sealed = aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return f"{kid}.{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"

    def decrypt(self, token: str, context: str) -> str | None:
        """The plaintext, or None if `token` was tampered with or sealed by an unknown key."""
        kid, _, body = token.partition(".")
        for key_id, aead in self._keys:
            if key_id != kid:
                continue
            try:
                raw = base64.urlsafe_b64decode(body.encode("ascii"))
                opened = aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode("utf-8"))
            except (InvalidTag, ValueError):
                return None
            return opened.decode("utf-8")
        return None

    @property
    def current_key_id(self) -> str:
        """Id of the key new values are sealed with."""
        return self._keys[0][0]
