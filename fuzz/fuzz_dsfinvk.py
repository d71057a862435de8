"""Fuzz the DSFinV-K checker: ``check_export`` on a folder or a ZIP returns findings.

An input is a bundle (``dsfinvk_seeds.pack``): a mode byte, then the export's files.
``F`` writes the files into a folder (names reduced to a safe base name), ``Z`` zips
them with ``zipfile`` (names as they are: traversal names stay inside the ZIP), ``R``
takes the rest as the ZIP file's raw bytes. The checker's promise: every problem is a
Finding with a stable code; only a ZIP that cannot be read at all may raise, as
OpenTSEError with an ``E_`` code. Any other exception, a finding without an ``E_``/
``W_`` code, or memory growing by more than 256 MiB (a claimed or real uncompressed
size read into memory) is a finding of the fuzzer.

The plain mutator edits the structure as an auditor's tool meets it: bytes of one
file, truncation, swapped CSV columns, huge numbers, decimal points, files left out,
index.xml attributes, ZIP header sizes, flags, methods and names.

    .venv/bin/python -m fuzz.fuzz_dsfinvk -runs=2000         # atheris (libFuzzer)
    .venv/bin/python -m fuzz.fuzz_dsfinvk --plain 2000       # plain mutator
"""

from __future__ import annotations

import random
import re
import resource
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from fuzz import driver

with driver.instrumented(__name__ == "__main__"):
    from opentse.formats.dsfinvk.check import check_export

from fuzz.dsfinvk_seeds import (
    FOLDER,
    RAW,
    ZIP,
    _patch_flag,
    _patch_method,
    _patch_sizes,
    dsfinvk_seeds,
    pack,
    unpack,
    zip_bytes,
)
from opentse.errors import OpenTSEError

MEMORY_SLACK = 256 << 20  # bytes of peak RSS growth any one input may cause
_CODE = re.compile(r"[EW]_[A-Z0-9_]+")
_BASELINE: list[int] = []


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def TestOneInput(data: bytes) -> None:
    if not _BASELINE:
        _BASELINE.append(_peak())
    mode, files = unpack(data)
    with tempfile.TemporaryDirectory(prefix="fuzz-dsfinvk-") as tmp:
        if mode == FOLDER:
            target = Path(tmp) / "export"
            target.mkdir()
            for name, content in files.items():
                safe = PurePosixPath(name.replace("\\", "/")).name
                fits = len(safe.encode()) <= 200  # a file system name is <= 255 bytes
                if safe and safe not in (".", "..") and "\x00" not in safe and fits:
                    (target / safe).write_bytes(content)
        else:
            target = Path(tmp) / "export.zip"
            named = {n: d for n, d in files.items() if n.split("\x00")[0]}  # ZipInfo cuts at NUL
            target.write_bytes(files[""] if mode == RAW else zip_bytes(named))
        try:
            findings = check_export(target)
        except OpenTSEError as exc:
            assert mode != FOLDER, f"a folder raised {exc.code}"
            assert _CODE.fullmatch(exc.code), exc.code
            return
    for finding in findings:
        assert _CODE.fullmatch(finding.code), finding
        assert str(finding)
    assert _peak() - _BASELINE[0] < MEMORY_SLACK, "memory grew by more than 256 MiB"


_NUMBER_TEXT = re.compile(rb"-?\d+,\d+")
_HUGE = (
    b"9" * 5000,
    b"-" + b"9" * 40 + b",99",
    b"1e999999",
    b"NaN",
    b"Infinity",
    b"\xd9\xa3",  # ARABIC-INDIC DIGIT THREE: isdigit() but not ASCII
    b"\xc2\xb2",  # SUPERSCRIPT TWO
    b"0" * 300 + b"1",
    b"-0,00",
    b"1.000,00",
    b"12.50",
    b"",
)


