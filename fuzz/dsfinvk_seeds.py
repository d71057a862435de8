"""Seeds of the DSFinV-K harness: exports opentse makes from real books.

A real installation (embedded TSE, P-256, and a second one brainpoolP384r1 with
generalizedTime), a register with its books, sales (cash, card, mixed VAT, a foreign
currency, a training receipt, a cancellation), a restaurant order (Bestellung-V1),
two closed days; exported by ``formats.dsfinvk.export``. Each export is one bundle
(see ``fuzz_dsfinvk``): the export's files as a folder, as a ZIP our writer made,
and raw ZIP bytes with hostile entries (a bomb that lies about its size, absurd
claimed sizes, traversal names, an encrypted and an unknown-method entry).
"""

from __future__ import annotations

import functools
import io
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

#: bundle modes (first byte of an input)
FOLDER, ZIP, RAW = b"F", b"Z", b"R"
SEP_FILE, SEP_NAME = b"\x1e", b"\x1f"


def pack(mode: bytes, files: dict[str, bytes]) -> bytes:
    """One input: the mode byte, then ``name \\x1f content`` entries joined by \\x1e."""
    return mode + SEP_FILE.join(n.encode() + SEP_NAME + d for n, d in files.items())


def unpack(data: bytes) -> tuple[bytes, dict[str, bytes]]:
    """The inverse of ``pack``, lenient: any bytes give some mode and some files."""
    if not data:
        return FOLDER, {}
    mode = (FOLDER, ZIP, RAW)[data[0] % 3] if data[:1] not in (FOLDER, ZIP, RAW) else data[:1]
    if mode == RAW:
        return RAW, {"": data[1:]}
    files: dict[str, bytes] = {}
    for part in data[1:].split(SEP_FILE):
        name, _sep, content = part.partition(SEP_NAME)
        files[name.decode("utf-8", errors="replace")] = content
    return mode, files


