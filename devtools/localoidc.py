"""A real OpenID Provider for tests: npm `oidc-provider` run by Node on 127.0.0.1, a free port.

`LocalOidcProvider` writes a JSON config (signing keys with `x5c`, clients, users with groups and
roles, token lifetimes) and starts `devtools/oidc/server.mjs`. Tests walk the real
authorization-code flow with `devtools.oidcflows.login` (the app under test builds the
authorization URL) or get tokens with `devtools.oidcflows.authorization_code_tokens`.

What the provider issues (scopes `openid profile email groups roles`, `offline_access` optional):
- the ID token carries `sub`, `preferred_username`, `name`, `email`, `email_verified`, `groups`,
  `roles` (for the requested scopes), `nonce`, `aud` = the client id;
- the access token is a JWT (RS256, the configured key's `kid`) with `aud` = the audience
  ("onyxia" by default), `client_id`, `scope`, and `preferred_username`, `email`,
  `email_verified`, `groups`, `roles`; the userinfo endpoint refuses it (it has an audience);
- a refresh token for every code flow, rotated on each use.

Everything lives in the Node process's memory: `rotate_keys` (a restart) forgets sessions,
grants and refresh tokens.
"""

from __future__ import annotations

import base64
import datetime
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from devtools.ports import free_port

NODE_DIR = Path(__file__).resolve().parent / "oidc"
SERVER_SCRIPT = NODE_DIR / "server.mjs"
DEFAULT_SCOPE = "openid profile email groups roles"
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

Jwk = dict[str, str | list[str]]


class OidcProviderError(RuntimeError):
    """The Node process failed to install, start or keep running."""


class OidcLoginError(RuntimeError):
    """The provider refused a login (wrong password) or answered something unexpected."""


