"""API authentication: API key + secret -> signed JWT access and refresh tokens.

fiskaly ``authenticateApi``: ``{"api_key","api_secret"}`` or ``{"refresh_token"}``
returns ``access_token`` (a JWT sent as ``Authorization: Bearer``), its expiry,
a refresh token and ``access_token_claims {env, organization_id}``; bad credentials
answer 401 ``E_UNAUTHORIZED``. Our tokens are HS256 JWTs signed with a key derived
(HKDF) from the installation secret, so they survive restarts and are worthless on any
other installation. API secrets are stored only as slow hashes (crypto.secrets).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from opentse.crypto.secrets import hash_secret, verify_secret
from opentse.server.problems import ApiError
from opentse.server.service_store import ServiceStore

ALGORITHM = "HS256"
ISSUER = "opentse"
TOKEN_CACHE_SIZE = 4096  # verified access tokens kept (one per POS session is typical)
# A disabled API key (rotated when a TSE moves host) must stop working for tokens it
# already issued too, not only at the next login: its state is re-read at most this
# many seconds apart per key (on every node; OPENTSE_KEY_RECHECK_SECONDS, intervals.py).
KEY_RECHECK_SECONDS = 5


def derive_key(secret: bytes, label: str) -> bytes:
    """A 32-byte key for one purpose, derived from the installation secret."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label.encode()).derive(secret)


def seal(key: bytes, plaintext: str, aad: str) -> bytes:
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext.encode(), aad.encode())


def unseal(key: bytes, blob: bytes, aad: str) -> str:
    return AESGCM(key).decrypt(blob[:12], blob[12:], aad.encode()).decode()


