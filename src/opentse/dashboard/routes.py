"""The dashboard's routes: server-rendered pages under ``/dashboard``.

``mount_dashboard(app)`` adds a Starlette ``Mount`` to the API application and a
redirect from ``/``. Pages read the same services as the API (engine service,
service store, ops context, verifier) in the thread pool; exports are triggered
through the API's own handler (``routes_export.trigger_export``) so they run in the
same background worker. Other organizations' TSEs, transactions and exports answer
404, as in the API.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from opentse.dashboard import i18n, transactions, uploads, views
from opentse.dashboard.pages import (
    BASE,
    HERE,
    SECURITY_HEADERS,
    NotFound,
    Page,
    PageError,
    form_text,
    make_templates,
    shop_zone_of_env,
)
from opentse.dashboard.session import COOKIE, LANG_COOKIE, Session, SessionCodec
from opentse.errors import OpenTSEError
from opentse.server.auth import derive_key
from opentse.server.problems import ApiError

TX_STATES = ("ACTIVE", "FINISHED", "CANCELLED")
FORM_FIELDS = 20  # the export form has 8
FORM_FIELD_BYTES = 16 * 1024  # a pasted QR text is at most uploads.MAX_QR_TEXT
LOGGED_OUT = "dashboard-logout:"  # ops_settings name prefix of ended sessions' nonces

log = logging.getLogger(__name__)


Handler = Callable[[Page], Awaitable[Response]]


class Dashboard:
    def __init__(self, app: Starlette) -> None:
        self.ctx = app.state.ctx
        self.ops = app.state.ops
        key = derive_key(self.ctx.installation.secret, "opentse/dashboard/session/v1")
        self.codec = SessionCodec(key)
        self.templates = make_templates()
        shop_zone_of_env()  # an unknown OPENTSE_TIMEZONE stops the start (E_TIMEZONE)
        self.watch = views.FailureWatch()
        self.counter = _failure_counter(app)
        # reports kept beside the data, so a restart does not verify every export again
        self.checks = uploads.ExportChecks(Path(self.ctx.config.data_dir) / "export-checks")
        try:  # those of exports that are gone (or never completed) go at start-up
            if removed := self.checks.prune(self.ctx.svc.export_files):
                log.info("removed %d export check reports of exports that are gone", removed)
        except Exception:
            log.exception("removing export check reports failed (they are never shown)")

    # plumbing ------------------------------------------------------------------------

    def page(self, handler: Handler, *, login: bool = True) -> Callable[[Request], Any]:
        async def run(request: Request) -> Response:
            now = self.ctx.now()
            loaded = self.codec.load(request.cookies.get(COOKIE), now)
            session = loaded or self.codec.anonymous()
            lang = i18n.pick_language(
                request.query_params.get("lang"),
                request.cookies.get(LANG_COOKIE),
                request.headers.get("accept-language"),
            )
            page = Page(self.templates, self.codec, request, session, lang)
            if loaded is None:
                page.set_session = session
            if session.logged_in:
                key = await run_in_threadpool(self.session_key, session)
                if key is None or key.disabled or key.organization_id != session.organization_id:
                    page.session = session = self.codec.anonymous()
                    page.set_session = session
                    page.org = ""
                else:
                    page.env = key.env
                    page.org_name = await run_in_threadpool(self.org_name, page.org)
            try:
                if login and not page.org:
                    response: Response = RedirectResponse(f"{BASE}/login", status_code=303)
                else:
                    response = await handler(page)
            except NotFound:
                response = page.render("error.html", 404, status=404, message=page.t("not_found"))
            except PageError as exc:
                response = page.render("error.html", exc.status, status=exc.status,
                                       message=exc.message)  # fmt: skip
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            if page.set_session is not None:
                response.set_cookie(
                    COOKIE,
                    self.codec.dump(page.set_session),
                    httponly=True,
                    samesite="strict",
                    path=BASE,
                    secure=_over_https(request),
                )
            if request.query_params.get("lang") in i18n.LANGUAGES:
                response.set_cookie(
                    LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict", path=BASE
                )
            return response

        return run

    async def form(self, page: Page, **limits: int) -> FormData:
        """The CSRF-checked form. The login and logout forms are read before anybody is
        logged in: by default no file (Starlette would spool one of any size to disk),
        at most FORM_FIELDS fields of FORM_FIELD_BYTES each (else 400)."""
        limits = {"max_files": 0, "max_fields": FORM_FIELDS, "max_part_size": FORM_FIELD_BYTES,
                  **limits}  # fmt: skip
        form = await page.request.form(**limits)
        if not self.codec.check_csrf(page.session, form_text(form, "csrf")):
            await form.close()
            raise PageError(403, page.t("csrf_failed"))
        return form

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

    async def login(self, page: Page) -> Response:
        if page.request.method == "GET":
            if page.org:
                return RedirectResponse(f"{BASE}/tss", status_code=303)
            return page.render("login.html", error="")
        form = await self.form(page)
        body = {"api_key": form_text(form, "api_key"), "api_secret": form_text(form, "api_secret")}
        try:
            tokens = await run_in_threadpool(self.ctx.tokens.login, body, self.ctx.now())
        except ApiError:
            return page.render("login.html", 401, error=page.t("login_failed"))
        claims = tokens["access_token_claims"]
        page.set_session = self.codec.login(
            claims["organization_id"], body["api_key"], self.ctx.now()
        )
        return RedirectResponse(f"{BASE}/tss", status_code=303)

    async def logout(self, page: Page) -> Response:
        await self.form(page)
        if page.session.logged_in:
            await run_in_threadpool(self.end_session, page.session, self.ctx.now())
        page.set_session = self.codec.anonymous()
        return RedirectResponse(f"{BASE}/login", status_code=303)

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
            return views.tse_detail(self.ctx, self.ops, page.org, tss_id, self.watch)

        detail = await run_in_threadpool(load)
        if detail is None:
            raise NotFound()
        return page.render("tse_detail.html", d=detail)

    async def tx_search(self, page: Page) -> Response:
        q = page.request.query_params
        errors: list[str] = []
        values = {k: q.get(k, "").strip() for k in ("tss", "number", "register", "from", "to",
                                                   "amount", "state")}  # fmt: skip
        try:
            number = int(values["number"]) if values["number"] else None
            if number is not None and not 0 < number < 2**53:
                raise ValueError
        except ValueError:
            number = None
            errors.append(page.t("bad_number"))
        try:
            date_from = transactions.parse_date(values["from"])
            date_to = transactions.parse_date(values["to"], end=True)
        except ValueError:
            date_from = date_to = None
            errors.append(page.t("bad_date"))
        try:
            amount = transactions.parse_amount(values["amount"])
        except ValueError:
            amount = None
            errors.append(page.t("bad_amount"))
        state = values["state"] if values["state"] in TX_STATES else ""
        choices = await run_in_threadpool(views.tss_choices, self.ctx, page.org)
        tss_ids = [tss_id for tss_id, _ in choices]
        tss = values["tss"].lower() if values["tss"].lower() in tss_ids else None
        query = transactions.TxQuery(
            tss, number, values["register"], date_from, date_to, amount, state
        )
        hits, more = await run_in_threadpool(transactions.search, self.ctx, page.org, query)
        return page.render(
            "transactions.html",
            values=values,
            choices=choices,
            states=TX_STATES,
            hits=hits,
            more=more,
            limit=transactions.SEARCH_LIMIT,
            errors=errors,
        )

    def _tx(self, page: Page) -> transactions.TxDetail:
        p = page.request.path_params
        detail = transactions.tx_detail(
            self.ctx, page.org, str(p["tss_id"]), _path_number(p["number"]), page.org_name
        )
        if detail is None:
            raise NotFound()
        return detail

    async def tx_detail(self, page: Page) -> Response:
        detail = await run_in_threadpool(self._tx, page)
        svg = uploads.qr_svg(detail.qr_text, scale=3) if detail.qr_text else ""
        return page.render("transaction.html", d=detail, qr_svg=svg)

    async def tx_qr(self, page: Page) -> Response:
        detail = await run_in_threadpool(self._tx, page)
        if not detail.qr_text:
            raise NotFound()
        check = await run_in_threadpool(uploads.check_receipt_text, detail.qr_text)
        svg = uploads.qr_svg(detail.qr_text, scale=8)
        return page.render("qr.html", d=detail, qr_svg=svg, check=check)

    async def tx_log(self, page: Page) -> Response:
        p = page.request.path_params
        log = await run_in_threadpool(
            transactions.find_log, self.ctx, page.org, str(p["tss_id"]),
            _path_number(p["number"]), _path_number(p["counter"]),
        )  # fmt: skip
        if log is None:
            raise NotFound()
        name = Path(log.filename).name
        return Response(
            log.message,
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def exports(self, page: Page) -> Response:
        error = ""
        status = 200
        if page.request.method == "POST":
            form = await self.form(page)
            try:
                export_id = await run_in_threadpool(self._trigger, page, form)
            except (ApiError, OpenTSEError, ValueError) as exc:
                error = getattr(exc, "message", None) or str(exc)
                status = int(getattr(exc, "status", 400) or 400)
            else:
                return RedirectResponse(f"{BASE}/exports/{export_id}", status_code=303)

        def load() -> tuple[list[Any], list[views.TseRow], dict[str, list[Any]]]:
            from opentse.server.service_store import Page as ListPage

            rows, _ = self.ctx.svc.list_exports(page.org, ListPage(limit=100, order="desc"))
            tses = views.tse_rows(self.ctx, self.ops, page.org, self.watch)
            clients = {t.tss_id: views.all_clients(self.ctx, page.org, t.tss_id) for t in tses}
            return rows, tses, clients

        rows, tses, clients = await run_in_threadpool(load)
        serials = {t.tss_id: t.serial for t in tses}
        return page.render(
            "exports.html", status, rows=rows, tses=tses, clients=clients, serials=serials,
            error=error,
        )  # fmt: skip

    def _trigger(self, page: Page, form: FormData) -> str:
        from opentse.server.context import Call
        from opentse.server.routes_export import trigger_export

        query: dict[str, str] = {}
        for name in ("start_transaction_number", "end_transaction_number"):
            value = form_text(form, name).strip()
            if value:
                query[name] = value
        for name, end in (("start_date", False), ("end_date", True)):
            when = transactions.parse_date(form_text(form, name).strip(), end=end)
            if when is not None:
                query[name] = str(when - 1 if end else when)
        client = form_text(form, "client_id").strip()
        if client:
            query["client_id"] = client
        export_id = str(uuid.uuid4())
        path = {"tss_id": form_text(form, "tss_id").strip(), "export_id": export_id}
        call = Call(self.ctx, page.principal(), path, query, list(query.items()), None)
        trigger_export(call)
        return export_id

    def _export(self, page: Page) -> Any:
        raw = str(page.request.path_params["export_id"])
        try:
            export_id = str(uuid.UUID(raw))
        except ValueError:
            raise NotFound() from None
        row = self.ctx.svc.get_export(export_id)
        if row is None or row.organization_id != page.org:
            raise NotFound()
        return row

    def _export_file(self, row: Any) -> Path | None:
        """The export's recorded file as the API serves it (also where this node
        mounts the shared exports folder), or None."""
        from opentse.server.routes_export import export_file

        return export_file(row, Path(self.ctx.config.data_dir))

    async def export_detail(self, page: Page) -> Response:
        row = await run_in_threadpool(self._export, page)
        report = None
        verifying = False
        path = await run_in_threadpool(self._export_file, row)
        if path is not None:
            report = await run_in_threadpool(self.checks.result, row.export_id, path)
            verifying = report is None
        return page.render("export.html", row=row, report=report, verifying=verifying)

    async def export_file(self, page: Page) -> Response:
        row = await run_in_threadpool(self._export, page)
        path = await run_in_threadpool(self._export_file, row)
        if path is None:
            raise NotFound()
        return FileResponse(
            path, media_type="application/x-tar", filename=f"export_{row.export_id}.tar"
        )

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
        form = await self.form(page, max_files=1, max_fields=5)
        try:
            result = await uploads.handle(form, self.ctx.config.data_dir)
        except uploads.UploadError as exc:
            return page.render("verify.html", exc.status, result=None, error=page.t(exc.key),
                               **limits)  # fmt: skip
        finally:
            await form.close()  # the spooled upload
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

    def routes(self) -> list[Any]:
        p = self.page
        tx = "/tss/{tss_id}/tx/{number:int}"
        return [
            Route("/", p(self.home, login=False), methods=["GET"]),
            Route("/login", p(self.login, login=False), methods=["GET", "POST"]),
            Route("/logout", p(self.logout, login=False), methods=["POST"]),
            Route("/tss", p(self.tse_list), methods=["GET"]),
            Route("/tss/{tss_id}", p(self.tse_detail), methods=["GET"]),
            Route("/tx", p(self.tx_search), methods=["GET"]),
            Route(tx, p(self.tx_detail), methods=["GET"]),
            Route(tx + "/qr", p(self.tx_qr), methods=["GET"]),
            Route(tx + "/log/{counter:int}", p(self.tx_log), methods=["GET"]),
            Route("/exports", p(self.exports), methods=["GET", "POST"]),
            Route("/exports/{export_id}", p(self.export_detail), methods=["GET"]),
            Route("/exports/{export_id}/file", p(self.export_file), methods=["GET"]),
            Route("/verify", p(self.verify), methods=["GET", "POST"]),
            Route("/outages", p(self.outage_log), methods=["GET"]),
            Route("/warnings", p(self.warnings), methods=["GET"]),
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        ]


def _over_https(request: Request) -> bool:
    """The browser reached us over TLS: directly, or through a TLS-terminating proxy
    that says so (opentse serve reads no proxy headers; trusting this one can only
    make the sender's own cookie stricter)."""
    if request.url.scheme == "https":
        return True
    forwarded = request.headers.get("x-forwarded-proto", "")
    return forwarded.split(",")[0].strip().lower() == "https"


def _path_number(value: Any) -> int:
    """A transaction number or signature counter from the path; one no 64-bit store
    column can hold is no transaction (404, not an OverflowError's 500)."""
    number = int(value)
    if not 0 <= number < 2**63:
        raise NotFound()
    return number


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

    app.router.routes.append(Mount(BASE, routes=dash.routes()))
    app.router.routes.append(Route("/", root, methods=["GET"]))
    app.state.dashboard = dash
