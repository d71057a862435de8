"""A compressed export is judged by the TAR it holds, not its file size: the CLI's
progress bar (shown above 2 MB of TAR) and the worker count. A .tar.gz of 4,000 logs
(~4 MB of TAR, ~0.4 MB of gzip) was verified without a bar, as if small."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.verify.archive import tar_size
from opentse.verify.synthetic import build_export


def test_a_big_compressed_export_shows_the_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "e.tar"
    build_export(plain, 4000)
    packed = tmp_path / "e.tar.gz"
    with plain.open("rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert packed.stat().st_size < 2 * 1024 * 1024 < plain.stat().st_size
    assert tar_size(packed) > 2 * 1024 * 1024
    # the estimate is the order of the TAR's size, not more than a few times off
    assert plain.stat().st_size / 4 < tar_size(packed) < plain.stat().st_size * 4
    odd = tmp_path / "named.gz"  # the first octets decide, not the name
    odd.write_bytes(plain.read_bytes()[:4096])
    assert tar_size(odd) == 4096

    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: stderr is a terminal
    result = CliRunner().invoke(build_app(), ["verify", "--workers", "1", str(packed)])
    assert result.exit_code == 0, result.output
    assert "OK: no errors" in result.stdout
    assert "verifying logs" in result.stderr  # the bar was shown
