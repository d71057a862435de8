"""Open the installation in a data folder for the server and its CLI commands.

Uses ``opentse.installation.Installation.open`` (the engine team's entry point). Until
that module exists this falls back to assembling the same parts (installation secret
file, local CA, SQLite store, TSE service) so the server can be run and tested; the
fallback's file names are its own and it is dropped once ``Installation`` lands.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class _Installation:
    store: Any
    service: Any
    secret: bytes
    ca: Any
    data_dir: Path

    def close(self) -> None:
        self.store.close()


def open_installation(data_dir: Path, clock: Any = None) -> Any:
    try:
        from opentse.installation import Installation  # type: ignore[import-not-found]
    except ImportError:
        return _fallback(Path(data_dir), clock)
    if clock is None:
        return Installation.open(data_dir)
    return Installation.open(data_dir, clock=clock)


def _fallback(data_dir: Path, clock: Any) -> _Installation:
    from opentse.crypto.ca import LocalCA
    from opentse.crypto.installation_secret import load_or_create
    from opentse.engine.keyring import Keyring
    from opentse.engine.service import TSEService
    from opentse.storage.sqlite import SQLiteStore
    from opentse.testing.clock import SystemClock

    data_dir.mkdir(parents=True, exist_ok=True)
    clock = clock or SystemClock()
    secret = load_or_create(data_dir / "installation.key")
    ca_file = data_dir / "local-ca.json"
    if ca_file.exists():
        ca = LocalCA.from_bytes(ca_file.read_bytes(), secret)
    else:
        ca = LocalCA.create(secret, clock.now())
        ca_file.write_bytes(ca.to_bytes())
    store = SQLiteStore(data_dir / "opentse.sqlite3")
    service = TSEService(store, Keyring(secret), clock, ca=ca)
    return _Installation(store, service, secret, ca, data_dir)
