"""Signed session cookies and CSRF tokens for the dashboard.

The cookie carries ``{nonce, org, key, exp}`` as base64 JSON plus an HMAC-SHA256 with
a key derived from the installation secret (so it survives restarts and is worthless
on another installation). HttpOnly and SameSite=Strict keep scripts and other sites
away from it; every POST form additionally carries a CSRF token, the HMAC of the
session's nonce, which an attacker cannot compute without the cookie. The nonce is
renewed at login (no session fixation). Anonymous visitors get a nonce-only session,
so the login form is protected the same way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

COOKIE = "opentse_dash"
LANG_COOKIE = "opentse_lang"
SESSION_SECONDS = 8 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    nonce: str
    organization_id: str = ""
    api_key: str = ""
    expires: int = 0

    @property
    def logged_in(self) -> bool:
        return bool(self.organization_id)


class SessionCodec:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, data: bytes) -> str:
        digest = hmac.new(self._key, data, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def anonymous(self) -> Session:
        return Session(secrets.token_urlsafe(16))

    def login(self, organization_id: str, api_key: str, now: int) -> Session:
        return Session(secrets.token_urlsafe(16), organization_id, api_key, now + SESSION_SECONDS)

    def dump(self, session: Session) -> str:
        body = json.dumps(
            {"n": session.nonce, "o": session.organization_id, "k": session.api_key,
             "e": session.expires},
            separators=(",", ":"),
        ).encode()  # fmt: skip
        payload = base64.urlsafe_b64encode(body).decode().rstrip("=")
        return f"{payload}.{self._mac(payload.encode())}"

    def load(self, value: str | None, now: int) -> Session | None:
        """The session of a cookie value; None when missing, forged or expired."""
        if not value or "." not in value:
            return None
        payload, mac = value.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac(payload.encode())):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            session = Session(str(data["n"]), str(data["o"]), str(data["k"]), int(data["e"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        if session.logged_in and session.expires <= now:
            return Session(session.nonce)  # expired: anonymous again
        return session

    def csrf_token(self, session: Session) -> str:
        return self._mac(b"csrf:" + session.nonce.encode())

    def check_csrf(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf_token(session))
