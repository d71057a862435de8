"""Every export of one TSE, wherever it was made: through the API (or this
dashboard), with ``opentse archive`` (the export archive) or with ``opentse export``.

The three leave different records. An API export is a row of the service store
(``svc_exports``); an archived one a row of the ops archive (``ops_exports``: file,
SHA-256, verification, retention); a CLI export writes its TAR wherever it was told
and is recorded nowhere but in the TSE itself: every export of a TSE in use ends with
an exportData system log naming its filter (``tse.export_log``). So the signed
exportData logs are the full list, and ``attribute`` tells which of them the API
and the archive made (the log falls in the API export's run and has its filter; an
archive export is unfiltered and signed after its last exported counter); the rest
are CLI exports. An archived export of a defective TSE signs no log and is listed
from the archive alone.

``ExportLogs`` reads only the logs signed since its last look and keeps what it
read beside the data, so a TSE page costs one scan of the TSE's system logs ever,
not one per server start.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from opentse.crypto.private_file import close_if_there, private_dir
from opentse.engine.ports import LogFilter
from opentse.engine.rules import Op
from opentse.errors import OpenTSEError
from opentse.tr03151.oids import LogType

logger = logging.getLogger(__name__)

SOURCE_API = "api"
SOURCE_ARCHIVE = "archive"
SOURCE_CLI = "cli"


@dataclass(frozen=True, slots=True)
class ExportLog:
    """One signed exportData system log: its counter, time and filter text."""

    counter: int
    log_time: int
    description: str


@dataclass(frozen=True, slots=True)
class ExportEntry:
    """One export as the TSE page lists it, newest first."""

    source: str  # SOURCE_API, SOURCE_ARCHIVE or SOURCE_CLI
    at: int  # requested (API), made (archive) or signed (CLI)
    description: str  # the filter; "" for everything
    state: str  # API state; VERIFIED / NOT_VERIFIED (archive); SIGNED (CLI)
    export_id: str = ""  # API and archive exports
    file: str = ""  # the archived file's name
    records: int | None = None
    counter: int | None = None  # the exportData log's signature counter


def api_description(params: dict[str, Any]) -> str:
    """The filter text the exportData log of an API export carries."""
    from opentse.engine.export import ExportFilter

    try:
        return ExportFilter(**params).describe()
    except (TypeError, ValueError, OpenTSEError):
        return ""


def _in_api_run(row: Any, text: str, log: ExportLog) -> bool:
    """The log is this API export's: its filter, signed while the export ran."""
    begin = row.time_start if row.time_start is not None else row.time_request
    end = row.time_end if row.time_end is not None else row.time_error
    if row.state in ("PENDING", "WORKING"):
        return log.description == text and begin <= log.log_time
    return log.description == text and end is not None and begin <= log.log_time <= end


def _after_archiving(item: Any, log: ExportLog) -> bool:
    """The log can be this archived export's: unfiltered, signed after it began and
    after the last counter it exported."""
    return (
        log.description == ""
        and log.log_time >= item.created_at
        and (log.counter > (item.last_counter or 0))
    )


def attribute(
    api: Sequence[Any], archived: Sequence[Any], logs: Sequence[ExportLog]
) -> list[ExportEntry]:
    """Pure: the exports of one TSE from its API rows (``ExportRow``), archive rows
    (``ArchivedExport``) and exportData logs; each log is claimed by at most one API
    or archive export (the first that fits, in counter order), the logs nobody claims
    are CLI exports."""
    free = sorted(logs, key=lambda log: log.counter)

    def claim(fits: Callable[[ExportLog], bool]) -> int | None:
        for index, log in enumerate(free):
            if fits(log):
                del free[index]
                return log.counter
        return None

    entries: list[ExportEntry] = []
    for row in sorted(api, key=lambda r: (r.time_start or r.time_request, r.export_id)):
        text = api_description(row.params)
        counter = claim(partial(_in_api_run, row, text))
        entries.append(
            ExportEntry(SOURCE_API, row.time_request, text, row.state, row.export_id,
                        counter=counter)
        )  # fmt: skip
    for item in sorted(archived, key=lambda i: (i.created_at, i.last_counter or 0, i.id)):
        counter = claim(partial(_after_archiving, item))
        entries.append(
            ExportEntry(
                SOURCE_ARCHIVE, item.created_at, "",
                "VERIFIED" if item.verified_ok else "NOT_VERIFIED", item.id,
                file=item.path.replace("\\", "/").rsplit("/", 1)[-1], records=item.records,
                counter=counter,
            )
        )  # fmt: skip
    entries.extend(
        ExportEntry(SOURCE_CLI, log.log_time, log.description, "SIGNED", counter=log.counter)
        for log in free
    )
    entries.sort(key=lambda e: (e.at, e.counter or 0), reverse=True)
    return entries


