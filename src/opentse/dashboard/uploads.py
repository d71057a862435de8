"""Verification for the dashboard: TAR exports, receipt QR photos and QR texts.

Uploads are copied to a private temporary folder in chunks with a size limit (a TAR
up to ``MAX_TAR``, an image up to ``MAX_IMAGE``), recognised by their first bytes,
not by the name a browser sends, and handed to the verifier (opentse.verify). The
results become plain dicts the templates show.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from opentse.crypto.private_file import close_if_there, private_dir
from opentse.errors import OpenTSEError

log = logging.getLogger(__name__)

MAX_TAR = 200 * 2**20
MAX_IMAGE = 10 * 2**20
MAX_QR_TEXT = 4096
CHUNK = 1 << 20


class UploadError(Exception):
    def __init__(self, status: int, key: str) -> None:
        super().__init__(key)
        self.status = status
        self.key = key  # i18n key of the message


def kind_of(head: bytes) -> str | None:
    """ "png", "jpeg" or "tar" from the first 512 bytes; None when neither."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return None


def qr_svg(text: str, *, scale: int = 4) -> str:
    """Inline SVG (no XML declaration) of the receipt QR code, via the register's
    QR settings (error level M, never boosted). Empty when no QR code holds the text
    (a long order's: render_qr.fits_qr), as a receipt then prints none; drawing it
    raised E_QR_TOO_LONG and the transaction page answered 500."""
    from opentse.register.render_qr import fits_qr, make_qr

    if not fits_qr(text):
        return ""
    qr = make_qr(text)
    buffer = io.BytesIO()
    qr.save(
        buffer, kind="svg", scale=scale, border=4, xmldecl=False, svgns=True,
        title="QR", svgclass="qr", lineclass=None, omitsize=False,
    )  # fmt: skip
    svg = buffer.getvalue().decode("utf-8")
    size = qr.symbol_size(scale=scale, border=4)
    # a viewBox lets CSS scale the symbol without cropping it
    return svg.replace("<svg ", f'<svg viewBox="0 0 {size[0]} {size[1]}" ', 1)


def _findings(items: Any) -> list[dict[str, str]]:
    return [
        {"severity": f.severity.value, "code": f.code, "message": f.message, "file": f.file}
        for f in items
    ]


def check_receipt_text(text: str) -> dict[str, Any]:
    from opentse.verify.receipt import verify_receipt

    result = verify_receipt(text)
    payload = result.payload
    return {
        "kind": "receipt",
        "ok": result.ok,
        # a QR code of something else (a web address, a voucher): no receipt at all
        "not_receipt": not text.startswith("V0;"),
        "text": text,
        "transaction_number": payload.transaction_number if payload else None,
        "signature_counter": payload.signature_counter if payload else None,
        "client_id": payload.client_id if payload else "",
        "serial": result.serial_number or "",
        "findings": _findings(result.findings),
    }


def own_name(findings: list[dict[str, Any]], path: Path, name: str) -> None:
    """Findings name the file as its owner knows it (``name``), never the server's
    path: the verifier words an unreadable archive with the path it read, and on a
    shop owner's page the server's temporary upload folder is an info leak and
    means nothing to them."""
    # one pass (a replacement is never looked at again, so calling this twice, or a
    # name holding the file's own name, does not repeat it): the full path first, then
    # the folder (a file of it named otherwise), then the bare file name as a word
    paths = sorted({str(path), str(path.resolve())}, key=len, reverse=True)
    folders = sorted({str(path.parent), str(path.resolve().parent)}, key=len, reverse=True)
    folders = [f for f in folders if f not in ("", ".", os.sep)]  # never every dot or slash
    shown = {full: name for full in paths}
    shown.update({folder + os.sep: "" for folder in folders})
    shown.update({folder: "" for folder in folders})
    pattern = re.compile(
        "|".join(re.escape(x) for x in shown) + rf"|(?<![\w.-]){re.escape(path.name)}(?![\w.-])"
    )
    for finding in findings:
        for key in ("message", "file"):
            value = finding.get(key)
            if isinstance(value, str):
                finding[key] = pattern.sub(lambda m: shown.get(m.group(0), name), value)


