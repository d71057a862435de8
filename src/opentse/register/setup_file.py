"""The admin PUK and PIN of a TSS that ``pos setup`` made, on disk until it finishes.

The PUK of a new TSS is in the answer to its creation only, and the service forgets
it once the TSS is deployed (UNINITIALIZED): a set-up that stopped after deploying
and before setting the admin PIN (the server stopped, the till's process was killed
before it printed anything) left a TSS nobody could ever use. So the PUK and the PIN
about to be set are written here (0600, synced: :func:`write_private_file`) as soon
as the PUK is known and before the TSS is deployed; running the same set-up again
reads them back and finishes, and the command deletes the file once it has printed
them. Nothing else is kept: the file names the service, TSS and serial number so a
rerun for another service or till never takes it for its own.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from opentse.crypto.private_file import write_private_file
from opentse.errors import ProtocolError

_FIELDS = {
    "url": "service: ",
    "tss": "TSS: ",
    "serial": "serial number: ",
    "puk": "admin PUK: ",
    "pin": "admin PIN: ",
}
_SAFE = re.compile(r"[^A-Za-z0-9.-]")


@dataclass(frozen=True, slots=True)
class PendingSetup:
    url: str
    tss: str
    serial: str
    puk: str = field(repr=False)
    pin: str = field(repr=False)


def default_path(serial: str, folder: Path) -> Path:
    """``PUK-setup-<serial>.txt`` in ``folder`` (absolute, as it is printed); a serial
    with characters a file name should not hold gets them replaced and a short hash,
    so two serials never share a file."""
    safe = _SAFE.sub("_", serial)
    if safe != serial:
        safe = f"{safe}-{hashlib.sha256(serial.encode()).hexdigest()[:8]}"
    return (folder / f"PUK-setup-{safe}.txt").absolute()


def write(path: Path, pending: PendingSetup) -> None:
    """Replace ``path`` (0600, never half-written)."""
    values = {
        "url": pending.url,
        "tss": pending.tss,
        "serial": pending.serial,
        "puk": pending.puk,
        "pin": pending.pin,
    }
    text = (
        f"The set-up of the till {pending.serial!r} did not finish yet. This file keeps\n"
        "the admin PUK and PIN of its new TSS (the service shows the PUK only once):\n"
        "run the same 'opentse pos setup' again to finish; it deletes this file once it\n"
        "has printed them. Keep the PUK and PIN safely, not on the till.\n"
        + "".join(f"{prefix}{values[key]}\n" for key, prefix in _FIELDS.items())
    )
    try:
        write_private_file(path, text)
    except OSError as exc:
        raise ProtocolError(
            f"the set-up file {path} cannot be written ({type(exc).__name__}): the new "
            "TSS's PUK must be kept before the TSS is deployed; give a --puk-file in a "
            "folder this user can write",
            code="E_SETUP_PENDING",
        ) from None


def read(path: Path) -> PendingSetup | None:
    """What :func:`write` wrote; None when there is no such file or it is not ours."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProtocolError(
            f"the set-up file {path} cannot be read ({type(exc).__name__}): it may hold "
            "the admin PUK of a TSS made earlier; make it readable, or give --puk-file",
            code="E_SETUP_PENDING",
        ) from None
    found: dict[str, str] = {}
    for line in lines:
        for key, prefix in _FIELDS.items():
            if line.startswith(prefix) and key not in found:
                found[key] = line[len(prefix) :]
    if any(not found.get(key) for key in _FIELDS):
        return None
    return PendingSetup(found["url"], found["tss"], found["serial"], found["puk"], found["pin"])


def foreign(path: Path) -> bool:
    """A file (or anything else) is at ``path`` and it is not a set-up file: an
    admin's own notes must never be replaced by, or deleted with, a set-up's PUK."""
    return (path.exists() or path.is_symlink()) and read(path) is None


def forget(path: Path, tss: str) -> None:
    """Delete the file once its PUK and PIN are shown; only if it is that TSS's (a
    set-up that added a till to another TSS leaves another set-up's file alone)."""
    kept = read(path)
    if kept is not None and kept.tss == tss:
        path.unlink(missing_ok=True)
