"""The verifier's findings in the dashboard's words.

The verifier (``opentse.verify``) reports in English, with the command line's
options where it tells what to do next (``--tse-export``, ``--trust``): its readers
are the CLI's. A German page shows each finding in German by its stable code (the
code stays on the page, the verifier's own message is kept beside it for an auditor
who quotes it), and where the verifier names a command-line option, the page says
what to do in the dashboard instead, in either language. A verifier message that
names a command (``opentse verify a.tar b.tar``) or an option is not kept beside the
German text: the page names no command a dashboard user cannot run. A code this
table does not know (a newer verifier's) is shown as the verifier wrote it, marked
as English.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from opentse.dashboard.findings_text_matching import MATCHING_TEXTS
from opentse.verify.receipt import SIGNED_FIELDS

_FIELDS = ", ".join(SIGNED_FIELDS)

#: code -> (German, English in the dashboard's terms or None: the verifier's own)
TEXTS: dict[str, tuple[str, str | None]] = {
    # receipts (a QR code's text or photo); the verifier names --tse-export here
    "I_RECEIPT_OK": (
        "Die Signatur passt zum öffentlichen Schlüssel im QR-Code. Der Beleg allein beweist"
        " nicht, dass dieser Schlüssel zur TSE des Geschäfts gehört, und nicht die Startzeit"
        " (die signiert der Start-Log, nicht dieser Abschluss-Log). Beides zeigt die"
        " Transaktion, wenn der Schlüssel zu einer TSE Ihrer Organisation gehört (oben"
        " verlinkt: TSE, Start-Log und Signaturen), sonst der TAR-Export der TSE, die ihn"
        " signiert hat, hier unter „Prüfen“ hochgeladen.",
        "The signature verifies with the public key printed in the QR code. The receipt"
        " alone does not prove that this key is the shop's TSE, nor its start time (the"
        " Start log signs that, not this Finish log). The transaction shows both when the"
        " key is one of your organization's TSEs (linked above: TSE, Start log and"
        " signatures), else the TAR export of the TSE that signed it, uploaded here under"
        " 'Verify'.",
    ),
    "E_RECEIPT_SIGNATURE": (
        "Die Signatur passt nicht zum aus dem QR-Code nachgebauten Abschluss-Log: eines der"
        f" Felder {_FIELDS} wurde verändert (nicht die Startzeit: die signiert der"
        " Start-Log), oder der Abschluss-Log signiert mehr, als ein QR-Code fasst. Welches,"
        " zeigt der TAR-Export der TSE, hier unter „Prüfen“ hochgeladen: einen solchen"
        " Abschluss-Log nennt er mit W_RECEIPT_NOT_VERIFIABLE.",
        "The signature does not verify over the Finish log rebuilt from the QR code: one of"
        f" {_FIELDS} was altered (not the start time: the Start log signs it), or the Finish"
        " log signs more than a QR code holds. The TSE's TAR export, uploaded here under"
        " 'Verify', tells which: it names such a Finish log with W_RECEIPT_NOT_VERIFIABLE.",
    ),
    "W_RECEIPT_NOT_VERIFIABLE": (
        "Der Abschluss-Log dieser Transaktion (Datei rechts) signiert mehr, als der QR-Code"
        " eines Belegs fassen kann (DSFinV-K Anhang I): ihr Beleg lässt sich nicht aus"
        " seinem QR-Code prüfen. Die Transaktion selbst ist in diesem Export signiert und"
        " wird hier geprüft.",
        "The Finish log of this transaction (file on the right) signs more than a receipt's"
        " QR code can hold (DSFinV-K Anhang I): its receipt cannot be verified from its QR"
        " code. The transaction itself is signed in this export and checked here.",
    ),
    "E_RECEIPT_FIELD": (
        "Ein Feld des QR-Codes ist falsch: mit einem anderen Wert passt die Signatur"
        " (welches Feld und welcher Wert: siehe die Meldung des Prüfprogramms).",
        None,
    ),
    "I_QR_LINE_END": (
        "Der Text endet mit einem Zeilenende, wie es ein Scanner anhängt: als Ende der Zeile"
        " gelesen, nicht als Teil des QR-Codes.",
        None,
    ),
    "E_QR_FORMAT": (
        "Der Text ist kein gültiger Beleg-QR-Code nach DSFinV-K Anhang I (welches Feld:"
        " siehe die Meldung des Prüfprogramms).",
        None,
    ),
    "E_QR_IMAGE": ("Im Bild wurde kein lesbarer QR-Code gefunden.", None),
    "E_QR_IMAGE_TOO_LARGE": ("Das Bild hat zu viele Bildpunkte, um es zu lesen.", None),
    # the dashboard's own notes on a picture with several QR codes (uploads.py)
    "I_QR_SEVERAL": (
        "Das Bild enthält mehrere Beleg-QR-Codes; alle sind gültig, gezeigt wird der erste.",
        None,
    ),
    "E_QR_SEVERAL_FAILED": (
        "Das Bild enthält mehrere Beleg-QR-Codes, nicht alle sind gültig; gezeigt wird der"
        " erste ungültige (welche: siehe die Meldung).",
        None,
    ),
    # TAR exports
    "E_EXPORT_UNREADABLE": (
        "Die Datei ist kein lesbarer TAR-Export; nichts wurde geprüft.",
        None,
    ),
    "E_EXPORT_READ": (
        "Die Datei konnte nicht vollständig gelesen werden (sie wurde beim Lesen verändert"
        " oder ist beschädigt); nichts wurde geprüft.",
        None,
    ),
    "E_VERIFY_FAILED": ("Die Prüfung ist abgebrochen; bitte erneut versuchen.", None),
    "E_SIGNATURE_INVALID": (
        "Die Signatur dieses Logs ist ungültig: der Log wurde verändert, nachdem die TSE ihn"
        " signiert hat, oder ein anderer Schlüssel hat ihn signiert.",
        None,
    ),
    "E_ALGORITHM_UNSUPPORTED": (
        "Das Signaturverfahren wird nicht unterstützt; diese Logs können nicht geprüft werden.",
        None,
    ),
    "E_NO_CERTIFICATE": (
        "Kein Zertifikat im Export enthält den Schlüssel dieser TSE; ihre Logs können nicht"
        " geprüft werden.",
        None,
    ),
    "E_LOG_FORMAT": (
        "Der Log ist nicht lesbar (abgeschnitten oder verändert); Signatur und Zähler können"
        " nicht geprüft werden.",
        None,
    ),
    "E_CERT_FORMAT": ("Das Zertifikat ist nicht lesbar.", None),
    "E_CERT_NAME_MISMATCH": (
        "Der Dateiname des Zertifikats passt nicht zu seinem Schlüssel.",
        None,
    ),
    "E_CERT_NOT_VALID": (
        "Logs liegen außerhalb der Gültigkeit des Zertifikats.",
        None,
    ),
    "I_CA_CERT_NAME": (
        "Der Dateiname eines CA-Zertifikats ist nicht der SHA-256 seines Schlüssels.",
        None,
    ),
    "I_CERT_UNUSED": (
        "Zu diesem TSE-Zertifikat gehört kein Log dieses Exports (das Zertifikat einer"
        " anderen TSE oder ein früherer Schlüssel dieser TSE).",
        None,
    ),
    "E_CHAIN_BROKEN": (
        "Die Zertifikatskette ist unterbrochen: ein Zertifikat passt nicht zu seinem Aussteller.",
        None,
    ),
    "E_CHAIN_UNTRUSTED": (
        "Die Zertifikatskette endet nicht bei einer vertrauenswürdigen Stammstelle; die Logs"
        " lassen sich keiner vertrauenswürdigen TSE zuordnen.",
        "The certificate chain does not end at a trusted root: the logs cannot be"
        " attributed to a TSE you trust.",
    ),
    "W_CHAIN_INCOMPLETE": (
        "Der Aussteller des TSE-Zertifikats ist nicht im Export enthalten; die Kette kann"
        " nicht bis zur Stammstelle geprüft werden.",
        "The issuer of the TSE certificate is not in the export: the chain cannot be"
        " checked up to its root.",
    ),
    "E_COUNTER_GAP": (
        "Signaturzähler fehlen: Logs fehlen im Export (gelöscht, oder ein gefilterter Export).",
        None,
    ),
    "E_COUNTER_DUPLICATE": (
        "Ein Signaturzähler kommt mehrfach mit verschiedenem Inhalt vor.",
        None,
    ),
    "W_LOG_REPEATED": (
        "Logs kommen mehrfach als gleiche Kopien vor (sich überschneidende Exporte).",
        None,
    ),
    "I_EXPORT_STARTS_LATER": (
        "Der Export beginnt nicht bei Signaturzähler 1 (ein Teil- oder Folgeexport).",
        None,
    ),
    "I_EXPORT_LOOKS_FILTERED": (
        "Der Export enthält nur Transaktionen einer Kasse und keine Systemlogs, wie ein nach"
        " Kasse gefilterter Export; ein gelöschter Log sähe gleich aus: für eine"
        " vollständige Prüfung einen Export der ganzen TSE prüfen.",
        None,
    ),
    "E_TIME_BACKWARDS": ("Die Log-Zeit springt gegenüber dem vorigen Log zurück.", None),
    "E_TIME_FORMAT_MIXED": ("Die TSE verwendet mehr als ein Zeitformat.", None),
    "E_TX_OPERATION": ("Unbekannte Operation in einem Transaktions-Log.", None),
    "E_TX_DUPLICATE": ("Die Transaktion wurde zweimal begonnen oder abgeschlossen.", None),
    "E_TX_AFTER_FINISH": ("Die Transaktion wurde nach ihrem Abschluss geändert.", None),
    "E_TX_NO_START": ("Zu dieser Transaktion fehlt der Start-Log im Export.", None),
    "W_TX_NO_START": (
        "Zu dieser Transaktion fehlt der Start-Log im Export (er liegt vermutlich vor dem"
        " Beginn des Exports).",
        None,
    ),
    "W_TX_OPEN": (
        "Die Transaktion ist am Ende des Exports noch offen: kein Abschluss-Log, also trägt"
        " kein Beleg von ihr eine TSE-Signatur.",
        None,
    ),
    "W_TX_GAP": (
        "Transaktionsnummern fehlen (fehlgeschlagene Starts verbrauchen Nummern; gefilterte"
        " Exporte lassen welche aus).",
        None,
    ),
    "W_TX_CLIENT_MISMATCH": (
        "Die Logs einer Transaktion nennen verschiedene Kassen.",
        None,
    ),
    "W_SYSTEM_DATA_UNREADABLE": (
        "Ein Teil der Systemdaten dieses Logs ist nicht lesbar; die Signatur deckt ihn so,"
        " wie er ist.",
        None,
    ),
    "E_NAME_MISMATCH": ("Der Dateiname passt nicht zum Inhalt des Logs.", None),
    "W_NAME_FORMAT": ("Der Dateiname folgt nicht TR-03151 5.1.2.", None),
    "E_INFO_MISSING": ("Der Export enthält keine info.csv.", None),
    "E_INFO_FORMAT": ("Die info.csv ist nicht lesbar.", None),
    "W_INFO_INCOMPLETE": ("Der info.csv fehlen Angaben.", None),
    "W_UNKNOWN_MEMBER": ("Eine Datei im Export gehört nicht zu einem TSE-Export.", None),
    # receipts against exports, DSFinV-K exports against TSE exports (the CLI's today)
    **MATCHING_TEXTS,
}

#: a command (``opentse verify``) or an option (``--trust``) in the verifier's words
CLI_WORDS = re.compile(r"\bopentse [a-z]|(?<![\w-])--[a-z]")

#: codes whose verifier message names command-line options: the page shows only the
#: dashboard's text (its facts are on the page: number, counter, serial, file)
CLI_WORDED = frozenset(
    {"I_RECEIPT_OK", "E_RECEIPT_SIGNATURE", "W_RECEIPT_NOT_VERIFIABLE", "E_CHAIN_UNTRUSTED",
     "W_CHAIN_INCOMPLETE"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class FindingText:
    """What the page shows of one finding: ``text`` (in ``text_lang``) and the
    verifier's own message when it is kept beside it (``original``, English)."""

    text: str
    text_lang: str
    original: str


