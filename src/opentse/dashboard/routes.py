"""The dashboard's routes: server-rendered pages under ``/dashboard``.

``mount_dashboard(app)`` adds a Starlette ``Mount`` to the API application and a
redirect from ``/``. Every page goes through ``Dashboard.page``: the session from its
cookie (still standing on an enabled API key of its organization, not logged out),
the language, the error pages and the security headers. Pages read the same
services as the API (engine service, service store, ops context, verifier) in the
thread pool. The login/logout, transaction and export pages are in their own
modules (``logins``, ``transaction_pages``, ``export_pages``); the overview, verify,
outage and warning pages are here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from opentse.dashboard import i18n, uploads, views
from opentse.dashboard.export_pages import ExportPages
from opentse.dashboard.forms import read_form
from opentse.dashboard.logins import Logins, login_url, set_session_cookie
from opentse.dashboard.pages import (
    BASE,
    HERE,
    SECURITY_HEADERS,
    NotFound,
    Page,
    PageError,
    make_templates,
    schema_newer_message,
    shop_zone_of_env,
)
from opentse.dashboard.session import COOKIE, LANG_COOKIE, SessionCodec
from opentse.dashboard.transaction_pages import TransactionPages
from opentse.dashboard.tse_exports import ExportLogs
from opentse.server.auth import derive_key

log = logging.getLogger(__name__)


Handler = Callable[[Page], Awaitable[Response]]
LANG_SHOWN = 20  # characters of an unknown ?lang= the page repeats


class Dashboard:
    def __init__(self, app: Starlette) -> None:
        self.ctx = app.state.ctx
        self.ops = app.state.ops
        key = derive_key(self.ctx.installation.secret, "opentse/dashboard/session/v1")
        self.codec = SessionCodec(key)
        self.templates = make_templates()
        shop_zone_of_env()  # an unknown OPENTSE_TIMEZONE stops the start (E_TIMEZONE)
        self.watch = views.FailureWatch()
        # kept beside the data, so the first TSE page after a restart reads only new logs
        self.export_logs = ExportLogs(Path(self.ctx.config.data_dir) / "export-logs")
        self.counter = _failure_counter(app)
        # reports kept beside the data, so a restart does not verify every export again
        self.checks = uploads.ExportChecks(Path(self.ctx.config.data_dir) / "export-checks")
        try:  # those of exports that are gone (or never completed) go at start-up
            if removed := self.checks.prune(self.ctx.svc.export_files):
                log.info("removed %d export check reports of exports that are gone", removed)
        except Exception:
            log.exception("removing export check reports failed (they are never shown)")
        self.logins = Logins(self.ctx, self.ops, self.codec)
        self.tx_pages = TransactionPages(self.ctx)
        self.export_pages = ExportPages(
            self.ctx, self.ops, self.watch, self.checks, self.export_logs
        )

    # plumbing ------------------------------------------------------------------------

    def page(
        self, handler: Handler, *, login: bool = True, writes: bool = False
    ) -> Callable[[Request], Any]:
        """``writes``: the route's POST writes to the database itself, so a node
        older than its database (``ctx.stale_schema``) answers it with a 503 page
        saying why, before the handler runs, as the API's ``endpoint`` refuses its
        writes. Not flagged: the login (it writes nothing durable), the logout (it
        ends the browser's session even then and says so itself), the export form
        (the API's ``trigger_export`` refuses, and the form shows why), the verify
        form (nothing stored); the amount search, a GET, answers from what is
        indexed without filling amounts in (``amounts.backfill_amounts``)."""

        async def run(request: Request) -> Response:
            now = self.ctx.now()
            loaded = self.codec.load(request.cookies.get(COOKIE), now)
            session = loaded or self.codec.anonymous()
            asked = request.query_params.get("lang", "")
            lang = i18n.pick_language(
                asked, request.cookies.get(LANG_COOKIE), request.headers.get("accept-language")
            )
            page = Page(self.templates, self.codec, request, session, lang)
            remember = i18n.query_language(asked)
            if asked.strip() and remember is None:  # shown anyway, saying so
                names = "Deutsch (de), English (en)"
                page.lang_notice = page.t("lang_unknown", value=asked.strip()[:LANG_SHOWN],
                                          names=names)  # fmt: skip
            if loaded is None:
                page.set_session = session
            if session.logged_in:
                key = await run_in_threadpool(self.logins.session_key, session)
                if key is None or key.disabled or key.organization_id != session.organization_id:
                    page.session = session = self.codec.anonymous()
                    page.set_session = session
                    page.org = ""
                else:
                    page.env = key.env
                    page.org_name = await run_in_threadpool(self.org_name, page.org)
            try:
                if not all(str(v).isprintable() for v in request.path_params.values()):
                    # an edited URL (/dashboard/tss/%00): PostgreSQL refuses a NUL in
                    # text, which answered 500; nothing is named so
                    raise NotFound()
                if login and not page.org:  # back here once logged in (a bookmark,
                    # a session that ran out on a receipt)
                    response: Response = RedirectResponse(login_url(request), status_code=303)
                elif writes and request.method == "POST" and self.ctx.stale_schema is not None:
                    raise PageError(503, *schema_newer_message(page, self.ctx.stale_schema))
                else:
                    response = await handler(page)
            except NotFound:
                response = page.render(
                    "error.html", 404, status=404, message=page.t("not_found"), original=""
                )
            except PageError as exc:
                response = page.render("error.html", exc.status, status=exc.status,
                                       message=exc.message, original=exc.original)  # fmt: skip
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            if page.set_session is not None:
                set_session_cookie(response, request, self.codec.dump(page.set_session))
            if remember is not None:
                response.set_cookie(
                    LANG_COOKIE, remember, max_age=365 * 86400, samesite="strict", path=BASE
                )
            return response

        return run

    def org_name(self, org: str) -> str:
        row = self.ops.db.one("SELECT name FROM svc_organizations WHERE id=?", (org,))
        return str(row[0]) if row else ""

    def refresh_failures(self) -> None:
        if self.counter is not None:
            self.watch.update(self.counter.snapshot())

    # pages ---------------------------------------------------------------------------

    async def home(self, page: Page) -> Response:
        target = "/tss" if page.org else "/login"
        return RedirectResponse(BASE + target, status_code=303)

    async def tse_list(self, page: Page) -> Response:
        def load() -> list[views.TseRow]:
            self.refresh_failures()
            return views.tse_rows(self.ctx, self.ops, page.org, self.watch)

        rows = await run_in_threadpool(load)
        return page.render("tse_list.html", rows=rows)

    async def tse_detail(self, page: Page) -> Response:
        tss_id = str(page.request.path_params["tss_id"])

        def load() -> views.TseDetail | None:
            self.refresh_failures()
            return views.tse_detail(
                self.ctx, self.ops, page.org, tss_id, self.watch, self.export_logs
            )

        detail = await run_in_threadpool(load)
        if detail is None:
            raise NotFound()
        return page.render("tse_detail.html", d=detail)

    async def verify(self, page: Page) -> Response:
        limits = {"tar_mb": uploads.MAX_TAR // 2**20, "img_mb": uploads.MAX_IMAGE // 2**20}
        if page.request.method == "GET":
            return page.render("verify.html", result=None, error="", **limits)
        declared = page.request.headers.get("content-length", "")
        if not declared.isdigit():  # a chunked body: its size is known only once stored
            return page.render("verify.html", 411, result=None, error=page.t("length_required"),
                               **limits)  # fmt: skip
        if int(declared) > uploads.MAX_TAR + 65536:
            return page.render("verify.html", 413, result=None, error=page.t("too_large"),
                               **limits)  # fmt: skip
        form = await read_form(page, max_files=1, max_fields=5)
        try:
            result = await uploads.handle(form, self.ctx.config.data_dir)
        except uploads.UploadError as exc:
            return page.render("verify.html", exc.status, result=None, error=page.t(exc.key),
                               **limits)  # fmt: skip
        finally:
            await form.close()  # the spooled upload
        if result.get("kind") == "receipt" and result.get("serial"):
            choices = await run_in_threadpool(views.tss_choices, self.ctx, page.org)
            # whose key: a TSE of this organization (its transaction one click away),
            # or none of them (a search by number would find another receipt)
            own = {serial: tss_id for tss_id, serial in choices}
            result["own_tss"] = own.get(str(result["serial"]), "")
        return page.render("verify.html", result=result, error="", **limits)

    async def outage_log(self, page: Page) -> Response:
        def load() -> tuple[list[Any], dict[str, str]]:
            tses = views.tse_rows(self.ctx, self.ops, page.org, self.watch)
            serials = {t.tss_id: t.serial for t in tses}
            return views.outage_rows(self.ops, set(serials)), serials

        rows, serials = await run_in_threadpool(load)
        return page.render("outages.html", rows=rows, serials=serials)

    async def warnings(self, page: Page) -> Response:
        def load() -> list[views.WarningView]:
            self.refresh_failures()
            tses = views.tse_rows(self.ctx, self.ops, page.org, self.watch)
            return views.warning_rows(tses, self.ops, self.watch)

        rows = await run_in_threadpool(load)
        return page.render("warnings.html", rows=rows)

    async def not_found(self, page: Page) -> Response:
        """No such page; an address with a trailing slash goes to the one without it
        first, as the router did before this catch-all took every address."""
        url = page.request.url
        if url.path.endswith("/") and page.request.method in ("GET", "HEAD"):
            target = url.path.rstrip("/") + (f"?{url.query}" if url.query else "")
            return RedirectResponse(target, status_code=307)
        raise NotFound()

    def routes(self) -> list[Any]:
        p = self.page
        tx = "/tss/{tss_id}/tx/{number:int}"
        return [
            Route("/", p(self.home, login=False), methods=["GET"]),
            Route("/login", p(self.logins.login, login=False), methods=["GET", "POST"]),
            Route("/logout", p(self.logins.logout, login=False), methods=["POST"]),
            Route("/tss", p(self.tse_list), methods=["GET"]),
            Route("/tss/{tss_id}", p(self.tse_detail), methods=["GET"]),
            Route("/tx", p(self.tx_pages.tx_search), methods=["GET"]),
            Route("/tx/read-again", p(self.tx_pages.read_again, writes=True), methods=["POST"]),
            Route(tx, p(self.tx_pages.tx_detail), methods=["GET"]),
            Route(tx + "/qr", p(self.tx_pages.tx_qr), methods=["GET"]),
            Route(tx + "/log/{counter:int}", p(self.tx_pages.tx_log), methods=["GET"]),
            Route("/exports", p(self.export_pages.exports), methods=["GET", "POST"]),
            Route("/exports/{export_id}", p(self.export_pages.export_detail), methods=["GET"]),
            Route("/exports/{export_id}/file", p(self.export_pages.export_file), methods=["GET"]),
            Route(
                "/exports/{export_id}/status", p(self.export_pages.export_status), methods=["GET"]
            ),
            Route("/verify", p(self.verify), methods=["GET", "POST"]),
            Route("/outages", p(self.outage_log), methods=["GET"]),
            Route("/warnings", p(self.warnings), methods=["GET"]),
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
            # last: a mistyped dashboard address (or a number that is none) gets the
            # dashboard's own 404 page, not the API's JSON problem
            Route("/{path:path}", p(self.not_found, login=False)),
        ]


def _failure_counter(app: Starlette) -> Any:
    """The API's failure counter (routes_ops.TssFailureCounter), found on the middleware
    routes_ops installed; None when the ops routes are not there."""
    for middleware in getattr(app, "user_middleware", []):
        counter = getattr(middleware, "kwargs", {}).get("counter")
        if counter is not None and hasattr(counter, "snapshot"):
            return counter
    return None


def mount_dashboard(app: Starlette) -> None:
    """Serve the dashboard under ``/dashboard`` and send ``/`` there."""
    dash = Dashboard(app)

    async def root(request: Request) -> Response:
        return RedirectResponse(f"{BASE}/", status_code=307)

    async def slash(request: Request) -> Response:
        """redirects to /dashboard/ (a path, not an absolute URL; the query kept)

        Not the router's absolute URL from the Host header and the scheme uvicorn
        saw: plain http behind a proxy ending TLS, the login form unencrypted."""
        query = request.url.query
        return RedirectResponse(f"{BASE}/" + (f"?{query}" if query else ""), status_code=307)

    app.router.routes.append(Route(BASE, slash, methods=["GET"]))
    app.router.routes.append(Mount(BASE, routes=dash.routes()))
    app.router.routes.append(Route("/", root, methods=["GET"]))
    app.state.dashboard = dash
