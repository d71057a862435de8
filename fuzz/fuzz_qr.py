"""Fuzz the receipt QR parser: ``parse_qr_payload`` may only raise FormatError.

The input bytes are decoded as UTF-8 (invalid bytes replaced), as a scanner hands
text over; a payload that parses must print back to a text that parses to the same
payload.

    .venv/bin/python -m fuzz.fuzz_qr -runs=100000      # atheris (libFuzzer)
    .venv/bin/python -m fuzz.fuzz_qr --plain 100000    # plain mutator
"""

from __future__ import annotations

from collections.abc import Sequence

from fuzz import driver

with driver.instrumented(__name__ == "__main__"):
    from opentse.formats.qr import parse_qr_payload

from fuzz.seeds import qr_seeds
from opentse.errors import FormatError


def TestOneInput(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    try:
        payload = parse_qr_payload(text)
    except FormatError:
        return
    again = parse_qr_payload(payload.to_text())
    assert again == payload, (text, payload.to_text())


def hot(blob: bytes) -> Sequence[int]:
    """The field separators and their neighbours."""
    return [i for i, b in enumerate(blob) if b == ord(";")]


def seeds() -> list[bytes]:
    return qr_seeds()


if __name__ == "__main__":
    driver.main("qr", TestOneInput, seeds, hot)