def b64url(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    """A JWK integer member: big-endian bytes, base64url."""
    return b64url(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def b64url_decode(data: str) -> bytes:
    """Decode base64url with or without padding."""
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def make_rsa_jwk(kid: str | None = None) -> Jwk:
    """A private RSA-2048 signing JWK (RS256) with `kid` and a self-signed `x5c` certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    priv = key.private_numbers()
    pub = priv.public_numbers
    n, e = _b64url_uint(pub.n), _b64url_uint(pub.e)
    if kid is None:
        thumbprint_input = json.dumps({"e": e, "kty": "RSA", "n": n}, separators=(",", ":"))
        kid = b64url(hashlib.sha256(thumbprint_input.encode()).digest())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"onyxia-test-oidc {kid}"[:64])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    return {
        "kty": "RSA",
        "kid": kid,
        "use": "sig",
        "alg": "RS256",
        "n": n,
        "e": e,
        "d": _b64url_uint(priv.d),
        "p": _b64url_uint(priv.p),
        "q": _b64url_uint(priv.q),
        "dp": _b64url_uint(priv.dmp1),
        "dq": _b64url_uint(priv.dmq1),
        "qi": _b64url_uint(priv.iqmp),
        "x5c": [base64.b64encode(der).decode("ascii")],
    }


def public_jwk(jwk: Mapping[str, Any]) -> dict[str, Any]:
    """The JWK without its private members (keeps `kid`, `use`, `alg`, `x5c`)."""
    return {k: v for k, v in jwk.items() if k not in PRIVATE_JWK_MEMBERS}


def x5c_sha1_thumbprint(jwk: Mapping[str, Any]) -> str:
    """Hex SHA-1 of the DER of the JWK's first `x5c` certificate (what RGW/IAM wants)."""
    x5c = jwk["x5c"]
    return hashlib.sha1(base64.b64decode(x5c[0]), usedforsecurity=False).hexdigest()


@dataclass
class OidcUser:
    """A test account: log in with `username` (or `sub`) and `password`."""

    username: str
    password: str
    sub: str = ""
    name: str = ""
    email: str = ""
    email_verified: bool = True
    groups: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Fill `sub` (a stable UUID), `name` and `email` from the username when empty."""
        if not self.sub:
            self.sub = str(uuid.uuid5(uuid.NAMESPACE_URL, f"onyxia-test-oidc:{self.username}"))
        if not self.name:
            self.name = self.username.capitalize()
        if not self.email:
            self.email = f"{self.username}@example.org"

    def to_config(self) -> dict[str, Any]:
        """The user as server.mjs reads it."""
        return {
            "sub": self.sub,
            "password": self.password,
            "preferred_username": self.username,
            "name": self.name,
            "email": self.email,
            "email_verified": self.email_verified,
            "groups": list(self.groups),
            "roles": list(self.roles),
        }


@dataclass
class OidcClient:
    """A client allowed the code and refresh_token grants: confidential (client_secret_basic),
    or public (no secret, PKCE only: a browser app such as the Onyxia web, which the provider
    then also answers CORS for, from its redirect URIs' origins)."""

    client_id: str = "onyxia"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    redirect_uris: list[str] = field(default_factory=lambda: ["http://127.0.0.1:9/cb"])
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    grant_types: list[str] = field(default_factory=lambda: ["authorization_code", "refresh_token"])
    public: bool = False

    def to_config(self) -> dict[str, Any]:
        """The client metadata as oidc-provider reads it."""
        config: dict[str, Any] = {
            "client_id": self.client_id,
            "redirect_uris": list(self.redirect_uris),
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris),
            "grant_types": list(self.grant_types),
            "response_types": ["code"],
        }
        if self.public:
            return {**config, "token_endpoint_auth_method": "none"}
        return {
            **config,
            "client_secret": self.client_secret,
            "token_endpoint_auth_method": "client_secret_basic",
        }


ALICE_PASSWORD = "alice-password"  # noqa: S105 (a test account)
BOB_PASSWORD = "bob-password"  # noqa: S105 (a test account)


def alice() -> OidcUser:
    """Alice: groups `stats` and `Data Science/ML`, role `admin`, email verified."""
    return OidcUser(
        username="alice",
        password=ALICE_PASSWORD,
        email_verified=True,
        groups=["stats", "Data Science/ML"],
        roles=["admin"],
    )


def bob() -> OidcUser:
    """Bob: group `economics`, no role, email not verified."""
    return OidcUser(
        username="bob",
        password=BOB_PASSWORD,
        email_verified=False,
        groups=["economics"],
        roles=[],
    )


def default_users() -> list[OidcUser]:
    """Fresh copies of alice and bob."""
    return [alice(), bob()]


def ensure_node_modules() -> None:
    """Run `npm ci` in devtools/oidc once when its node_modules is missing (progress to stderr)."""
    marker = NODE_DIR / "node_modules" / "oidc-provider" / "package.json"
    if marker.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise OidcProviderError("npm is not installed (Node.js 20+ is needed for the test OP)")
    lock_path = Path(tempfile.gettempdir()) / "onyxia-oidc-npm.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return
        print(f"localoidc: npm ci in {NODE_DIR}", file=sys.stderr, flush=True)
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            stdout=sys.stderr,
            stderr=sys.stderr,
            check=False,
        )
        if done.returncode != 0 or not marker.exists():
            raise OidcProviderError(f"npm ci failed in {NODE_DIR} (exit {done.returncode})")


class LocalOidcProvider:
    """Start with `start()` (or `with`); `issuer`, `discovery`, `keys`; stop with `stop()`."""

    def __init__(
        self,
        clients: list[OidcClient],
        users: list[OidcUser] | None = None,
        *,
        port: int | None = None,
        keys: list[Jwk] | None = None,
        access_token_ttl: int = 300,
        id_token_ttl: int = 300,
        refresh_token_ttl: int = 3600,
        session_ttl: int = 3600,
        audience: str = "onyxia",
        start_timeout: float = 30.0,
    ) -> None:
        self.clients = list(clients)
        self.users = default_users() if users is None else list(users)
        self.port = port if port is not None else free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.keys: list[Jwk] = list(keys) if keys else [make_rsa_jwk()]
        self.audience = audience
        self.ttl: dict[str, int] = {
            "AccessToken": access_token_ttl,
            "IdToken": id_token_ttl,
            "RefreshToken": refresh_token_ttl,
            "Session": session_ttl,
            "Grant": max(refresh_token_ttl, session_ttl),
            "Interaction": 600,
            "AuthorizationCode": 60,
        }
        self.start_timeout = start_timeout
        self.discovery: dict[str, Any] = {}
        self._root = Path(tempfile.mkdtemp(prefix="onyxia-oidc-"))
        self.log_path = self._root / "oidc.log"
        self._config_path = self._root / "config.json"
        self._proc: subprocess.Popen[bytes] | None = None
        self._control_token = secrets.token_urlsafe(24)

    def user(self, username: str) -> OidcUser:
        """The configured user with that username."""
        for candidate in self.users:
            if candidate.username == username:
                return candidate
        raise KeyError(username)

    def put_user(self, user: OidcUser) -> None:
        """Change (or add) an account while the provider runs: its next tokens say so."""
        self._control("PUT", user.sub, json.dumps(user.to_config()))
        self.users = [u for u in self.users if u.sub != user.sub] + [user]

    def remove_user(self, username: str) -> None:
        """Delete an account while the provider runs: it is unknown from then on."""
        user = self.user(username)
        self._control("DELETE", user.sub)
        self.users = [u for u in self.users if u.sub != user.sub]

    def _control(self, method: str, sub: str, body: str | None = None) -> None:
        request = urllib.request.Request(  # noqa: S310 (our own provider, http://127.0.0.1)
            f"{self.issuer}/_control/users/{urllib.parse.quote(sub, safe='')}",
            data=body.encode() if body is not None else None,
            method=method,
            headers={"Authorization": f"Bearer {self._control_token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (our provider)
            if answer.status != 204:
                raise OidcProviderError(f"control {method} {sub}: HTTP {answer.status}")

    @property
    def jwks_uri(self) -> str:
        """The provider's published JWKS URL (from discovery)."""
        return str(self.discovery["jwks_uri"])

    @property
    def authorization_endpoint(self) -> str:
        """The authorization endpoint URL."""
        return str(self.discovery["authorization_endpoint"])

    @property
    def token_endpoint(self) -> str:
        """The token endpoint URL."""
        return str(self.discovery["token_endpoint"])

    @property
    def end_session_endpoint(self) -> str:
        """The RP-initiated logout endpoint URL."""
        return str(self.discovery["end_session_endpoint"])

    @property
    def userinfo_endpoint(self) -> str:
        """The userinfo endpoint URL."""
        return str(self.discovery["userinfo_endpoint"])

    def public_jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public JWKS of the current keys (as the provider publishes it)."""
        return {"keys": [public_jwk(k) for k in self.keys]}

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the Node process's output."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _write_config(self) -> None:
        """Write the JSON config (private keys: mode 0600)."""
        config = {
            "issuer": self.issuer,
            "port": self.port,
            "jwks": {"keys": self.keys},
            "clients": [c.to_config() for c in self.clients],
            "users": [u.to_config() for u in self.users],
            "ttl": self.ttl,
            "audience": self.audience,
            "parent_pid": os.getpid(),
            "control_token": self._control_token,
        }
        fd = os.open(self._config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(config, out)

    def start(self) -> LocalOidcProvider:
        """Install if needed, start Node and wait for the discovery document."""
        if self._proc is not None:
            return self
        node = shutil.which("node")
        if node is None:
            raise OidcProviderError("node is not installed (Node.js 20+ is needed for the test OP)")
        ensure_node_modules()
        self._write_config()
        log = self.log_path.open("ab")
        try:
            self._proc = subprocess.Popen(
                [node, str(SERVER_SCRIPT), str(self._config_path)],
                cwd=NODE_DIR,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        try:
            self._wait_ready()
        except BaseException:
            self._stop_process()
            raise
        return self

    def _wait_ready(self) -> None:
        """Poll the discovery document until it answers, the process dies or time runs out."""
        assert self._proc is not None
        url = f"{self.issuer}/.well-known/openid-configuration"
        deadline = time.monotonic() + self.start_timeout
        with httpx.Client(timeout=2.0) as http:
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise OidcProviderError(
                        f"oidc-provider exited with code {code}; log {self.log_path}:\n"
                        f"{self.log_tail()}"
                    )
                try:
                    resp = http.get(url)
                    if resp.status_code == 200:
                        self.discovery = resp.json()
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise OidcProviderError(
                        f"oidc-provider not ready after {self.start_timeout}s; "
                        f"log {self.log_path}:\n{self.log_tail()}"
                    )
                time.sleep(0.05)

    def check_running(self) -> None:
        """Raise with the log tail if the Node process has exited."""
        if self._proc is None:
            raise OidcProviderError("the OpenID Provider is not started")
        code = self._proc.poll()
        if code is not None:
            raise OidcProviderError(
                f"oidc-provider exited with code {code}; log {self.log_path}:\n{self.log_tail()}"
            )

    def _stop_process(self) -> None:
        """Stop our Node process by its pid (SIGTERM, then SIGKILL)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)

    def rotate_keys(self, new_keys: list[Jwk] | None = None) -> list[Jwk]:
        """Restart on the same port and issuer with new signing keys (one fresh key by default)."""
        self.keys = list(new_keys) if new_keys else [make_rsa_jwk()]
        self._stop_process()
        self.start()
        return self.keys

    def stop(self) -> None:
        """Stop the Node process and remove the temp dir (config with private keys, log)."""
        self._stop_process()
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> LocalOidcProvider:
        """Start the provider."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the provider."""
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """`python -m devtools.localoidc serve`: the provider in the foreground with alice and bob
    until Ctrl-C; prints the issuer, the client and the users (the client secret goes to a file
    readable only by you, not to the terminal)."""
    import argparse
    import contextlib

    parser = argparse.ArgumentParser(prog="python -m devtools.localoidc")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the provider with the demo users until Ctrl-C")
    serve.add_argument("--port", type=int, default=None, help="default: a free port")
    serve.add_argument(
        "--public-url", default="http://127.0.0.1:8000", help="the platform the client is for"
    )
    serve.add_argument("--secret-file", type=Path, default=Path("onyxia-oidc-client-secret"))
    args = parser.parse_args(argv)
    public_url = args.public_url.rstrip("/")
    client = OidcClient(
        redirect_uris=[f"{public_url}/auth/callback"],
        post_logout_redirect_uris=[f"{public_url}/"],
    )
    fd = os.open(args.secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(client.client_secret + "\n")
    with LocalOidcProvider([client], port=args.port, session_ttl=43200) as provider:
        print(f"issuer:         {provider.issuer}")
        print(f"client id:      {client.client_id} (audience {provider.audience})")
        print(f"client secret:  in {args.secret_file}")
        print(f"redirect URI:   {public_url}/auth/callback")
        for user in provider.users:
            admin = " (admin)" if "admin" in user.roles else ""
            print(f"user:           {user.username} / {user.password}{admin}")
        print("stop with Ctrl-C", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
