"""The till's connection file: what ``opentse pos --session FILE`` reads.

``opentse serve --lan`` writes ``LAN-TSE-Session.txt`` (URL, API key and secret, TLS
fingerprint) for the operator; ``opentse pos setup --out FILE`` writes the same lines
plus the TSS and the client the till signs with. Both are read by :func:`parse`, so a
till is pointed at its TSE with one file instead of secrets typed on the command line
(where they end up in the shell history and the process list). Pure: no I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opentse.errors import ProtocolError

#: the names of the lines :func:`render` writes (LAN-TSE-Session.txt's, plus the till's)
URL, KEY, SECRET, FINGERPRINT = "URL", "API key", "API secret", "TLS SHA-256"
TSS, CLIENT, SERIAL = "TSS", "Client", "Serial number"
JOURNAL = "Journal"


@dataclass(frozen=True, slots=True)
class TillConnection:
    """Where a till signs: the service and its credentials, the TSS and the client
    UUID (None where the file does not say)."""

    url: str | None = None
    api_key: str | None = None
    api_secret: str | None = field(default=None, repr=False)  # never shown
    fingerprint: str | None = None
    tss: str | None = None
    client: str | None = None
    serial_number: str | None = None
    #: the register's own file (journal and books) when it is not the default one
    #: named after the client UUID: after ``pos repoint`` the till goes on in the file
    #: of its old client
    journal: str | None = None


def parse(text: str, source: str = "the session file") -> TillConnection:
    """The connection a LAN-TSE-Session.txt or a till file names. A value in
    parentheses ('(no TLS)', '(shown only when the key was created)') is no value.
    A file with no URL line is not one of these files (E_SESSION_FILE)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        value = value.strip()
        if colon and value and not value.startswith("(") and name.strip() not in values:
            values[name.strip()] = value
    if URL not in values or "://" not in values[URL]:
        raise ProtocolError(
            f"{source} has no 'URL:' line: give the LAN-TSE-Session.txt that "
            "'opentse serve --lan' wrote, or the file 'opentse pos setup --out' wrote",
            code="E_SESSION_FILE",
        )
    return TillConnection(
        url=values[URL],
        api_key=values.get(KEY),
        api_secret=values.get(SECRET),
        fingerprint=values.get(FINGERPRINT),
        tss=values.get(TSS),
        client=values.get(CLIENT),
        serial_number=values.get(SERIAL),
        journal=values.get(JOURNAL),
    )


def render(connection: TillConnection) -> str:
    """The till file (holds the API secret: written 0600 by the caller)."""

    def shown(value: str | None, absent: str) -> str:
        return value if value else absent

    rows = [
        (URL, shown(connection.url, "")),
        (KEY, shown(connection.api_key, "(not given)")),
        (SECRET, shown(connection.api_secret, "(not written: give --api-secret)")),
        (FINGERPRINT, shown(connection.fingerprint, "(no TLS)")),
        (TSS, shown(connection.tss, "")),
        (CLIENT, shown(connection.client, "")),
        (SERIAL, shown(connection.serial_number, "")),
    ]
    if connection.journal:
        rows.append((JOURNAL, connection.journal))
    lines = ["opentse till connection (not BSI-certified)"]
    lines += [f"{name + ':':<21}{value}" for name, value in rows]
    lines += ["", "Use: opentse pos sell --session THIS_FILE --line ... --pay ...", ""]
    return "\n".join(lines)
