"""What the receipt tests share: the CLI runner, a shop made through the CLI (embedded
TSE, ``pos`` sales with their QR texts and PNGs, the TAR and DSFinV-K exports), and
the QR text a till would print for each Finish log of any vendor's TAR."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import segno
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.formats.qr import build_qr_payload
from opentse.tr03151.logmessage import FINISH, START, LogMessage, TransactionLogData
from opentse.tr03151.oids import algorithm_name
from opentse.verify.archive import load_exports

APP = build_app()
COMPANY = ["--company", "C", "--street", "S", "--postal-code", "1", "--city", "X"]
COMPANY += ["--tax-number", "123"]


def run(*args: str) -> tuple[int, str]:
    """``opentse ARGS``: exit code and stdout."""
    result = CliRunner().invoke(APP, list(args))
    return result.exit_code, result.stdout


class Shop:
    """One installation in ``root/data`` with TSE ``tss``, driven through the CLI as
    a shop would: ``pos`` receipts (QR text, PNG), closings, its TAR export
    (``tar``) and DSFinV-K exports."""

    def __init__(self, root: Path, tss: str = "t") -> None:
        self.root = root
        self.data = root / "data"
        self.tss = tss
        self.tar = root / "tse.tar"
        self.text: dict[str, str] = {}
        self.qr: dict[str, Path] = {}

    def base(self, client: str) -> list[str]:
        return ["--data", str(self.data), "--tss", self.tss, "--client", client]

    def pos(self, name: str, command: str, client: str, *args: str) -> dict[str, object]:
        """``opentse pos COMMAND``: keep its QR text under ``name`` and a PNG of it
        (``--qr`` where the command prints one, else segno), as a photo would give."""
        png = self.root / f"{name}.png"
        qr = ["--qr", str(png)] if command == "sell" else []
        code, out = run("pos", command, *self.base(client), *args, "--json", *qr)
        assert code == 0, out
        body: dict[str, object] = json.loads(out)
        self.text[name] = str(body["qr_code_data"])
        if not qr:
            segno.make(self.text[name], error="m").save(png, scale=4)
        self.qr[name] = png
        return body

    def close(self, client: str, counted: str = "0.00") -> None:
        code, out = run("pos", "close", *self.base(client), "--counted-cash", counted, *COMPANY)
        assert code == 0, out

    def export_tar(self) -> Path:
        code, out = run("export", str(self.tar), "--tss", self.tss, "--data", str(self.data))
        assert code == 0, out
        return self.tar

    def export_dsfinvk(self, client: str, name: str) -> Path:
        path = self.root / name
        code, out = run("dsfinvk", "export", "--register", client, "--data", str(self.data),
                        str(path))  # fmt: skip
        assert code == 0, out
        return path


@dataclass(frozen=True)
class FinishReceipt:
    """The QR text a till prints for one Finish log of a TAR: ``start`` is its Start
    log's time when the TAR holds that log (else the Finish log's), ``file`` the
    Finish log's member, ``message`` the log itself."""

    text: str
    start: datetime
    file: str
    message: LogMessage


def finish_receipts(tar: Path) -> list[FinishReceipt]:
    """One receipt per Finish log of ``tar`` (any vendor), in archive order, its key
    from the archive's certificate of the log's serial."""
    export = load_exports([tar])
    points = {c.key_hash: c.point for c in export.certificates if c.point}
    starts: dict[tuple[bytes, int], datetime] = {}
    finishes: list[tuple[str, LogMessage, TransactionLogData]] = []
    for entry in export.logs:
        msg = entry.message
        assert msg is not None, entry.file
        data = msg.certified
        if not isinstance(data, TransactionLogData):
            continue
        if data.operation_type == START:
            starts[msg.serial_number, data.transaction_number] = msg.log_time.as_datetime()
        elif data.operation_type == FINISH:
            finishes.append((entry.file, msg, data))
    out = []
    for file, msg, data in finishes:
        end = msg.log_time.as_datetime()
        start = starts.get((msg.serial_number, data.transaction_number), end)
        point = points[msg.serial_number.hex()]
        assert point is not None
        text = build_qr_payload(
            client_id=data.client_id,
            process_type=data.process_type,
            process_data=data.process_data.decode("utf-8"),
            transaction_number=data.transaction_number,
            signature_counter=msg.signature_counter,
            start_time=start,
            log_time=end,
            signature_algorithm=algorithm_name(msg.signature_algorithm),
            time_format=msg.log_time.format,
            signature=msg.signature_value,
            public_key=point,
        )
        out.append(FinishReceipt(text, start, file, msg))
    return out
