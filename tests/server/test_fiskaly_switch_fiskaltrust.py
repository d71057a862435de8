"""fiskaltrust's Middleware switched from fiskaly SIGN DE v2 to opentse by its
``ApiEndpoint``: the requests its SCU ``FiskalyCertified`` sends (restated by hand from
its public source: relative paths below ``.../api/v2/``, ``Newtonsoft`` bodies, the
export query built as ``?`` + ``"?end_transaction_number=..."``) against a real
``opentse serve``.

What failed before: after an export whose data the register had erased, the SCU
stores ``{"LastExportedTransactionNumber": <number>}`` in the TSS metadata (a JSON
number; fiskaly keeps it as the string its own unit test reads back); opentse refused
it with 400 E_FAILED_SCHEMA_VALIDATION, so the export session ended in an error and
every later export began again at the first transaction. Metadata values sent as
numbers or booleans are now kept as their text, as fiskaly does, on every route that
takes metadata.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.server.coercion import as_text
from opentse.testing.serving import serve_process

OPENTSE = str(Path(sys.executable).parent / "opentse")
PIN = "1234567890"
LAST = "LastExportedTransactionNumber"
JSON = {"Content-Type": "application/json; charset=utf-8"}


@pytest.fixture(scope="module")
def scu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The SCU's HTTP client (base address ``<origin>/api/v2/``, paths relative) on a
    real ``opentse serve`` with an INITIALIZED TSS whose admin PIN the SCU knows."""
    data = tmp_path_factory.mktemp("fiskaltrust") / "data"
    out = subprocess.run(
        [OPENTSE, "apikey", "create", "--data", str(data), "--org", "shop", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    key = json.loads(out.stdout)
    log = data.parent / "serve.log"
    with contextlib.ExitStack() as stack:
        origin = stack.enter_context(serve_process(data, output=log))
        http = stack.enter_context(httpx.Client(base_url=origin + "/api/v2/", timeout=30))
        auth = {"api_key": key["api_key"], "api_secret": key["api_secret"]}
        r = http.post("auth", content=json.dumps(auth), headers=JSON)
        assert r.status_code == 200, r.text
        http.headers["Authorization"] = "Bearer " + r.json()["access_token"]
        tss = str(uuid.uuid4())
        puk = _ok(http.put(f"tss/{tss}", content="{}", headers=JSON))["admin_puk"]
        _ok(http.patch(f"tss/{tss}", json={"state": "UNINITIALIZED"}))
        _ok(http.patch(f"tss/{tss}/admin", json={"admin_puk": puk, "new_admin_pin": PIN}))
        yield {"http": http, "tss": tss}
    assert "Traceback" not in log.read_text(errors="replace")


def _ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json()


def _as_admin(http: httpx.Client, tss: str, method: str, path: str, body: str) -> Any:
    """RunAsAdminAsync: admin login, the request, logout (its body is ``{}``)."""
    _ok(http.post(f"tss/{tss}/admin/auth", content=json.dumps({"admin_pin": PIN}), headers=JSON))
    try:
        return _ok(http.request(method, path, content=body, headers=JSON))
    finally:
        http.post(f"tss/{tss}/admin/logout", content="{}", headers=JSON)


def _raw(state: str, client: str, process_type: str, data: str) -> str:
    body = {"state": state, "client_id": client}
    if process_type or data:
        body["schema"] = {"raw": {"process_type": process_type, "process_data": data}}
    return json.dumps(body)


def _export(http: httpx.Client, tss: str, query: str) -> tuple[str, list[str]]:
    """RequestExportAsync (its query starts with '?' after the path's '?'), the
    metadata it sets, the wait for COMPLETED and the TAR's log file names."""
    export = str(uuid.uuid4())
    _ok(http.put(f"tss/{tss}/export/{export}?{query}", content="{}", headers=JSON))
    deadline = time.monotonic() + 60
    while (state := _ok(http.get(f"tss/{tss}/export/{export}"))["state"]) != "COMPLETED":
        assert state in ("PENDING", "WORKING") and time.monotonic() < deadline, state
        time.sleep(0.2)
    tar = http.get(f"tss/{tss}/export/{export}/file")
    assert tar.status_code == 200 and tar.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(tar.content)) as archive:
        return export, [n for n in archive.getnames() if n.endswith(".log")]


def test_the_fiskaltrust_scu_exports_and_remembers_what_it_exported(
    scu: dict[str, Any],
) -> None:
    http, tss = scu["http"], scu["tss"]
    _as_admin(http, tss, "PATCH", f"tss/{tss}", json.dumps({"state": "INITIALIZED"}))
    client = str(uuid.uuid4())  # RegisterClientIdAsync
    _as_admin(
        http, tss, "PUT", f"tss/{tss}/client/{client}", json.dumps({"serial_number": "ft-q1"})
    )

    def receipt() -> int:
        """StartTransactionAsync by id, FinishTransactionAsync by number after a
        restart (the latest revision read back), raw data as the queue made it."""
        data = base64.b64encode(os.urandom(100)).decode()
        path = f"tss/{tss}/tx/{uuid.uuid4()}?tx_revision=1"
        started = _ok(
            http.put(path, content=_raw("ACTIVE", client, "Kassenbeleg-V1", data), headers=JSON)
        )
        number = started["number"]
        latest = _ok(http.get(f"tss/{tss}/tx/{number}"))["latest_revision"]
        done = _ok(
            http.put(
                f"tss/{tss}/tx/{number}?tx_revision={latest + 1}",
                content=_raw("FINISHED", client, "Kassenbeleg-V1", data),
                headers=JSON,
            )
        )
        assert done["schema"]["raw"] == {"process_type": "Kassenbeleg-V1", "process_data": data}
        assert int(done["signature"]["counter"]) > 0
        return int(number)

    first = [receipt(), receipt()]

    # StartExportSessionAsync: no LastExportedTransactionNumber yet, so up to the counter
    tss_row = _ok(http.get(f"tss/{tss}"))
    assert LAST not in tss_row["metadata"]
    to = int(tss_row["transaction_counter"])
    assert to == max(first)
    export, logs = _export(http, tss, f"?end_transaction_number={to}")
    marks = {"start_transaction_number": None, "end_transaction_number": str(to)}
    assert _ok(http.patch(f"tss/{tss}/export/{export}/metadata", json=marks)) == {
        "end_transaction_number": str(to)
    }
    assert sorted({n.split("_No-")[1].split("_")[0] for n in logs}) == sorted(map(str, first))

    # EndExportSessionAsync with erase: no open transaction, so it remembers the range
    assert _ok(http.get(f"tss/{tss}/tx?states[]=ACTIVE"))["data"] == []
    end = int(_ok(http.get(f"tss/{tss}/export/{export}/metadata"))["end_transaction_number"])
    stored = http.patch(f"tss/{tss}/metadata", content=json.dumps({LAST: end}), headers=JSON)
    assert _ok(stored)[LAST] == str(to)  # a number in, fiskaly's string out

    # the next session exports only what came after
    later = receipt()
    tss_row = _ok(http.get(f"tss/{tss}"))
    start = int(tss_row["metadata"][LAST]) + 1
    query = f"?end_transaction_number={tss_row['transaction_counter']}"
    _, logs = _export(http, tss, query + f"&start_transaction_number={start}")
    assert {n.split("_No-")[1].split("_")[0] for n in logs} == {str(later)}


@pytest.mark.parametrize(
    ("sent", "kept"),
    [(7, "7"), (-12, "-12"), (1.5, "1.5"), (10.0, "10"), (1e21, "1e+21"), (True, "true")],
)
def test_metadata_numbers_and_booleans_are_kept_as_their_text(
    scu: dict[str, Any], sent: Any, kept: str
) -> None:
    http, tss = scu["http"], scu["tss"]
    _ok(http.post(f"tss/{tss}/admin/auth", json={"admin_pin": PIN}))
    if _ok(http.get(f"tss/{tss}"))["state"] == "UNINITIALIZED":
        _ok(http.patch(f"tss/{tss}", json={"state": "INITIALIZED"}))
    meta = {"k": sent}
    assert _ok(http.patch(f"tss/{tss}/metadata", json=meta))["k"] == kept
    assert (
        _ok(http.patch(f"tss/{tss}", json={"state": "INITIALIZED", "metadata": meta}))["metadata"][
            "k"
        ]
        == kept
    )
    client = str(uuid.uuid4())
    body = {"serial_number": f"K-{client[:8]}", "metadata": meta}
    assert _ok(http.put(f"tss/{tss}/client/{client}", json=body))["metadata"] == {"k": kept}
    update = {"state": "REGISTERED", "metadata": {"u": sent}}
    assert _ok(http.patch(f"tss/{tss}/client/{client}", json=update))["metadata"]["u"] == kept
    assert _ok(http.patch(f"tss/{tss}/client/{client}/metadata", json=meta)) == {
        "k": kept,
        "u": kept,
    }

    tx = f"tss/{tss}/tx/{uuid.uuid4()}"
    start = {"state": "ACTIVE", "client_id": client, "metadata": meta}
    first = _ok(http.put(tx, params={"tx_revision": 1}, json=start))  # the hot route
    assert first["metadata"] == {"k": kept}
    assert _ok(http.put(tx, params={"tx_revision": 1}, json=start)) == first  # a retry
    assert _ok(http.patch(f"{tx}/metadata", json={"n": sent}))["n"] == kept
    export = f"tss/{tss}/export/{uuid.uuid4()}"
    _ok(http.put(export, json={"metadata": meta}))
    assert _ok(http.get(f"{export}/metadata")) == {"k": kept}
    assert _ok(http.patch(f"{export}/metadata", json={"x": sent}))["x"] == kept

    # what JavaScript cannot turn into a string stays refused; null still removes
    for wrong in (b'{"k": ["1"]}', b'{"k": {"a": "1"}}', b'{"k": 1e999}'):
        r = http.patch(f"tss/{tss}/metadata", content=wrong, headers=JSON)
        assert r.status_code == 400 and r.json()["code"] == "E_FAILED_SCHEMA_VALIDATION"
    assert "k" not in _ok(http.patch(f"tss/{tss}/metadata", json={"k": None}))


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed (JavaScript's String())")
@settings(max_examples=8, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=80))
def test_numbers_are_written_as_javascript_writes_them(values: list[float]) -> None:
    """fiskaly's service is JavaScript: String(x) of the number it parsed."""
    script = "process.stdout.write(JSON.stringify(JSON.parse(process.argv[1]).map(String)))"
    assert NODE is not None
    out = subprocess.run(
        [NODE, "-e", script, json.dumps(values)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert [as_text(v) for v in values] == json.loads(out.stdout)
