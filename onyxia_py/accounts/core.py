"""Logging in and out, sessions that live as long as the provider's tokens, API tokens."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from onyxia_py.accounts.claims import (
    identity_from_claims,
    is_admin,
    safe_next,
    token_scopes,
    user_scopes,
)
from onyxia_py.accounts.models import (
    ApiTokenInfo,
    AuthMethod,
    Identity,
    LoginStart,
    NewApiToken,
    NewSession,
    Principal,
    Scope,
)
from onyxia_py.accounts.session_cache import SessionCache
from onyxia_py.accounts.tokens import token_info, token_request_errors
from onyxia_py.auth import Cipher, TokenSet, random_token, same, token_hash
from onyxia_py.auth.dpop import DpopRequest, DpopVerifier
from onyxia_py.db import (
    ApiTokenStore,
    AuditLog,
    SessionRecord,
    SessionStore,
    UserRecord,
    Users,
)
from onyxia_py.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    Unauthenticated,
)
from onyxia_py.keyed_locks import KeyedLocks
from onyxia_py.settings import AuthSettings

log = logging.getLogger(__name__)

API_TOKEN_PREFIX = "onyx_"  # noqa: S105 (a marker, not a secret)
LOGIN_STATE_SECONDS = 600
# Refresh a little before expiry so a request never carries a token that dies in flight.
REFRESH_MARGIN = timedelta(seconds=30)
# A bearer caller's user row is refreshed at most this often.
BEARER_UPSERT_SECONDS = 300.0
SUSPENDED = (
    "your API tokens are suspended: the OpenID Provider no longer confirms your account or "
    "roles. Log in again to resume them"
)


class OidcPort(Protocol):
    """What accounts need from an OpenID Provider."""

    async def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str: ...

    async def exchange_code(
        self, *, code: str, code_verifier: str, redirect_uri: str
    ) -> TokenSet: ...

    async def refresh(self, refresh_token: str) -> TokenSet: ...

    async def verify_id_token(self, id_token: str, *, nonce: str | None) -> dict[str, Any]: ...

    async def verify_access_token(self, token: str) -> dict[str, Any]: ...

    async def end_session_url(self, *, post_logout_redirect_uri: str) -> str | None: ...


def _now() -> datetime:
    return datetime.now(UTC)


def _at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


class Accounts:
    """Authentication flows; the one place credentials become a `Principal`."""

    def __init__(
        self,
        settings: AuthSettings,
        *,
        public_url: str,
        provider: OidcPort | None,
        cipher: Cipher,
        users: Users,
        sessions: SessionStore,
        tokens: ApiTokenStore,
        audit: AuditLog,
        session_cache: SessionCache | None = None,
    ) -> None:
        self.settings = settings
        self.public_url = public_url.rstrip("/")
        self.provider = provider
        self._cipher = cipher
        self._users = users
        self._sessions = sessions
        self._session_cache = (
            SessionCache(settings.session_cache_seconds) if session_cache is None else session_cache
        )
        self._tokens = tokens
        self._audit = audit
        self._refresh_locks: KeyedLocks[int] = KeyedLocks()
        self._recheck_locks: KeyedLocks[int] = KeyedLocks()
        # Called with each identity that logs in (project bootstrap); set by the composition root.
        self.on_login: Callable[[Identity], Awaitable[None]] | None = None
        # Drops the groups whose project belongs to another group; set by the composition root.
        self.usable_groups: Callable[[Identity], Awaitable[Identity]] | None = None
        self._bearer_users: dict[tuple[Any, ...], tuple[float, int, Identity]] = {}
        self._dpop = DpopVerifier(frozenset(settings.algorithms))
        self._local_user_id: int | None = None

    @property
    def redirect_uri(self) -> str:
        """The callback the provider sends the browser back to."""
        return f"{self.public_url}/auth/callback"

    def _oidc(self) -> OidcPort:
        if self.provider is None:
            raise NotFound("this platform has no OpenID Provider (auth mode none)")
        return self.provider

    # -- browser login ---------------------------------------------------------------------

    async def start_login(self, next_path: str | None) -> LoginStart:
        """The provider URL to log in at, with PKCE, state and nonce sealed for the callback."""
        state, nonce, verifier = random_token(), random_token(), random_token(nbytes=48)
        url = await self._oidc().authorization_url(
            redirect_uri=self.redirect_uri, state=state, nonce=nonce, code_verifier=verifier
        )
        payload = {
            "state": state,
            "nonce": nonce,
            "verifier": verifier,
            "next": safe_next(next_path),
            "at": time.time(),
        }
        return LoginStart(url, self._cipher.encrypt(json.dumps(payload), "login-state"))

    async def finish_login(
        self, *, code: str | None, state: str | None, error: str | None, sealed_state: str | None
    ) -> NewSession:
        """Check the callback against the sealed state, redeem the code, open a session."""
        try:
            return await self._finish_login(code, state, error, sealed_state)
        except Unauthenticated as exc:
            await self._audit.record(
                actor="anonymous",
                action="auth.login",
                target=self.settings.issuer_url or "",
                outcome="failure",
                details={"reason": exc.detail},
            )
            raise

    async def _finish_login(
        self, code: str | None, state: str | None, error: str | None, sealed_state: str | None
    ) -> NewSession:
        opened = self._cipher.decrypt(sealed_state, "login-state") if sealed_state else None
        if opened is None:
            raise Unauthenticated("login expired or started elsewhere: log in again")
        pending = json.loads(opened)
        if time.time() - float(pending["at"]) > LOGIN_STATE_SECONDS:
            raise Unauthenticated("login took too long: log in again")
        if not state or not same(state, str(pending["state"])):
            raise Unauthenticated("login state does not match: log in again")
        if error:
            raise Unauthenticated(f"the OpenID Provider refused the login ({error[:64]})")
        if not code:
            raise Unauthenticated("the OpenID Provider sent no authorization code")
        provider = self._oidc()
        tokens = await provider.exchange_code(
            code=code, code_verifier=str(pending["verifier"]), redirect_uri=self.redirect_uri
        )
        if not tokens.id_token:
            raise Unauthenticated("the OpenID Provider returned no ID token")
        claims = await provider.verify_id_token(tokens.id_token, nonce=str(pending["nonce"]))
        identity = await self._identity(claims)
        user = await self._remember(identity)
        principal, cookie = await self._open_session(user, identity, tokens)
        if self.on_login is not None:
            await self.on_login(identity)
        await self._audit.record(
            actor=identity.username,
            action="auth.login",
            target=identity.issuer,
            outcome="success",
            details={"method": "oidc", "groups": list(identity.groups)},
        )
        return NewSession(cookie, str(pending["next"]), principal)

    async def local_login(self, next_path: str | None) -> NewSession:
        """Auth mode none: a session for the single local user, who is admin."""
        identity = self.local_identity()
        user = await self._remember(identity)
        expires = time.time() + self.settings.session_max_lifetime_seconds
        principal, cookie = await self._open_session(
            user, identity, TokenSet("", expires, None, None, None)
        )
        await self._audit.record(
            actor=identity.username,
            action="auth.login",
            target="local",
            outcome="success",
            details={"method": "none"},
        )
        return NewSession(cookie, safe_next(next_path), principal)

    def local_identity(self) -> Identity:
        """The single user of auth mode none."""
        name = self.settings.local_username
        return Identity("local", name, name, None, (), (self.settings.admin_role,))

    async def local_principal(self) -> Principal:
        """Auth mode none, a request with no session: the local user, read-only (no CSRF)."""
        identity = self.local_identity()
        if self._local_user_id is None:
            # Recorded once per process, not on every anonymous request.
            self._local_user_id = (await self._remember(identity)).id
        return Principal(
            self._local_user_id, identity, True, frozenset({Scope.READ}), AuthMethod.LOCAL
        )

    async def _identity(self, claims: dict[str, Any]) -> Identity:
        identity = identity_from_claims(claims, self.settings)
        return await self.usable_groups(identity) if self.usable_groups else identity

    async def _remember(self, identity: Identity) -> UserRecord:
        try:
            return await self._users.seen(
                issuer=identity.issuer,
                subject=identity.subject,
                username=identity.username,
                email=identity.email,
                groups=list(identity.groups),
                roles=list(identity.roles),
            )
        except Conflict as exc:
            # Another account holds this username: refused, never merged (it would inherit
            # the other one's namespace, services and bucket).
            log.warning("refused %s/%s: %s", identity.issuer, identity.subject, exc.detail)
            raise Unauthenticated(exc.detail, reason="username-taken") from None

    async def _open_session(
        self, user: UserRecord, identity: Identity, tokens: TokenSet
    ) -> tuple[Principal, str]:
        cookie = random_token()
        now = _now()
        # Logins are rare next to requests: a good moment to drop sessions that ended.
        await self._sessions.delete_expired(now)
        absolute = now + timedelta(seconds=self.settings.session_max_lifetime_seconds)
        record = await self._sessions.create(
            token_hash=token_hash(cookie),
            user_id=user.id,
            csrf_token=random_token(),
            expires_at=min(_at(tokens.expires_at), absolute),
            absolute_expires_at=absolute,
            access_token_sealed=self._seal(tokens.access_token),
            refresh_token_sealed=self._seal(tokens.refresh_token),
            claims=_identity_claims(identity),
        )
        return self._session_principal(record), cookie

    def _seal(self, token: str | None) -> str | None:
        return self._cipher.encrypt(token, "provider-token") if token else None

    def _session_principal(self, record: SessionRecord) -> Principal:
        identity = Identity(
            **{
                **record.claims,
                "groups": tuple(record.claims["groups"]),
                "roles": tuple(record.claims["roles"]),
                "refused_groups": tuple(record.claims.get("refused_groups", ())),
            }
        )
        admin = is_admin(identity.roles, self.settings)
        return Principal(
            user_id=record.user_id,
            identity=identity,
            is_admin=admin,
            scopes=user_scopes(admin),
            method=AuthMethod.SESSION,
            session_id=record.id,
            csrf_token=record.csrf_token,
        )

    # -- sessions ----------------------------------------------------------------------------

    async def session_principal(self, cookie: str) -> Principal | None:
        """The caller behind a session cookie, refreshing provider tokens when they expire."""
        key = token_hash(cookie)
        cached = self._session_cache.get(key, _now())
        if cached is not None:
            return cached
        marker = self._session_cache.marker()
        record = await self._sessions.find(key)
        if record is None:
            return None
        now = _now()
        if now >= record.absolute_expires_at:
            await self._end(record, "past its lifetime")
            return None
        if now + REFRESH_MARGIN >= record.expires_at:
            # Not cached this time: the next request reads the refreshed row.
            refreshed = await self._refresh(record, lambda: self._sessions.find(key))
            return None if refreshed is None else self._session_principal(refreshed)
        principal = self._session_principal(record)
        usable_until = min(record.expires_at - REFRESH_MARGIN, record.absolute_expires_at)
        self._session_cache.put(key, principal, usable_until, marker)
        return principal

    async def provider_access_token(
        self, user_id: int, session_id: int | None = None
    ) -> str | None:
        """A live provider access token of the user, for calls the platform makes on their
        behalf (S3 STS): that session's, else their newest session's, refreshed when about to
        expire; None when they have no usable session (logged out, or past its lifetime)."""
        record = (
            await self._sessions.get(session_id)
            if session_id is not None
            else await self._sessions.newest_for_user(user_id, _now())
        )
        if record is None or record.user_id != user_id or _now() >= record.absolute_expires_at:
            return None
        if _now() + REFRESH_MARGIN >= record.expires_at:
            session = record.id
            record = await self._refresh(record, lambda: self._sessions.get(session))
            if record is None:
                return None
        if not record.access_token_sealed:
            return None
        return self._cipher.decrypt(record.access_token_sealed, "provider-token")

    async def _refresh(
        self,
        record: SessionRecord,
        reload: Callable[[], Awaitable[SessionRecord | None]],
        *,
        force: bool = False,
    ) -> SessionRecord | None:
        async with self._refresh_locks.hold(record.id):
            # Another request may have refreshed while this one waited.
            current = await reload()
            if current is None:
                return None
            if not force and _now() + REFRESH_MARGIN < current.expires_at:
                return current
            refresh = (
                self._cipher.decrypt(current.refresh_token_sealed, "provider-token")
                if current.refresh_token_sealed
                else None
            )
            if refresh is None or self.provider is None:
                await self._end(current, "expired")
                return None
            try:
                tokens = await self.provider.refresh(refresh)
                claims = current.claims
                if tokens.id_token:
                    verified = await self.provider.verify_id_token(tokens.id_token, nonce=None)
                    claims = _identity_claims(await self._identity(verified))
            except Unauthenticated:
                await self._end(current, "refresh refused")
                return None
            expires = min(_at(tokens.expires_at), current.absolute_expires_at)
            # New claims (groups, roles) must not wait for a cache entry to age.
            with self._session_cache.evicting(current.id):
                await self._sessions.refreshed(
                    current.id,
                    expires_at=expires,
                    access_token_sealed=self._seal(tokens.access_token) or "",
                    # Rotation: a new refresh token replaces the old one; else the old one stays.
                    refresh_token_sealed=self._seal(tokens.refresh_token)
                    or current.refresh_token_sealed,
                    claims=claims,
                )
            return await reload()

    async def _end(self, record: SessionRecord, reason: str) -> None:
        with self._session_cache.evicting(record.id):
            await self._sessions.delete(record.id)
        log.info("session %d of user %d ended: %s", record.id, record.user_id, reason)

    async def logout(self, principal: Principal) -> str | None:
        """End the caller's session; the provider's logout URL to visit next, if any."""
        if principal.session_id is not None:
            ending = await self._sessions.get(principal.session_id)
            if ending is not None and ending.refresh_token_sealed:
                # Role re-checks of the user's API tokens go on with it (if the provider keeps
                # honouring it after the logout, as it does offline_access grants).
                await self._users.keep_grant(ending.user_id, ending.refresh_token_sealed)
            with self._session_cache.evicting(principal.session_id):
                await self._sessions.delete(principal.session_id)
        await self._audit.record(
            actor=principal.username,
            action="auth.logout",
            target=principal.identity.issuer,
            outcome="success",
        )
        if self.provider is None:
            return None
        return await self.provider.end_session_url(post_logout_redirect_uri=self.public_url + "/")

    # -- bearer tokens -----------------------------------------------------------------------

    async def bearer_principal(self, token: str, dpop: DpopRequest | None = None) -> Principal:
        """The caller behind an `Authorization: Bearer` token (a provider JWT or an API token),
        or an `Authorization: DPoP` one with its proof (`dpop`)."""
        if token.startswith(API_TOKEN_PREFIX):
            if dpop is not None:
                raise Unauthenticated("API tokens are bearer tokens: send 'Authorization: Bearer'")
            return await self._api_token_principal(token)
        if self.provider is None:
            raise Unauthenticated("bearer JWTs need an OpenID Provider; use an API token")
        claims = await self.provider.verify_access_token(token)
        self._check_binding(token, claims, dpop)
        identity = identity_from_claims(claims, self.settings)
        key = (identity.issuer, identity.subject, identity.username, identity.groups)
        cached = self._bearer_users.get(key)
        if cached and time.monotonic() - cached[0] < BEARER_UPSERT_SECONDS:
            _, user_id, identity = cached
        else:
            identity = await self.usable_groups(identity) if self.usable_groups else identity
            user_id = (await self._remember(identity)).id
            self._bearer_users[key] = (time.monotonic(), user_id, identity)
        admin = is_admin(identity.roles, self.settings)
        return Principal(user_id, identity, admin, user_scopes(admin), AuthMethod.BEARER)

    def _check_binding(self, token: str, claims: dict[str, Any], dpop: DpopRequest | None) -> None:
        """A DPoP-bound token (`cnf.jkt`) only with a proof signed by its key (RFC 9449 §7)."""
        confirmation = claims.get("cnf")
        bound = confirmation.get("jkt") if isinstance(confirmation, dict) else None
        if dpop is None:
            if bound is not None:
                raise Unauthenticated(
                    "this access token is DPoP-bound: send it as 'Authorization: DPoP' with a "
                    "DPoP proof header"
                )
            return
        if bound is None:
            raise Unauthenticated("this access token is not DPoP-bound: send it as a bearer token")
        if not same(self._dpop.verify(dpop, token), str(bound)):
            raise Unauthenticated("DPoP proof: signed by a key the token is not bound to")

    async def _api_token_principal(self, token: str) -> Principal:
        record = await self._tokens.find(token_hash(token))
        now = _now()
        if record is None or record.revoked_at is not None:
            raise Unauthenticated("unknown or revoked API token")
        if now >= record.expires_at:
            raise Unauthenticated("API token has expired")
        owner = await self._users.get(record.user_id)
        if owner is None:
            raise Unauthenticated("unknown or revoked API token")
        if owner.tokens_suspended_at is not None:
            raise Unauthenticated(SUSPENDED, reason="suspended")
        # A token made for more than reading follows the provider's current word on its owner.
        if set(record.scopes) - {Scope.READ.value} and self._stale(owner):
            owner = await self._recheck(owner)
        identity = Identity(
            owner.issuer, owner.subject, owner.username, owner.email, owner.groups, owner.roles
        )
        admin = is_admin(owner.roles, self.settings)
        # "Last used" to the minute: not a database write on every request of a busy script.
        if record.last_used_at is None or now - record.last_used_at > timedelta(minutes=1):
            await self._tokens.used(record.id, now)
        return Principal(
            owner.id, identity, admin, token_scopes(record.scopes, admin), AuthMethod.API_TOKEN
        )

    # -- role re-checks ----------------------------------------------------------------------

    def _stale(self, user: UserRecord) -> bool:
        if self.provider is None:  # auth mode none: the local user's roles are the settings'
            return False
        checked = user.roles_checked_at
        return checked is None or _now() - checked > timedelta(
            seconds=self.settings.roles_recheck_seconds
        )

    async def _recheck(self, user: UserRecord) -> UserRecord:
        """Ask the provider again who `user` is (a refresh of their newest session, else of the
        grant their last session left); their groups and roles become its answer. When it no
        longer confirms them, their API tokens are suspended until they log in."""
        async with self._recheck_locks.hold(user.id):
            current = await self._users.get(user.id)
            if current is None:
                raise Unauthenticated("unknown or revoked API token")
            if not self._stale(current):  # another request re-checked meanwhile
                return current
            identity = await self._confirmed_identity(current)
            if identity is None or (identity.issuer, identity.subject) != (
                current.issuer,
                current.subject,
            ):
                await self._suspend(current)
                raise Unauthenticated(SUSPENDED, reason="suspended")
            return await self._remember(identity)

    async def _confirmed_identity(self, user: UserRecord) -> Identity | None:
        """Who the provider says `user` is now, or None when it refuses every grant we hold."""
        record = await self._sessions.newest_for_user(user.id, _now())
        if record is not None and record.refresh_token_sealed:
            session = record.id
            refreshed = await self._refresh(record, lambda: self._sessions.get(session), force=True)
            if refreshed is not None:
                return self._session_principal(refreshed).identity
        sealed = user.grant_sealed
        grant = self._cipher.decrypt(sealed, "provider-token") if sealed else None
        if grant is None or self.provider is None:
            return None
        try:
            tokens = await self.provider.refresh(grant)
            claims = (
                await self.provider.verify_id_token(tokens.id_token, nonce=None)
                if tokens.id_token
                else await self.provider.verify_access_token(tokens.access_token)
            )
        except Unauthenticated as exc:
            log.info("the grant kept for user %d was refused: %s", user.id, exc.detail)
            return None
        rotated = self._seal(tokens.refresh_token)
        if rotated:
            await self._users.keep_grant(user.id, rotated)
        return await self._identity(claims)

    async def _suspend(self, user: UserRecord) -> None:
        await self._users.suspend_tokens(user.id, _now())
        await self._audit.record(
            actor=user.username,
            action="token.suspend",
            target=f"user/{user.id}",
            outcome="success",
            details={"reason": "the OpenID Provider no longer confirms the account"},
        )

    # -- API tokens --------------------------------------------------------------------------

    async def create_token(
        self, principal: Principal, *, name: str, scopes: list[str], days: int | None
    ) -> NewApiToken:
        """A new API token for the caller; its secret is returned only here."""
        if principal.method is AuthMethod.API_TOKEN:
            raise Forbidden("an API token cannot create API tokens: log in")
        errors = token_request_errors(name, scopes, days, principal, self.settings)
        if errors:
            raise Invalid("the API token cannot be created", errors)
        secret = random_token(API_TOKEN_PREFIX)
        lifetime = days or self.settings.api_token_default_days
        record = await self._tokens.create(
            user_id=principal.user_id,
            name=name.strip(),
            prefix=secret[: len(API_TOKEN_PREFIX) + 6],
            token_hash=token_hash(secret),
            scopes=sorted(set(scopes)),
            expires_at=_now() + timedelta(days=lifetime),
        )
        await self._audit.record(
            actor=principal.username,
            action="token.create",
            target=f"token/{record.id}",
            outcome="success",
            details={"name": record.name, "scopes": list(record.scopes)},
        )
        return NewApiToken(secret, token_info(record))

    async def list_tokens(self, principal: Principal) -> list[ApiTokenInfo]:
        """The caller's API tokens, newest first."""
        return [token_info(r) for r in await self._tokens.list_for(principal.user_id)]

    async def revoke_token(self, principal: Principal, token_id: int) -> None:
        """Revoke one of the caller's tokens, effective at once."""
        if not await self._tokens.revoke(user_id=principal.user_id, token_id=token_id, now=_now()):
            raise NotFound(f"you have no live API token {token_id}")
        await self._audit.record(
            actor=principal.username,
            action="token.revoke",
            target=f"token/{token_id}",
            outcome="success",
        )


def _identity_claims(identity: Identity) -> dict[str, Any]:
    return {
        "issuer": identity.issuer,
        "subject": identity.subject,
        "username": identity.username,
        "email": identity.email,
        "groups": list(identity.groups),
        "roles": list(identity.roles),
        "refused_groups": list(identity.refused_groups),
    }
