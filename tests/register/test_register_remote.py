"""The Register over a real ``opentse serve`` process (RemoteBackend, httpx).

Normal sales whose QR codes verify and whose processData equals the service's own
standard_v1 derivation; the server killed mid-sale (receipt still issued and marked,
outage logged, yellow with the right count); the server back (dangling transaction
finished, green again); a lost response retried without a second signature, checked
in the TAR export. Faults are injected in the HTTP transport, around the real one.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from opentse.register.books import Books
from opentse.register.outage import Light, OutageLog
from opentse.register.receipt import Seller
from opentse.register.register import Register, RegisterConfig
from opentse.register.remote import RemoteBackend
from opentse.register.sale import Sale
from opentse.testing.serving import wait_until_serving
from opentse.tr03151 import codec
from opentse.tr03151.logmessage import TransactionLogData
from opentse.verify.receipt import verify_receipt

OPENTSE = str(Path(sys.executable).parent / "opentse")
SELLER = Seller("Bäckerei Korn", ("Mühlweg 3", "01067 Dresden"))
SERIAL = "KASSE-7"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``opentse serve`` as a child process that can be killed and started again."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [OPENTSE, "serve", "--data", str(self.data), "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert wait_until_serving(self.base, self.proc), "no server"

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=20)


class FaultTransport(httpx.BaseTransport):
    """The real transport plus a hook that sees each request and its response."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.after: Callable[[httpx.Request, httpx.Response], None] | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if self.after is not None:
            response.read()
            self.after(request, response)
        return response

    def close(self) -> None:
        self.inner.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("register-remote") / "data"
    out = subprocess.run(
        [OPENTSE, "apikey", "create", "--data", str(data), "--org", "shop", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    key = json.loads(out.stdout)
    srv = Server(data)
    srv.start()
    try:
        yield {"server": srv, "key": key}
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.proc.terminate()
            srv.proc.wait(timeout=20)


@pytest.fixture
def api(server: dict[str, Any]) -> Iterator[httpx.Client]:
    key = server["key"]
    with httpx.Client(base_url=server["server"].base + "/api/v2", timeout=30) as client:
        body = {"api_key": key["api_key"], "api_secret": key["api_secret"]}
        r = client.post("/auth", json=body)
        assert r.status_code == 200, r.text
        client.headers["Authorization"] = "Bearer " + r.json()["access_token"]
        yield client


@pytest.fixture
def cleanup() -> Iterator[list[Callable[[], None]]]:
    closers: list[Callable[[], None]] = []
    yield closers
    for close in closers:
        close()


def _ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, f"{r.request.method} {r.request.url}: {r.text}"
    return r.json()


def _new_tss(api: httpx.Client) -> tuple[str, str]:
    tss, client = str(uuid.uuid4()), str(uuid.uuid4())
    puk = _ok(api.put(f"/tss/{tss}", json={}))["admin_puk"]
    _ok(api.patch(f"/tss/{tss}", json={"state": "UNINITIALIZED"}))
    _ok(api.patch(f"/tss/{tss}/admin", json={"admin_puk": puk, "new_admin_pin": "246810"}))
    _ok(api.post(f"/tss/{tss}/admin/auth", json={"admin_pin": "246810"}))
    _ok(api.patch(f"/tss/{tss}", json={"state": "INITIALIZED"}))
    _ok(api.put(f"/tss/{tss}/client/{client}", json={"serial_number": SERIAL}))
    return tss, client


def _register(
    server: dict[str, Any],
    tss: str,
    client: str,
    tmp_path: Path,
    transport: FaultTransport,
    cleanup: list[Callable[[], None]],
) -> tuple[Register, RemoteBackend]:
    key = server["key"]
    backend = RemoteBackend(
        server["server"].base,
        key["api_key"],
        key["api_secret"],
        tss,
        client,
        timeout=5,
        retries=2,
        backoff=0.05,
        transport=transport,
    )
    config = RegisterConfig(SELLER, SERIAL, timeout=20)
    journal = OutageLog(tmp_path / "journal.db")
    cleanup += [backend.close, journal.close]
    return Register(backend, config, journal), backend


def _card_sale() -> Sale:
    sale = Sale()
    sale.add_line("Brot", 1, "21.42", 1)
    sale.add_payment("card", "21.42")
    return sale


def _export_finishes(api: httpx.Client, tss: str) -> list[tuple[int, str, bytes, int]]:
    """(transaction number, processType, processData, signature counter) of every
    Finish log in a fresh TAR export of the TSS."""
    exp = str(uuid.uuid4())
    _ok(api.put(f"/tss/{tss}/export/{exp}"))
    deadline = time.monotonic() + 60
    while _ok(api.get(f"/tss/{tss}/export/{exp}"))["state"] != "COMPLETED":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    tar_bytes = api.get(f"/tss/{tss}/export/{exp}/file").content
    finishes = []
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        for member in tar.getmembers():
            if not member.name.endswith(".log"):
                continue
            fileobj = tar.extractfile(member)
            assert fileobj is not None
            msg = codec.decode_log_message(fileobj.read())
            tx = msg.certified
            if isinstance(tx, TransactionLogData) and tx.operation_type == "FinishTransaction":
                finishes.append(
                    (tx.transaction_number, tx.process_type, tx.process_data, msg.signature_counter)
                )
    return finishes


def test_sale_signed_remotely_matches_fiskaly_derivation(
    server: dict[str, Any],
    api: httpx.Client,
    tmp_path: Path,
    cleanup: list[Callable[[], None]],
) -> None:
    tss, client = _new_tss(api)
    register, _ = _register(server, tss, client, tmp_path, FaultTransport(), cleanup)
    assert register.connect().light is Light.GREEN
    result = register.sell(_card_sale())
    assert not result.tse_failed and result.signed is not None
    assert result.signed.process_data == "Beleg^21.42_0.00_0.00_0.00_0.00^21.42:Unbar"
    assert verify_receipt(result.to_json()["qr_code_data"]).ok
    # the service's own standard_v1 mapping of the same sale gives the same string
    receipt = {
        "receipt_type": "RECEIPT",
        "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": "21.42"}],
        "amounts_per_payment_type": [{"payment_type": "NON_CASH", "amount": "21.42"}],
    }
    tx = str(uuid.uuid4())
    body = _ok(
        api.put(
            f"/tss/{tss}/tx/{tx}",
            params={"tx_revision": 1},
            json={
                "state": "FINISHED",
                "client_id": client,
                "schema": {"standard_v1": {"receipt": receipt}},
            },
        )
    )
    raw = base64.b64decode(body["schema"]["raw"]["process_data"]).decode()
    assert raw == result.signed.process_data


