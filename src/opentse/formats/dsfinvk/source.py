"""The files of a DSFinV-K export, from a folder or a ZIP, read with care.

An export comes from outside (a shop, a tax adviser, a USB stick): a ZIP member may be
encrypted, cut short, compressed by an unknown method or a ZIP bomb. Every such fault
becomes ``FormatError(code="E_EXPORT_ZIP")`` naming the member, never a traceback or a
full memory. An export folder zipped with its folder name is read as well.
"""

from __future__ import annotations

import lzma
import zipfile
import zlib
from collections.abc import Collection
from pathlib import Path

from opentse.errors import FormatError
from opentse.formats.dsfinvk.indexxml import INDEX_NAME

MAX_FILE_SIZE = 2**31  # one CSV file of an export; guards against ZIP bombs
#: a member over BOMB_SIZE that inflates more than BOMB_RATIO times is refused: CSV
#: rows with their ids and times compress 5-30 times, zeros 1,000 times
BOMB_SIZE, BOMB_RATIO = 64 << 20, 200
#: what zipfile raises for a member it cannot give: bad CRC or data, encrypted
#: (RuntimeError), unknown method (NotImplementedError), cut short (EOFError)
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    OSError,
    EOFError,
    RuntimeError,
    NotImplementedError,
    ValueError,
)


class ExportSource:
    """The files of an export: a folder or a ZIP."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        self.prefix = ""
        # sizes (inflated, compressed) of the members read so far: the bomb rule
        # counts them together, a bomb split into members under BOMB_SIZE is one too
        self.taken: dict[str, tuple[int, int]] = {}
        if path.is_file():
            self.zip = zipfile.ZipFile(path)
            names = self.zip.namelist()
            if INDEX_NAME not in names:  # an export folder zipped with its folder name
                nested = [n for n in names if n.endswith("/" + INDEX_NAME)]
                if len(nested) == 1:
                    self.prefix = nested[0][: -len(INDEX_NAME)]

    def read(self, name: str) -> bytes | None:
        if self.zip is not None:
            try:
                info = self.zip.getinfo(self.prefix + name)
            except KeyError:
                return None
            if info.file_size > MAX_FILE_SIZE:
                raise FormatError(f"{name}: larger than {MAX_FILE_SIZE} bytes", code="E_EXPORT_ZIP")
            if info.file_size > BOMB_SIZE and info.file_size > BOMB_RATIO * info.compress_size:
                raise FormatError(
                    f"{name}: {info.file_size} bytes from {info.compress_size} compressed "
                    "(a ZIP bomb, not a CSV file)",
                    code="E_EXPORT_ZIP",
                )
            self.taken[name] = (info.file_size, info.compress_size)
            inflated = sum(size for size, _ in self.taken.values())
            compressed = sum(size for _, size in self.taken.values())
            if inflated > BOMB_SIZE and inflated > BOMB_RATIO * compressed:
                raise FormatError(
                    f"{name}: the members read so far inflate to {inflated} bytes from "
                    f"{compressed} compressed (a ZIP bomb split into members)",
                    code="E_EXPORT_ZIP",
                )
            try:
                # zipfile stops at the declared size: a member that inflates to more
                # fails its CRC instead of filling the memory
                with self.zip.open(info) as member:
                    return member.read(info.file_size)
            except ZIP_ERRORS as exc:  # encrypted, unknown method, cut short, bad CRC
                raise FormatError(
                    f"{name}: cannot be read from the ZIP ({exc})", code="E_EXPORT_ZIP"
                ) from None
        file = self.path / name
        return file.read_bytes() if file.is_file() else None

    def undeclared(self, known: Collection[str]) -> list[str]:
        """The files of the export whose names (inside a zipped export folder: below
        it) are not in ``known``, sorted; a ZIP names them as the ZIP does."""
        if self.zip is not None:
            names = [n for n in self.zip.namelist() if not n.endswith("/")]
            inside = {n: n.removeprefix(self.prefix) for n in names}
        else:
            files = [p.relative_to(self.path).as_posix() for p in self.path.rglob("*")]
            inside = {n: n for n in files if (self.path / n).is_file()}
        return sorted(name for name, local in inside.items() if local not in known)

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def looks_zip(path: Path) -> bool:
    """Whether a file starts like a ZIP (a local file header), so that one zipfile
    cannot open was cut short or damaged rather than something else."""
    try:
        with path.open("rb") as file:
            return file.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def looks_tar(path: Path) -> bool:
    """Whether a file has a POSIX ustar header (``ustar`` at offset 257): a TSE's TAR
    export given where the DSFinV-K export belongs."""
    try:
        with path.open("rb") as file:
            return file.read(262)[257:262] == b"ustar"
    except OSError:
        return False
