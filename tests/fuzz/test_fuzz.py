"""Short CI run of the fuzz harnesses in fuzz/ (the long run is in docs/proof.md).

Each harness gets its seeds (vendor exports when ../shared/testdata is present, our
own exports always) and 2,000 mutated inputs from the deterministic plain mutator;
the only exception a reader may raise is FormatError. When atheris is installed, a
short coverage-guided libFuzzer run of each harness also runs in a subprocess.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fuzz import driver  # noqa: E402

HARNESSES = ["fuzz_der", "fuzz_tar", "fuzz_qr", "fuzz_dsfinvk", "fuzz_verify", "fuzz_processdata"]
#: inputs per harness in CI: each of the slower end-to-end harnesses stays under ~20 s
#: on a loaded 2-core machine (OPENTSE_FUZZ_INPUTS sets one count for all)
CI_INPUTS = {"fuzz_dsfinvk": 1000, "fuzz_verify": 800}
ATHERIS_RUNS = {"fuzz_dsfinvk": 1000, "fuzz_verify": 300}


def inputs(name: str) -> int:
    return int(os.environ.get("OPENTSE_FUZZ_INPUTS", CI_INPUTS.get(name, 2000)))


@pytest.mark.parametrize("name", HARNESSES)
def test_plain_mutator_finds_nothing(name: str) -> None:
    harness = importlib.import_module(f"fuzz.{name}")
    seeds = harness.seeds()
    assert len(seeds) >= 2
    hot = getattr(harness, "hot", None) or getattr(harness, "tar_hot_offsets", None)
    mutator = getattr(harness, "mutator", None)
    count = inputs(name)
    result = driver.run_plain(harness.TestOneInput, seeds, count, seed=10, hot=hot, mutator=mutator)
    assert result.inputs == count
    assert result.crashes == [], result.crashes[0][1]


def test_seed_logs_cover_vendor_data_when_present() -> None:
    from fuzz.seeds import log_seeds, vendor_tars

    logs = log_seeds()
    if not vendor_tars():
        pytest.skip("../shared/testdata is absent: only our own logs are seeds")
    assert len(logs) > 300  # 370 vendor logs + ours
    assert any(b"\xa2\x80" in log for log in logs)  # D-Trust's BER processData


def test_mutator_reaches_the_unsafe_member_check() -> None:
    """The TAR seeds are not just refused wholesale: the unsafe-name path is hit."""
    import io

    from fuzz.seeds import tar_seeds

    from opentse.errors import FormatError
    from opentse.formats.tar import iter_members

    codes = set()
    for blob in tar_seeds():
        try:
            list(iter_members(io.BytesIO(blob)))
        except FormatError as exc:
            codes.add(exc.code)
    assert "E_TAR_UNSAFE_MEMBER" in codes


@pytest.mark.parametrize("name", HARNESSES)
def test_atheris_short_run(name: str, tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            f"fuzz.{name}",
            f"-runs={ATHERIS_RUNS.get(name, 3000)}",
            "-max_total_time=20",
            "-seed=7",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done" in done.stderr
    assert not list(tmp_path.glob("crash-*"))


def test_qr_payload_with_year_before_1000_prints_back() -> None:
    from fuzz.seeds import qr_seeds

    from opentse.formats.qr import parse_qr_payload

    text = (
        qr_seeds()[0].decode().replace(";2024-01-01T08:00:00.000Z;", ";0024-01-01T08:00:00.000Z;")
    )
    payload = parse_qr_payload(text)
    assert payload.start_time == datetime(24, 1, 1, 8, 0, tzinfo=UTC)
    assert parse_qr_payload(payload.to_text()) == payload