def test_server_killed_mid_sale_then_back(
    server: dict[str, Any],
    api: httpx.Client,
    tmp_path: Path,
    cleanup: list[Callable[[], None]],
) -> None:
    tss, client = _new_tss(api)
    srv: Server = server["server"]
    transport = FaultTransport()
    register, _ = _register(server, tss, client, tmp_path, transport, cleanup)
    assert register.connect().light is Light.GREEN
    assert not register.sell(_card_sale()).tse_failed

    def kill_after_start(request: httpx.Request, response: httpx.Response) -> None:
        if request.method == "PUT" and request.url.params.get("tx_revision") == "1":
            transport.after = None
            srv.kill()  # the Start was signed; the Finish will find nobody

    transport.after = kill_after_start
    try:
        first = register.sell(_card_sale())
        assert first.tse_failed and first.receipt.transaction_number is None
        assert first.status.light is Light.YELLOW and first.status.consecutive_failures == 1
        assert "TSE ausgefallen" in first.to_json()["receipt_text"]
        second = register.sell(_card_sale())
        assert second.tse_failed and second.status.consecutive_failures == 2
        assert len(register.journal.dangling()) == 1
        outage = register.journal.outages()[-1]
        assert outage.ended_at is None and len(outage.receipt_refs) == 2
        assert "not reachable" in outage.reason
    finally:
        srv.start()
    register.connect()  # reconnect: the transaction left open by the kill is finished
    dangling = register.journal.dangling()
    assert dangling[0].resolved_at is not None
    back = register.sell(_card_sale())
    assert not back.tse_failed and back.status.light is Light.GREEN
    assert register.journal.outages()[-1].ended_at is not None
    open_txs = _ok(api.get(f"/tss/{tss}/client/{client}/tx", params={"states": "ACTIVE"}))
    assert open_txs["count"] == 0
    finishes = {n: (t, d) for n, t, d, _ in _export_finishes(api, tss)}
    assert finishes[dangling[0].transaction_number] == (
        "Kassenbeleg-V1",
        b"AVBelegabbruch^0.00_0.00_0.00_0.00_0.00^",
    )


