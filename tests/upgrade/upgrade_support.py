"""Build and reopen an installation the way an older opentse made it.

``build_installation`` drives ANY version's ``opentse`` command (a list of argv
words) the way a shop did: ``opentse demo`` (an embedded TSE with receipts and its
TAR export), a register's books (``pos sell``, ``pos close``), an API key and, through
that version's ``opentse serve``, a TSS with a client, transactions (revision 1 and
2) and a completed export downloaded from the API. It only talks to the command
line and HTTP, so the same code builds fixtures with an old tree's code
(``make_fixtures.py``) and checks them with the current code (the tests).

``facts.json`` records what a user would remember: the key, the TSS and its admin
PIN, the client, the counters, the export ids and the SHA-256 of every file the old
version wrote.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

CURRENT = [str(Path(sys.executable).parent / "opentse")]
ADMIN_PIN = "13572468"
COMPANY = ["--company", "Upgrade GmbH", "--street", "Weg 1", "--postal-code", "12345"]
COMPANY += ["--city", "Ort", "--tax-number", "123/456/78901"]


def old_command(tree: Path) -> list[str]:
    """argv prefix running the ``opentse`` CLI of an exported old source tree."""
    code = "import sys; from opentse.cli.main import main; sys.argv[0] = 'opentse'; main()"
    return ["env", f"PYTHONPATH={tree / 'src'}", sys.executable, "-c", code]


def run(command: Sequence[str], *args: str, env: dict[str, str] | None = None) -> str:
    """Run one CLI call; its stdout, or AssertionError with everything it printed.

    The current version's commands run in this process (the same Typer app the
    ``opentse`` entry point runs): a process of their own cost ~1.2 s of CPU each to
    start, most of an upgrade test's time; ``opentse serve`` and an old version's
    commands still run as processes."""
    if list(command) == CURRENT:
        return _run_here(args, env)
    done = subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    if done.returncode != 0:
        raise AssertionError(f"{args} exited {done.returncode}: {done.stdout}{done.stderr}")
    return done.stdout


def _run_here(args: Sequence[str], env: dict[str, str] | None) -> str:
    from typer.testing import CliRunner

    from opentse.cli.main import build_app

    result = CliRunner().invoke(build_app(), list(args), env=env)
    if result.exit_code != 0:
        detail = "".join(traceback.format_exception(result.exception)) if result.exception else ""
        raise AssertionError(
            f"{args} exited {result.exit_code}: {result.stdout}{result.stderr}{detail}"
        )
    return result.stdout


def run_json(command: Sequence[str], *args: str, env: dict[str, str] | None = None) -> Any:
    return json.loads(run(command, *args, "--json", env=env))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(
    command: Sequence[str], data: Path, database: str | None = None, lan: bool = False
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``opentse serve`` (``--lan``: TLS, session file) on a free port; yields (base
    URL, process); stops it after with SIGTERM (a clean shutdown, as systemd does)
    and fails if it printed a traceback."""
    port = free_port()
    args = ["serve", "--data", str(data), "--host", "127.0.0.1", "--port", str(port)]
    args += ["--lan"] if lan else []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if database is not None:
        env["OPENTSE_DATABASE"] = database
    proc = subprocess.Popen(
        [*command, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    base = f"{'https' if lan else 'http'}://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace")  # type: ignore[union-attr]
                raise AssertionError(f"serve exited {proc.returncode}: {out}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/health", timeout=2, verify=False).status_code < 500:
                    break
            assert time.monotonic() < deadline, "serve did not answer within 60 s"
            time.sleep(0.1)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
        output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
        if proc.stdout is not None:
            proc.stdout.close()
        assert "Traceback" not in output, output


def ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json()


def api_client(base: str, key: dict[str, str]) -> httpx.Client:
    c = httpx.Client(base_url=base + "/api/v2", timeout=30)
    token = ok(c.post("/auth", json={"api_key": key["api_key"], "api_secret": key["api_secret"]}))
    c.headers["Authorization"] = "Bearer " + token["access_token"]
    return c


def sign_receipt(c: httpx.Client, tss: str, client: str, amount: str) -> list[dict[str, Any]]:
    """A receipt as a POS sends it: revision 1 ACTIVE, revision 2 FINISHED."""
    tx = str(uuid.uuid4())
    start = ok(
        c.put(
            f"/tss/{tss}/tx/{tx}",
            params={"tx_revision": 1},
            json={"state": "ACTIVE", "client_id": client},
        )
    )
    receipt = {
        "receipt_type": "RECEIPT",
        "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": amount}],
        "amounts_per_payment_type": [{"payment_type": "CASH", "amount": amount}],
    }
    body = {
        "state": "FINISHED",
        "client_id": client,
        "schema": {"standard_v1": {"receipt": receipt}},
    }
    finish = ok(c.put(f"/tss/{tss}/tx/{tx}", params={"tx_revision": 2}, json=body))
    return [start, finish]