def zip_bytes(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buf.getvalue()


@functools.cache
def own_exports() -> tuple[dict[str, bytes], ...]:
    """The files of two DSFinV-K exports made from a register's books."""
    from opentse.installation import Installation

    out = []
    with tempfile.TemporaryDirectory() as tmp, Installation.open(Path(tmp) / "data") as inst:
        for i, (curve, fmt) in enumerate(
            (("P-256", "unixTime"), ("brainpoolP384r1", "generalizedTime"))
        ):
            out.append(_one_export(inst, Path(tmp), i, curve, fmt))
    return tuple(out)


def _one_export(inst: object, tmp: Path, i: int, curve: str, fmt: str) -> dict[str, bytes]:
    from opentse.formats.dsfinvk.export import write_export
    from opentse.formats.dsfinvk.model import CashRegister, Company, Location
    from opentse.register import EmbeddedBackend, OutageLog, Register, RegisterConfig, Sale, Seller
    from opentse.register.books import Books, MasterData
    from opentse.register.zreport import close_day
    from opentse.testing import ready_tse

    client, tse_id = f"KASSE-FUZZ-{i}", f"tse-fuzz-{i}"
    service = inst.service  # type: ignore[attr-defined]
    ready_tse(service, tse_id, client_id=client, curve=curve, time_format=fmt, logout=True)
    master = MasterData(
        Company("Fuzz GmbH", "Weg 1", "12345", "Ort", vat_id="DE123456789"),
        Location("Fuzz", "Weg 1", "12345", "Ort"),
        CashRegister(client),
        tse_id,
    )
    books, journal = Books(":memory:"), OutageLog(":memory:")
    register = Register(
        EmbeddedBackend(service, tse_id),
        RegisterConfig(Seller("Fuzz", ("Weg 1", "12345 Ort")), client),
        journal,
        books=books,
    )
    register.connect()
    try:
        cash = Sale()
        cash.add_line("Brot", 1, "3.20", 2)
        cash.add_line('Wein "rot"; trocken', 1, "8.99", 1)
        cash.add_payment("cash", cash.total)
        register.sell(cash)
        mixed = Sale()
        mixed.add_line("Kaffee", 3, "2.45", 1)
        mixed.add_line("Brötchen", 7, "0.39", 2)
        mixed.add_line("Briefmarke", 1, "0.95", 6)
        mixed.add_discount("Treue", "0.50", 1)
        mixed.add_payment("card", "5.00")
        mixed.add_payment("cash", mixed.total - 5)
        register.sell(mixed)
        close_day(register, books, master, "12.19")
        foreign = Sale()
        foreign.add_line("Souvenir", 1, "15.00", 1)
        foreign.add_payment("cash", "20.00", currency="USD", amount_eur="15.00")
        register.sell(foreign)
        training = Sale("AVTraining")
        training.add_line("Kaffee", 1, "2.45", 1)
        training.add_payment("cash", "2.45")
        register.sell(training)
        register.sell(cash.storno())
        order = Sale()
        order.add_line("Schnitzel", 2, "14.50", 1)
        register.order(order)
        close_day(register, books, master, "0.00")
        folder = write_export([d.closing for d in books.closed_days()], tmp / f"export{i}")
        return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
    finally:
        books.close_file()
        journal.close()


def hostile_zips(files: dict[str, bytes]) -> list[bytes]:
    """Raw ZIPs of an export's files with one hostile entry each."""
    out = []
    # a bomb: lines.csv claims 100 bytes but inflates to 16 MiB
    bomb = _patch_sizes(zip_bytes({**files, "lines.csv": bytes(16 << 20)}), "lines.csv", 100)
    out.append(bomb)
    # absurd claimed sizes (4 GiB - 1) in the local and central headers
    out.append(_patch_sizes(zip_bytes(files), "transactions.csv", 0xFFFFFFFF))
    # traversal and absolute names, an export zipped inside a folder of such a name
    out.append(zip_bytes({f"../../{n}": d for n, d in files.items()}))
    out.append(zip_bytes({"/abs/index.xml": files["index.xml"], **files}))
    out.append(zip_bytes({f"export/{n}": d for n, d in files.items()}, zipfile.ZIP_STORED))
    # an entry flagged encrypted, and one with an unknown compression method
    out.append(_patch_flag(zip_bytes(files), "index.xml", flag=0x1))
    out.append(_patch_method(zip_bytes(files), "vat.csv", method=99))
    out.append(_patch_method(zip_bytes(files), "tse.csv", method=zipfile.ZIP_LZMA))
    return out


def _headers(blob: bytes, name: str) -> list[tuple[int, int]]:
    """(offset, kind) of the local (0) and central (1) headers of ``name``."""
    found = []
    raw = name.encode()
    for kind, magic, name_at in ((0, b"PK\x03\x04", 30), (1, b"PK\x01\x02", 46)):
        start = 0
        while (at := blob.find(magic, start)) >= 0:
            start = at + 4
            n = struct.unpack_from("<H", blob, at + (26 if kind == 0 else 28))[0]
            if blob[at + name_at : at + name_at + n] == raw:
                found.append((at, kind))
    return found


def _patch_sizes(blob: bytes, name: str, size: int) -> bytes:
    buf = bytearray(blob)
    for at, kind in _headers(blob, name):
        struct.pack_into("<I", buf, at + (22 if kind == 0 else 24), size)
    return bytes(buf)


def _patch_flag(blob: bytes, name: str, flag: int) -> bytes:
    buf = bytearray(blob)
    for at, kind in _headers(blob, name):
        where = at + (6 if kind == 0 else 8)
        struct.pack_into("<H", buf, where, struct.unpack_from("<H", buf, where)[0] | flag)
    return bytes(buf)


def _patch_method(blob: bytes, name: str, method: int) -> bytes:
    buf = bytearray(blob)
    for at, kind in _headers(blob, name):
        struct.pack_into("<H", buf, at + (8 if kind == 0 else 10), method)
    return bytes(buf)


def dsfinvk_seeds() -> list[bytes]:
    seeds = []
    for files in own_exports():
        seeds.append(pack(FOLDER, files))
        seeds.append(pack(ZIP, files))
        seeds.append(RAW + zip_bytes(files))
    seeds += [RAW + z for z in hostile_zips(own_exports()[0])]
    seeds.append(RAW + zlib.compress(b"not a zip"))
    return seeds
