"""RegisterConfig refuses a client id no TSE can sign (TR-03151 clientId is a
PrintableString), RemoteBackend a service URL without http(s):// or host:
``E_REGISTER_CONFIG`` when the register is configured. Both were accepted, and every
sale of that till was printed "TSE ausgefallen" and journaled as an outage although
the TSE worked (``pos sell --client K@1`` exited 0)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.engine.rules import is_printable
from opentse.errors import ProtocolError
from opentse.installation import Installation
from opentse.register import OutageLog, RegisterConfig, RemoteBackend, Seller
from opentse.testing import ready_tse

SELLER = Seller("Café Muster", ("Musterstraße 1", "12345 Musterstadt"))
APP = build_app()


@pytest.mark.parametrize("client_id", ["", "K@1", "Kässe-1", "KASSE_1", "K1\n", "K\t1"])
def test_a_client_id_no_tse_signs_is_refused(client_id: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        RegisterConfig(SELLER, client_id)
    assert refused.value.code == "E_REGISTER_CONFIG"


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_printable_client_ids_are_accepted_others_refused(client_id: str) -> None:
    try:
        config = RegisterConfig(SELLER, client_id)
    except ProtocolError as exc:
        assert exc.code == "E_REGISTER_CONFIG" and not is_printable(client_id)
    else:
        assert is_printable(client_id) and config.client_id == client_id


def test_pos_sell_with_such_a_client_books_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Installation.open(data) as inst:
        ready_tse(inst.service, "tse-pos", client_id="POS-1", logout=True)
        before = inst.service.get("tse-pos").state.signature_counter
    journal = tmp_path / "till.db"
    result = CliRunner().invoke(
        APP,
        [
            "pos", "sell", "--data", str(data), "--tss", "tse-pos", "--client", "POS@1",
            "--journal", str(journal), "--line", "Kaffee:1:2.50:1", "--pay", "bar:2.50",
            "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error E_REGISTER_CONFIG:")
    if journal.exists():
        log = OutageLog(journal)
        try:
            assert log.outages() == []
        finally:
            log.close()
    with Installation.open(data) as inst:
        assert inst.service.get("tse-pos").state.signature_counter == before


@pytest.mark.parametrize(
    "url", ["127.0.0.1:8000", "localhost:8000/api/v2", "ftp://host/api/v2", "http://", ""]
)
def test_a_service_url_without_scheme_or_host_is_refused(url: str, tmp_path: Path) -> None:
    """It was accepted and every sale printed "TSE ausgefallen" (httpx could not send
    a request to it); ``pos sell --url 127.0.0.1:8000`` exited 0."""
    with pytest.raises(ProtocolError) as refused:
        RemoteBackend(url, "key", "secret", "tss", "client")
    assert refused.value.code == "E_REGISTER_CONFIG" and "secret" not in str(refused.value)
    journal = tmp_path / "till.db"
    result = CliRunner().invoke(
        APP,
        [
            "pos", "sell", "--url", url or " ", "--api-key", "key", "--api-secret", "secret",
            "--tss", "tss", "--client", "client", "--journal", str(journal),
            "--line", "Tee:1:1.80:1", "--pay", "bar:2.00",
        ],
    )  # fmt: skip
    assert result.exit_code == 1 and "E_REGISTER_CONFIG" in result.stderr
    assert "TSE ausgefallen" not in result.stdout


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "https://tse.lan:4433/api/v2/"])
def test_service_urls_with_scheme_and_host_are_accepted(url: str) -> None:
    RemoteBackend(url, "key", "secret", "tss", "client").close()
