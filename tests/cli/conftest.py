"""Each CLI test's data folder is its own: no secret file, database or admin PIN
from the environment of whoever runs the suite."""

from __future__ import annotations

import pytest

ISOLATING = (
    "OPENTSE_SECRET_FILE",
    "OPENTSE_DATABASE_URL",
    "OPENTSE_DATABASE",
    "OPENTSE_ADMIN_PIN",
)


@pytest.fixture(autouse=True)
def _secret_in_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ISOLATING:
        monkeypatch.delenv(name, raising=False)
