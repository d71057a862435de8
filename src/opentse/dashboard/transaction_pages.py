"""The dashboard's transaction pages: the search form, one transaction, its receipt
QR code and the download of one of its log messages.

The queries themselves are in ``transactions``; here the request's query and path
are read, and whatever a visitor may type (numbers beyond 64 bits, dates, amounts)
becomes a form error or a 404, never a 500.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from opentse.dashboard import amounts, search_fields, transactions, tx_detail, uploads, views
from opentse.dashboard.forms import read_form
from opentse.dashboard.pages import BASE, NotFound, Page, form_text, shop_zone_of_env

TX_STATES = ("ACTIVE", "FINISHED", "CANCELLED")


class TransactionPages:
    """The handlers of ``/tx`` and ``/tss/{tss_id}/tx/...``, one organization's only."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    async def tx_search(self, page: Page) -> Response:
        q = page.request.query_params
        errors: list[str] = []
        invalid: dict[str, int] = {}  # field -> its error's number (aria-describedby)

        def refuse(key: str, *fields: str, **words: object) -> None:
            errors.append(page.t(key, **words))
            invalid.update(dict.fromkeys(fields, len(errors)))

        values = {k: q.get(k, "").strip() for k in ("tss", "number", "register", "from", "to",
                                                   "amount", "state")}  # fmt: skip
        try:
            number = int(values["number"]) if values["number"] else None
            if number is not None and not 0 < number < 2**53:
                raise ValueError
        except ValueError:
            number = None
            refuse("bad_number", "number")
        zone = shop_zone_of_env().key
        dates: dict[str, int | None] = {}
        for name, label in (("from", "date_from"), ("to", "date_to")):
            try:
                dates[name] = search_fields.parse_date(values[name], end=name == "to")
            except ValueError:  # which field, as typed: "Invalid date." named neither
                dates[name] = None
                refuse("search_bad_date", name, field=page.t(label, zone=zone),
                       value=values[name])  # fmt: skip
        date_from, date_to = dates["from"], dates["to"]
        if date_from is not None and date_to is not None and date_from >= date_to:
            refuse("export_range_reversed", "from", "to")  # "from" after "to": none match
        try:
            amount = search_fields.parse_amount(values["amount"])
        except ValueError:
            amount = None
            refuse("bad_amount", "amount")
        state = values["state"]
        if state and state not in TX_STATES:  # an edited address: not "every state"
            refuse("bad_state", "state", value=state,
                   names=", ".join(page.state(s) for s in TX_STATES))  # fmt: skip
            state = ""
        choices = await run_in_threadpool(views.tss_choices, self.ctx, page.org)
        registers, known = await run_in_threadpool(_registers, self.ctx, page.org, choices)
        if values["register"] and values["register"].casefold() not in known:
            # a typo found "no transaction", as if the register had sold nothing
            errors.append(
                page.t(
                    "unknown_register", name=values["register"], names=", ".join(registers) or "-"
                )
            )
            invalid["register"] = len(errors)
        tss_ids = [tss_id for tss_id, _ in choices]
        tss = values["tss"].lower() if values["tss"].lower() in tss_ids else None
        if values["tss"] and tss is None:  # an edited address searched every TSE
            refuse("bad_tss", "tss", value=values["tss"])
        query = transactions.TxQuery(
            tss, number, values["register"], date_from, date_to, amount, state,
            either_sign=not search_fields.has_sign(values["amount"]),
        )  # fmt: skip
        unread = q.get("unread", "") == "1"
        query = replace(query, unread=True) if unread else query
        after = transactions.Cursor.parse(q.get("after", ""))
        before = None if after else transactions.Cursor.parse(q.get("before", ""))
        page_number = _page_number(q.get("page", ""))
        # the pager's own parameters, edited by hand, were read as "the first page"
        for name, bad in (("after", after is None), ("before", before is None and not after),
                          ("page", page_number is None), ("unread", not unread)):  # fmt: skip
            if q.get(name, "") and bad:
                refuse("bad_link", value=f"{name}={q.get(name, '')}")
        offset = ((page_number or 1) - 1) * transactions.SEARCH_LIMIT
        found = transactions.TxResults([], 0, offset)
        counts: dict[str, int] = {}
        if not errors:  # a filter it could not read is no reason to list everything
            found = await run_in_threadpool(
                partial(transactions.search, after=after, before=before),
                self.ctx, page.org, query, offset,
            )  # fmt: skip
            if found.total and not found.hits:  # past the end: the last page (or first)
                last = 0 if before else (found.total - 1) // transactions.SEARCH_LIMIT
                offset = last * transactions.SEARCH_LIMIT
                found = await run_in_threadpool(
                    transactions.search, self.ctx, page.org, query, offset
                )
            if amount is not None or unread:
                counts = await run_in_threadpool(
                    amounts.unread_counts, self.ctx, page.org, query.tss_id
                )
        filters = {k: v for k, v in values.items() if v}
        if unread:
            filters["unread"] = "1"
        today = datetime.fromtimestamp(self.ctx.now(), shop_zone_of_env()).date().isoformat()
        # the morning's question, one click: today's transactions (of the TSE chosen)
        today_query = {"tss": values["tss"], "from": today, "to": today}
        return page.render(
            "transactions.html",
            400 if errors else 200,
            values=values,
            choices=choices,
            registers=registers,
            states=TX_STATES,
            found=found,
            hits=found.hits,
            newer=_newer_link(found, filters),
            older=_older_link(found, filters),
            today=urlencode({k: v for k, v in today_query.items() if v}),
            errors=errors,
            invalid=invalid,
            unread=unread,
            unread_counts=counts,
            unread_link=urlencode({"tss": values["tss"], "unread": "1"} if values["tss"]
                                  else {"unread": "1"}),
        )  # fmt: skip

    async def read_again(self, page: Page) -> Response:
        """ "Read them again": the marks of amounts that could not be read are cleared
        (after the store was restored), and the next amount search reads those logs.
        A write: refused at a node older than its database (``Dashboard.page``)."""
        form = await read_form(page)
        await run_in_threadpool(amounts.read_again, self.ctx, page.org)
        # back to the search it was clicked on, which reads them again at once (the
        # list of marked ones would be empty until an amount search)
        again = {k: form_text(form, k).strip() for k in ("tss", "amount")}
        query = urlencode({k: v for k, v in again.items() if v})
        return RedirectResponse(f"{BASE}/tx?{query}" if query else f"{BASE}/tx", status_code=303)

    def _tx(self, page: Page) -> tx_detail.TxDetail:
        p = page.request.path_params
        detail = tx_detail.tx_detail(
            self.ctx, page.org, str(p["tss_id"]), _path_number(p["number"]), page.org_name
        )
        if detail is None:
            raise NotFound()
        return detail

    async def tx_detail(self, page: Page) -> Response:
        detail = await run_in_threadpool(self._tx, page)
        svg = uploads.qr_svg(detail.qr_text, scale=3) if detail.qr_text else ""
        # a QR text no QR code holds: the note the receipts print (render_text.NO_QR_TEXT)
        too_long = bool(detail.qr_text) and not svg
        return page.render("transaction.html", d=detail, qr_svg=svg, qr_too_long=too_long)

    async def tx_qr(self, page: Page) -> Response:
        detail = await run_in_threadpool(self._tx, page)
        if not detail.qr_text:
            raise NotFound()
        check = await run_in_threadpool(uploads.check_receipt_text, detail.qr_text)
        # the key printed is this TSE's (or not: then the page must not say it is)
        check["own_tss"] = detail.row.tss_id if check["serial"] == detail.tse_serial else ""
        svg = uploads.qr_svg(detail.qr_text, scale=8)
        return page.render("qr.html", d=detail, qr_svg=svg, check=check)

    async def tx_log(self, page: Page) -> Response:
        p = page.request.path_params
        log = await run_in_threadpool(
            tx_detail.find_log, self.ctx, page.org, str(p["tss_id"]),
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


def _newer_link(found: transactions.TxResults, filters: dict[str, str]) -> str:
    """The query of the "newer" link: the first page without a cursor, else the
    page just before this one's first hit (by cursor, or by number for a search by
    transaction number)."""
    if found.offset <= 0 or not found.hits:
        return ""
    if found.offset <= transactions.SEARCH_LIMIT:
        return urlencode(filters)
    if found.keyset:
        return urlencode({**filters, "before": found.before()})
    return urlencode({**filters, "page": found.offset // transactions.SEARCH_LIMIT})


def _older_link(found: transactions.TxResults, filters: dict[str, str]) -> str:
    """The query of the "older" link: after this page's last hit."""
    if not found.more or not found.hits:
        return ""
    if found.keyset:
        return urlencode({**filters, "after": found.after()})
    return urlencode({**filters, "page": found.offset // transactions.SEARCH_LIMIT + 2})


def _registers(ctx: Any, org: str, choices: list[tuple[str, str]]) -> tuple[list[str], set[str]]:
    """The serial numbers of the organization's registers, offered while typing in
    the register field (what to type there is not obvious: the register's serial
    number as its POS registered it, e.g. KASSE-01), and every name the field
    takes (serial numbers and client ids, casefolded)."""
    clients = [c for tss_id, _ in choices for c in views.all_clients(ctx, org, tss_id)]
    names = sorted({c.serial_number for c in clients}, key=str.casefold)
    known = {c.serial_number.casefold() for c in clients}
    known.update(c.client_id.casefold() for c in clients)
    return names, known


MAX_PAGE = 10**6  # of SEARCH_LIMIT hits: far beyond any shop's transactions


def _page_number(text: str) -> int | None:
    """The results page asked for (``?page=``, from 1); 1 when not given, None for
    anything else (refused: a silent first page hid the edit)."""
    text = text.strip()
    if not text:
        return 1
    return int(text) if text.isascii() and text.isdigit() and 0 < int(text) <= MAX_PAGE else None


def _path_number(value: Any) -> int:
    """A transaction number or signature counter from the path; one no 64-bit store
    column can hold is no transaction (404, not an OverflowError's 500)."""
    number = int(value)
    if not 0 <= number < 2**63:
        raise NotFound()
    return number
