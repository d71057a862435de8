"""File names vs log contents, and info.csv (digest tr03151.md, "TAR export").

A log's name repeats what is inside it (time format and time, counter, type,
transaction number, Start/Update/Finish, client, system operation). Renaming or
swapping files does not touch the signature, so this check is what catches it.
"""

from __future__ import annotations

import re
from pathlib import Path

from opentse.tr03151.fastdecode import SYSTEM, TRANSACTION, LogFields
from opentse.tr03151.logmessage import (
    FINISH,
    START,
    UPDATE,
    LogMessage,
    SystemLogData,
    TransactionLogData,
)
from opentse.tr03151.logtime import TimeFormat
from opentse.verify.archive import LoadedExport, LogEntry
from opentse.verify.findings import Finding, error, warning


def _name_differences(entry: LogEntry, msg: LogMessage) -> list[str]:
    name = entry.name
    assert name is not None
    diffs: list[str] = []
    if name.time_format is not msg.log_time.format:
        diffs.append(
            f"time format {name.time_format.tar_prefix} in the name, "
            f"{msg.log_time.format.tar_prefix} in the log"
        )
    elif name.unix_time() != msg.log_time.unix:
        diffs.append(f"time {name.time_text} in the name, {msg.log_time.tar_time()} in the log")
    if name.signature_counter != msg.signature_counter:
        diffs.append(
            f"signature counter {name.signature_counter} in the name, "
            f"{msg.signature_counter} in the log"
        )
    if name.log_type is not msg.log_type:
        diffs.append(
            f"type Log-{name.log_type.value} in the name, Log-{msg.log_type.value} in the log"
        )
        return diffs
    data = msg.certified
    if isinstance(data, TransactionLogData):
        if name.transaction_number != data.transaction_number:
            diffs.append(
                f"transaction {name.transaction_number} in the name, "
                f"{data.transaction_number} in the log"
            )
        if name.operation.lower() != data.operation_type.lower():
            diffs.append(f"{name.operation} in the name, {data.operation_type} in the log")
        if name.client_id != data.client_id:
            diffs.append(f"client {name.client_id!r} in the name, {data.client_id!r} in the log")
    elif isinstance(data, SystemLogData) and name.operation.lower() != data.operation_type.lower():
        diffs.append(f"operation {name.operation} in the name, {data.operation_type} in the log")
    return diffs


# Names our fast comparison may take literally: no "_" (which separates the name's
# parts and starts the optional _Fc- suffix) and nothing log_filename would escape.
_PLAIN = re.compile(r"[A-Za-z0-9 '()+,\-.:=?]+")
_TX_PARTS = {START: "Start", UPDATE: "Update", FINISH: "Finish"}


def _expected_name(fields: LogFields) -> str | None:
    """The name a unixTime log is written under (formats.tar.log_filename), when the
    name can be compared as a string; None sends the log to the field-wise check."""
    # one unpacking instead of eight attribute lookups: this runs once per log
    (kind, _, _, _, counter, time_format, unix, _, _, _, operation, client, _, _, number, _, _) = (
        fields
    )
    if time_format is not _UNIX or counter < 0:
        return None
    if kind == TRANSACTION:
        tail = _TAILS.get((operation, client), False)
        if tail is False:
            tail = _tail(operation, client)
        if tail is None or number < 0:
            return None
        return f"Unixt_{unix}_Sig-{counter}_Log-Tra_No-{number}{tail}"
    if kind == SYSTEM and _PLAIN.fullmatch(operation):
        return f"Unixt_{unix}_Sig-{counter}_Log-Sys_{operation}.log"
    return None


_UNIX = TimeFormat.UNIX
# (operation, client id) -> the name's end after the transaction number, or None
# when the client needs escaping (then the names are compared field by field)
_TAILS: dict[tuple[str, str], str | None] = {}


def _tail(operation: str, client: str) -> str | None:
    part = _TX_PARTS.get(operation)
    tail = None
    if part is not None and _PLAIN.fullmatch(client):
        tail = f"_{part}_Client-{client}.log"
    if len(_TAILS) < 4096:
        _TAILS[operation, client] = tail
    return tail


def _unexpected(logs: list[LogEntry]) -> list[LogEntry]:
    """The entries whose name is not exactly the one their fields make. In the
    common case the name is that (and then parses back to those fields, so the
    field-wise check could find nothing); this loop runs once per log, so the
    transaction case of ``_expected_name`` is inlined."""
    out: list[LogEntry] = []
    tails = _TAILS
    for entry in logs:
        fields = entry.fields
        if fields is not None:
            (
                kind,
                _,
                _,
                _,
                counter,
                time_format,
                unix,
                _,
                _,
                _,
                operation,
                client,
                _,
                _,
                number,
                _,
                _,
            ) = fields
            if kind == TRANSACTION and time_format is _UNIX:
                tail = tails.get((operation, client), False)
                if tail is False:
                    tail = _tail(operation, client)
                if (
                    tail is not None
                    and counter >= 0
                    and number >= 0
                    and entry.base_name == f"Unixt_{unix}_Sig-{counter}_Log-Tra_No-{number}{tail}"
                ):
                    continue
            elif entry.base_name == _expected_name(fields):
                continue
        out.append(entry)
    return out


def check_names(export: LoadedExport) -> list[Finding]:
    findings: list[Finding] = []
    for entry in _unexpected(export.logs):
        if entry.name is None:
            findings.append(
                warning("W_NAME_FORMAT", "log file name does not follow TR-03151 5.1.2", entry.file)
            )
            continue
        if entry.message is None:
            continue
        diffs = _name_differences(entry, entry.message)
        if diffs:
            findings.append(
                error(
                    "E_NAME_MISMATCH",
                    "file name does not match the log: " + "; ".join(diffs),
                    entry.file,
                )
            )
    return findings


def check_info(export: LoadedExport) -> list[Finding]:
    """info.csv must be present and readable (reading errors come from the loader)."""
    findings: list[Finding] = []
    if len(export.sources) > 1:  # labels are "<archive>:<member>": one info.csv each
        for source in export.sources:
            archive = Path(source).name
            if not any(f.startswith(f"{archive}:") for f in export.info_files):
                findings.append(error("E_INFO_MISSING", "this archive has no info.csv", archive))
    elif not export.info_files:
        findings.append(error("E_INFO_MISSING", "the export has no info.csv"))
    if export.info is not None:
        missing = [k for k in ("description", "manufacturer", "version") if k not in export.info]
        if missing:
            findings.append(
                warning(
                    "W_INFO_INCOMPLETE",
                    "info.csv lacks " + ", ".join(missing),
                    export.info_files[0],
                )
            )
    return findings