def download_export(c: httpx.Client, tss: str, out: Path, **params: str) -> str:
    """Trigger an export, wait until COMPLETED, write its TAR to ``out``; its id."""
    export = str(uuid.uuid4())
    ok(c.put(f"/tss/{tss}/export/{export}", params=params))
    deadline = time.monotonic() + 60
    while (state := ok(c.get(f"/tss/{tss}/export/{export}"))["state"]) != "COMPLETED":
        assert state in ("PENDING", "WORKING") and time.monotonic() < deadline, state
        time.sleep(0.05)
    r = c.get(f"/tss/{tss}/export/{export}/file")
    assert r.status_code == 200, r.text
    out.write_bytes(r.content)
    return export


def dashboard_login(
    base: str, key: dict[str, str], *pages: str
) -> tuple[httpx.Response, list[str]]:
    """Log in to the dashboard with the API key, as a shop owner does in a browser;
    the login's answer and the text of each of ``pages`` (paths) read after it."""
    with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as web:
        page = web.get("/dashboard/login")
        assert page.status_code == 200, page.text
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found is not None, page.text
        form = {"csrf": found.group(1), "api_key": key["api_key"], "api_secret": key["api_secret"]}
        answer = web.post("/dashboard/login", data=form)
        answer.read()
        texts = []
        if answer.status_code == 303:
            for path in (answer.headers["location"], *pages):
                shown = web.get(path)
                assert shown.status_code == 200, f"{path}: {shown.status_code} {shown.text}"
                texts.append(shown.text)
        return answer, texts[1:]


def book_a_day(command: Sequence[str], data: Path, pos: list[str]) -> None:
    """The register's other kinds of Vorgang: a cash deposit, a sale and its storno, a
    training receipt, and a sale and a withdrawal while the TSE service is down (the
    receipt says "TSE ausgefallen" and the books keep the Vorgang unsigned)."""
    run_json(command, "pos", "cash", *pos, "--type", "Einzahlung", "--amount", "100.00")
    cake = run_json(command, "pos", "sell", *pos, "--line", "Kuchen:2:3.10:2", "--pay", "bar:6.20")
    run_json(command, "pos", "storno", str(cake["receipt_ref"]), *pos)
    run_json(command, "pos", "sell", *pos, "--type", "training", "--line", "Kaffee:1:2.50:1",
             "--pay", "bar:2.50")  # fmt: skip
    down = ["--url", "http://127.0.0.1:9", "--api-key", "k", "--api-secret", "s"]
    down += [*pos[2:], "--journal", str(data / "pos" / f"{pos[-1]}.db")]
    failed = run_json(command, "pos", "sell", *down, "--line", "Tee:1:1.80:1", "--pay",
                      "karte:1.80")  # fmt: skip
    assert failed["tse_failed"] is True, failed
    failed = run_json(command, "pos", "cash", *down, "--type", "Auszahlung", "--amount", "-20.00")
    assert failed["tse_failed"] is True, failed


