"""Plain http:// to ``opentse serve --lan``'s TLS port (server/tls_port.py).

A POS operator who typed http:// instead of https:// got an empty reply (the TLS
handshake failed on the request line and the connection was dropped): curl's
"Empty reply from server", httpx's RemoteProtocolError, nothing that says why. Now
it is a 400 fiskaly problem body, ``E_TLS_REQUIRED``, naming the https URL, and the
connection closes; TLS clients are served as before. Against a real process."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from opentse.server import lan
from opentse.testing.serving import serve_process, session_fields


def _raw(port: int, data: bytes, *, close_write: bool = False) -> bytes:
    """What the server answers on a plain TCP connection that sends ``data``."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(data)
        if close_write:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_plain_http_on_the_tls_port_is_told_to_use_https(tmp_path: Path) -> None:
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    with serve_process(data, lan=True, output=log) as origin:
        port = int(urlsplit(origin).port or 0)
        plain = f"http://127.0.0.1:{port}"
        fields = session_fields((data / lan.SESSION_FILE).read_text())
        login = {"api_key": fields["API key"], "api_secret": fields["API secret"]}

        # the register's first request, with its JSON body, and a browser's GET
        r = httpx.post(f"{plain}/api/v2/auth", json=login, headers={"request-id": "till-1"})
        assert r.status_code == 400, r.text
        assert r.headers["content-type"] == "application/json"
        assert r.headers["request-id"] == "till-1"
        assert r.json() == {
            "status_code": 400,
            "error": "Bad Request",
            "code": "E_TLS_REQUIRED",
            "message": r.json()["message"],
        }
        assert f"https://127.0.0.1:{port}/api/v2/auth" in r.json()["message"]
        assert fields["API secret"] not in r.text
        page = httpx.get(f"{plain}/dashboard?lang=de")
        assert page.status_code == 400 and page.json()["code"] == "E_TLS_REQUIRED"
        assert f"https://127.0.0.1:{port}/dashboard" in page.json()["message"]
        assert page.headers["request-id"]  # every answer names its request
        # a large body is read and dropped: the answer arrives whole, no reset
        big = httpx.put(f"{plain}/api/v2/tss/x", content=b"x" * 300_000)
        assert big.status_code == 400 and big.json()["code"] == "E_TLS_REQUIRED"

        # a Host header that is no host name is not echoed as a URL
        odd = _raw(port, b"GET /x HTTP/1.1\r\nHost: a b<c>\r\n\r\n")
        assert odd.startswith(b"HTTP/1.1 400 Bad Request\r\n"), odd
        assert b"E_TLS_REQUIRED" in odd and b"a b<c>" not in odd
        # bytes that end without a full head still get the answer, then the close
        assert b"E_TLS_REQUIRED" in _raw(port, b"GET / HT", close_write=True)
        # a connection that closes without a byte costs nothing
        assert _raw(port, b"", close_write=True) == b""

        # TLS clients are served as before: the fingerprint pin, a login, the scheme
        result = lan.connection_test(
            origin, login["api_key"], login["api_secret"], fingerprint=_fingerprint(data)
        )
        assert result["ok"] is True, result
        with httpx.Client(verify=False) as tls:
            assert tls.get(f"{origin}/health").status_code == 200
            auth = tls.post(f"{origin}/api/v2/auth", json=login)
            assert auth.status_code == 200, auth.text
            # the app still sees https: the dashboard's session cookie is Secure
            # (redirects are paths since 8a2b5c5, so they no longer show the scheme)
            assert tls.get(f"{origin}/dashboard").headers["location"] == "/dashboard/"
            form = tls.get(f"{origin}/dashboard/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf is not None, form.text
            signed_in = tls.post(f"{origin}/dashboard/login", data={"csrf": csrf.group(1), **login})
            assert signed_in.status_code == 303, signed_in.text
            cookie = signed_in.headers["set-cookie"].lower()
            assert "secure" in cookie and "httponly" in cookie, cookie
        # a handshake that fails (no common protocol) leaves the server serving
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_ciphers("NULL")  # nothing the server accepts
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        with (
            socket.create_connection(("127.0.0.1", port), timeout=20) as s,
            contextlib.suppress(ssl.SSLError, OSError),
        ):
            context.wrap_socket(s).close()
        for _ in range(3):  # and still answers both kinds
            assert httpx.get(f"{plain}/health").status_code == 400
            assert httpx.get(f"{origin}/health", verify=False).status_code == 200
    assert "Traceback" not in log.read_text(), log.read_text()


def _fingerprint(data: Path) -> str:
    return lan.file_fingerprint(data / lan.CERT_FILE)
