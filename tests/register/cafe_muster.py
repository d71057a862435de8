"""The one shop of the register's recovery and booking tests: its TSE and till ids,
the seller on its receipts and the master data of its DSFinV-K exports."""

from __future__ import annotations

from opentse.formats.dsfinvk.model import CashRegister, Company, Location
from opentse.register import Seller
from opentse.register.books import MasterData

TSE = "tse-1"
CLIENT = "KASSE-1"
SELLER = Seller("Café Muster", ("Musterstraße 1", "12345 Musterstadt"))
MASTER = MasterData(
    Company("Muster GmbH", "Musterstraße 1", "12345", "Musterstadt", vat_id="DE123456789"),
    Location("Café Muster", "Musterstraße 1", "12345", "Musterstadt"),
    CashRegister(CLIENT),
    TSE,
)
#: what recovery signs to close a dangling transaction (Kassenbeleg-V1)
ABORT = "AVBelegabbruch^0.00_0.00_0.00_0.00_0.00^"
