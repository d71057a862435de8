"""Tables printed to a pipe or a file keep every value whole: ids are copied from
them (rich cut cells to 80 columns with an ellipsis, so ``tse list | grep`` showed
'1b596603-6d…' and no id could be copied)."""

from __future__ import annotations

import json
from pathlib import Path

from cli_support import run


def test_piped_tables_show_whole_ids_and_headers(tmp_path: Path) -> None:
    data = tmp_path / "d"
    tse_id = json.loads(run("demo", "--data", str(data), "--transactions", "1", "--json").stdout)[
        "tse_id"
    ]
    listed = run("tse", "list", "--data", str(data)).stdout
    assert tse_id in listed
    assert "…" not in listed
    clients = run("client", "list", "--tss", tse_id, "--data", str(data)).stdout
    assert f"Clients of {tse_id}" in clients
    for header in ("client_id", "registered_at", "deregistered_at", "open_transactions"):
        assert header in clients
    assert "…" not in clients
    rows = [line for line in listed.splitlines() if tse_id in line]
    assert len(rows) == 1, "the id stays on one line, not folded"
