"""``opentse site org-create`` with a name that is already there: it created a second
organization of that name (a second id for the same legal entity, its locations and
TSEs split between two ids that ``site list`` shows alike). It is refused with
E_SITE_ORG_EXISTS naming the existing id; two entities of one name are told apart by
their (different) tax numbers. The real CLI on a real data folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

OPENTSE = str(Path(sys.executable).parent / "opentse")


def _site(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OPENTSE, "site", *args, "--data", str(data)], capture_output=True, text=True,
        timeout=120, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def test_an_organization_name_is_taken_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = _site(data, "org-create", "Bäckerei Müller GmbH", "--json")
    assert first.returncode == 0, first.stderr
    org_id = json.loads(first.stdout)["id"]
    for twin in ("Bäckerei Müller GmbH", "  bäckerei   MÜLLER gmbh "):
        again = _site(data, "org-create", twin, "--tax-number", "12/345/67890")
        assert again.returncode == 1
        out = again.stdout + again.stderr
        assert "E_SITE_ORG_EXISTS" in out and org_id in out and "Traceback" not in out
    listed = json.loads(_site(data, "list", "--json").stdout)["organizations"]
    assert [o["id"] for o in listed] == [org_id]
    assert _site(data, "org-create", "Bäckerei Müller KG").returncode == 0


def test_same_name_with_different_tax_numbers_is_two_entities(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _site(data, "org-create", "Shop GmbH", "--tax-number", "11/111/11111").returncode == 0
    other = _site(data, "org-create", "Shop GmbH", "--tax-number", "22/222/22222")
    assert other.returncode == 0, other.stderr
    same = _site(data, "org-create", "Shop GmbH", "--tax-number", "22/222/22222")
    assert same.returncode == 1 and "E_SITE_ORG_EXISTS" in same.stdout + same.stderr
    listed = json.loads(_site(data, "list", "--json").stdout)["organizations"]
    assert sorted(o["tax_number"] for o in listed) == ["11/111/11111", "22/222/22222"]
