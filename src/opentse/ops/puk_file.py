"""The new TSE's PUKs on disk while a replacement runs (``DATA/PUK-<TSE>.txt``, 0600).

A replacement creates a TSE and then runs steps that can fail or be interrupted
(register moves, export, verification, disable). The PUKs are the only way to set or
unblock the new TSE's PINs and are shown once, so they are written here *before* the
TSE is created: a replacement stopped at any later point, or a process killed, leaves
them with the operator, and a rerun reads them back to finish. The file never goes to
a log or the protocol (the protocol only names the file); the operator stores the
PUKs safely and deletes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from opentse.crypto.private_file import write_private_file

_ADMIN = "admin PUK: "
_TIMEADMIN = "timeadmin PUK: "


@dataclass(frozen=True, slots=True)
class PUKs:
    admin: str
    timeadmin: str


def path_for(data_dir: Path, tse_id: str) -> Path:
    """Absolute, as it is printed and recorded (a later command may run elsewhere)."""
    return (Path(data_dir) / f"PUK-{tse_id}.txt").absolute()


def write(path: Path, tse_id: str, replaces: str, puks: PUKs, now: int) -> None:
    """Write atomically with mode 0600 (whatever the umask), synced before it counts."""
    when = datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    text = (
        f"PUKs of the new TSE {tse_id} (replacement of TSE {replaces}), written {when}.\n"
        "They set or unblock the admin and timeadmin PIN of that TSE. Store them safely\n"
        "(as the PUKs of any TSE), then delete this file.\n"
        f"{_ADMIN}{puks.admin}\n"
        f"{_TIMEADMIN}{puks.timeadmin}\n"
    )
    write_private_file(path, text)


def read(path: Path) -> PUKs | None:
    """The PUKs written by ``write``; None when the file is gone or not ours."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    found = {
        prefix: line[len(prefix) :].strip()
        for line in lines
        for prefix in (_ADMIN, _TIMEADMIN)
        if line.startswith(prefix)
    }
    if not found.get(_ADMIN) or not found.get(_TIMEADMIN):
        return None
    return PUKs(found[_ADMIN], found[_TIMEADMIN])
