"""Minimal hand-written DER writer and a tolerant BER/DER TLV reader (X.690).

Why not a library: the encoder sits on the signing hot path of every transaction and
TR-03151 needs only a handful of types; the reader must hand back the *exact* bytes of
every element, because a signature covers them as written (D-Trust writes processData
as BER constructed indefinite length ``a2 80 04 LL .. 00 00``; never re-encode).

Writer: plain functions returning complete TLV bytes (``integer(5)`` -> ``02 01 05``).
Reader: :func:`read_element` / :func:`read_elements` return :class:`Element` objects
with ``content`` (the bytes between header and end, EOC excluded) and ``raw`` (header
+ content + EOC exactly as in the input). Everything malformed raises
``FormatError(code="E_DER")``; the reader never lets an IndexError escape.
"""

from __future__ import annotations

import calendar
import re
import time

from opentse.errors import FormatError

# X.690 8.1.2: identifier octet = class (2 bits) | constructed (1 bit) | number (5 bits)
UNIVERSAL = 0
APPLICATION = 1
CONTEXT = 2
PRIVATE = 3

TAG_BOOLEAN = 0x01
TAG_INTEGER = 0x02
TAG_OCTET_STRING = 0x04
TAG_OID = 0x06
TAG_ENUMERATED = 0x0A
TAG_UTF8_STRING = 0x0C
TAG_PRINTABLE_STRING = 0x13
TAG_UTC_TIME = 0x17
TAG_GENERALIZED_TIME = 0x18
TAG_SEQUENCE = 0x30

MAX_DEPTH = 32  # nesting limit of the reader (fuzzed input must not hit RecursionError)

_SHORT_LENGTHS = tuple(bytes((n,)) for n in range(128))


def _error(message: str) -> FormatError:
    return FormatError(message, code="E_DER")


# --------------------------------------------------------------------------- writer


def length(n: int) -> bytes:
    """Definite length octets (X.690 8.1.3, DER: shortest form)."""
    if n < 128:
        return _SHORT_LENGTHS[n]
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, content: bytes) -> bytes:
    """One element with a single identifier octet ``tag`` (covers every tag we write)."""
    n = len(content)
    if n < 128:
        return bytes((tag, n)) + content
    return bytes((tag,)) + length(n) + content


def integer_content(value: int) -> bytes:
    """Minimal two's complement content octets of an INTEGER (X.690 8.3)."""
    if value >= 0:
        return value.to_bytes(value.bit_length() // 8 + 1, "big")
    return value.to_bytes((value + 1).bit_length() // 8 + 1, "big", signed=True)


def integer(value: int, tag: int = TAG_INTEGER) -> bytes:
    if 0 <= value < 128:
        return bytes((tag, 1, value))
    return tlv(tag, integer_content(value))


def boolean(value: bool, tag: int = TAG_BOOLEAN) -> bytes:
    """DER BOOLEAN: TRUE is ``ff`` (X.690 11.1)."""
    return bytes((tag, 1, 0xFF if value else 0x00))


def octet_string(value: bytes, tag: int = TAG_OCTET_STRING) -> bytes:
    return tlv(tag, value)


def printable_string(value: str, tag: int = TAG_PRINTABLE_STRING) -> bytes:
    """Caller validates the character set (see :func:`is_printable`)."""
    return tlv(tag, value.encode("ascii"))


def utf8_string(value: str, tag: int = TAG_UTF8_STRING) -> bytes:
    return tlv(tag, value.encode("utf-8"))


def sequence(*parts: bytes, tag: int = TAG_SEQUENCE) -> bytes:
    return tlv(tag, b"".join(parts))


def context(number: int, content: bytes, constructed: bool = False) -> bytes:
    """Implicitly tagged ``[number]`` (number < 31)."""
    if not 0 <= number < 31:
        raise ValueError("context tag number out of range")
    return tlv(0x80 | (0x20 if constructed else 0) | number, content)


def oid_content(dotted: str) -> bytes:
    """Content octets of an OBJECT IDENTIFIER (X.690 8.19)."""
    try:
        arcs = [int(a) for a in dotted.split(".")]
    except ValueError:
        raise ValueError(f"not a dotted OID: {dotted!r}") from None
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39) or min(arcs) < 0:
        raise ValueError(f"not a valid OID: {dotted!r}")
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


def oid(dotted: str) -> bytes:
    return tlv(TAG_OID, oid_content(dotted))


def utc_time_text(unix: int) -> str:
    """UTCTime ``YYMMDDhhmmssZ`` (X.680 47; DER: seconds and Z); years 1950..2049."""
    t = time.gmtime(unix)
    if not 1950 <= t.tm_year <= 2049:
        raise ValueError("UTCTime covers only the years 1950..2049")
    return "%02d%02d%02d%02d%02d%02dZ" % (  # noqa: UP031 - faster than strftime
        t.tm_year % 100,
        t.tm_mon,
        t.tm_mday,
        t.tm_hour,
        t.tm_min,
        t.tm_sec,
    )


def generalized_time_text(unix: int) -> str:
    """GeneralizedTime ``YYYYMMDDhhmmssZ`` (DER: Z, no fraction when it is zero)."""
    t = time.gmtime(unix)
    if not 0 < t.tm_year <= 9999:
        raise ValueError("GeneralizedTime covers only the years 1..9999")
    return "%04d%02d%02d%02d%02d%02dZ" % (  # noqa: UP031
        t.tm_year,
        t.tm_mon,
        t.tm_mday,
        t.tm_hour,
        t.tm_min,
        t.tm_sec,
    )


def utc_time(unix: int, tag: int = TAG_UTC_TIME) -> bytes:
    return tlv(tag, utc_time_text(unix).encode("ascii"))


def generalized_time(unix: int, tag: int = TAG_GENERALIZED_TIME) -> bytes:
    return tlv(tag, generalized_time_text(unix).encode("ascii"))


# X.680 41.4 PrintableString: A-Z a-z 0-9 space ' ( ) + , - . / : = ?
_PRINTABLE = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]*")


