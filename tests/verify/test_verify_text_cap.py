"""The text report shows at most 20 findings of one code and counts the rest: an
export with a counter gap per other log printed a screen per gap, and the note that
explains them (I_EXPORT_LOOKS_FILTERED) came after all of them. --json keeps all."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.verify.synthetic import build_export


def _every_other_log_dropped(tmp_path: Path) -> Path:
    full = tmp_path / "full.tar"
    build_export(full, 120)
    out = tmp_path / "gaps.tar"
    with tarfile.open(full) as src, tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as dst:
        for member in src.getmembers():
            counter = member.name.split("_Sig-")[1].split("_")[0] if "_Sig-" in member.name else ""
            if counter and int(counter) % 2 == 0 and int(counter) < 118:
                continue
            dst.addfile(member, io.BytesIO(src.extractfile(member).read()))  # type: ignore[union-attr]
    return out


def test_many_gaps_are_counted_not_each_printed(tmp_path: Path) -> None:
    tar = _every_other_log_dropped(tmp_path)
    text = CliRunner().invoke(build_app(), ["verify", str(tar)], env={"COLUMNS": "200"})
    assert text.exit_code == 1
    printed = [line for line in text.output.splitlines() if "E_COUNTER_GAP:" in line]
    assert len(printed) == 20
    more = [line for line in text.output.splitlines() if line.startswith("... and ")]
    assert more == [
        "... and 38 more E_COUNTER_GAP finding(s) of the same kind: all are in --json and --html"
    ]
    body = json.loads(CliRunner().invoke(build_app(), ["verify", "--json", str(tar)]).stdout)
    assert sum(1 for f in body["findings"] if f["code"] == "E_COUNTER_GAP") == 58
