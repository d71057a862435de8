"""What the register hands back for one booking: the receipt, the signature when
there was one, the traffic light -- and the JSON ``opentse pos sell --json`` prints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from opentse.formats import processdata as pd
from opentse.register.backends import Signed
from opentse.register.outage import RegisterStatus
from opentse.register.receipt import Receipt
from opentse.register.render_text import render_text


@dataclass(frozen=True)
class SaleResult:
    """Outcome of one booking: the receipt always, the signature when there was one."""

    receipt: Receipt
    signed: Signed | None
    receipt_ref: str
    status: RegisterStatus
    error: str | None = None
    text_width: int = 48
    zone: tzinfo | None = None  # the shop's, for the receipt text (default Europe/Berlin)
    #: the processType signed, or meant to be signed when the TSE failed (books, export)
    process_type: str = pd.PROCESS_TYPE_KASSENBELEG
    #: E_REGISTER_CLIENT_UNKNOWN / E_REGISTER_TSS_UNKNOWN when the TSE did not know
    #: this register as configured: the sale is booked unsigned ("TSE ausgefallen",
    #: nothing lost), but no outage: fix the configuration before the next sale
    config_error: str | None = None

    @property
    def tse_failed(self) -> bool:
        return self.signed is None

    def to_json(self) -> dict[str, Any]:
        """The JSON shape ``opentse pos sell --json`` prints."""
        signed = self.signed
        return {
            "receipt_ref": self.receipt_ref,
            "receipt_number": self.receipt.receipt_number,
            "tse_failed": self.tse_failed,
            "transaction_number": None if signed is None else signed.transaction_number,
            "signature_counter": None if signed is None else signed.signature_counter,
            "qr_code_data": self.receipt.qr_payload,
            "process_type": None if signed is None else signed.process_type,
            "process_data": None if signed is None else signed.process_data,
            "total": str(self.receipt.total),
            "status": self.status.light.value,
            "consecutive_failures": self.status.consecutive_failures,
            "error": self.error,
            "config_error": self.config_error,
            "receipt_text": render_text(self.receipt, width=self.text_width, tz=self.zone),
        }
