"""Logging in and out of the dashboard, and keeping a logged-out session out.

The session cookie is signed, not stored (``session.SessionCodec``), so a copy of
it would stay valid until it expires; logout therefore records the session's nonce
in the shared ``ops_settings`` table, where every node and every restart sees it.
The cookie's own attributes (HttpOnly, SameSite=Strict, Secure over TLS) are set
here too.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from opentse.dashboard import i18n
from opentse.dashboard.forms import read_form
from opentse.dashboard.pages import BASE, Page, PageError, form_text, schema_newer_message
from opentse.dashboard.session import COOKIE, Session, SessionCodec
from opentse.server.context import peer_address
from opentse.server.problems import ApiError
from opentse.server.routes_tss import guarded_login
from opentse.server.schemas import COMPONENTS
from opentse.server.validation import validate

LOGGED_OUT = "dashboard-logout:"  # ops_settings name prefix of ended sessions' nonces


class Logins:
    """The login and logout pages and the record of ended sessions."""

    def __init__(self, ctx: Any, ops: Any, codec: SessionCodec) -> None:
        self.ctx = ctx
        self.ops = ops
        self.codec = codec

    def session_key(self, session: Session) -> Any:
        """The API key a logged-in session stands on; None once it logged out."""
        ended = self.ops.db.one(
            "SELECT 1 FROM ops_settings WHERE name=?", (LOGGED_OUT + session.nonce,)
        )
        return None if ended else self.ctx.svc.get_api_key(session.api_key)

    def end_session(self, session: Session, now: int) -> None:
        """Remember a logged-out session's nonce until the cookie would expire anyway
        (the cookie is signed, not stored: a copy of it stays valid otherwise); every
        node reads it from the shared ops_settings table. Expired entries go here."""
        name = LOGGED_OUT + session.nonce
        with self.ops.db.tx() as c:
            # the expiry as 20 digits: compared as text, no cast of other settings
            c.execute(
                "DELETE FROM ops_settings WHERE name LIKE ? AND value <= ?",
                (LOGGED_OUT + "%", f"{now:020d}"),
            )
            c.execute("DELETE FROM ops_settings WHERE name=?", (name,))
            c.execute(
                "INSERT INTO ops_settings(name, value) VALUES (?,?)",
                (name, f"{session.expires:020d}"),
            )

    async def login(self, page: Page) -> Response:
        if page.request.method == "GET":
            after = after_login(page.request.query_params.get("next"))
            if page.org:
                return RedirectResponse(after, status_code=303)
            return page.render("login.html", error="", after=after)
        form = await read_form(page)
        after = after_login(form_text(form, "next"))
        body = {"api_key": form_text(form, "api_key"), "api_secret": form_text(form, "api_secret")}
        # the same failure limit as POST /api/v2/auth (it hashes the same secrets)
        client = peer_address(page.request.scope)
        try:
            # first the API's limits (200 characters): a form field may hold 16 KB,
            # and the limiter keeps every key name it counts for its window
            validate(body, {"$ref": "#/AuthRequest"}, COMPONENTS)
            tokens = await run_in_threadpool(guarded_login, self.ctx, body, client)
        except ApiError as exc:
            failed = page.render(
                "login.html", exc.status, error=_login_error(page, exc), after=after
            )
            failed.headers.update(exc.headers)  # 429: Retry-After
            return failed
        claims = tokens["access_token_claims"]
        page.set_session = self.codec.login(
            claims["organization_id"], body["api_key"], self.ctx.now()
        )
        return RedirectResponse(after, status_code=303)

    async def logout(self, page: Page) -> Response:
        await read_form(page)
        stale = self.ctx.stale_schema  # a node older than its database writes nothing
        if page.session.logged_in and stale is None:
            await run_in_threadpool(self.end_session, page.session, self.ctx.now())
        ended_here_only = page.session.logged_in and stale is not None
        page.set_session = self.codec.anonymous()
        if ended_here_only:
            text, _ = schema_newer_message(page, stale)
            english = f"E_SCHEMA_NEWER: {stale}. {i18n.TEXTS['schema_newer_logout'][1]}"
            if page.lang == "de":  # the English kept beside it, as shown before
                raise PageError(503, f"{text} {page.t('schema_newer_logout')}", english)
            raise PageError(503, english)
        return RedirectResponse(f"{BASE}/login", status_code=303)


HOME = f"{BASE}/tss"


def login_url(request: Request) -> str:
    """The login page, remembering the dashboard page asked for (GET only: a form
    posted without a session is not sent again)."""
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET" or after_login(wanted) == HOME:
        return f"{BASE}/login"
    return f"{BASE}/login?{urlencode({'next': wanted})}"


def after_login(wanted: str | None) -> str:
    """Where a login goes: the page asked for when it is one of the dashboard's own
    (a path, never another site: no scheme, no ``//``, no backslash), else the TSEs."""
    if not wanted or not wanted.startswith(f"{BASE}/") or wanted.startswith(f"{BASE}/login"):
        return HOME
    if "//" in wanted or "\\" in wanted or any(ord(c) < 32 for c in wanted):
        return HOME
    return wanted


def _login_error(page: Page, exc: ApiError) -> str:
    """Wrong credentials and a refusal by the failure limiter read differently: after a
    429 even the right secret is refused until Retry-After has passed, and a user who
    reads "Login failed" would keep retyping it (and keep being refused)."""
    if exc.status == 429:
        return page.t("login_too_many", seconds=exc.headers.get("Retry-After", "60"))
    return page.t("login_failed")


def set_session_cookie(response: Response, request: Request, value: str) -> None:
    """The session cookie: out of scripts' reach, never sent by other sites, and
    Secure whenever the browser came over TLS."""
    response.set_cookie(
        COOKIE,
        value,
        httponly=True,
        samesite="strict",
        path=BASE,
        secure=_over_https(request),
    )


def _over_https(request: Request) -> bool:
    """The browser reached us over TLS: directly, or through a TLS-terminating proxy
    that says so (opentse serve reads no proxy headers; trusting this one can only
    make the sender's own cookie stricter)."""
    if request.url.scheme == "https":
        return True
    forwarded = request.headers.get("x-forwarded-proto", "")
    return forwarded.split(",")[0].strip().lower() == "https"
