"""German texts of the verifier's comparing findings: a receipt against a TSE export
or a DSFinV-K export (``verify.receipt_match``), and a DSFinV-K export against TSE
exports (``verify.crosscheck*``).

The command line reports them today (``opentse verify-receipt --tse-export``,
``opentse dsfinvk check --tse-export``); their English names the commands that check
further. A dashboard page that shows one (a finding list is rendered by its code,
``findings_text.finding_text``) says it in German and in the dashboard's terms, never
a command name, so every code the verifier can produce has its text here or in
``findings_text.TEXTS``.
"""

from __future__ import annotations

#: code -> (German, English in the dashboard's terms or None: the verifier's own)
MATCHING_TEXTS: dict[str, tuple[str, str | None]] = {
    # a receipt against the TSE's TAR export
    "I_RECEIPT_IN_TSE_EXPORT": (
        "Die Transaktion des Belegs ist im TAR-Export: ihr Abschluss-Log hat Kasse,"
        " Signatur, Zähler, Zeit, processType und processData des Belegs. Ob Logs und"
        " Zertifikat des Exports echt sind, zeigt die Prüfung des TAR-Exports (hier unter"
        " „Prüfen“ hochladen).",
        "The receipt's transaction is in the TAR export: its Finish log has the receipt's"
        " client, signature, counter, time, processType and processData. Whether the"
        " export's logs and certificate are genuine: upload the TAR export here under"
        " 'Verify'.",
    ),
    "E_RECEIPT_NOT_IN_TSE_EXPORT": (
        "Die Transaktion des Belegs ist nicht im TAR-Export: ein Beleg, den die TSE so nicht"
        " signiert hat, ein Export, dem Logs fehlen (die Prüfung des TAR-Exports zeigt"
        " Zählerlücken), oder ein Export eines anderen Zeitraums.",
        "The receipt's transaction is not in the TAR export: a receipt the TSE did not sign"
        " as printed, an export with logs missing (verifying the TAR export here shows"
        " counter gaps), or an export of another period.",
    ),
    "E_RECEIPT_TSE_NOT_IN_EXPORT": (
        "Die TSE des Belegs (Seriennummer aus dem öffentlichen Schlüssel im QR-Code) hat"
        " keine Transaktion im TAR-Export: der Export einer anderen TSE. Den Export der TSE"
        " anfordern, die der Beleg nennt.",
        "The receipt's TSE (the serial number of the QR code's public key) has no"
        " transaction in the TAR export: another TSE's export. Ask for the export of the"
        " TSE the receipt names.",
    ),
    "E_RECEIPT_TSE_EXPORT_DIFFERS": (
        "Die Transaktion im TAR-Export weicht vom Beleg ab (welches Feld: siehe die"
        " Meldung), oder ihr Abschluss-Log fehlt im Export: der Beleg zeigt nicht, was die"
        " TSE signiert hat.",
        None,
    ),
    "E_RECEIPT_EXTRA_SIGNED_DATA": (
        "Der Abschluss-Log der Transaktion signiert mehr, als der QR-Code eines Belegs"
        " fassen kann (DSFinV-K Anhang I): die Signatur des Belegs lässt sich nicht aus"
        " seinem QR-Code prüfen.",
        None,
    ),
    # a receipt against a DSFinV-K export
    "I_RECEIPT_IN_DSFINVK": (
        "Der Beleg ist ein Bon des DSFinV-K-Exports: gleiche Signatur, gleicher Zähler und"
        " processType, die processData des Bons sind die des Belegs.",
        None,
    ),
    "E_RECEIPT_NOT_IN_DSFINVK": (
        "Kein Bon des DSFinV-K-Exports hat die Transaktion des Belegs (TSE-Seriennummer und"
        " TSE_TANR): ein Export einer anderen Kasse, TSE oder Zeitspanne, oder ein Verkauf,"
        " der nicht gebucht wurde.",
        None,
    ),
    "E_RECEIPT_DSFINVK_DIFFERS": (
        "Der Bon des DSFinV-K-Exports weicht vom Beleg ab (welches Feld: siehe die Meldung).",
        None,
    ),
    # a DSFinV-K export against TSE exports
    "E_XC_BON_NOT_IN_TSE": (
        "Die TSE-Transaktion dieses Bons ist nicht im TAR-Export: Logs fehlen im Export,"
        " oder er deckt einen kürzeren Zeitraum ab.",
        None,
    ),
    "E_XC_BON_TSE_UNREADABLE": (
        "Die TSE-Daten dieses Bons sind nicht lesbar; der Bon wurde nicht verglichen.",
        None,
    ),
    "E_XC_CLIENT_DIFFERS": (
        "Die TSE-Transaktion gehört zu einer anderen Kasse als der Bon.",
        None,
    ),
    "E_XC_COUNTER_DIFFERS": (
        "Der Signaturzähler des Bons (TSE_TA_SIGZ) ist nicht der des Abschluss-Logs.",
        None,
    ),
    "E_XC_END_DIFFERS": (
        "Die Endzeit des Bons (TSE_TA_ENDE) ist nicht die Zeit des Abschluss-Logs.",
        None,
    ),
    "E_XC_PROCESSDATA_DIFFERS": (
        "Die Vorgangsdaten des Bons (TSE_VORGANGSDATEN) sind nicht die processData des"
        " Abschluss-Logs.",
        None,
    ),
    "E_XC_PROCESSTYPE_DIFFERS": (
        "Die Vorgangsart des Bons (TSE_TA_VORGANGSART) ist nicht der processType der TSE.",
        None,
    ),
    "E_XC_SIGNATURE_DIFFERS": (
        "Die Signatur des Bons (TSE_TA_SIG) ist nicht die des Abschluss-Logs.",
        None,
    ),
    "E_XC_START_DIFFERS": (
        "Die Startzeit des Bons (TSE_TA_START) ist nicht die Zeit des Start-Logs.",
        None,
    ),
    "E_XC_TSE_KEY_DIFFERS": (
        "Die Bons nennen eine andere TSE als die, deren TAR-Export die Transaktionen der"
        " Kasse signiert hat: ihre Signaturen passen nicht zum Schlüssel dieser TSE.",
        None,
    ),
    "E_XC_TSE_NOT_FINISHED": (
        "Zur TSE-Transaktion des Bons fehlt der Abschluss-Log im TAR-Export.",
        None,
    ),
    "E_XC_TSE_NOT_IN_DSFINVK": (
        "Eine abgeschlossene TSE-Transaktion hat keinen Bon im DSFinV-K-Export: ein"
        " signierter Vorgang fehlt in der Buchführung.",
        None,
    ),
    "E_XC_TSE_TX_TWICE": (
        "Mehrere Bons nennen dieselbe TSE-Transaktion.",
        None,
    ),
    "W_XC_LOG_UNREADABLE": (
        "Logs des TAR-Exports sind nicht lesbar (beschädigt oder abgeschnitten); ihr Inhalt"
        " wurde nicht verglichen.",
        None,
    ),
    "W_XC_TAR_RANGE": (
        "Bons, die im TAR-Export fehlen, liegen außerhalb seines Zeitraums: ein Export eines"
        " kürzeren Zeitraums?",
        None,
    ),
    "W_XC_TSE_NOT_IN_TAR": (
        "Eine TSE der Bons hat keine Transaktion im TAR-Export; ihre Bons wurden nicht verglichen.",
        None,
    ),
    "W_XC_TSE_OPEN": (
        "Eine TSE-Transaktion hat weder Abschluss-Log noch Bon (offen geblieben).",
        None,
    ),
    "W_XC_TANR_NOT_IN_TAR": (
        "Transaktionsnummern haben weder einen Bon noch einen Log im TAR-Export: ein"
        " fehlgeschlagener Start (er verbraucht eine Nummer und signiert keinen Log) oder"
        " fehlende Logs.",
        None,
    ),
    "I_XC_TANR_OUTSIDE_TAR": (
        "Transaktionsnummern ohne Bon liegen außerhalb des TAR-Exports (ein Export eines"
        " kürzeren Nummernbereichs oder Zeitraums): nicht geprüft.",
        None,
    ),
    "E_CSV_DIALECT": (
        "Eine Datei des DSFinV-K-Exports weicht vom vorgeschriebenen CSV-Format ab"
        " (Zeilenende, Byte Order Mark oder ein fehlendes Zeilenende am Schluss); ihre Zeilen"
        " wurden trotzdem gelesen.",
        None,
    ),
}
