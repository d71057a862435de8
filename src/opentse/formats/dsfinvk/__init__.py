"""DSFinV-K 2.4 export (Kassenabschluss / single records) and its checker.

- :mod:`.tables`: the 20 tables (files, columns, types, keys, value lists, VAT keys)
- :mod:`.csvwriter`: the CSV dialect (write strictly, read strictly)
- :mod:`.indexxml`: index.xml writer and reader; the GDPdU DTD ships beside it
- :mod:`.model`: typed closings (receipts, lines, payments, TSE data) and their totals
- :mod:`.export`: ``write_export(closings, out)`` -> folder or ZIP
- :mod:`.check`: ``check_export(path)`` -> findings, signatures verified from the CSVs
  (its rules in :mod:`.source`, :mod:`.reading`, :mod:`.receipts`, :mod:`.numbering`,
  :mod:`.closings`, :mod:`.signatures`, :mod:`.rebuild`, :mod:`.findings`)
"""

from __future__ import annotations

from opentse.formats.dsfinvk.check import Finding, check_export
from opentse.formats.dsfinvk.export import write_export

__all__ = ["Finding", "check_export", "write_export"]