def is_printable(text: str) -> bool:
    """True when ``text`` uses only PrintableString characters (X.680 41.4)."""
    return _PRINTABLE.fullmatch(text) is not None


# --------------------------------------------------------------------------- reader


class Element:
    """One TLV as read. ``content`` excludes header (and EOC for indefinite length);
    ``raw`` is the element exactly as it stands in the input."""

    __slots__ = (
        "_data",
        "constructed",
        "content",
        "end",
        "indefinite",
        "start",
        "tag",
        "tag_class",
        "tag_number",
    )

    def __init__(
        self,
        tag: int,
        tag_class: int,
        constructed: bool,
        tag_number: int,
        content: bytes,
        data: bytes,
        start: int,
        end: int,
        indefinite: bool,
    ) -> None:
        self.tag = tag  # first identifier octet (enough for every tag below 31)
        self.tag_class = tag_class
        self.constructed = constructed
        self.tag_number = tag_number
        self.content = content
        self._data = data
        self.start = start  # offsets into the buffer the element was read from
        self.end = end
        self.indefinite = indefinite

    @property
    def raw(self) -> bytes:
        return self._data[self.start : self.end]

    def __repr__(self) -> str:
        return (
            f"Element(tag=0x{self.tag:02x}, len={len(self.content)}, indefinite={self.indefinite})"
        )

    def is_context(self, number: int) -> bool:
        return self.tag_class == CONTEXT and self.tag_number == number

    def children(self, depth: int = 0) -> list[Element]:
        """The elements inside a constructed element."""
        if not self.constructed:
            raise _error(f"element 0x{self.tag:02x} is primitive, expected constructed")
        return read_elements(self.content, depth=depth + 1)

    def string_value(self, depth: int = 0) -> bytes:
        """Content of a string type, joining BER constructed segments (X.690 8.7.3)."""
        if not self.constructed:
            return self.content
        if depth >= MAX_DEPTH:
            raise _error("string segments nested too deeply")
        return b"".join(child.string_value(depth + 1) for child in self.children(depth))


def read_element(data: bytes, offset: int = 0, depth: int = 0) -> tuple[Element, int]:
    """Read the element starting at ``offset``; returns it and the offset after it.

    Accepts BER indefinite length for constructed elements and long-form lengths;
    rejects reserved forms. Raises FormatError(code="E_DER") on anything malformed.
    """
    if depth > MAX_DEPTH:
        raise _error("elements nested too deeply")
    end_of_data = len(data)
    pos = offset
    if pos >= end_of_data:
        raise _error("truncated: expected an identifier octet")
    first = data[pos]
    pos += 1
    tag_class = first >> 6
    constructed = bool(first & 0x20)
    number = first & 0x1F
    if number == 0x1F:  # high tag number form (X.690 8.1.2.4)
        number = 0
        for _ in range(4):
            if pos >= end_of_data:
                raise _error("truncated in a high tag number")
            b = data[pos]
            pos += 1
            number = (number << 7) | (b & 0x7F)
            if not b & 0x80:
                break
        else:
            raise _error("tag number too large")
    if pos >= end_of_data:
        raise _error("truncated: expected length octets")
    first_len = data[pos]
    pos += 1
    if first_len < 0x80:
        content_end = pos + first_len
        if content_end > end_of_data:
            raise _error(f"truncated: element 0x{first:02x} needs {first_len} bytes")
        content = data[pos:content_end]
        return (
            Element(
                first,
                tag_class,
                constructed,
                number,
                content,
                data,
                offset,
                content_end,
                False,
            ),
            content_end,
        )
    if first_len == 0x80:  # indefinite length (X.690 8.1.3.6), constructed only
        if not constructed:
            raise _error("indefinite length on a primitive element")
        content_start = pos
        while True:
            if pos + 2 > end_of_data:
                raise _error("truncated: missing end-of-contents octets")
            if data[pos] == 0 and data[pos + 1] == 0:
                break
            _, pos = read_element(data, pos, depth + 1)
        content = data[content_start:pos]
        end = pos + 2
        return (
            Element(first, tag_class, constructed, number, content, data, offset, end, True),
            end,
        )
    if first_len == 0xFF:
        raise _error("reserved length octet 0xff")
    count = first_len & 0x7F
    if count > 4:
        raise _error("length field too long")
    if pos + count > end_of_data:
        raise _error("truncated in length octets")
    size = int.from_bytes(data[pos : pos + count], "big")
    pos += count
    content_end = pos + size
    if content_end > end_of_data:
        raise _error(f"truncated: element 0x{first:02x} needs {size} bytes")
    return (
        Element(
            first,
            tag_class,
            constructed,
            number,
            data[pos:content_end],
            data,
            offset,
            content_end,
            False,
        ),
        content_end,
    )


