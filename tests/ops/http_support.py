"""HTTP helpers of the ops tests: a TSS set up as a POS would, and a Prometheus
text-format parser of our own (no client library needed)."""

from __future__ import annotations

import re
import uuid

import httpx

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{(.*)\}})?[ ]+(\S+)(?:[ ]+-?\d+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"\s*(,|$)')
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def login(client: httpx.Client, api_key: str, api_secret: str) -> dict[str, str]:
    r = client.post("/api/v2/auth", json={"api_key": api_key, "api_secret": api_secret})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def setup_tss(client: httpx.Client, h: dict[str, str], serial: str = "KASSE-1") -> str:
    tss = str(uuid.uuid4())
    r = client.put(f"/api/v2/tss/{tss}", json={}, headers=h)
    assert r.status_code == 200, r.text
    puk = r.json()["admin_puk"]
    steps: tuple[tuple[str, str, dict[str, str]], ...] = (
        ("PATCH", "", {"state": "UNINITIALIZED"}),
        ("PATCH", "/admin", {"admin_puk": puk, "new_admin_pin": "123456"}),
        ("POST", "/admin/auth", {"admin_pin": "123456"}),
        ("PATCH", "", {"state": "INITIALIZED"}),
    )
    for method, path, step in steps:
        r = client.request(method, f"/api/v2/tss/{tss}{path}", json=step, headers=h)
        assert r.status_code == 200, r.text
    cid = str(uuid.uuid4())
    r = client.put(f"/api/v2/tss/{tss}/client/{cid}", json={"serial_number": serial}, headers=h)
    assert r.status_code == 200, r.text
    tx = str(uuid.uuid4())
    for rev, state in ((1, "ACTIVE"), (2, "FINISHED")):
        body: dict[str, object] = {"state": state, "client_id": cid}
        if state == "FINISHED":
            body["schema"] = {
                "standard_v1": {
                    "receipt": {
                        "receipt_type": "RECEIPT",
                        "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": "1.00"}],
                        "amounts_per_payment_type": [{"payment_type": "CASH", "amount": "1.00"}],
                    }
                }
            }
        r = client.put(
            f"/api/v2/tss/{tss}/tx/{tx}", params={"tx_revision": rev}, json=body, headers=h
        )
        assert r.status_code == 200, r.text
    return tss


def parse_prometheus(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Parse the text exposition format strictly enough to catch format errors:
    every sample needs a preceding TYPE of its family, labels are well-formed and
    unique per sample, values are floats, no series appears twice."""
    assert text.endswith("\n"), "exposition must end with a newline"
    types: dict[str, str] = {}
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                assert re.fullmatch(_NAME, parts[2]), line
                assert parts[3] in _TYPES, line
                assert parts[2] not in types, f"TYPE twice: {line}"
                types[parts[2]] = parts[3]
            elif len(parts) >= 3 and parts[1] == "HELP":
                assert re.fullmatch(_NAME, parts[2]), line
            continue
        m = _SAMPLE.match(line)
        assert m is not None, f"not a sample line: {line!r}"
        name, label_text, value = m.group(1), m.group(2) or "", m.group(3)
        assert name in types, f"sample before its TYPE: {line}"
        labels: dict[str, str] = {}
        pos = 0
        while pos < len(label_text):
            lm = _LABEL.match(label_text, pos)
            assert lm is not None, f"bad labels in {line!r}"
            assert lm.group(1) not in labels, f"label twice in {line!r}"
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
        number = float(value)  # raises on junk; accepts NaN/+Inf/-Inf
        if types[name] == "counter":
            assert number >= 0, line
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen, f"series twice: {line}"
        seen.add(key)
        out.setdefault(name, []).append((labels, number))
    return out