#: The facts a reader looks for first, read from the verifier's words (its own
#: modules word them; a wording this does not match falls back to ``TEXTS``):
#: code -> (pattern, German, English or None: the verifier's own message)
DETAILS: dict[str, tuple[re.Pattern[str], str, str | None]] = {
    "E_RECEIPT_FIELD": (
        re.compile(
            r"^(?P<name>\w+) is wrong: the signature verifies with (?P=name) = (?P<value>\S+)"
        ),
        "Das Feld {name} des QR-Codes ist falsch: mit {name} = {value} passt die Signatur.",
        "The QR code's field {name} is wrong: the signature verifies with {name} = {value}.",
    ),
    "E_TX_NO_START": (
        re.compile(r"^transaction (?P<tx>\d+) "),
        "Zu Transaktion {tx} fehlt der Start-Log im Export.",
        None,
    ),
    "W_TX_NO_START": (
        re.compile(r"^transaction (?P<tx>\d+) "),
        "Zu Transaktion {tx} fehlt der Start-Log im Export (er liegt vermutlich vor dem"
        " Beginn des Exports).",
        None,
    ),
    "W_TX_OPEN": (
        re.compile(r"^transaction (?P<tx>\d+) "),
        "Transaktion {tx} ist am Ende des Exports noch offen: kein Abschluss-Log, also trägt"
        " kein Beleg von ihr eine TSE-Signatur.",
        None,
    ),
}