def new_api_credentials() -> tuple[str, str]:
    """(api_key, api_secret): the key is an identifier, the secret 256 random bits."""
    return "key_" + secrets.token_hex(16), secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the organization every resource lookup is scoped to."""

    organization_id: str
    env: str
    api_key: str


class TokenService:
    def __init__(
        self,
        store: ServiceStore,
        secret: bytes,
        *,
        access_ttl: int = 86400,
        refresh_ttl: int = 172800,
        key_recheck: int = KEY_RECHECK_SECONDS,
    ) -> None:
        self._store = store
        self.key_recheck = key_recheck  # seconds between re-reads of a key's state
        self._key = derive_key(secret, "opentse/server/jwt/v1")
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        # token string -> (principal, exp): a JWT's signature and claims never change, so
        # a token verified once needs only its expiry checked again (against ``now``);
        # every request used to pay ~0.2 ms of HMAC + base64 + JSON for the same answer
        self._verified: dict[str, tuple[Principal, int]] = {}
        self._key_checked: dict[str, int] = {}  # api_key -> when last seen active
        self._decoy_hash: str | None = None  # checked for unknown keys (see login)

    def login(self, body: dict[str, Any], now: int) -> dict[str, Any]:
        """The authenticateApi response for API credentials or a refresh token."""
        if "refresh_token" in body:
            claims = self._decode(str(body["refresh_token"]), "refresh", now)
            key = self._store.get_api_key(str(claims.get("sub", "")))
        else:
            name = str(body.get("api_key", ""))
            # no key has a NUL (keys are made here), and PostgreSQL's text refuses one:
            # it is unknown, not a 500 and a dropped connection
            key = None if "\x00" in name else self._store.get_api_key(name)
            # an unknown key pays for a secret check too: the answer's timing must not
            # tell which API keys exist
            stored = key.secret_hash if key is not None else self._decoy()
            if not verify_secret(str(body.get("api_secret", "")), stored):
                key = None
        if key is None or key.disabled:
            raise ApiError(401, "E_UNAUTHORIZED", "invalid credentials")
        base = {"sub": key.api_key, "org": key.organization_id, "env": key.env, "iss": ISSUER}
        access = self._encode({**base, "typ": "access"}, now, self.access_ttl)
        refresh = self._encode({**base, "typ": "refresh"}, now, self.refresh_ttl)
        return {
            "access_token": access,
            "access_token_claims": {"env": key.env, "organization_id": key.organization_id},
            "access_token_expires_in": self.access_ttl,
            "access_token_expires_at": now + self.access_ttl,
            "refresh_token": refresh,
            "refresh_token_expires_in": self.refresh_ttl,
            "refresh_token_expires_at": now + self.refresh_ttl,
        }

    def _decoy(self) -> str:
        """A hash of a random secret with the current parameters (made once)."""
        if self._decoy_hash is None:
            self._decoy_hash = hash_secret(secrets.token_urlsafe(32))
        return self._decoy_hash

    def authenticate(self, authorization: str | None, now: int) -> Principal:
        """The principal of a ``Bearer`` access token; 401 otherwise. May read the
        store (``check_key``): the server calls ``verify`` on its event loop and
        ``check_key`` on a handler thread (``context.authenticate``)."""
        principal, due = self.verify(authorization, now)
        if due:
            self.check_key(principal, now)
        return principal

    def verify(self, authorization: str | None, now: int) -> tuple[Principal, bool]:
        """The principal of a ``Bearer`` access token (401 otherwise) without reading
        the store, and whether its API key is due for ``check_key``."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise ApiError(401, "E_UNAUTHORIZED", "missing bearer token")
        token = authorization[7:].strip()
        hit = self._verified.get(token)
        if hit is not None:
            if hit[1] <= now:
                raise ApiError(401, "E_UNAUTHORIZED", "invalid or expired token")
            return hit[0], self._key_due(hit[0].api_key, now)
        claims = self._decode(token, "access", now)
        principal = Principal(str(claims["org"]), str(claims["env"]), str(claims["sub"]))
        if len(self._verified) >= TOKEN_CACHE_SIZE:
            self._verified.clear()  # simple bound; tokens re-verify on the next request
        self._verified[token] = (principal, int(claims["exp"]))
        return principal, self._key_due(principal.api_key, now)

    def _key_due(self, api_key: str, now: int) -> bool:
        checked = self._key_checked.get(api_key)
        return checked is None or now - checked >= self.key_recheck

    def check_key(self, principal: Principal, now: int) -> None:
        """401 once the key that issued the token is disabled or gone (a read of the
        store, needed at most every ``key_recheck`` seconds per key, so the hot path stays
        a dict lookup). A store that fails raises its error (503 at the API)."""
        key = self._store.get_api_key(principal.api_key)
        if key is None or key.disabled:
            self._key_checked.pop(principal.api_key, None)
            raise ApiError(401, "E_UNAUTHORIZED", "invalid or expired token")
        if len(self._key_checked) >= TOKEN_CACHE_SIZE:
            self._key_checked.clear()
        self._key_checked[principal.api_key] = now

    def _encode(self, claims: dict[str, Any], now: int, ttl: int) -> str:
        payload = {**claims, "iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex}
        return jwt.encode(payload, self._key, algorithm=ALGORITHM)

    def _decode(self, token: str, typ: str, now: int) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub"], "verify_exp": False},
            )
        except jwt.PyJWTError:
            raise ApiError(401, "E_UNAUTHORIZED", "invalid token") from None
        # an exp we did not write (a string, a float, a list: only the secret's holder
        # can sign one) is no token of ours, not a 500 from int() below
        exp = claims["exp"]
        if not isinstance(exp, int) or isinstance(exp, bool):
            raise ApiError(401, "E_UNAUTHORIZED", "invalid token")
        # expiry checked against the injected clock, not the wall clock
        if claims.get("typ") != typ or exp <= now:
            raise ApiError(401, "E_UNAUTHORIZED", "invalid or expired token")
        if not all(isinstance(claims.get(k), str) for k in ("sub", "org", "env")):
            raise ApiError(401, "E_UNAUTHORIZED", "invalid token")
        return claims


def create_api_key(store: ServiceStore, *, org_name: str, env: str, now: int) -> dict[str, str]:
    """Create (or reuse) the organization ``org_name`` and a new key for it.

    Returns ``{"api_key", "api_secret", "organization_id"}``; the secret is shown once.
    """
    org_id = store.find_organization(org_name, env)
    if org_id is None:
        org_id = str(uuid.uuid4())
        store.create_organization(org_id, org_name, env, now)
    api_key, api_secret = new_api_credentials()
    store.add_api_key(api_key, hash_secret(api_secret), org_id, env, now)
    return {"api_key": api_key, "api_secret": api_secret, "organization_id": org_id}
