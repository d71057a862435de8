"""Reading the dashboard's POST forms: CSRF-checked and bounded.

The login and logout forms are read before anybody is logged in, so the default
limits are those of the smallest form the dashboard has: no file part (Starlette
would spool one of any size to disk) and a few short fields; a route that takes an
upload (verify) raises them for itself.
"""

from __future__ import annotations

from starlette.datastructures import FormData

from opentse.dashboard.pages import Page, PageError, form_text

FORM_FIELDS = 20  # the export form has 8
FORM_FIELD_BYTES = 16 * 1024  # a pasted QR text is at most uploads.MAX_QR_TEXT


async def read_form(page: Page, **limits: int) -> FormData:
    """The CSRF-checked form. The login and logout forms are read before anybody is
    logged in: by default no file (Starlette would spool one of any size to disk),
    at most FORM_FIELDS fields of FORM_FIELD_BYTES each (else 400)."""
    limits = {"max_files": 0, "max_fields": FORM_FIELDS, "max_part_size": FORM_FIELD_BYTES,
              **limits}  # fmt: skip
    form = await page.request.form(**limits)
    if not page.codec.check_csrf(page.session, form_text(form, "csrf")):
        await form.close()
        raise PageError(403, page.t("csrf_failed"))
    return form