def build_installation(
    command: Sequence[str], root: Path, database: str | None = None, extras: bool = False
) -> dict[str, Any]:
    """Make ``root/data`` (and ``root/*.tar``) as a shop using ``command``'s version
    would have; write and return ``root/data/../facts.json``.

    With ``database`` (PostgreSQL URL) the API's TSS lives there and the embedded
    parts (demo, register books) are skipped: those are SQLite only. ``extras`` (SQLite)
    adds the operator's records: an organization, a location with both TSEs and the
    register (``opentse site``), an archived export (``opentse archive export``), and a
    ``serve --lan`` run (TLS key and certificate, LAN-TSE-Session.txt).
    """
    data = root / "data"
    facts: dict[str, Any] = {"database": "postgresql" if database else "sqlite"}
    env = {"OPENTSE_DATABASE": database} if database else None
    if database is None:
        demo = run_json(command, "demo", "--data", str(data), "--transactions", "3",
                        "--export", str(root / "demo.tar"))  # fmt: skip
        facts["demo"] = {
            "tse_id": demo["tse_id"],
            "client_id": demo["client_id"],
            "admin_pin": demo["admin_pin"],
            "signature_counter": demo["signature_counter"],
            "transaction_counter": demo["transaction_counter"],
            "export_sha256": sha256(root / "demo.tar"),
        }
        pos = ["--data", str(data), "--tss", demo["tse_id"], "--client", demo["client_id"]]
        sale = run_json(command, "pos", "sell", *pos, "--line", "Kaffee:2:2.50:1",
                        "--pay", "bar:5.00")  # fmt: skip
        book_a_day(command, data, pos)
        # counted 5.00: the old version books the rest of the day's cash as a difference
        run_json(command, "pos", "close", *pos, "--counted-cash", "5.00", *COMPANY)
        facts["pos"] = {"process_data": sale["process_data"]}
    key = run_json(command, "apikey", "create", "--data", str(data), "--org", "shop", env=env)
    facts["key"] = {k: key[k] for k in ("api_key", "api_secret", "organization_id")}
    with (
        serving(command, data, database) as (base, _proc),
        contextlib.closing(api_client(base, key)) as c,
    ):
        tss = str(uuid.uuid4())
        puk = ok(c.put(f"/tss/{tss}", json={"metadata": {"shop": "Upgrade"}}))["admin_puk"]
        ok(c.patch(f"/tss/{tss}", json={"state": "UNINITIALIZED"}))
        ok(c.patch(f"/tss/{tss}/admin", json={"admin_puk": puk, "new_admin_pin": ADMIN_PIN}))
        ok(c.post(f"/tss/{tss}/admin/auth", json={"admin_pin": ADMIN_PIN}))
        ok(c.patch(f"/tss/{tss}", json={"state": "INITIALIZED"}))
        client = str(uuid.uuid4())
        ok(c.put(f"/tss/{tss}/client/{client}", json={"serial_number": "KASSE-UP-1"}))
        signed = [
            log for amount in ("4.20", "9.99") for log in sign_receipt(c, tss, client, amount)
        ]
        export = download_export(c, tss, root / "api-export.tar")
        # one more receipt after the export: the next export must still start at 1
        signed += sign_receipt(c, tss, client, "1.00")
        ok(c.post(f"/tss/{tss}/admin/logout"))
        tss_body = ok(c.get(f"/tss/{tss}"))
        login, _pages = dashboard_login(base, key)
        facts["api"] = {
            "tss_id": tss,
            "client_id": client,
            "admin_pin": ADMIN_PIN,
            "signature_counter": int(tss_body["signature_counter"]),
            "transaction_counter": int(tss_body["transaction_counter"]),
            "last_tx": {"id": signed[-1]["_id"], "number": signed[-1]["number"]},
            "export_id": export,
            "export_sha256": sha256(root / "api-export.tar"),
            "dashboard_login_status": login.status_code,
        }
    if extras:
        facts.update(build_extras(command, data, facts))
    (root / "facts.json").write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
    return facts


def build_extras(command: Sequence[str], data: Path, facts: dict[str, Any]) -> dict[str, Any]:
    """Sites, an archived export and a LAN session, made by ``command``'s version."""
    at = ["--data", str(data)]
    demo_tse, api_tss = facts["demo"]["tse_id"], facts["api"]["tss_id"]
    org = run_json(command, "site", "org-create", "Upgrade GmbH", "--tax-number",
                   "123/456/78901", *at)["id"]  # fmt: skip
    location = run_json(command, "site", "create", org, "Filiale Mitte", "--street", "Weg 1",
                        "--postal-code", "12345", "--city", "Ort", *at)["id"]  # fmt: skip
    interfaces = {}
    for tse in (demo_tse, api_tss):
        interfaces[tse] = run_json(command, "site", "assign-tse", tse, location, *at)[
            "interface_type"
        ]
    run_json(command, "site", "add-register", facts["demo"]["client_id"], location, *at)
    run_json(command, "site", "assign", facts["demo"]["client_id"], demo_tse, *at)
    archived = run_json(command, "archive", "export", demo_tse, *at)
    with serving(command, data, lan=True):
        pass
    session = (data / "LAN-TSE-Session.txt").read_text()
    fields = dict(
        (name.strip(), value.strip())
        for name, value in (line.split(":", 1) for line in session.splitlines() if ":" in line)
    )
    return {
        "site": {"org_id": org, "location_id": location, "interfaces": interfaces},
        "archive": {"id": archived["id"], "sha256": archived["sha256"], "tse_id": demo_tse},
        # the session names the existing key (facts["key"]) without its secret
        "lan": {"fingerprint": fields["TLS SHA-256"]},
    }
