"""qr_code_data (server/qrtext.py) against formats.qr.build_qr_payload.

The server skips the parse-back of ``build_qr_payload`` where its outcome is known;
on hostile inputs (odd client serials and process types, semicolons, line breaks and
invalid UTF-8 in processData, zero counters, start after the log time, empty
signatures, bad keys, algorithms and time formats) it must give the same text, or
None exactly where ``build_qr_payload`` refuses.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.engine.results import SignResult
from opentse.errors import FormatError
from opentse.formats.qr import build_qr_payload, parse_qr_payload
from opentse.server.qrtext import QRText

GOOD_KEY = b"\x04" + bytes(range(64))
texts = st.sampled_from(["KASSE-1", "Kasse 2", "", "a;b", "ä", "x" * 120, "Kassenbeleg-V1"])
data = st.sampled_from(
    [b"Beleg^1.00_0.00_0.00_0.00_0.00^1.00:Bar", b"", b"a;b;c", b"\xff\xfe", b"line\r\n", b";"]
) | st.binary(max_size=12)
times = st.integers(0, 4_000_000_000)


def _reference(r: SignResult, serial: str) -> str | None:
    try:
        return build_qr_payload(
            client_id=serial,
            process_type=r.process_type,
            process_data=r.process_data.decode("utf-8"),
            transaction_number=r.transaction_number,
            signature_counter=r.signature_counter,
            start_time=dt.datetime.fromtimestamp(r.start_time, dt.UTC),
            log_time=dt.datetime.fromtimestamp(r.log_time, dt.UTC),
            signature_algorithm=r.algorithm,
            time_format=r.time_format,
            signature=r.signature,
            public_key=r.public_key_point,
        )
    except (FormatError, UnicodeDecodeError, ValueError):
        return None


@st.composite
def results(draw: st.DrawFn) -> tuple[SignResult, str]:
    serial = draw(texts)
    r = SignResult(
        tse_id="t",
        operation="FinishTransaction",
        transaction_number=draw(st.integers(0, 3) | st.integers(1, 10**12)),
        signature_counter=draw(st.integers(0, 3) | st.integers(1, 10**12)),
        signature=draw(st.sampled_from([b"", b"\x01" * 64]) | st.binary(max_size=70)),
        log_time=draw(times),
        start_time=draw(times),
        time_format=draw(st.sampled_from(["unixTime", "utcTime", "generalizedTime", "bogus"])),
        serial_number=b"\x01" * 32,
        public_key_point=draw(st.sampled_from([GOOD_KEY, b"\x02" + bytes(32), b"", b"\x04"])),
        algorithm=draw(st.sampled_from(["ecdsa-plain-SHA256", "ecdsa-plain-SHA384", "rsa"])),
        client_id=serial,
        process_type=draw(texts),
        process_data=draw(data),
        filename="f",
    )
    return r, serial


@settings(max_examples=400, deadline=None)
@given(case=results())
def test_qr_text_is_build_qr_payload(case: tuple[SignResult, str]) -> None:
    r, serial = case
    builder = QRText(limit=8)  # small: the cache is cleared along the way too
    expected = _reference(r, serial)
    assert builder.text(r, serial) == expected
    assert builder.text(r, serial) == expected  # and again from the cache
    if expected is not None:
        assert parse_qr_payload(expected).signature == r.signature


def test_a_usual_receipt_takes_the_quick_way() -> None:
    r = SignResult(
        tse_id="t",
        operation="FinishTransaction",
        transaction_number=7,
        signature_counter=15,
        signature=b"\x07" * 64,
        log_time=1_700_000_100,
        start_time=1_700_000_000,
        time_format="unixTime",
        serial_number=b"\x01" * 32,
        public_key_point=GOOD_KEY,
        algorithm="ecdsa-plain-SHA256",
        client_id="KASSE-1",
        process_type="Kassenbeleg-V1",
        process_data=b"Beleg^21.42_0.00_0.00_0.00_0.00^21.42:Unbar",
        filename="f",
    )
    builder = QRText()
    assert builder.text(r, "KASSE-1") == _reference(r, "KASSE-1")
    assert len(builder._fixed_ok) == 1 and next(iter(builder._fixed_ok.values()))[0]
