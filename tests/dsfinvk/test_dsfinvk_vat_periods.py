"""The §24 UStG average rate (VAT key 3) changed four times; each day must get its rate.

Source: UStG §24 Abs. 1 Nr. 3 as amended (9.5 % for 2022, 9 % from 2023, Jahressteuergesetz
2024: 8.4 % from 2024-12-06 and 7.8 % from 2025-01-01), as tabulated by Haufe Finance.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from opentse.formats.dsfinvk.tables import vat_rate


@pytest.mark.parametrize(
    ("day", "rate"),
    [
        (date(2021, 12, 31), "10.70"),
        (date(2022, 1, 1), "9.50"),
        (date(2022, 12, 31), "9.50"),
        (date(2023, 1, 1), "9.00"),
        (date(2024, 12, 5), "9.00"),
        (date(2024, 12, 6), "8.40"),
        (date(2024, 12, 31), "8.40"),
        (date(2025, 1, 1), "7.80"),
        (date(2026, 11, 21), "7.80"),
    ],
)
def test_average_rate_of_key_3_on_each_day(day: date, rate: str) -> None:
    assert vat_rate(3, day) == Decimal(rate)
