"""Fuzz the log message reader: ``decode_log_message`` may only raise FormatError.

.venv/bin/python -m fuzz.fuzz_der -runs=100000      # atheris (libFuzzer)
.venv/bin/python -m fuzz.fuzz_der --plain 100000    # plain mutator
"""

from __future__ import annotations

from collections.abc import Sequence

from fuzz import driver

with driver.instrumented(__name__ == "__main__"):
    from opentse.tr03151.codec import decode_log_message

from fuzz.seeds import log_seeds
from opentse.errors import FormatError


def TestOneInput(data: bytes) -> None:
    try:
        msg = decode_log_message(data)
    except FormatError:
        return
    # what decodes must be self-consistent: the signed part lies inside the input
    assert msg.signed_data is None or msg.signed_data in data


def hot(blob: bytes) -> Sequence[int]:
    """Tag and length bytes of the top-level element and its first children."""
    return list(range(min(len(blob), 48)))


def seeds() -> list[bytes]:
    return log_seeds()


if __name__ == "__main__":
    driver.main("der", TestOneInput, seeds, hot)