#: further wordings of one code (the first that matches is shown): an export that
#: cannot be read says why, and what to upload instead
MORE_DETAILS: dict[str, tuple[tuple[re.Pattern[str], str, str | None], ...]] = {
    "E_EXPORT_UNREADABLE": (
        (
            re.compile(
                r"end-of-archive blocks at octet (?P<end>\d+) are followed by data at octet"
                r" (?P<at>\d+)"
            ),
            "Nach den Endblöcken des TAR-Archivs (Byte {end}) folgen weitere Daten (ab Byte"
            " {at}), etwa ein angehängtes zweites Archiv: TAR-Leser hören an den Endblöcken"
            " auf, der Rest bliebe ungeprüft. Nichts wurde geprüft: jeden Export als eigene"
            " Datei hochladen.",
            "The TAR archive's end-of-archive blocks (octet {end}) are followed by more data"
            " (from octet {at}), such as a second archive appended: TAR readers stop at those"
            " blocks and the rest would go unverified. Nothing was checked: upload each"
            " export as its own file.",
        ),
        (
            re.compile(r"the (?P<kind>\w+) stream ends at octet (?P<at>\d+), and what follows"),
            "Der {kind}-Datenstrom endet bei Byte {at}, und was folgt, ist kein"
            " {kind}-Datenstrom (etwa ein angehängtes zweites Archiv): es bliebe ungeprüft."
            " Nichts wurde geprüft: jeden Export als eigene Datei hochladen.",
            "The {kind} stream ends at octet {at}, and what follows is no {kind} stream (such"
            " as a second archive appended): it would go unverified. Nothing was checked:"
            " upload each export as its own file.",
        ),
        (
            re.compile(r"it is a ZIP file"),
            "Die Datei ist eine ZIP-Datei, kein TAR-Export: die .tar-Datei der TSE daraus"
            " entpacken und hochladen. Ein DSFinV-K-Export (ZIP) wird hier nicht geprüft."
            " Nichts wurde geprüft.",
            "The file is a ZIP file, not a TAR export: unpack the TSE's .tar file from it and"
            " upload that. A DSFinV-K export (ZIP) is not checked here. Nothing was checked.",
        ),
    ),
}


