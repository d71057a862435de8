"""The public API, pinned (trio's test_exports.py): integrators and the other parts of
opentse call these names. Removing or renaming one, or changing how a documented
method takes its positional arguments, fails here; adding names or keyword-only
options does not. A deliberate break updates this file in the same commit.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

import opentse.formats.dsfinvk as dsfinvk
import opentse.register as register
from opentse.engine.service import TSEService

REGISTER = {
    "NOT_CERTIFIED_TEXT", "TSE_FAILED_TEXT", "VAT_TABLE", "Backend", "CashBookEntry",
    "EmbeddedBackend", "Light", "OpenTransaction", "OutageLog", "Receipt", "ReceiptLine",
    "ReceiptPayment", "Register", "RegisterConfig", "RegisterStatus", "RemoteBackend", "Sale",
    "SaleLine", "SalePayment", "SaleResult", "Seller", "Signed", "Started", "TSEUnavailable",
    "TaxLine", "TseSignature", "VatRate", "VatTotal", "format_money", "render_escpos",
    "render_pdf", "render_qr_png", "render_qr_svg", "render_receipt_png", "render_text",
    "round_cents", "split_gross",
}  # fmt: skip

DSFINVK = {"Finding", "check_export", "write_export"}

# opentse.verify has no __all__; its docstring names these entry points.
VERIFY = {
    "opentse.verify.report": {"verify_exports", "VerifyReport"},
    "opentse.verify.html": {"write_html", "render_html"},
    "opentse.verify.receipt": {"verify_receipt", "ReceiptResult"},
    "opentse.verify.qrimage": {"read_qr_texts"},
}

# TSEService: method -> its parameters before the keyword-only ones (after self).
SERVICE = {
    "create_tse": ("tse_id",),
    "set_admin_pin": ("tse_id", "admin_puk", "new_admin_pin"),
    "authenticate": ("tse_id", "pin"),
    "logout": ("tse_id",),
    "initialize": ("tse_id", "description"),
    "update_time": ("tse_id",),
    "disable": ("tse_id",),
    "set_state": ("tse_id", "target"),
    "configure": ("tse_id",),
    "register_client": ("tse_id", "client_id"),
    "deregister_client": ("tse_id", "client_id"),
    "start_transaction": ("tse_id", "client_id", "process_data", "process_type"),
    "update_transaction": ("tse_id", "client_id", "number", "process_data", "process_type"),
    "finish_transaction": ("tse_id", "client_id", "number", "process_data", "process_type"),
    "export": ("tse_id", "out", "flt"),
    "export_certificates": ("tse_id",),
    "get": ("tse_id",),
    "list": ("owner",),
    "logs": ("tse_id", "flt"),
    "read_log_message": ("tse_id", "signature_counter"),
    "self_test": ("tse_id",),
    "find_ref": ("tse_id", "ref"),
}

# The shared contracts of docs/dev/TEAM.md ("Key APIs others will call").
CONTRACTS = {
    "opentse.tr03151.codec": {"encode_signed_part", "assemble", "decode_log_message"},
    "opentse.tr03151.signature": {"verify_signature", "public_key_from_point"},
    "opentse.crypto.keys": {
        "CURVES", "generate_private_key", "public_key_point", "serial_number", "PlainSigner",
        "encrypt_private_key", "decrypt_private_key", "default_algorithm",
    },
    "opentse.crypto.installation_secret": {"load_or_create"},
    "opentse.crypto.ca": {"LocalCA"},
    "opentse.crypto.secrets": {"hash_secret", "verify_secret"},
    "opentse.formats.tar": {
        "TarWriter", "log_filename", "certificate_filename", "info_csv", "iter_members",
        "parse_log_filename", "parse_info_csv",
    },
    "opentse.formats.qr": {"build_qr_payload", "parse_qr_payload", "QRPayload"},
    "opentse.installation": {"Installation"},
    "opentse.storage.sqlite": {"SQLiteStore"},
    "opentse.storage.migrations": {"apply"},
}  # fmt: skip


def test_register_all() -> None:
    assert set(register.__all__) >= REGISTER, sorted(REGISTER - set(register.__all__))
    for name in register.__all__:
        assert getattr(register, name, None) is not None, name


def test_dsfinvk_all() -> None:
    assert set(dsfinvk.__all__) >= DSFINVK
    for name in dsfinvk.__all__:
        assert callable(getattr(dsfinvk, name)), name


@pytest.mark.parametrize(("module", "names"), sorted({**VERIFY, **CONTRACTS}.items()))
def test_module_names(module: str, names: set[str]) -> None:
    loaded = importlib.import_module(module)
    missing = sorted(name for name in names if not hasattr(loaded, name))
    assert not missing, f"{module} lost {missing}"


@pytest.mark.parametrize(("method", "positional"), sorted(SERVICE.items()))
def test_tse_service_method(method: str, positional: tuple[str, ...]) -> None:
    function = getattr(TSEService, method, None)
    assert callable(function), f"TSEService.{method} is gone"
    params = list(inspect.signature(function).parameters.values())[1:]
    leading = tuple(
        p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    )
    assert leading[: len(positional)] == positional, f"TSEService.{method}{leading}"
    for p in params[len(positional) :]:
        if p.kind is p.POSITIONAL_OR_KEYWORD:  # a new positional one must be optional
            assert p.default is not p.empty, f"TSEService.{method}: {p.name} became required"


def test_installation_open_gives_the_documented_parts(tmp_path: Path) -> None:
    from opentse.installation import Installation

    with Installation.open(tmp_path / "data") as inst:
        for name in ("store", "service", "secret", "ca"):
            assert getattr(inst, name, None) is not None, f"Installation.{name}"
        assert isinstance(inst.service, TSEService)
