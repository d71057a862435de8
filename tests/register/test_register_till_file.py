"""The till file round trip (pos setup --out writes it, pos repoint rewrites it, every
pos --session reads it): what is written is read back, the Journal line included."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.register.till_file import TillConnection, parse, render

# a value as the file holds it: one line, no surrounding blanks, not '(...)' (no value)
VALUE = (
    st.text(
        st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\x85"),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(lambda v: bool(v) and not v.startswith("("))
)
OPTIONAL = st.none() | VALUE


@settings(max_examples=150, deadline=None)
@given(
    host=VALUE.filter(lambda v: ":" not in v),
    key=OPTIONAL,
    secret=OPTIONAL,
    fingerprint=OPTIONAL,
    tss=OPTIONAL,
    client=OPTIONAL,
    serial=OPTIONAL,
    journal=OPTIONAL,
)
def test_render_then_parse_gives_the_connection_back(
    host: str,
    key: str | None,
    secret: str | None,
    fingerprint: str | None,
    tss: str | None,
    client: str | None,
    serial: str | None,
    journal: str | None,
) -> None:
    connection = TillConnection(
        f"http://{host}", key, secret, fingerprint, tss, client, serial, journal
    )
    assert parse(render(connection)) == connection


def test_a_file_without_journal_line_has_none() -> None:
    """Till files written before pos repoint have no Journal line: the default file."""
    text = render(TillConnection("http://h:1", "k", "s", None, "t", "c", "K1"))
    assert "Journal" not in text and parse(text).journal is None
