"""The dashboard's export pages: the list with its trigger form, one export with its
check report, and the download of its TAR file.

An export is triggered through the API's own handler (``routes_export.
trigger_export``), so it runs in the same background worker and obeys the same
rules as one asked for over the API; its file is the one the API serves. Another
organization's export answers 404, as in the API.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import JSONResponse, RedirectResponse, Response

from opentse.dashboard import i18n, search_fields, uploads, views
from opentse.dashboard.forms import read_form
from opentse.dashboard.pages import (
    BASE,
    NotFound,
    Page,
    form_text,
    schema_newer_message,
    shop_zone_of_env,
)
from opentse.dashboard.tse_exports import SOURCE_API, ExportLogs
from opentse.errors import OpenTSEError
from opentse.server.problems import ApiError


class ExportPages:
    """The handlers of ``/exports``; ``checks`` keeps each export's verification report."""

    def __init__(
        self,
        ctx: Any,
        ops: Any,
        watch: views.FailureWatch,
        checks: uploads.ExportChecks,
        export_logs: ExportLogs | None = None,
    ) -> None:
        self.ctx = ctx
        self.ops = ops
        self.watch = watch
        self.checks = checks
        self.export_logs = export_logs or ExportLogs()

    async def exports(self, page: Page) -> Response:
        error = original = ""
        status = 200
        refused: ApiError | None = None
        wanted = page.request.query_params.get("tss", "")
        if page.request.method == "POST":
            form = await read_form(page)
            wanted = form_text(form, "tss_id").strip()
            try:
                export_id = await run_in_threadpool(self._trigger, page, form)
            except ApiError as exc:
                refused, status = exc, exc.status
            except (OpenTSEError, ValueError) as exc:
                error = getattr(exc, "message", None) or str(exc)
                status = int(getattr(exc, "status", 400) or 400)
            else:
                return RedirectResponse(f"{BASE}/exports/{export_id}", status_code=303)

        def load() -> tuple[
            list[Any], list[views.TseRow], views.TseRow | None, list[Any], list[Any]
        ]:
            """The exports, the TSEs, the one the form exports (``?tss=``, else the
            first) and only that TSE's registers: a register of another TSE is no
            filter of this export (the list mixed them, labelled by serial); and per
            TSE the exports made outside the API (archive, command line), which only
            its page lists."""
            from opentse.server.service_store import Page as ListPage

            rows, _ = self.ctx.svc.list_exports(page.org, ListPage(limit=100, order="desc"))
            tses = views.tse_rows(self.ctx, self.ops, page.org, self.watch)
            chosen = next((t for t in tses if t.tss_id == wanted.lower()), None)
            if chosen is None and tses:  # the first in use, not a replaced one
                chosen = next((t for t in tses if t.state == "INITIALIZED"), tses[0])
            clients = [] if chosen is None else views.all_clients(self.ctx, page.org, chosen.tss_id)
            others = []
            for tse in tses:
                found = views.tse_exports(
                    self.ctx, self.ops, page.org, tse.tss_id, self.export_logs
                )
                outside = [e for e in found if e.source != SOURCE_API]
                if outside:
                    others.append((tse, len(outside), outside[0].at))
            return rows, tses, chosen, clients, others

        rows, tses, chosen, clients, others = await run_in_threadpool(load)
        serials = {t.tss_id: t.serial for t in tses}
        if page.request.method == "GET" and wanted and wanted.lower() not in serials:
            # an edited address (?tss=zzz) showed the first TSE's form as if asked for
            error, status = page.t("bad_tss_param", value=wanted), 400
        if refused is not None:
            error, original = _refusal(page, refused, chosen)
        return page.render(
            "exports.html", status, rows=rows, tses=tses, chosen=chosen, clients=clients,
            serials=serials, error=error, original=original, others=others,
        )  # fmt: skip

    def _trigger(self, page: Page, form: FormData) -> str:
        from opentse.server.context import Call
        from opentse.server.routes_export import trigger_export

        # each field read here and refused in the page's language, naming the field:
        # the API's own messages (querystring/..., a bare "31.02.2026") are its callers'
        query: dict[str, str] = {}
        for name, label in (("start_transaction_number", "start_tx"),
                            ("end_transaction_number", "end_tx")):  # fmt: skip
            value = form_text(form, name).strip()
            if value and not (search_fields.ascii_digits(value) and len(value) <= 16):
                raise ValueError(page.t("export_bad_number", field=page.t(label), value=value))
            if value:
                query[name] = value
        for name, end in (("start_date", False), ("end_date", True)):
            value = form_text(form, name).strip()
            try:
                when = search_fields.parse_date(value, end=end)
            except ValueError:
                label = page.t(name, zone=shop_zone_of_env().key)
                raise ValueError(page.t("export_bad_date", field=label, value=value)) from None
            if when is not None:
                query[name] = str(when - 1 if end else when)
        numbers = "start_transaction_number" in query or "end_transaction_number" in query
        if numbers and ("start_date" in query or "end_date" in query):
            raise ValueError(page.t("export_numbers_or_dates"))
        for low, high in (
            ("start_transaction_number", "end_transaction_number"),
            ("start_date", "end_date"),
        ):  # an empty range was accepted, and its export failed later with E_BAD_REQUEST
            lo, hi = query.get(low, ""), query.get(high, "")
            if lo.isdigit() and hi.isdigit() and int(lo) > int(hi):
                raise ValueError(page.t("export_range_reversed"))
        client = form_text(form, "client_id").strip()
        if client and query:  # the API (as fiskaly's) exports a register whole and
            # ignores any range beside it: a register's "one day" was its whole history
            raise ValueError(page.t("export_client_alone"))
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

    def _progress(
        self, page: Page, wait: float
    ) -> tuple[Any, dict[str, Any] | None, bool, bool, str, bool]:
        """The export, its check report, whether that is still being made, whether its
        file is there, and the status line with whether it is an alert."""
        row = self._export(page)
        report = None
        verifying = False
        path = self._export_file(row)
        if path is not None:
            report = self.checks.result(row.export_id, path, wait)
            verifying = report is None
        if row.state in ("PENDING", "WORKING"):
            line, alert = page.t("export_running"), False
        elif row.state == "ERROR":
            code = row.exception or ""
            why = f"export_error_{code}"  # a code the form's user can act on: why, too
            if why in i18n.TEXTS:
                line, alert = page.t("export_error_why", why=page.t(why), code=code), True
            else:
                line, alert = page.t("export_error", code=code), True
        elif row.state != "COMPLETED":
            line, alert = page.t("export_cancelled"), True
        elif path is None:
            line, alert = page.t("export_file_gone"), True
        else:
            line, alert = page.t("verifying" if verifying else "export_done"), False
        return row, report, verifying, path is not None, line, alert

    def _filters(self, page: Page, row: Any) -> list[tuple[str, Any, bool]]:
        """The export's filters as the form names them: (label, value, whether it is
        a time, shown in the shop's time zone). They showed as the API's parameters
        (``end_date=1578005999``), a date as Unix seconds an auditor cannot read."""
        params = dict(row.params)
        shown: list[tuple[str, Any, bool]] = []
        client = params.pop("client_id", None)
        if client is not None:
            clients = views.all_clients(self.ctx, page.org, row.tss_id)
            serial = next((c.serial_number for c in clients if c.client_id == client), None)
            shown.append((page.t("register"), serial or client, False))
        for name, label in (("start_transaction_number", "start_tx"),
                            ("end_transaction_number", "end_tx")):  # fmt: skip
            if name in params:
                shown.append((page.t(label), params.pop(name), False))
        zone = shop_zone_of_env().key
        for name in ("start_date", "end_date"):
            if name in params:
                value = params.pop(name)
                is_time = str(value).isascii() and str(value).isdigit()
                shown.append((page.t(name, zone=zone), int(value) if is_time else value, is_time))
        shown.extend((name, value, False) for name, value in sorted(params.items()))
        return shown

    async def export_detail(self, page: Page) -> Response:
        row, report, verifying, has_file, line, alert = await run_in_threadpool(
            self._progress, page, 2.0
        )
        filters = await run_in_threadpool(self._filters, page, row)
        choices = await run_in_threadpool(views.tss_choices, self.ctx, page.org)
        # the TSE by its serial number, as every other page and the TAR's file names
        # name it (the page showed only the API's TSS id under "TSE")
        serial = dict(choices).get(row.tss_id, "")
        return page.render(
            "export.html", row=row, report=report, verifying=verifying, has_file=has_file,
            message=line, alert=alert, filters=filters, serial=serial,
        )  # fmt: skip

    async def export_status(self, page: Page) -> Response:
        """The export page's status line as JSON, for export_status.js: the page
        updates that line (a live region) instead of reloading itself, which threw a
        keyboard or screen-reader user back to the top every second. ``done``: the
        page will not change any more."""
        row, _, verifying, _, line, alert = await run_in_threadpool(self._progress, page, 0.0)
        done = row.state not in ("PENDING", "WORKING") and not verifying
        return JSONResponse(
            {
                "state": row.state,
                "state_text": page.state(row.state),  # shown, in the page's language
                "done": done,
                "message": line,
                "alert": alert,
            }
        )

    async def export_file(self, page: Page) -> Response:
        row = await run_in_threadpool(self._export, page)
        path = await run_in_threadpool(self._export_file, row)
        if path is None:
            raise NotFound()
        # the API's download class: an unreadable Range ignored, one past the end 416
        # E_RANGE_NOT_SATISFIABLE (Starlette's FileResponse: 400, text/plain 416)
        from opentse.server.routes_export import ExportFileResponse

        return ExportFileResponse(
            path, media_type="application/x-tar", filename=f"export_{row.export_id}.tar"
        )


def _refusal(page: Page, exc: ApiError, chosen: views.TseRow | None) -> tuple[str, str]:
    """The API's refusal of the export form in the page's language: German for the
    codes a shop owner meets (a TSE not initialized yet, ten exports queued, a node
    older than its database), the code kept; English pages and other codes keep the
    API's text, as its integrators know it. With it, the API's own words to keep
    beside a German text ("" when the page shows them anyway)."""
    if exc.code == "E_SCHEMA_NEWER":
        return schema_newer_message(page, exc.message)
    key = f"export_refused_{exc.code}"
    if page.lang != "de":
        return exc.message, ""
    if key not in i18n.TEXTS:
        return page.t("export_refused", code=exc.code, message=exc.message), ""
    state = page.state(chosen.state) if chosen is not None else "?"
    return page.t(key, state=state, code=exc.code), ""
