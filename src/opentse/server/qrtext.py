"""``qr_code_data`` of a finished transaction, without re-parsing every payload.

``formats.qr.build_qr_payload`` builds the DSFinV-K Anhang I text and then parses it
back (``parse_qr_payload``), so no payload our own parser would refuse is handed out;
that check was ~20 us of every Finish response. Its outcome depends on few things:
the fields fixed per client and TSE (client serial, process type, algorithm, time
format, public key), checked here once per combination with the real parser, and the
per-receipt ones whose rules are plain (numbers >= 1, start not after the log time, a
signature present; processData is free text the parser takes as it comes). Anything
else goes to ``build_qr_payload`` itself. A differential test holds ``qr_text`` to
``build_qr_payload`` on hostile inputs.
"""

from __future__ import annotations

import base64
import datetime as dt
import threading

from opentse.engine.results import SignResult
from opentse.errors import FormatError
from opentse.formats.qr import QR_VERSION, build_qr_payload, format_qr_time

_PROBE_TIME = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
_Key = tuple[str, str, str, str, bytes]


class QRText:
    """Builds ``qr_code_data`` like ``build_qr_payload`` (None where it refuses)."""

    def __init__(self, limit: int = 4096) -> None:
        self._fixed_ok: dict[_Key, tuple[bool, str]] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def text(self, result: SignResult, client_serial: str) -> str | None:
        """The payload for ``result`` (its Finish log), or None when it has none."""
        key = (
            client_serial,
            result.process_type,
            result.algorithm,
            result.time_format,
            result.public_key_point,
        )
        fixed = self._fixed_ok.get(key)
        if fixed is None:
            fixed = self._check_fixed(key)
        ok, public_key_b64 = fixed
        if not (
            ok
            and result.transaction_number >= 1
            and result.signature_counter >= 1
            and result.start_time <= result.log_time
            and result.signature
        ):
            return _slow(result, client_serial)
        try:
            process_data = result.process_data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        start = format_qr_time(dt.datetime.fromtimestamp(result.start_time, dt.UTC))
        logged = format_qr_time(dt.datetime.fromtimestamp(result.log_time, dt.UTC))
        return ";".join(
            (
                QR_VERSION,
                client_serial,
                result.process_type,
                process_data,
                str(result.transaction_number),
                str(result.signature_counter),
                start,
                logged,
                result.algorithm,
                result.time_format,
                base64.b64encode(result.signature).decode("ascii"),
                public_key_b64,
            )
        )

    def _check_fixed(self, key: _Key) -> tuple[bool, str]:
        """Whether the parser takes these fixed fields, probed with valid variable ones."""
        client_serial, process_type, algorithm, time_format, public_key = key
        try:
            build_qr_payload(  # builds, then parses back with parse_qr_payload
                client_id=client_serial,
                process_type=process_type,
                process_data="",
                transaction_number=1,
                signature_counter=1,
                start_time=_PROBE_TIME,
                log_time=_PROBE_TIME,
                signature_algorithm=algorithm,
                time_format=time_format,
                signature=b"\x01",
                public_key=public_key,
            )
            ok = True
        except (FormatError, ValueError):
            ok = False
        fixed = (ok, base64.b64encode(public_key).decode("ascii"))
        with self._lock:
            if len(self._fixed_ok) >= self._limit:
                self._fixed_ok.clear()
            self._fixed_ok[key] = fixed
        return fixed


def _slow(result: SignResult, client_serial: str) -> str | None:
    """``build_qr_payload`` itself, exactly as the route always called it."""
    try:
        return build_qr_payload(
            client_id=client_serial,
            process_type=result.process_type,
            process_data=result.process_data.decode("utf-8"),
            transaction_number=result.transaction_number,
            signature_counter=result.signature_counter,
            start_time=dt.datetime.fromtimestamp(result.start_time, dt.UTC),
            log_time=dt.datetime.fromtimestamp(result.log_time, dt.UTC),
            signature_algorithm=result.algorithm,
            time_format=result.time_format,
            signature=result.signature,
            public_key=result.public_key_point,
        )
    except (FormatError, UnicodeDecodeError, ValueError):
        return None  # processData a QR code cannot carry (';' or binary): no QR, as documented
