"""Writing a file that holds a secret (PUKs, an API secret): mode 0600 whatever the
umask or an older file's mode, never half-written, never through a symlink.

The text goes to a new temporary file beside the target (created exclusively, so a
link planted there is not followed), is synced, then renamed over the target: a
crash leaves the old file or the new one, and an existing file's wider mode (a copy
restored 0644 from a backup) does not carry over."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


def write_private_file(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` (UTF-8), mode 0600, synced with its folder."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            data = memoryview(text.encode("utf-8"))
            while data:  # a write may take only part (a nearly full disk, a size limit)
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename survives a power cut
    finally:
        os.close(dir_fd)


def private_dir(path: Path) -> Path:
    """``path`` as a folder only its owner can enter (0700), made if missing.

    For the folders the server fills inside the data folder (export TARs, the
    dashboard's reports): ``--data`` often names a folder made beforehand 0755 (a
    service manager's state folder, a container volume), and files in a 0755 folder
    are every local user's to read. One of ours left wider by an older version is
    tightened to its owner; one set up for a group on purpose (setgid: nodes of a
    cluster running as different users sharing the exports folder) keeps its group
    and loses only what others had; one of another user (a shared mount) is left as
    it is."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    mode = stat.S_IMODE(st.st_mode)
    keep = ~0o007 if mode & stat.S_ISGID else ~0o077
    if st.st_uid == os.geteuid() and mode & ~keep:
        with contextlib.suppress(OSError):  # a mount that refuses it: as before
            os.chmod(path, mode & keep)
    return path


def close_if_there(path: Path | None) -> None:
    """:func:`private_dir` for a folder an older version may have left open, at start:
    only when it exists (nothing is made), and a folder that refuses it is left as it
    is (its next write tries again)."""
    if path is not None and path.is_dir():
        with contextlib.suppress(OSError):
            private_dir(path)
