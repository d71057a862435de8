"""Open the installation in a data folder for the server and its CLI commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opentse.engine.ports import Clock
from opentse.installation import Installation


def open_installation(data_dir: Path, clock: Clock | None = None) -> Any:
    """``Installation.open`` (secret, local CA, store, TSE service) of ``data_dir``."""
    return Installation.open(data_dir, clock=clock)
