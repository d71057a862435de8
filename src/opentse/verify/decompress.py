"""Compressed exports (``.tar.gz``, ``.tar.bz2``, ``.tar.xz``) decompressed as the
scan reads them, so that they go through the same checks as a plain archive.

``tarfile`` stops at the first end-of-archive blocks and takes a damaged header for
the end: inside a compressed archive a flipped bit in a header, two exports joined
(``cat jan.tar.gz feb.tar.gz``: one multi-member gzip stream of two TARs) or a
CRC that does not match verified as "OK" over a part. ``Decompressed`` hands
``tarscan.scan`` the decompressed TAR window by window (``read_at``, forward only:
the scan never reads before its last window) with the stdlib's incremental
decompressors, whose output per call is bounded: memory is one window and one
decompressor's state, never the archive.

Every stream must end properly (gzip's CRC-32 and length, bzip2's CRCs, xz's
check): a corrupt or truncated stream is ``E_EXPORT_UNREADABLE``, as is data after
the last stream that is neither zeros (padding, as gzip and xz allow) nor another
stream of the same kind (the ``bz2`` and ``lzma`` modules drop such data without a
word). Joined streams are read one after the other, so two joined archives are
refused by the scan as data after the end-of-archive blocks.

A decompression bomb is refused at ``MAX_EXPANSION`` times the compressed size
(at least ``MIN_CAP``): TSE exports decompress to 8-13 times their size; and an xz
or lzma stream that asks its decompressor for more than ``MAX_LZMA_MEMORY``.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib
from pathlib import Path
from typing import BinaryIO, Protocol

from opentse.verify.reading import ArchiveFile, Sequential, UnreadableExportError

MAX_EXPANSION = 200  # decompressed octets per compressed octet, at most
MIN_CAP = 64 << 20  # decompressed octets any archive may have, whatever its size
MAX_LZMA_MEMORY = 128 << 20  # xz -9 needs 65 MiB; an lzma header may ask for 4 GiB
WINDOW = 1 << 16  # decompressed octets per scan window (the scan's is 1 MiB)
_INPUT = 1 << 16  # compressed octets per read
_OUTPUT = 1 << 16  # decompressed octets per decompressor call, at most

# what ``tarfile`` (mode ``r|*``) recognises, and nothing else
_GZIP = b"\x1f\x8b\x08"
_BZIP2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"
_LZMA = b"\x5d\x00\x00\x80"


def compression_of(head: bytes) -> str | None:
    """ "gzip", "bzip2" or "xz" for the first octets of a file compressed so (xz also
    for the older lzma format, as ``tarfile`` reads it), else None."""
    if head.startswith(_GZIP):
        return "gzip"
    if head.startswith(_BZIP2) and head[4:10] == b"1AY&SY":
        return "bzip2"
    if head.startswith((_XZ, _LZMA)):
        return "xz"
    return None


def _starts_stream(kind: str, data: bytes) -> bool:
    if kind == "gzip":
        return data.startswith(_GZIP)
    if kind == "bzip2":
        return data.startswith(_BZIP2)
    return data.startswith(_XZ)  # xz streams may follow each other; lzma ones may not


class _Decoder(Protocol):
    """What ``bz2.BZ2Decompressor`` and ``lzma.LZMADecompressor`` offer."""

    @property
    def eof(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    @property
    def needs_input(self) -> bool: ...
    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class _Gzip:
    """One gzip member through zlib (CRC-32 and length checked at its end), with the
    ``needs_input`` of the other decompressors: zlib keeps input it had no room
    to decompress in ``unconsumed_tail`` instead."""

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip wrapper only
        self._full = False

    @property
    def eof(self) -> bool:
        return self._zlib.eof

    @property
    def unused_data(self) -> bytes:
        return self._zlib.unused_data

    @property
    def needs_input(self) -> bool:
        return not self._full and not self._zlib.unconsumed_tail

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        tail = self._zlib.unconsumed_tail
        out = self._zlib.decompress(tail + data if tail else data, max_length)
        self._full = len(out) == max_length  # more may wait inside zlib
        return out


def _decoder(kind: str) -> _Decoder:
    if kind == "gzip":
        return _Gzip()
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    return lzma.LZMADecompressor(lzma.FORMAT_AUTO, memlimit=MAX_LZMA_MEMORY)


_ZLIB_WORDS = {  # what zlib says at a gzip member's end, in words that say why
    "incorrect data check": "its CRC-32 does not match the data: incorrect data check",
    "incorrect length check": "its length field does not match the data: incorrect length check",
}


def _size_words(octets: int) -> str:
    if octets >= 1 << 20:
        return f"{octets / (1 << 20):.0f} MiB"
    return f"{octets} octets"


class Decompressed:
    """The decompressed TAR of a compressed archive (an open file, or octets read
    whole from a pipe), read forward: ``read_at(offset, count)`` with offsets that
    never go back before the last read's, ``ends_by(offset)``. Every failure is
    UnreadableExportError: ``E_EXPORT_UNREADABLE`` for a corrupt, truncated or
    bomb-like stream, ``E_EXPORT_READ`` when the file fails while it is read."""

    def __init__(self, path: Path, kind: str, source: ArchiveFile | bytes) -> None:
        self.path = path
        self.kind = kind
        self._source = source
        if isinstance(source, ArchiveFile):
            assert source.size is not None
            self.compressed_size = source.size
        else:
            self.compressed_size = len(source)
        self.cap = max(MIN_CAP, MAX_EXPANSION * self.compressed_size)
        self.window = WINDOW  # what tarscan.scan reads at a time from this source
        self._read = 0  # compressed octets read
        self._pending = b""  # compressed octets read, not yet given to a decoder
        self._decoder = _decoder(kind)
        self._buf = bytearray()  # decompressed octets from offset _start on
        self._start = 0
        self._out = 0  # decompressed octets so far (_start + len(_buf) once read)
        self._done = False  # the last stream ended and the file with it

    def again(self) -> Decompressed:
        """The same archive from its start (for ``tarfile``, after the scan)."""
        return Decompressed(self.path, self.kind, self._source)

    def stream(self) -> BinaryIO:
        """The decompressed TAR as a buffered stream (of a fresh instance, ``again``:
        it reads from offset 0)."""
        return io.BufferedReader(Sequential(self), 1 << 16)

    def read_at(self, offset: int, count: int) -> bytes:
        """``count`` decompressed octets from ``offset`` (not before the last read's
        offset); fewer only where the decompressed archive ends."""
        if offset < self._start:
            raise RuntimeError("Decompressed reads forward only")
        while True:
            drop = offset - self._start
            if drop <= len(self._buf):
                del self._buf[:drop]
                self._start = offset
                break
            self._start += len(self._buf)
            self._buf.clear()
            if not self._more():
                return b""  # it ends before offset
        while len(self._buf) < count and self._more():
            pass
        return bytes(self._buf[:count])

    def ends_by(self, offset: int) -> bool:
        """Whether the decompressed archive holds no octet at ``offset`` or after
        (decompresses ahead as far as needed to know)."""
        while self._out <= offset:
            if not self._more():
                return True
        return False

    def drain(self) -> None:
        """Decompress the rest, so that every stream's check and the end of the file
        are checked (after ``tarfile`` stopped at the end-of-archive blocks)."""
        while self._more():
            self._start += len(self._buf)
            self._buf.clear()

    def _more(self) -> bool:
        """Append decompressed octets to ``_buf``; False once everything is."""
        while not self._done:
            decoder = self._decoder
            if decoder.eof:
                self._next_stream(decoder.unused_data)
                continue
            if decoder.needs_input:
                data, self._pending = self._pending or self._input(), b""
                if not data:
                    raise self._error(
                        f"the {self.kind} stream ends at octet {self._read} before its "
                        "end (cut short, a copy not finished?)"
                    )
            else:
                data = b""
            try:
                out = decoder.decompress(data, _OUTPUT)
            except (zlib.error, OSError, EOFError, lzma.LZMAError) as exc:
                raise self._corrupt(exc) from None
            if out:
                self._out += len(out)
                if self._out > self.cap:
                    raise self._error(
                        f"it decompresses to more than {_size_words(self.cap)}, the "
                        "verifier's cap against decompression bombs (MAX_EXPANSION: "
                        f"{MAX_EXPANSION} times the file's {self.compressed_size} octets, "
                        f"at least {_size_words(MIN_CAP)}); TSE exports decompress to "
                        "about 10 times their size"
                    )
                self._buf += out
                return True
        return False

    def _next_stream(self, rest: bytes) -> None:
        """After a stream's end: zeros (padding) to the end of the file, or another
        stream of the same kind (joined archives: the scan judges what they hold)."""
        while True:
            rest = rest.lstrip(b"\0")
            if len(rest) >= 6:
                break
            more = self._input()
            if not more:
                if not rest:
                    self._done = True
                    return
                break
            rest += more
        if not _starts_stream(self.kind, rest):
            at = self._read - len(rest)
            raise self._error(
                f"the {self.kind} stream ends at octet {at}, and what follows is no "
                f"{self.kind} stream (another archive appended, as `cat a.tar.gz "
                "b.tar` makes?): it would go unverified; give each export as its own "
                "file (opentse verify a.tar.gz b.tar)"
            )
        self._decoder = _decoder(self.kind)
        self._pending = rest

    def _input(self) -> bytes:
        start = self._read
        if isinstance(self._source, ArchiveFile):
            data = self._source.read_at(start, _INPUT)
        else:
            data = self._source[start : start + _INPUT]
        self._read += len(data)
        return data

    def _corrupt(self, exc: Exception) -> UnreadableExportError:
        why = str(exc).removeprefix("Error -3 while decompressing data: ")
        why = _ZLIB_WORDS.get(why, why)
        if isinstance(exc, lzma.LZMAError) and "memory usage limit" in why.lower():
            return self._error(
                f"its {self.kind} stream asks for more than {_size_words(MAX_LZMA_MEMORY)} "
                "of memory to decompress, the verifier's cap against decompression "
                "bombs (MAX_LZMA_MEMORY; xz -9 asks for 65 MiB)"
            )
        return self._error(
            f"the {self.kind} data is damaged ({why}; found by octet {self._read} of "
            "the file): a damaged copy?"
        )

    def _error(self, why: str) -> UnreadableExportError:
        if isinstance(self._source, ArchiveFile):
            self._source.check_unchanged()  # a file being written says that instead
        return UnreadableExportError(f"{self.path}: not a readable TAR archive ({why})")
