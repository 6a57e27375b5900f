"""Authentication adapter: the only package that imports `authlib` and `cryptography`."""

from onyxia_py.auth.crypto import Cipher, derive_key, random_token, same, token_hash
from onyxia_py.auth.jwt import ASYMMETRIC_ALGORITHMS, Claims, JwksCache, verify_jwt
from onyxia_py.auth.oidc import OidcProvider, ProviderConfig, TokenSet

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "Cipher",
    "Claims",
    "JwksCache",
    "OidcProvider",
    "ProviderConfig",
    "TokenSet",
    "derive_key",
    "random_token",
    "same",
    "token_hash",
    "verify_jwt",
]