def read_elements(data: bytes, depth: int = 0) -> list[Element]:
    """Every element of a run of TLVs that fills ``data`` exactly."""
    out: list[Element] = []
    pos = 0
    end = len(data)
    while pos < end:
        element, pos = read_element(data, pos, depth)
        out.append(element)
    return out


def read_single(data: bytes) -> Element:
    """Exactly one element filling ``data`` (no trailing bytes)."""
    element, end = read_element(data, 0)
    if end != len(data):
        raise _error(f"{len(data) - end} trailing bytes after the element")
    return element


# No INTEGER of a log message is longer than a few octets (counters, numbers, times);
# a crafted one of thousands would become a number Python refuses to print (over
# 4,300 digits), a traceback in the verifier instead of a finding.
MAX_INTEGER_OCTETS = 64


def decode_integer(content: bytes) -> int:
    """INTEGER content; tolerates non-minimal encodings (BER) but not empty content,
    nor one over MAX_INTEGER_OCTETS."""
    if not content:
        raise _error("empty INTEGER")
    if len(content) > MAX_INTEGER_OCTETS:
        raise _error(
            f"INTEGER of {len(content)} octets (no TR-03151 field holds more than "
            f"{MAX_INTEGER_OCTETS})"
        )
    return int.from_bytes(content, "big", signed=True)


def decode_boolean(content: bytes) -> bool:
    if len(content) != 1:
        raise _error("BOOLEAN must have one content octet")
    return content != b"\x00"


_OID_CACHE: dict[bytes, str] = {}


def decode_oid(content: bytes) -> str:
    """Dotted form of OBJECT IDENTIFIER content octets (cached: log OIDs repeat)."""
    cached = _OID_CACHE.get(content)
    if cached is not None:
        return cached
    dotted = _decode_oid(content)
    if len(_OID_CACHE) < 256:
        _OID_CACHE[content] = dotted
    return dotted


def _decode_oid(content: bytes) -> str:
    if not content or content[-1] & 0x80:
        raise _error("malformed OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for b in content:
        if value == 0 and b == 0x80:
            raise _error("non-minimal OBJECT IDENTIFIER arc")
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])


def decode_text(content: bytes, what: str) -> str:
    """A character string as text (PrintableString is a subset of ASCII; we read UTF-8
    so that a vendor's slightly wrong string is still shown rather than refused)."""
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        raise _error(f"{what} is not valid text") from None


_UTC_RE = re.compile(rb"(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)?(Z|[+-]\d\d\d\d)")
_GEN_RE = re.compile(rb"(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)?(\d\d)?([.,]\d+)?(Z|[+-]\d\d\d\d)?")


def _to_unix(
    year: int, month: int, day: int, hour: int, minute: int, second: int, zone: bytes | None
) -> int:
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        raise _error("invalid date in a time value")
    if hour > 23 or minute > 59 or second > 60:
        raise _error("invalid time of day in a time value")
    unix = calendar.timegm((year, month, day, hour, minute, min(second, 59), 0, 0, 0))
    if zone and zone != b"Z":
        sign = 1 if zone[:1] == b"+" else -1
        hh, mm = int(zone[1:3]), int(zone[3:5])
        if hh > 23 or mm > 59:
            raise _error("invalid time zone offset")
        unix -= sign * (hh * 3600 + mm * 60)
    return unix


def decode_utc_time(content: bytes) -> int:
    """UTCTime -> whole Unix seconds (X.680 47; YY < 50 is 20YY, as RFC 5280 says)."""
    match = _UTC_RE.fullmatch(content)
    if match is None:
        raise _error(f"malformed UTCTime {content[:20]!r}")
    yy, mo, dd, hh, mi, ss, zone = match.groups()
    year = int(yy) + (2000 if int(yy) < 50 else 1900)
    return _to_unix(year, int(mo), int(dd), int(hh), int(mi), int(ss or b"0"), zone)


def decode_generalized_time(content: bytes) -> int:
    """GeneralizedTime -> whole Unix seconds (fraction dropped; local time read as UTC)."""
    match = _GEN_RE.fullmatch(content)
    if match is None:
        raise _error(f"malformed GeneralizedTime {content[:24]!r}")
    yyyy, mo, dd, hh, mi, ss, _fraction, zone = match.groups()
    year = int(yyyy)
    if year < 1:
        raise _error("year 0 in GeneralizedTime")
    return _to_unix(year, int(mo), int(dd), int(hh), int(mi or b"0"), int(ss or b"0"), zone)