#: the parts of an exportData log's filter text (``ExportFilter.describe``) the TSE
#: page names in words; any other part is shown as signed
FILTER_KINDS = ("transactionNumber", "clientId", "date", "signatureCounter")


def filter_parts(description: str) -> list[tuple[str, str, str]]:
    """Pure: ``(kind, low, high)`` of each part of a filter text, e.g.
    ``date=1577833200-1578005999`` -> ``("date", "1577833200", "1578005999")``
    (an open end is ""), ``clientId=KASSE-1`` -> ``("clientId", "KASSE-1", "")``;
    a part of another form -> ``("other", part, "")``. The TSE page showed the text
    as signed: dates as Unix seconds, which no shop owner or auditor reads."""
    parts: list[tuple[str, str, str]] = []
    for part in description.split():
        kind, _, value = part.partition("=")
        if kind == "clientId" and value:
            parts.append((kind, value, ""))
            continue
        low, dash, high = value.partition("-")
        bounds = (low, high)
        if kind in FILTER_KINDS and dash and all(b == "" or b.isdigit() for b in bounds):
            parts.append((kind, low, high))
        else:
            parts.append(("other", part, ""))
    return parts


def _description(message: bytes) -> str:
    from opentse.tr03151 import sysdata
    from opentse.tr03151.codec import decode_log_message

    try:
        data = getattr(decode_log_message(message).certified, "system_operation_data", b"")
        value = sysdata.field(sysdata.parse_system_operation_data(data), 0x81)
    except OpenTSEError:
        return ""
    return "" if value is None else value.decode("ascii", "replace")


@dataclass(frozen=True, slots=True)
class SystemLog:
    """One of the TSE's first system logs (its set-up as the TSE recorded it)."""

    counter: int
    log_time: int
    operation: str
    filename: str


#: the first system logs kept per TSE (the TSE page shows them)
FIRST_SYSTEM_LOGS = 50
#: and the latest ones: a TSE in use for years signs thousands (updateTime, logins,
#: exports), and an auditor asks what it did lately, not only how it was set up
LATEST_SYSTEM_LOGS = 50


@dataclass(frozen=True, slots=True)
class _Seen:
    last: int  # the signature counter read up to
    exports: tuple[ExportLog, ...]
    first: tuple[SystemLog, ...]
    latest: tuple[SystemLog, ...] = ()  # oldest first


_NOTHING = _Seen(0, (), ())


def _operation(log: Any) -> str:
    from opentse.tr03151.codec import decode_log_message

    try:
        certified = decode_log_message(log.message).certified
    except OpenTSEError:
        certified = None
    return str(getattr(certified, "operation_type", "") or log.operation)


