"""Input the operations commands refuse instead of writing it on.

* ``tse move``'s URL: a line end in the host or path added lines to the tills'
  connection file, and a trailing space in the path made a rerun's URL differ from
  the one the file holds (the rerun rotated the key again).
* ``site add-register`` of a till id that another organization uses: the hint
  ``site move-register`` was wrong (that refuses another organization's till) and
  the message named the other organization's location."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.errors import OpenTSEError
from opentse.ops import sites
from opentse.ops.moving import build_url
from opentse.ops.store import OpsContext


@pytest.mark.parametrize(
    ("host", "path", "code"),
    [
        ("127.0.0.1", "/api/v2 ", "E_MOVE_PATH"),
        ("127.0.0.1", "/api/v2\nAPI secret: x", "E_MOVE_PATH"),
        ("127.0.0.1", "/api\t/v2", "E_MOVE_PATH"),
        ("127.0.0.1", "/api/v2?x=1", "E_MOVE_PATH"),
        ("kasse\n.local", "/api/v2", "E_MOVE_HOST"),
        ("kasse\x00", "/api/v2", "E_MOVE_HOST"),
    ],
)
def test_white_space_and_control_characters_are_refused(host: str, path: str, code: str) -> None:
    with pytest.raises(OpenTSEError) as refused:
        build_url(host, 4433, path)
    assert refused.value.code == code


@settings(max_examples=100, deadline=None)
@given(
    st.text(alphabet=st.characters(codec="ascii", exclude_categories=("Cc",)), max_size=20),
    st.booleans(),
)
def test_a_url_that_is_built_holds_no_white_space(path: str, tls: bool) -> None:
    try:
        url = build_url("kasse.local", 4433, path, tls)
    except OpenTSEError as exc:
        assert exc.code == "E_MOVE_PATH"
        assert any(ch.isspace() or ch in "?#" for ch in path)
        return
    assert url.isprintable() and not any(ch.isspace() for ch in url)
    assert url.startswith("https://" if tls else "http://")


def test_a_till_id_of_another_organization_is_not_offered_a_move(ops: OpsContext) -> None:
    first = sites.create_organization(ops, "Erste GmbH")
    second = sites.create_organization(ops, "Zweite GmbH")
    there = sites.create_location(
        ops, first.id, "Geheimlager", street="Weg 1", postal_code="10115", city="Berlin"
    )
    here = sites.create_location(
        ops, second.id, "Laden", street="Markt 2", postal_code="80331", city="München"
    )
    sites.add_register(ops, "K1", there.id)
    with pytest.raises(OpenTSEError) as refused:
        sites.add_register(ops, "K1", here.id)
    message = refused.value.message
    assert refused.value.code == "E_SITE_REGISTER_EXISTS"
    assert "another organization" in message and "another id" in message
    assert "move-register" not in message and "Geheimlager" not in message
    assert there.id not in message
