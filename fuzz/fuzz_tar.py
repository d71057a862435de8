"""Fuzz the TAR reader: ``iter_members`` plus ``parse_log_filename`` on every member
name may only raise FormatError (E_TAR_FORMAT, E_TAR_UNSAFE_MEMBER, ...).

    .venv/bin/python -m fuzz.fuzz_tar -runs=100000      # atheris (libFuzzer)
    .venv/bin/python -m fuzz.fuzz_tar --plain 100000    # plain mutator
"""

from __future__ import annotations

import io

from fuzz import driver

with driver.instrumented(__name__ == "__main__"):
    from opentse.formats.tar import iter_members, parse_log_filename

from fuzz.seeds import tar_hot_offsets, tar_seeds
from opentse.errors import FormatError

MAX_MEMBER = 1 << 20


def TestOneInput(data: bytes) -> None:
    try:
        for member in iter_members(io.BytesIO(data), max_member_size=MAX_MEMBER):
            # the reader's promise: no unsafe names get through
            assert not member.name.startswith("/") and ".." not in member.name.split("/")
            assert len(member.data) <= MAX_MEMBER
            parse_log_filename(member.name)
    except FormatError:
        return


def seeds() -> list[bytes]:
    return tar_seeds()


if __name__ == "__main__":
    driver.main("tar", TestOneInput, seeds, tar_hot_offsets)
