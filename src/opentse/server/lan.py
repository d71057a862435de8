"""LAN mode: the TSE service on a back-office machine, reached by the registers.

POS vendors' LAN-TSE set-up guides (Loco-Soft's LAN-TSE connector) ask the operator for
the machine's IP address, port 4433 and an API token. ``opentse serve --lan`` therefore
listens on 0.0.0.0:4433 with TLS, using a self-signed server certificate made once and
kept in the data folder; its SHA-256 fingerprint is shown and written, together with
address, port and API credentials, to ``LAN-TSE-Session.txt`` for the operator to copy
into the register's settings. ``connection_test`` is what ``opentse lan test`` runs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from opentse.crypto.private_file import write_private_file
from opentse.crypto.tlspin import PinMismatch, fingerprint_hex, pinned_context
from opentse.errors import ProtocolError
from opentse.server.auth import create_api_key, derive_key

LAN_PORT = 4433
SESSION_FILE = "LAN-TSE-Session.txt"
CERT_FILE = "lan-tls-cert.pem"
KEY_FILE = "lan-tls-key.pem"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert: Path
    key: Path
    fingerprint: str  # "AA:BB:..." SHA-256 of the DER certificate
    password: str | None = None  # of the encrypted key file (uvicorn ssl_keyfile_password)


def fingerprint_of(cert_der: bytes) -> str:
    digest = hashlib.sha256(cert_der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def file_fingerprint(cert_path: Path) -> str:
    """``fingerprint_of`` the PEM certificate in ``cert_path`` (OSError, ValueError
    when it cannot be read)."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return fingerprint_of(cert.public_bytes(serialization.Encoding.DER))


def normalize_fingerprint(text: str) -> str:
    cleaned = fingerprint_hex(text)
    return ":".join(cleaned[i : i + 2] for i in range(0, len(cleaned), 2))


def key_password(secret: bytes) -> str:
    """The TLS key file's password, derived from the installation secret (so the key
    is encrypted at rest like every other private key of the installation)."""
    return derive_key(secret, "opentse/server/lan-tls-key/v1").hex()


def _write_key(path: Path, key: Any, password: str | None) -> None:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    # a new file renamed over the old (PEM is ASCII): never written through a link
    write_private_file(path, key_bytes.decode("ascii"))


def ensure_certificate(
    data_dir: Path,
    addresses: list[str],
    now: dt.datetime | None = None,
    *,
    secret: bytes | None = None,
) -> TlsFiles:
    """Load the LAN server certificate, or make one (P-256, 10 years) the first time.

    With the installation ``secret`` the key file is encrypted (a plain one from an
    older version is encrypted now) and ``TlsFiles.password`` opens it."""
    cert_path, key_path = data_dir / CERT_FILE, data_dir / KEY_FILE
    password = key_password(secret) if secret is not None else None
    if not (cert_path.exists() and key_path.exists()):
        now = now or dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "opentse LAN TSE")])
        alt: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.DNSName(socket.gethostname()),
        ]
        for address in addresses:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(address)))
            except ValueError:
                continue
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        data_dir.mkdir(parents=True, exist_ok=True)
        _write_key(key_path, key, password)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    elif password is not None and b"ENCRYPTED" not in key_path.read_bytes():
        plain = serialization.load_pem_private_key(key_path.read_bytes(), None)
        _write_key(key_path, plain, password)
    return TlsFiles(cert_path, key_path, file_fingerprint(cert_path), password)


def machine_addresses() -> list[str]:
    """This machine's IPv4 addresses as a register on the LAN would dial them."""
    found: list[str] = []
    try:
        # no packet is sent: connecting a UDP socket only picks the outgoing interface
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            found.append(s.getsockname()[0])
    except OSError:
        pass
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            address = str(info[4][0])
            if address not in found:
                found.append(address)
    except OSError:
        pass
    return [a for a in found if not a.startswith("127.")] or ["127.0.0.1"]


