"""An export file read with ordinary reads, so that a file that shrinks or fails
while it is read is an error with a code, never a dead process.

The verifier used to memory-map archives. When a mapped file is truncated by
someone else (an export still being copied, a USB stick pulled) or the device
fails, touching a page past the new end raises SIGBUS: the process dies without a
word (exit status -7) and no Python code can catch it. ``pread`` of bounded windows
(``tarscan.WINDOW``) hands the scan the same ``bytes`` (one copy out of the page
cache, as the scan's slices of the mapping made anyway) and turns every failure
into OSError, raised here as ``UnreadableExportError`` with code ``E_EXPORT_READ``.

The file's size and modification time are taken when it is opened: a read that
ends before that size, or a size or time that differ once the scan is through
(``check_unchanged``), mean the file changed under the verifier, whose verdict
would then describe octets that are no longer there (or never were together).

Archives the scan does not handle (links, odd members) are read front to back by
``tarfile`` in stream mode through ``ArchiveFile.stream``: the same reads, the same
errors, and never more of the file in memory than one buffer. A compressed archive
is read through the same reads too, decompressed by ``verify.decompress``.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

from opentse.errors import OpenTSEError

READ_FAILED = "E_EXPORT_READ"  # the file failed or changed while being read
_READ_ALL = 1 << 20  # octets per read() where the size is not known
_STREAM_BUFFER = 1 << 16  # octets per read for ``ArchiveFile.stream`` (tarfile takes 10 KiB)


class UnreadableExportError(OpenTSEError):
    """An input cannot be verified (CLI exit status 2): it is not a TAR archive at
    all (``E_EXPORT_UNREADABLE``), or the file failed or changed while it was read
    (``E_EXPORT_READ``)."""

    code = "E_EXPORT_UNREADABLE"


def _pread(fd: int, count: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, count, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # pragma: no cover - Windows has no pread
    return os.read(fd, count)  # pragma: no cover


class ArchiveFile:
    """One open archive. ``size`` is its size when opened, or None when it has no
    size to trust (not a regular file, or a regular file of size 0 such as those in
    /proc): such a file is only read whole (``read_all``).

    Opening raises OSError as ``open`` does (missing, a folder, no permission);
    every later failure is an UnreadableExportError with code ``E_EXPORT_READ``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            info = os.fstat(self._fd)
            if stat.S_ISDIR(info.st_mode):  # opens on POSIX; no archive, no read error
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        except OSError:
            os.close(self._fd)
            raise
        self._regular = stat.S_ISREG(info.st_mode)
        self._stamp = (info.st_size, info.st_mtime_ns)
        self.size: int | None = info.st_size if self._regular and info.st_size else None

    def __enter__(self) -> ArchiveFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        os.close(self._fd)

    def _failed(self, exc: OSError) -> UnreadableExportError:
        return UnreadableExportError(
            f"{self.path}: reading failed ({exc.strerror or exc})", code=READ_FAILED
        )

    def _changed(self, what: str) -> UnreadableExportError:
        return UnreadableExportError(
            f"{self.path}: the file changed while it was read ({what}); "
            "verify a complete copy that nothing writes to",
            code=READ_FAILED,
        )

    def read_at(self, offset: int, count: int) -> bytes:
        """``count`` octets from ``offset``; fewer only where the file ends as it
        was sized when opened (``size`` must be known)."""
        assert self.size is not None
        count = max(0, min(count, self.size - offset))
        try:
            data = _pread(self._fd, count, offset)
            while len(data) < count:  # a short read: rare, except at a new end
                more = _pread(self._fd, count - len(data), offset + len(data))
                if not more:
                    raise self._changed(
                        f"it ends after {offset + len(data)} octets, {self.size} when it was opened"
                    )
                data += more
        except OSError as exc:
            raise self._failed(exc) from None
        return data

    def ends_by(self, offset: int) -> bool:
        """Whether the file (as sized when opened) holds no octet at ``offset``."""
        assert self.size is not None
        return offset >= self.size

    def read_all(self) -> bytes:
        """The whole file (checked against its size when opened, if it has one)."""
        if self.size is None:
            parts = []
            try:
                while part := os.read(self._fd, _READ_ALL):
                    parts.append(part)
            except OSError as exc:
                raise self._failed(exc) from None
            data = b"".join(parts)
        else:
            data = self.read_at(0, self.size)
        self.check_unchanged()
        return data

    def stream(self) -> BinaryIO:
        """The file from its start as a buffered stream (``tarfile`` mode ``r|*``),
        read through ``read_at`` (``size`` must be known): a read error or a file
        that shrinks is UnreadableExportError with code ``E_EXPORT_READ``."""
        return io.BufferedReader(Sequential(self), _STREAM_BUFFER)

    def check_unchanged(self) -> None:
        """Raise if a regular file's size or modification time is no longer what it
        was when opened (a file still being written, or replaced in place)."""
        if not self._regular:
            return
        try:
            info = os.fstat(self._fd)
        except OSError as exc:
            raise self._failed(exc) from None
        size, mtime = self._stamp
        if info.st_size != size:
            raise self._changed(f"{size} octets when it was opened, now {info.st_size}")
        if info.st_mtime_ns != mtime:
            raise self._changed("it was modified")


class Positioned(Protocol):
    """What reads at offsets: an ArchiveFile, or a compressed one decompressed."""

    def read_at(self, offset: int, count: int) -> bytes: ...


class Sequential(io.RawIOBase):
    """An ArchiveFile (or a Positioned source) read front to back; the file
    descriptor stays the archive's."""

    def __init__(self, archive: Positioned) -> None:
        super().__init__()
        self._archive = archive
        self._offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        data = self._archive.read_at(self._offset, len(view))
        view[: len(data)] = data
        self._offset += len(data)
        return len(data)