def test_lost_response_is_retried_without_second_signature(
    server: dict[str, Any],
    api: httpx.Client,
    tmp_path: Path,
    cleanup: list[Callable[[], None]],
) -> None:
    tss, client = _new_tss(api)
    transport = FaultTransport()
    register, backend = _register(server, tss, client, tmp_path, transport, cleanup)
    register.connect()
    lost: list[int] = []

    def lose_finish_answer(request: httpx.Request, response: httpx.Response) -> None:
        if request.method == "PUT" and request.url.params.get("tx_revision") == "2" and not lost:
            lost.append(int(response.json()["signature"]["counter"]))
            raise httpx.ReadTimeout("answer lost", request=request)

    transport.after = lose_finish_answer
    result = register.sell(_card_sale())
    assert lost, "the fault was not injected"
    assert not result.tse_failed and result.signed is not None
    assert result.signed.signature_counter == lost[0]  # the stored signature came back
    finishes = [f for f in _export_finishes(api, tss) if f[0] == result.signed.transaction_number]
    assert len(finishes) == 1
    assert finishes[0][3] == lost[0]
    assert backend.requests >= 4  # auth + start + lost finish + retried finish


def test_pos_cli_sells_through_the_service(
    server: dict[str, Any], api: httpx.Client, tmp_path: Path
) -> None:
    tss, client = _new_tss(api)
    key = server["key"]
    env = {**os.environ, "OPENTSE_API_KEY": key["api_key"]}
    env["OPENTSE_API_SECRET"] = key["api_secret"]
    out = subprocess.run(
        [OPENTSE, "pos", "sell", "--url", server["server"].base, "--tss", tss, "--client", client,
         "--journal", str(tmp_path / "j.db"), "--line", "Kaffee:2:2.50:1", "--pay", "bar:5.00",
         "--json", "--certified"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["tse_failed"] is False
    assert body["process_data"] == "Beleg^5.00_0.00_0.00_0.00_0.00^5.00:Bar"
    assert verify_receipt(body["qr_code_data"]).ok
    assert f"Kassen-Seriennummer: {SERIAL}" in body["receipt_text"]
    # --certified, but the service is opentse serve (its TSS names an opentse CA's
    # certificate): opentse is not BSI-certified, and its receipts say so
    assert "Keine zertifizierte TSE (opentse)" in body["receipt_text"].split("\n")


def _pos(
    server: dict[str, Any], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    key = server["key"]
    env = {**os.environ, "OPENTSE_API_KEY": key["api_key"]}
    env["OPENTSE_API_SECRET"] = key["api_secret"]
    return subprocess.run(
        [OPENTSE, "pos", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_pos_cli_keeps_the_register_serial_through_an_outage_and_its_closing(
    server: dict[str, Any], api: httpx.Client, tmp_path: Path
) -> None:
    """The service names the register's serial for its client UUID; a till that cannot
    reach it printed the UUID as Kassen-Seriennummer and closed the day under it, so
    the DSFinV-K export's signatures (over the serial) failed the check. Its receipt
    also names the TSE (serial number), which the books described before."""
    tss, client = _new_tss(api)
    srv: Server = server["server"]
    where = ["--url", srv.base, "--tss", tss, "--client", client]
    where += ["--journal", str(tmp_path / "till.db")]
    sale = ["--line", "Kaffee:2:2.50:1", "--pay", "bar:5.00", "--json"]
    out = _pos(server, "sell", *where, *sale)
    assert out.returncode == 0, out.stderr
    signed = json.loads(out.stdout)
    assert signed["tse_failed"] is False
    public_key = base64.b64decode(signed["qr_code_data"].split(";")[-1])
    tse_serial = hashlib.sha256(public_key).hexdigest()
    srv.kill()
    try:
        out = _pos(server, "sell", *where, *sale)
        assert out.returncode == 0, out.stderr
        body = json.loads(out.stdout)
        assert body["tse_failed"] is True
        assert f"Kassen-Seriennummer: {SERIAL}" in body["receipt_text"]
        assert client not in body["receipt_text"]
        # the TSE it was without, as the books described it (it was left out)
        assert f"TSE-Seriennummer:{tse_serial}" in body["receipt_text"].replace("\n", "")
        export = tmp_path / "closing.zip"
        out = _pos(
            server, "close", *where, "--counted-cash", "10.00", "--company", "Bäckerei Korn",
            "--street", "Mühlweg 3", "--postal-code", "01067", "--city", "Dresden",
            "--tax-number", "201/123/45678", "--out", str(export), "--json",
        )  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
        summary = json.loads(out.stdout)
        assert summary["check_errors"] == []
        assert summary["z_kasse_id"] == SERIAL
    finally:
        srv.start()


class TricklingService:
    """A service that accepts every connection and answers each request with a
    header that never ends, one byte at a time: no HTTP timeout ever fires, so only
    the register's own deadline (--timeout) ends a call. Counts the requests."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests = 0
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            if not conn.recv(65536):
                return
            self.requests += 1
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Wait: ")
            while not self.stopped.wait(0.2):  # the service's pace, not the test's
                conn.sendall(b"a")

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()


def test_pos_cli_gives_a_hung_service_no_more_than_its_timeout(tmp_path: Path) -> None:
    """A service that accepts requests and never finishes an answer: with --timeout 1
    the sale is printed "TSE ausgefallen". The serial-number lookup ran outside the
    deadline (5 s per request, 3 retries: over 20 s per sale); against this service,
    whose answers never time out, the sale would never have ended. No wall-clock
    margin: the sale ends while every answer is still unfinished, so each call was
    ended by the register's deadline."""
    hung = TricklingService()
    try:
        env = {**os.environ, "OPENTSE_API_KEY": "key", "OPENTSE_API_SECRET": "secret"}
        out = subprocess.run(
            [OPENTSE, "pos", "sell", "--url", hung.url, "--tss", str(uuid.uuid4()),
             "--client", str(uuid.uuid4()), "--journal", str(tmp_path / "till.db"),
             "--line", "Tee:1:1.80:1", "--pay", "bar:2.00", "--timeout", "1", "--json"],
            capture_output=True, text=True, timeout=300, env=env,
        )  # fmt: skip
        asked = hung.requests
    finally:
        hung.close()
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["tse_failed"] is True and "TSE ausgefallen" in body["receipt_text"]
    assert "did not answer within 1 s" in body["error"]
    assert asked >= 1  # the service was asked (and never answered)


@pytest.mark.parametrize("suffix", ["/api/v2", "/api/v2/", "/"])
def test_pos_cli_takes_the_url_as_the_service_prints_it(
    server: dict[str, Any], api: httpx.Client, tmp_path: Path, suffix: str
) -> None:
    """`opentse serve`, `tse move`'s connection file and LAN-TSE-Session.txt print the URL
    with /api/v2; given so, every call went to /api/v2/api/v2 (404) and each sale was
    printed "TSE ausgefallen" (E_NOT_FOUND)."""
    tss, client = _new_tss(api)
    out = _pos(
        server, "sell", "--url", server["server"].base + suffix, "--tss", tss,
        "--client", client, "--journal", str(tmp_path / "till.db"),
        "--line", "Kaffee:1:2.50:1", "--pay", "bar:2.50", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["tse_failed"] is False, body["error"]
    assert verify_receipt(body["qr_code_data"]).ok


def test_pos_cli_signs_on_a_lan_tse_pinned_by_its_fingerprint(
    server: dict[str, Any], api: httpx.Client, tmp_path: Path
) -> None:
    """`opentse serve --tls` (as --lan serves) has a self-signed certificate: pos had no
    way to trust it, so a register could not sign on a LAN TSE at all
    (CERTIFICATE_VERIFY_FAILED). --fingerprint pins it; another fingerprint is refused
    before the API secret is sent, and a pin with an http:// URL is a setup error."""
    tss, client = _new_tss(api)
    lan_tse = Server(server["server"].data)  # the same installation, served over TLS
    lan_tse.base = lan_tse.base.replace("http://", "https://")
    lan_tse.proc = subprocess.Popen(
        [OPENTSE, "serve", "--data", str(lan_tse.data), "--port", str(lan_tse.port), "--tls"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        cert = lan_tse.data / "lan-tls-cert.pem"
        deadline = time.monotonic() + 60
        while not cert.exists() or not _accepts(lan_tse.port):
            assert lan_tse.proc.poll() is None and time.monotonic() < deadline, "no server"
            time.sleep(0.2)
        der = x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(Encoding.DER)
        pin = hashlib.sha256(der).hexdigest()
        where = ["--url", lan_tse.base, "--tss", tss, "--client", client]
        where += ["--journal", str(tmp_path / "till.db")]
        sale = ["--line", "Kaffee:1:2.50:1", "--pay", "bar:2.50", "--json"]
        out = _pos(server, "sell", *where, "--fingerprint", pin, *sale)
        assert out.returncode == 0, out.stderr
        body = json.loads(out.stdout)
        assert body["tse_failed"] is False, body["error"]
        assert verify_receipt(body["qr_code_data"]).ok
        out = _pos(server, "sell", *where, "--fingerprint", "AB" * 32, *sale)
        body = json.loads(out.stdout)
        assert body["tse_failed"] is True and pin.upper() in body["error"]
        out = _pos(server, "sell", *where, *sale)  # no pin: the certificate is not trusted
        assert json.loads(out.stdout)["tse_failed"] is True
    finally:
        lan_tse.proc.terminate()
        lan_tse.proc.wait(timeout=20)
    http = ["--url", server["server"].base, "--tss", tss, "--client", client]
    out = _pos(server, "status", *http, "--fingerprint", pin, "--no-check")
    assert out.returncode == 1 and "E_REMOTE_FINGERPRINT_HTTP" in out.stdout + out.stderr


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_pos_daily_and_status_no_check_do_not_call_a_service_they_do_not_need(
    tmp_path: Path,
) -> None:
    """`pos daily` works while no TSE is connected and `status --no-check` reads only
    the journal: with the register's serial kept, neither connects to the service (they
    waited for its serial-number lookup, up to the TSE timeout on a hung service)."""
    journal = tmp_path / "till.db"
    books = Books(journal)
    books.set_register_serial(SERIAL)
    books.close_file()
    env = {**os.environ, "OPENTSE_API_KEY": "key", "OPENTSE_API_SECRET": "secret"}
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)  # a connection would wait here, complete but never accepted
        where = ["--url", f"http://127.0.0.1:{hung.getsockname()[1]}", "--tss", "t"]
        where += ["--client", str(uuid.uuid4()), "--journal", str(journal)]
        for command in (["daily", "--note", "Kasse 7"], ["status", "--no-check", "--json"]):
            out = subprocess.run(
                [OPENTSE, "pos", *command, *where],
                capture_output=True, text=True, timeout=120, env=env,
            )  # fmt: skip
            assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["daily_records"][0]["note"] == "Kasse 7"
        hung.setblocking(False)
        with pytest.raises(BlockingIOError):
            hung.accept()[0].close()