def verify_tar(path: Path, name: str | None = None) -> dict[str, Any]:
    """The verifier's report on the export at ``path``, its findings naming the file
    ``name`` (default its own file name, without the server's folder)."""
    from opentse.verify.archive import UnreadableExportError
    from opentse.verify.report import verify_exports

    shown = name or path.name
    try:
        report = verify_exports([path], workers=1)
    except UnreadableExportError as exc:
        findings = [{"severity": "error", "code": exc.code, "message": str(exc), "file": ""}]
        own_name(findings, path, shown)
        return {
            "kind": "tar",
            "ok": False,
            "log_messages": 0,
            "valid_signatures": 0,
            "invalid_signatures": 0,
            "findings": findings,
        }
    data = report.to_json()
    findings = _findings(report.findings)
    own_name(findings, path, shown)
    from opentse.ops.archive import sha256_file

    return {
        "kind": "tar",
        "ok": report.ok,
        "sha256": sha256_file(path),
        "size": path.stat().st_size,
        "log_messages": data["log_messages"],
        "valid_signatures": data["valid_signatures"],
        "invalid_signatures": len(data["invalid_signatures"]),
        "transactions": data["transactions"],
        "findings": findings,
    }


def _check_image(path: Path) -> dict[str, Any]:
    from opentse.verify.qrimage import read_qr_texts, receipt_texts

    try:
        texts = read_qr_texts(path)  # refuses images claiming too many pixels first
    except OpenTSEError as exc:
        return {
            "kind": "receipt",
            "ok": False,
            "not_read": True,  # nothing was checked: no verdict on the receipt
            "text": "",
            "transaction_number": None,
            "signature_counter": None,
            "client_id": "",
            "serial": "",
            "findings": [
                {"severity": "error", "code": exc.code or "E_QR_IMAGE", "message": str(exc),
                 "file": ""}
            ],
        }  # fmt: skip
    # every receipt in the picture, as opentse verify-receipt --image does
    return several_receipts([check_receipt_text(text) for text in receipt_texts(texts)])