_GAP = re.compile(
    r"signature counter\(s\) (?P<first>\d+)(?: to (?P<last>\d+))? missing \((?P<n>\d+) log"
)
_GAP_UNREADABLE = re.compile(r"; (?P<k>\d+) log file\(s\) named with these counters cannot be")


def _counter_gap(message: str) -> str | None:
    """E_COUNTER_GAP in German, with the verifier's cause: logs in none of several
    archives (an export between them missing), or not in the one export (removed, or
    a filtered export), and the files that hold such counters but cannot be read."""
    found = _GAP.search(message)
    if found is None:
        return None
    first, last, n = found.group("first"), found.group("last"), found.group("n")
    span = first if last is None else f"{first}–{last}"
    text = (
        f"Signaturzähler {span} fehlen ({n} Log-Nachricht(en)): die TSE signiert jeden Log"
        " mit dem nächsten Zähler, diese Logs sind also nicht im Export. "
    )
    if "in none of the archives" in message:
        text += (
            "Sie liegen in keinem der geprüften Archive: der Log vor der Lücke und der"
            " danach stammen aus verschiedenen Archiven, ein Export dazwischen fehlt (oder"
            " die Logs wurden entfernt). Den Export anfordern, der sie enthält, oder einen"
            " Export der ganzen TSE."
        )
    else:
        text += (
            "Sie wurden aus ihm entfernt, oder es ist der Export einer Kasse oder eines"
            " Zeitraums: einen Export der ganzen TSE (ohne Filter) prüfen."
        )
    unreadable = _GAP_UNREADABLE.search(message)
    if unreadable is not None:
        text += (
            f" {unreadable.group('k')} Datei(en) mit diesen Zählern im Namen sind nicht"
            " lesbar (E_LOG_FORMAT)."
        )
    return text


def _detail(code: str) -> tuple[tuple[re.Pattern[str], str, str | None], ...]:
    detail = DETAILS.get(code)
    return () if detail is None else (detail,)


def finding_text(finding: Mapping[str, str], lang: str) -> FindingText:
    code, message = str(finding.get("code", "")), str(finding.get("message", ""))
    # the verifier's words beside the page's, unless they tell a command to run
    keep = "" if code in CLI_WORDED or CLI_WORDS.search(message) else message
    if code == "E_COUNTER_GAP" and lang == "de":
        german_gap = _counter_gap(message)
        if german_gap is not None:
            return FindingText(german_gap, "de", keep)
    for pattern, german, english in (*_detail(code), *MORE_DETAILS.get(code, ())):
        found = pattern.search(message)
        if found is None:
            continue
        if lang == "de":
            return FindingText(german.format(**found.groupdict()), "de", keep)
        if english is not None:
            return FindingText(english.format(**found.groupdict()), "en", keep)
        return FindingText(message, "en", "")
    texts = TEXTS.get(code)
    if texts is None:
        return FindingText(message, "en", "")
    german, english = texts
    if lang == "de":
        return FindingText(german, "de", keep)
    if english is not None:
        return FindingText(english, "en", keep)
    return FindingText(message, "en", "")
