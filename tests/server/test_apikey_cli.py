"""``opentse apikey create`` refuses an empty organization name (``--org ""`` or
blanks made a nameless organization, with a key, that no later command can name)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

OPENTSE = str(Path(sys.executable).parent / "opentse")


def _create(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OPENTSE, "apikey", "create", "--data", str(data), "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("org", ["", "   "])
def test_an_empty_organization_name_is_refused(tmp_path: Path, org: str) -> None:
    done = _create(tmp_path / "data", "--org", org)
    assert done.returncode == 2, done
    assert "--org" in done.stderr and done.stdout == ""
    assert not (tmp_path / "data").exists()  # refused before the installation was made


def test_a_named_organization_gets_a_key(tmp_path: Path) -> None:
    done = _create(tmp_path / "data", "--org", "Café Muster")
    assert done.returncode == 0, done
    created = json.loads(done.stdout)
    assert created["api_key"].startswith("key_") and len(created["api_secret"]) >= 32