class ExportLogs:
    """The exportData logs and the first system logs of each TSE, kept as read: a
    look reads only the logs signed after the last one seen, up to the TSE's
    signature counter (so the transaction logs since its last system log are not read
    again at every look), and keeps those a deleteStoredData removed from the store
    since.

    With ``folder`` what was read is kept on disk too (one JSON file per TSE), so
    the first look after a restart reads only what was signed meanwhile, not every
    log of a TSE that has signed millions, and a CLI export whose log was deleted
    after an archive export stays listed. A file ahead of its TSE (the database
    restored from a backup) is read again from the start."""

    def __init__(self, folder: Path | None = None) -> None:
        self._folder = folder
        close_if_there(folder)  # one an older version left 0755
        self._lock = threading.Lock()
        self._seen: dict[str, _Seen] = {}

    def of(self, service: Any, tss_id: str) -> list[ExportLog]:
        """The TSE's exportData logs, oldest first."""
        return list(self._look(service, tss_id).exports)

    def first(self, service: Any, tss_id: str) -> list[SystemLog]:
        """The TSE's first ``FIRST_SYSTEM_LOGS`` system logs."""
        return list(self._look(service, tss_id).first)

    def latest(self, service: Any, tss_id: str) -> list[SystemLog]:
        """The TSE's latest ``LATEST_SYSTEM_LOGS`` system logs, oldest first (as read:
        also those deleted from the store after an export since)."""
        return list(self._look(service, tss_id).latest)

    def _look(self, service: Any, tss_id: str) -> _Seen:
        current = int(service.store.get_state(tss_id).signature_counter)
        with self._lock:
            if tss_id not in self._seen:
                self._seen[tss_id] = self._load(tss_id)
            seen = self._seen[tss_id]
            if seen.last > current:  # not this TSE's history any more: read it again
                seen = self._seen[tss_id] = _NOTHING
        if current <= seen.last:
            return seen
        flt = LogFilter(
            start_signature_counter=seen.last + 1,
            end_signature_counter=current,
            log_types=(LogType.SYSTEM,),
        )
        exports: list[ExportLog] = []
        first: list[SystemLog] = []
        recent: deque[Any] = deque(maxlen=LATEST_SYSTEM_LOGS)  # decoded at the end
        room = FIRST_SYSTEM_LOGS - len(seen.first)
        for log in service.logs(tss_id, flt):
            recent.append(log)
            if len(first) < room:
                first.append(
                    SystemLog(log.signature_counter, log.log_time, _operation(log), log.filename)
                )
            if log.operation == Op.EXPORT.value:
                exports.append(
                    ExportLog(log.signature_counter, log.log_time, _description(log.message))
                )
        with self._lock:
            before = self._seen[tss_id]
            if current <= before.last:  # another request read as far meanwhile
                return before
            # Another request may have kept a reading meanwhile (it began earlier, up
            # to a lower counter): only what this one read beyond it is new, the
            # first logs included, which both read from the same start.
            known = {log.counter for log in before.exports}
            newer = [
                SystemLog(log.signature_counter, log.log_time, _operation(log), log.filename)
                for log in recent
                if log.signature_counter > before.last
            ]
            unseen = tuple(e for e in first if e.counter > before.last)
            after = _Seen(
                current,
                before.exports + tuple(e for e in exports if e.counter not in known),
                before.first + unseen[: FIRST_SYSTEM_LOGS - len(before.first)],
                (before.latest + tuple(newer))[-LATEST_SYSTEM_LOGS:],
            )
            self._seen[tss_id] = after
            if exports or newer or before.last == 0 or current - before.last >= SAVE_EVERY:
                self._save(tss_id, after)
            return after

    def _file(self, tss_id: str) -> Path | None:
        if self._folder is None or not _SAFE_ID.fullmatch(tss_id):
            return None
        return self._folder / f"{tss_id}.json"

    def _load(self, tss_id: str) -> _Seen:
        file = self._file(tss_id)
        if file is None:
            return _NOTHING
        try:
            saved = json.loads(file.read_text(encoding="utf-8"))
            return _Seen(
                int(saved["last"]),
                tuple(ExportLog(int(c), int(t), str(d)) for c, t, d in saved["exports"]),
                tuple(SystemLog(int(c), int(t), str(o), str(f)) for c, t, o, f in saved["first"]),
                # a file of a version without them: the latest from those signed since
                tuple(
                    SystemLog(int(c), int(t), str(o), str(f))
                    for c, t, o, f in saved.get("latest", [])
                ),
            )
        except FileNotFoundError:
            return _NOTHING
        except (OSError, ValueError, KeyError, TypeError):
            logger.warning("the export list of TSE %s on disk is unreadable: read again", tss_id)
            return _NOTHING

    def _save(self, tss_id: str, seen: _Seen) -> None:
        """Under the lock; a failure costs only a longer first look after a restart."""
        file = self._file(tss_id)
        if file is None:
            return
        data = {
            "last": seen.last,
            "exports": [[e.counter, e.log_time, e.description] for e in seen.exports],
            "first": [[e.counter, e.log_time, e.operation, e.filename] for e in seen.first],
            "latest": [[e.counter, e.log_time, e.operation, e.filename] for e in seen.latest],
        }
        try:
            private_dir(file.parent)  # 0700 also in a data folder made 0755
            part = file.with_name(f"{file.name}.{os.getpid()}.{threading.get_ident()}.part")
            part.write_text(json.dumps(data), "utf-8")
            os.replace(part, file)
        except OSError:
            logger.warning("could not keep the export list of TSE %s on disk", tss_id)


#: logs read without a new export before the progress is written down anyway
SAVE_EVERY = 10_000
_SAFE_ID = re.compile(r"[0-9a-f-]{1,64}")