def _csv_edit(rng: random.Random, content: bytes) -> bytes:
    """A structured edit of one CSV file (or index.xml)."""
    lines = content.split(b"\r\n")
    op = rng.randrange(7)
    if op == 0 and len(lines) > 1:  # swap two columns in every record
        width = max(len(line.split(b";")) for line in lines)
        a, b = rng.randrange(width), rng.randrange(width)
        out = []
        for line in lines:
            cells = line.split(b";")
            if max(a, b) < len(cells):
                cells[a], cells[b] = cells[b], cells[a]
            out.append(b";".join(cells))
        return b"\r\n".join(out)
    if op == 1:  # a number becomes huge, odd or a decimal point
        matches = list(_NUMBER_TEXT.finditer(content))
        if matches:
            m = rng.choice(matches)
            new = rng.choice(_HUGE) if rng.random() < 0.7 else m.group().replace(b",", b".")
            return content[: m.start()] + new + content[m.end() :]
    if op == 2 and len(lines) > 2:  # drop or duplicate a record
        i = rng.randrange(1, len(lines) - 1)
        if rng.random() < 0.5:
            del lines[i]
        else:
            lines.insert(i, lines[i])
        return b"\r\n".join(lines)
    if op == 3:  # a field of some record gets a random value
        i = rng.randrange(len(lines))
        cells = lines[i].split(b";")
        j = rng.randrange(len(cells))
        cells[j] = rng.choice((*_HUGE, b'"', b'"x""', b"\r", b"\n", rng.randbytes(4)))
        lines[i] = b";".join(cells)
        return b"\r\n".join(lines)
    if op == 4:  # index.xml: an attribute value or element text
        spots = list(re.finditer(rb">([^<]{1,40})<", content))
        if spots:
            m = rng.choice(spots)
            new = rng.choice((b"", b"9" * 5000, b"-1", b".", b"&amp;", b"&bad;", b"\xc2\xb2"))
            return content[: m.start(1)] + new + content[m.end(1) :]
    if op == 5:  # LF line ends, or a byte order mark
        return content.replace(b"\r\n", b"\n") if rng.random() < 0.5 else b"\xef\xbb\xbf" + content
    return content[: rng.randrange(len(content) + 1)]  # truncation


def _zip_edit(rng: random.Random, blob: bytes, names: Sequence[str]) -> bytes:
    name = rng.choice(list(names)) if names else "index.xml"
    op = rng.randrange(4)
    if op == 0:
        return _patch_sizes(blob, name, rng.choice((0, 1, 100, 0x7FFFFFFF, 0xFFFFFFFF)))
    if op == 1:
        return _patch_flag(blob, name, rng.choice((0x1, 0x8, 0x40, 0x800)))
    if op == 2:
        return _patch_method(blob, name, rng.choice((1, 6, 9, 12, 14, 99)))
    return driver.mutate(rng, blob, [blob], [])


def mutator(rng: random.Random, data: bytes, corpus: Sequence[bytes], hot: Sequence[int]) -> bytes:
    """Structure-aware edits (see the module text), with byte-level ones between."""
    mode, files = unpack(data)
    if mode == RAW and rng.random() < 0.6:  # most inputs should get past the ZIP
        data = rng.choice([s for s in corpus if s[:1] != RAW] or [data])
        mode, files = unpack(data)
    if mode == RAW:
        return RAW + _zip_edit(rng, files[""], ["index.xml", "lines.csv", "tse.csv", "vat.csv"])
    if not files or rng.random() < 0.1:
        return driver.mutate(rng, data, corpus, hot)
    for _ in range(rng.randint(1, 3)):
        name = rng.choice(sorted(files))
        r = rng.random()
        if r < 0.5:
            files[name] = _csv_edit(rng, files[name])
        elif r < 0.7:
            files[name] = driver.mutate(rng, files[name], list(files.values()), [])
        elif r < 0.8:
            del files[name]
            if not files:
                break
        elif r < 0.9:  # another name: traversal, absolute, case, a folder in front
            new = rng.choice((f"../{name}", f"/{name}", name.upper(), f"x/{name}", f"{name}/"))
            files[new] = files.pop(name)
        else:
            mode = rng.choice((FOLDER, ZIP, RAW))
    if mode == RAW:
        blob = zip_bytes(files)
        return RAW + (_zip_edit(rng, blob, list(files)) if rng.random() < 0.5 else blob)
    return pack(mode, files)


def seeds() -> list[bytes]:
    return dsfinvk_seeds()


if __name__ == "__main__":
    driver.main("dsfinvk", TestOneInput, seeds, mutator=mutator)
