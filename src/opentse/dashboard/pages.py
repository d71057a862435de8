"""Page plumbing of the dashboard: the per-request ``Page`` (language, session, CSRF
token, rendering), the Jinja2 environment with its filters, and the security
headers every page carries (a strict CSP: no inline script or style, nothing from
other hosts)."""

from __future__ import annotations

import functools
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse

from opentse.dashboard import i18n
from opentse.dashboard.findings_text import finding_text
from opentse.dashboard.session import Session, SessionCodec
from opentse.dashboard.tse_exports import filter_parts
from opentse.register.shoptime import local_day, shop_zone
from opentse.server.auth import Principal

BASE = "/dashboard"
HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
        " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class NotFound(Exception):
    """Missing or another organization's: the page answers 404."""


class PageError(Exception):
    """``original``: the server's own English words, kept beside a German message
    (operators and their logs know them)."""

    def __init__(self, status: int, message: str, original: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.original = original


class Page:
    """One request as a page handler sees it."""

    def __init__(
        self,
        templates: jinja2.Environment,
        codec: SessionCodec,
        request: Request,
        session: Session,
        lang: str,
    ) -> None:
        self.templates = templates
        self.codec = codec
        self.request = request
        self.session = session
        self.lang = lang
        self.t = i18n.translator(lang)
        self.state = i18n.state_namer(lang)
        self.org = session.organization_id
        self.env = "TEST"
        self.org_name = ""
        self.set_session: Session | None = None
        self.lang_notice = ""  # ?lang= named a language there is none of

    @property
    def csrf(self) -> str:
        return self.codec.csrf_token(self.set_session or self.session)

    def render(self, template: str, code: int = 200, **values: Any) -> HTMLResponse:
        other = "en" if self.lang == "de" else "de"
        query = dict(self.request.query_params)
        query["lang"] = other
        html = self.templates.get_template(template).render(
            t=self.t,
            state=self.state,
            lang=self.lang,
            base=BASE,
            csrf=self.csrf,
            logged_in=bool(self.org),
            org_name=self.org_name,
            path=self.request.url.path,
            switch_url=self.request.url.path + "?" + urlencode(query),
            lang_notice=self.lang_notice,
            zone=shop_zone_of_env().key,
            **values,
        )
        return HTMLResponse(html, status_code=code)

    def principal(self) -> Principal:
        return Principal(self.org, self.env, self.session.api_key)


def schema_newer_message(page: Page, stale: str) -> tuple[str, str]:
    """Why a node older than its database refuses a write (``ctx.stale_schema``), and
    the API's own words to keep beside it: on German pages a German text, with the
    unknown migrations' numbers taken from the API's message, and that message kept
    (operators grep their logs for it); English pages show the API's text alone."""
    api = f"E_SCHEMA_NEWER: {stale}"
    if page.lang != "de":
        return api, ""
    numbers = ", ".join(re.findall(r"\b\d{4}\b", stale)) or "?"
    return page.t("schema_newer", migrations=numbers, code="E_SCHEMA_NEWER"), api


def form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def shop_zone_of_env() -> ZoneInfo:
    """The shop's time zone the dashboard shows and filters dates in: OPENTSE_TIMEZONE
    as for ``opentse pos`` (default Europe/Berlin; an unknown name is E_TIMEZONE, which
    the dashboard raises at start-up). A shop owner asking for "the 20th" means the
    local day, as on the receipts and in the books, not the UTC one."""
    return _zone(os.environ.get("OPENTSE_TIMEZONE") or None)


@functools.lru_cache(maxsize=8)
def _zone(name: str | None) -> ZoneInfo:
    return shop_zone(name)


def _ts(unix: int | None) -> str:
    """Local time with its zone's abbreviation (CET/CEST): unambiguous for an auditor."""
    if unix is None:
        return "-"
    at = datetime.fromtimestamp(int(unix), UTC).astimezone(shop_zone_of_env())
    return at.strftime("%Y-%m-%d %H:%M:%S %Z")


def _day(unix: int | None) -> str:
    if unix is None:
        return "-"
    return local_day(datetime.fromtimestamp(int(unix), UTC), shop_zone_of_env()).isoformat()


TIME_DETAIL_SUFFIXES = ("_at", "_until")


def _detail_value(key: str, value: Any) -> Any:
    """A protocol entry's detail as shown: its times (``initialized_at``,
    ``retain_until`` ...; Unix seconds in the append-only protocol) in the shop's local
    time like every other time on the dashboard, everything else as recorded."""
    is_time = isinstance(value, int) and not isinstance(value, bool)
    if is_time and key == "retain_until":
        # a calendar date kept as 23:59:59 UTC on its day (ops.archive.retain_until):
        # in the shop's time 31 December would show as 1 January of the next year
        return datetime.fromtimestamp(value, tz=UTC).date().isoformat()
    if is_time and key.endswith(TIME_DETAIL_SUFFIXES):
        return _ts(value)
    return value


def _num(value: int | float) -> str:
    return f"{value:,}".replace(",", "\u202f")


def _money(value: Any, lang: str) -> str:
    """2 decimals; German decimal comma."""
    if value is None:
        return ""
    text = f"{value:.2f}"
    return text.replace(".", ",") if lang == "de" else text


def make_templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["ts"] = _ts
    env.filters["day"] = _day
    env.filters["num"] = _num
    env.filters["money"] = _money
    env.filters["detail_value"] = _detail_value
    env.filters["filter_parts"] = filter_parts
    env.filters["finding_text"] = finding_text
    return env