def write_session_file(
    data_dir: Path,
    *,
    address: str,
    port: int,
    api_key: str | None,
    api_secret: str | None,
    fingerprint: str,
    tls: bool | None = None,
) -> Path:
    """LAN-TSE-Session.txt: what the operator types into the register (0600: has a secret).

    ``tls``: whether the service speaks HTTPS; by default when there is a fingerprint
    (``serve --lan`` has one exactly when it serves TLS). A move says it itself: its
    host may serve TLS with no fingerprint given, or a fingerprint without TLS."""
    https = bool(fingerprint) if tls is None else tls
    scheme = "https" if https else "http"
    pin = f" --fingerprint {fingerprint}" if https and fingerprint else ""
    host = f"[{address}]" if ":" in address else address  # IPv6 in a URL (RFC 3986)
    lines = [
        "opentse LAN TSE session (not BSI-certified)",
        f"URL:                 {scheme}://{host}:{port}/api/v2",
        f"IP address:          {address}",
        f"Port:                {port}",
        f"API key:             {api_key or '(existing key, see your records)'}",
        f"API secret:          {api_secret or '(shown only when the key was created)'}",
        f"TLS SHA-256:         {(fingerprint or '(not given)') if https else '(no TLS)'}",
        "",
        f"Test: opentse lan test --url {scheme}://{host}:{port} --api-key ... "
        f"--api-secret ...{pin}",
        "",
    ]
    path = data_dir / SESSION_FILE
    # atomic, 0600 also when the old file was 0644 (restored from a backup), and never
    # through a link or half-written
    write_private_file(path, "\n".join(lines))
    return path


def _ssl_context(url: str, insecure: bool, fingerprint: str | None) -> ssl.SSLContext | bool:
    if urlsplit(url).scheme != "https":
        if fingerprint is not None:  # a pin the connection would never check
            raise ProtocolError(
                "--fingerprint pins a TLS certificate: the URL must start with https://",
                code="E_TLS_PIN",
            )
        return True
    if fingerprint is None:
        return not insecure
    try:
        return pinned_context(url, fingerprint, 10)
    except PinMismatch as exc:
        raise ProtocolError(
            f"the server's certificate has the SHA-256 fingerprint "
            f"{normalize_fingerprint(exc.got)}, not the pinned "
            f"{normalize_fingerprint(exc.wanted)}",
            code="E_TLS_PIN",
        ) from None


def connection_test(
    url: str,
    api_key: str,
    api_secret: str,
    *,
    insecure: bool = False,
    fingerprint: str | None = None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Authenticate, list the TSS, and time the round trips (the register's check)."""
    base = url.rstrip("/")
    if not base.endswith("/api/v2"):
        base += "/api/v2"
    verify = _ssl_context(base, insecure, fingerprint)
    with httpx.Client(base_url=base, verify=verify, timeout=timeout) as client:
        t0 = time.perf_counter()
        auth = client.post("/auth", json={"api_key": api_key, "api_secret": api_secret})
        t1 = time.perf_counter()
        try:
            answer = auth.json()
        except ValueError:  # it connected, but what answers is no /api/v2
            return {
                "ok": False,
                "step": "auth",
                "status": auth.status_code,
                "error": "the answer to POST /auth is not JSON: no opentse or fiskaly API "
                "at this URL?",
            }
        if auth.status_code != 200:
            return {"ok": False, "step": "auth", "status": auth.status_code, "body": answer}
        token = answer["access_token"]
        t2 = time.perf_counter()
        listing = client.get("/tss", headers={"Authorization": f"Bearer {token}"})
        t3 = time.perf_counter()
        if listing.status_code != 200:
            return {
                "ok": False,
                "step": "list",
                "status": listing.status_code,
                "body": listing.json(),
            }
        return {
            "ok": True,
            "url": base,
            "organization_id": answer.get("access_token_claims", {}).get("organization_id"),
            "tss_count": listing.json()["count"],
            "tss": [{"id": t["_id"], "state": t["state"]} for t in listing.json()["data"]],
            "auth_ms": round((t1 - t0) * 1000, 2),
            "round_trip_ms": round((t3 - t2) * 1000, 2),
        }


def _read_session(path: Path) -> tuple[str | None, str | None]:
    key = secret = None
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            name, _, value = line.partition(":")
            value = value.strip()
            if name.strip() == "API key" and value.startswith("key_"):
                key = value
            elif name.strip() == "API secret" and not value.startswith("("):
                secret = value
    return key, secret


def prepare_session(
    ctx: Any, data_dir: Path, address: str, port: int, fingerprint: str, env: str = "TEST"
) -> Path:
    """Create the LAN API key if none exists and (re)write LAN-TSE-Session.txt.

    The secret exists only in this file (0600) and as a slow hash; on later starts
    the key and secret already written there are kept.
    """
    key, secret = _read_session(data_dir / SESSION_FILE)
    if ctx.svc.count_api_keys() == 0:
        created = create_api_key(ctx.svc, org_name="lan", env=env, now=ctx.now())
        key, secret = created["api_key"], created["api_secret"]
    return write_session_file(
        data_dir,
        address=address,
        port=port,
        api_key=key,
        api_secret=secret,
        fingerprint=fingerprint,
    )
