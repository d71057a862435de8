"""hypothesis strategies for log messages (shared by the codec and independent tests)."""

from __future__ import annotations

import calendar

from hypothesis import strategies as st

from opentse.tr03151.logmessage import (
    TRANSACTION_OPERATIONS,
    AuditLogData,
    LogMessage,
    SystemLogData,
    TransactionLogData,
)
from opentse.tr03151.logtime import LogTime, TimeFormat
from opentse.tr03151.oids import SIGNATURE_ALGORITHMS

PRINTABLE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?"
printable = st.text(alphabet=PRINTABLE, min_size=1, max_size=40)
UTC_RANGE = (calendar.timegm((1950, 1, 1, 0, 0, 0)), calendar.timegm((2049, 12, 31, 23, 59, 59)))
GEN_RANGE = (calendar.timegm((1000, 1, 1, 0, 0, 0)), calendar.timegm((9999, 12, 31, 23, 59, 59)))

log_times = st.one_of(
    st.builds(LogTime, st.just(TimeFormat.UNIX), st.integers(0, 253402300799)),
    st.builds(LogTime, st.just(TimeFormat.UTC), st.integers(*UTC_RANGE)),
    st.builds(LogTime, st.just(TimeFormat.GENERALIZED), st.integers(*GEN_RANGE)),
)
algorithms = st.sampled_from(sorted(oid for oid, _ in SIGNATURE_ALGORITHMS.values()))
optional_bytes = st.one_of(st.none(), st.binary(max_size=40))

transactions = st.builds(
    TransactionLogData,
    operation_type=st.sampled_from(TRANSACTION_OPERATIONS),
    client_id=printable,
    process_data=st.binary(max_size=300),
    process_type=st.text(alphabet=PRINTABLE, max_size=100),
    transaction_number=st.integers(1, 2**70),
    additional_external_data=optional_bytes,
    additional_internal_data=optional_bytes,
)
systems = st.builds(
    SystemLogData,
    operation_type=printable,
    system_operation_data=st.binary(max_size=200),
    additional_internal_data=optional_bytes,
)
audits = st.builds(AuditLogData, se_audit_data=st.binary(max_size=200))

messages = st.builds(
    LogMessage,
    certified=st.one_of(transactions, systems, audits),
    serial_number=st.binary(min_size=32, max_size=32),
    signature_algorithm=algorithms,
    signature_counter=st.integers(1, 2**70),
    log_time=log_times,
)
