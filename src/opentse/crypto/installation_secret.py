"""The installation secret: 32 random bytes that encrypt every private key at rest.

It lives in its own key file, never in the database, so that a copy of the database
(a backup, a dump, a stolen disk image of the DB volume) does not contain usable
keys. Default location: ``<data dir>/installation.key``; the environment variable
``OPENTSE_SECRET_FILE`` overrides it (see ``resolve_path``; docs/keys-and-secrets.md).

File format: one line, the secret as 64 lower-case hex digits (printable, so it can be
backed up on paper). Permissions: 0600; a file readable or writable by group or others
is refused rather than silently used.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from opentse.errors import OpenTSEError

ENV_VAR = "OPENTSE_SECRET_FILE"
DEFAULT_NAME = "installation.key"
SECRET_LEN = 32


class SecretFileError(OpenTSEError):
    """The installation secret file is unusable (permissions, format, type)."""

    code = "E_SECRET_FILE"
    http_status = 500


def resolve_path(data_dir: Path, environ: dict[str, str] | None = None) -> Path:
    """Where the secret file is: ``$OPENTSE_SECRET_FILE`` if set, else in ``data_dir``."""
    env = os.environ if environ is None else environ
    value = env.get(ENV_VAR, "").strip()
    return Path(value).expanduser() if value else data_dir / DEFAULT_NAME


def _check_mode(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise SecretFileError(f"installation secret {path} is not a regular file")
    if os.name != "nt" and st.st_mode & 0o077:
        raise SecretFileError(
            f"installation secret {path} is accessible by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); run: chmod 600 {path}",
            code="E_SECRET_FILE_PERMISSIONS",
        )


def _read(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY)  # symlinks allowed (secret mounts); mode of target
    try:
        _check_mode(path, os.fstat(fd))
        with os.fdopen(fd, "rb", closefd=False) as fh:
            text = fh.read(4096)
    finally:
        os.close(fd)
    try:
        value = bytes.fromhex(text.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        value = b""
    if len(value) != SECRET_LEN:
        raise SecretFileError(
            f"installation secret {path} is damaged (expected {SECRET_LEN * 2} hex digits)",
            code="E_SECRET_FILE_FORMAT",
        )
    return value


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _create(path: Path) -> None:
    """Write a new secret atomically: temp file (0600) -> fsync -> link to the final
    name, which fails instead of overwriting if another process was faster."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # independent of the umask
        os.write(fd, (secrets.token_bytes(SECRET_LEN).hex() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # somebody else created it first: use theirs
    finally:
        tmp.unlink()
    _fsync_dir(path.parent)


def load_or_create(path: Path) -> bytes:
    """The 32-byte installation secret in ``path``, created (0600) if missing.

    Raises ``SecretFileError`` if the file is readable by group/others, not a regular
    file, or damaged. Never prints or logs the secret.
    """
    path = Path(path)
    if not path.exists():
        _create(path)
    return _read(path)
