"""Text the register takes is plain text: no C0 control character and no DEL.

A line text, a cash-book text, a payment name, the seller or the master data reach
the DSFinV-K CSVs (lines.csv ARTIKELTEXT, businesscases, cashpointclosing.csv ...),
the signed processData (Bestellung-V1 lines, a SonstigerVorgang's text) and the
printed receipt (an ESC in a line text is a printer command on ESC/POS). ``opentse
dsfinvk check`` reports a control character in a text field as E_CSV_CONTROL (an
auditor's import stops at NUL or rejects the file), so the register refuses it where
the text is taken, before anything is signed: once signed and booked it is in the
books for good. TAB, CR and LF are the CSV's own and left to the callers' rules
(a line text is one line). Books that already hold such a text still export. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentse.errors import ProtocolError
from opentse.formats.dsfinvk.csvwriter import CONTROL, named_controls

__all__ = ["CODE", "CONTROL", "check_text", "check_texts", "plain"]

CODE = "E_TEXT_CONTROL"


def check_text(value: str, field: str) -> None:
    """Refuse ``value`` (the text of ``field``, e.g. ``line text``) when it holds a
    control character (the DSFinV-K format's rule, ``csvwriter.CONTROL``):
    ``E_TEXT_CONTROL`` naming the field, the character and where. The message never
    repeats the text (a raw ESC would reach the terminal)."""
    named = named_controls(value)
    if named is None:
        return
    raise ProtocolError(
        f"the {field} holds the control character {named}: texts are plain text, a "
        "DSFinV-K export with it is refused by an auditor's import (E_CSV_CONTROL). "
        "Nothing was booked; type the text again",
        code=CODE,
    )


def plain(text: str) -> str:
    """``text`` with each control character as ``?``: for text the register does not
    take from a person but from elsewhere (a TSE service's error message), which is
    kept in the books (TSE_TA_FEHLER) and shown, and so must be plain as well."""
    return CONTROL.sub("?", text)


def check_texts(values: Iterable[tuple[str, str]]) -> None:
    """:func:`check_text` for each (field, value) pair, in order."""
    for field, value in values:
        check_text(value, field)
