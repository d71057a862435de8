"""A TSE created after the installation's local CA (sub-CA, 15 years) expired.

Before: ``tse create`` (and a replacement, after its PUK file) ended in a ValueError
traceback from the certificate builder (notAfter before notBefore).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from opentse.crypto.ca import SUB_CA_YEARS
from opentse.errors import OpenTSEError
from opentse.installation import Installation
from opentse.testing.clock import FrozenClock

START = 1_760_000_000
YEAR = 365 * 86400


def test_a_tse_after_the_local_ca_expired_is_a_clear_error(tmp_path: Path) -> None:
    clock = FrozenClock(START)
    with Installation.open(tmp_path / "data", clock=clock) as inst:
        inst.service.create_tse("early")
        clock.set(START + (SUB_CA_YEARS - 1) * YEAR)  # still issued, up to the CA's end
        inst.service.create_tse("late")
        clock.set(START + (SUB_CA_YEARS + 1) * YEAR)
        with pytest.raises(OpenTSEError) as exc:
            inst.service.create_tse("too-late")
        assert exc.value.code == "E_CA_EXPIRED" and "expired on" in exc.value.message
        assert [i.record.tse_id for i in inst.service.list()] == ["early", "late"]