def several_receipts(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One picture, several receipts: every QR code is checked (a second, altered
    receipt beside a good one must not pass); the page shows the first that fails
    (else the first) and says how many there were."""
    if len(results) == 1:
        return results[0]
    failed = [n for n, r in enumerate(results, start=1) if not r["ok"]]
    shown = failed[0] if failed else 1
    result = dict(results[shown - 1])
    result["ok"] = not failed
    summary = f"the picture holds {len(results)} receipt QR codes: "
    if failed:
        summary += (
            f"{len(results) - len(failed)} verified, QR code(s) "
            f"{', '.join(map(str, failed))} did not; shown: QR code {shown}"
        )
    else:
        summary += "all verified; shown: the first"
    note = {"severity": "error" if failed else "info",
            "code": "E_QR_SEVERAL_FAILED" if failed else "I_QR_SEVERAL",
            "message": summary, "file": ""}  # fmt: skip
    result["findings"] = [note, *result["findings"]]
    return result


async def _save(upload: UploadFile, folder: Path) -> tuple[Path, str]:
    head = await upload.read(512)
    kind = kind_of(head)
    if kind is None:
        raise UploadError(415, "unknown_file")
    limit = MAX_TAR if kind == "tar" else MAX_IMAGE
    path = folder / f"upload.{kind}"
    size = len(head)
    with open(path, "wb") as out:
        out.write(head)
        while chunk := await upload.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise UploadError(413, "too_large")
            out.write(chunk)
    return path, kind


async def handle(form: FormData, data_dir: Path) -> dict[str, Any]:
    """Verify what the form carries: a file (TAR/PNG/JPEG) or a pasted QR text."""
    upload = form.get("file")
    text = form.get("qr_text")
    name = ""
    if isinstance(upload, UploadFile) and upload.filename:
        name = Path(upload.filename).name
        spool = Path(data_dir) / "tmp"
        spool.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.TemporaryDirectory(dir=spool) as folder:
            path, kind = await _save(upload, Path(folder))
            if kind == "tar":
                result = await run_in_threadpool(verify_tar, path, name)
            else:
                result = await run_in_threadpool(_check_image, path)
            own_name(result["findings"], path, name)  # the file as the visitor named it
    elif isinstance(text, str) and text.strip():
        if len(text) > MAX_QR_TEXT:
            raise UploadError(413, "too_large")
        result = await run_in_threadpool(check_receipt_text, text.strip())
    else:
        raise UploadError(400, "nothing_uploaded")
    result["name"] = name or "QR"
    return result


class ExportChecks:
    """Verification of finished exports in the background (a daemon thread each), so
    a large archive never holds a page request; results are kept per export id, in
    memory and, with ``folder``, on disk beside the file's size and modification
    time: a restart (or another API node on the same data folder) shows the report
    instead of verifying 10^6 logs again on a CPU that signs."""

    MAX_KEPT = 200
    PART_SECONDS = 3600  # a report's temporary file older than this: its writer died

    def __init__(self, folder: Path | None = None) -> None:
        self._folder = folder
        close_if_there(folder)  # one an older version left 0755
        self._lock = threading.Lock()
        self._done: dict[str, dict[str, Any]] = {}
        self._running: dict[str, threading.Event] = {}

    def result(self, export_id: str, path: Path, wait: float = 2.0) -> dict[str, Any] | None:
        """The report, or None while it is still being computed (after ``wait`` s)."""
        with self._lock:
            if export_id in self._done:
                return self._done[export_id]
        stored = self._load(export_id, path)
        with self._lock:
            if stored is not None:
                self._keep(export_id, stored)
                return stored
            if export_id in self._done:
                return self._done[export_id]
            event = self._running.get(export_id)
            if event is None:
                event = self._running[export_id] = threading.Event()
                threading.Thread(
                    target=self._run, args=(export_id, path, event), daemon=True,
                    name="opentse-dashboard-verify",
                ).start()  # fmt: skip
        event.wait(wait)
        with self._lock:
            return self._done.get(export_id)

    def forget(self, export_id: str) -> bool:
        """Drop the report of an export that is gone, in memory and on disk; True when
        a stored one was deleted."""
        with self._lock:
            self._done.pop(export_id, None)
        file = self._file(export_id)
        if file is None:
            return False
        try:
            file.unlink()
        except FileNotFoundError:
            return False
        return True

    def prune(
        self,
        exports: Callable[[Sequence[str]], Mapping[str, tuple[str, str | None]]],
        now: float | None = None,
    ) -> int:
        """Delete the stored reports of exports that no longer exist or are not
        COMPLETED (a report is made only of a completed export's file, and COMPLETED
        is final, so none of these is ever shown again), and temporary files of
        writes that died. ``exports``: ``ServiceStore.export_files`` (state and file
        of each id that exists). Run at start-up; returns how many files went."""
        if self._folder is None:
            return 0
        now = time.time() if now is None else now
        reports: list[str] = []
        removed = 0
        try:
            entries = list(os.scandir(self._folder))
        except FileNotFoundError:
            return 0
        for entry in entries:
            name = entry.name
            if name.endswith(".json") and _SAFE_ID.fullmatch(name[: -len(".json")]):
                reports.append(name[: -len(".json")])
            elif name.endswith(".part") and _SAFE_ID.fullmatch(name.split(".", 1)[0]):
                try:
                    if entry.stat(follow_symlinks=False).st_mtime < now - self.PART_SECONDS:
                        os.unlink(entry.path)
                        removed += 1
                except FileNotFoundError:
                    continue  # its writer finished meanwhile
        known = exports(reports)
        for export_id in reports:
            state = known.get(export_id)
            if (state is None or state[0] != "COMPLETED") and self.forget(export_id):
                removed += 1
        return removed

    def _run(self, export_id: str, path: Path, event: threading.Event) -> None:
        stamp = _stamp(path)
        try:
            report = verify_tar(path)
        except Exception as exc:  # reported on the page, never lost in a thread
            report = {
                "kind": "tar", "ok": False, "log_messages": 0, "valid_signatures": 0,
                "invalid_signatures": 0,
                "findings": [{"severity": "error", "code": "E_VERIFY_FAILED",
                              "message": f"{type(exc).__name__}: {exc}", "file": ""}],
            }  # fmt: skip
        else:
            if stamp is not None and stamp == _stamp(path):  # not changed meanwhile
                self._store(export_id, stamp, report)
        with self._lock:
            self._keep(export_id, report)
            self._running.pop(export_id, None)
        event.set()

    def _keep(self, export_id: str, report: dict[str, Any]) -> None:
        if len(self._done) >= self.MAX_KEPT:
            self._done.clear()
        self._done[export_id] = report

    def _file(self, export_id: str) -> Path | None:
        if self._folder is None or not _SAFE_ID.fullmatch(export_id):
            return None
        return self._folder / f"{export_id}.json"

    def _load(self, export_id: str, path: Path) -> dict[str, Any] | None:
        """The stored report if it was made of this very file (size and mtime)."""
        file = self._file(export_id)
        if file is None:
            return None
        try:
            saved = json.loads(file.read_text(encoding="utf-8"))
            if saved["stamp"] != list(_stamp(path) or ()):
                return None
            report: dict[str, Any] = saved["report"]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # none yet, or unreadable: verified again
        return report

    def _store(self, export_id: str, stamp: tuple[int, int], report: dict[str, Any]) -> None:
        file = self._file(export_id)
        if file is None:
            return
        try:
            private_dir(file.parent)  # 0700 also in a data folder made 0755
            part = file.with_name(f"{file.name}.{os.getpid()}.{threading.get_ident()}.part")
            part.write_text(json.dumps({"stamp": list(stamp), "report": report}), "utf-8")
            os.replace(part, file)
        except (OSError, TypeError, ValueError):
            log.warning("could not keep the check of export %s on disk", export_id)


_SAFE_ID = re.compile(r"[0-9a-f-]{1,64}")


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns
