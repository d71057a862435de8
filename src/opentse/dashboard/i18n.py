"""German and English texts of the dashboard.

Shop owners and tax advisers read German; integrators often English. The language
comes from ``?lang=`` (remembered in a cookie), else from ``Accept-Language``, else
German. Every key has both languages, so a missing text is a test failure, not a
blank spot on a page.
"""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("de", "en")
DEFAULT = "de"

TEXTS: dict[str, tuple[str, str]] = {
    # (German, English)
    "app": ("opentse Übersicht", "opentse dashboard"),
    "skip": ("Zum Inhalt springen", "Skip to content"),
    "not_certified": (
        "opentse ist keine BSI-zertifizierte TSE.",
        "opentse is not a BSI-certified TSE.",
    ),
    "nav_tse": ("TSEs", "TSEs"),
    "nav_tx": ("Transaktionen", "Transactions"),
    "nav_exports": ("Exporte", "Exports"),
    "nav_verify": ("Prüfen", "Verify"),
    "nav_outages": ("Ausfälle", "Outages"),
    "nav_warnings": ("Warnungen", "Warnings"),
    "switch_lang": ("English", "Deutsch"),
    "lang_unknown": (
        "Die Sprache „{value}“ gibt es hier nicht; die Seiten gibt es auf {names}.",
        "There is no language '{value}' here; the pages are in {names}.",
    ),
    "logout": ("Abmelden", "Log out"),
    "org": ("Organisation", "Organization"),
    # login
    "login_title": ("Anmelden", "Log in"),
    # before the title of a page whose form was refused: what a screen reader says first
    "title_error": ("Fehler: ", "Error: "),
    "login_intro": (
        "Melden Sie sich mit dem API-Schlüssel und dem Secret Ihrer Organisation an.",
        "Log in with your organization's API key and secret.",
    ),
    "api_key": ("API-Schlüssel", "API key"),
    "api_secret": ("API-Secret", "API secret"),
    "login_button": ("Anmelden", "Log in"),
    "login_failed": ("Anmeldung fehlgeschlagen.", "Login failed."),
    "login_too_many": (
        "Zu viele fehlgeschlagene Anmeldeversuche. Bitte versuchen Sie es in {seconds} "
        "Sekunden erneut.",
        "Too many failed login attempts. Please try again in {seconds} seconds.",
    ),
    "csrf_failed": (
        "Das Formular ist abgelaufen. Bitte erneut versuchen.",
        "The form has expired. Please try again.",
    ),
    # TSE list
    "tse_list_title": ("Technische Sicherheitseinrichtungen", "Technical security systems"),
    "no_tse": (
        "Noch keine TSE. Legen Sie eine über die API an (PUT /api/v2/tss/{id}).",
        "No TSE yet. Create one through the API (PUT /api/v2/tss/{id}).",
    ),
    "status": ("Ampel", "Status"),
    "state": ("Zustand", "State"),
    "description": ("Bezeichnung", "Description"),
    "serial": ("Seriennummer", "Serial number"),
    "signatures": ("Signaturen", "Signatures"),
    "transactions": ("Transaktionen", "Transactions"),
    "open_tx": ("Offene Transaktionen", "Open transactions"),
    "registers_n": ("Kassen", "Registers"),
    "capacity": ("Kapazität", "Capacity"),
    "expiry": ("Zertifikatslaufzeit", "Certificate lifetime"),
    "used_of": ("{used} von {total} verbraucht", "{used} of {total} used"),
    "days_left": ("noch {days} Tage", "{days} days left"),
    "no_cert": ("kein Zertifikat", "no certificate"),
    "light_green": ("grün", "green"),
    "light_yellow": ("gelb", "yellow"),
    "light_red": ("rot", "red"),
    "light_grey": ("grau", "grey"),
    "legend": ("Legende", "Legend"),
    "legend_green": (
        "Grün: initialisiert, letzte Signatur in Ordnung, keine Warnung.",
        "Green: initialized, last signing fine, no warning.",
    ),
    "legend_yellow": (
        "Gelb: Warnung (Kapazität oder Zertifikat bald erschöpft, Export überfällig)"
        " oder kürzlich fehlgeschlagene Aufrufe.",
        "Yellow: warning (capacity or certificate running out, export overdue)"
        " or recent failed calls.",
    ),
    "legend_red": (
        "Rot: außer Betrieb, defekt, nicht initialisiert oder Kapazität/Zertifikat erschöpft.",
        "Red: disabled, defective, not initialized, or capacity/certificate exhausted.",
    ),
    "legend_grey": (
        "Grau: durch eine neue TSE ersetzt und außer Betrieb genommen; die neue TSE"
        " übernimmt ihre Kassen.",
        "Grey: replaced by a new TSE and taken out of service; the new TSE took over its"
        " registers.",
    ),
    "reason_replaced": ("ersetzt durch TSE {new}", "replaced by TSE {new}"),
    "reason_not_init": ("nicht initialisiert", "not initialized"),
    "reason_disabled": ("außer Betrieb", "disabled"),
    "reason_defective": ("defekt", "defective"),
    "reason_failures": (
        "{n} fehlgeschlagene Aufrufe in der letzten Stunde",
        "{n} failed calls in the last hour",
    ),
    "reason_export": ("Export überfällig", "export overdue"),
    "w_capacity_warning": (
        "Kapazität in etwa {days} Tagen erschöpft; Ersatz bestellen",
        "capacity used up in about {days} days; order a replacement",
    ),
    "w_capacity_critical": (
        "Kapazität erschöpft; TSE jetzt ersetzen",
        "capacity used up; replace the TSE now",
    ),
    "w_certificate_expiry_warning": (
        "Zertifikat läuft in {days} Tagen ab; TSE vorher ersetzen",
        "certificate expires in {days} days; replace the TSE before then",
    ),
    "w_certificate_expiry_critical": (
        "Zertifikat abgelaufen; die TSE kann nicht mehr signieren",
        "certificate expired; the TSE cannot sign any more",
    ),
    "w_export": (
        "seit {days} Tagen kein archivierter Export: wer den Server betreibt, exportiert,"
        " prüft und archiviert einen dort (Dokumentation: operations.md, Abschnitt"
        " „Archive“); ein Export über diese Übersicht wird nicht archiviert",
        "no archived export for {days} days: whoever runs the server exports, verifies and"
        " archives one there (documentation: operations.md, section 'Archive'); an export"
        " from this dashboard is not archived",
    ),
    "reason_ok": (
        "letzte Signatur (Zähler {n}) geprüft und gültig",
        "last signature (counter {n}) checked and valid",
    ),
    "reason_last_bad": (
        "die letzte Signatur ist ungültig: TSE als defekt behandeln",
        "the last signature does not verify: treat the TSE as defective",
    ),
    "details": ("Details", "Details"),
    # TSE detail
    "tse_title": ("TSE {serial}", "TSE {serial}"),
    "overview": ("Überblick", "Overview"),
    "registers": ("Kassen (Clients)", "Registers (clients)"),
    "no_registers": ("Keine Kassen registriert.", "No registers registered."),
    "client_id": ("Client-ID", "Client id"),
    "created": ("Angelegt", "Created"),
    "initialized": ("Initialisiert", "Initialized"),
    "certificate": ("Zertifikat", "Certificate"),
    "subject": ("Inhaber", "Subject"),
    "issuer": ("Aussteller", "Issuer"),
    "valid_from": ("Gültig ab", "Valid from"),
    "valid_until": ("Gültig bis", "Valid until"),
    "cert_serial": ("Zertifikats-Seriennummer", "Certificate serial number"),
    "algorithm": ("Signaturalgorithmus", "Signature algorithm"),
    "time_format": ("Zeitformat", "Time format"),
    "public_key": ("Öffentlicher Schlüssel", "Public key"),
    "protocol": ("Einrichtungsprotokoll", "Set-up protocol"),
    "no_protocol": (
        "Keine Protokolleinträge: sie entstehen, wenn auf dem Server Standorte und Kassen"
        " erfasst oder TSEs umgezogen oder ersetzt werden (Dokumentation: operations.md).",
        "No protocol entries: they are written when locations and registers are recorded"
        " on the server, or TSEs moved or replaced (documentation: operations.md).",
    ),
    "system_events": (
        "Von der TSE signierte Systemereignisse (die ersten 50)",
        "System events signed by the TSE (the first 50)",
    ),
    "no_system_events": ("Keine Systemereignisse.", "No system events."),
    "latest_system_events": (
        "Die letzten Systemereignisse (bis zu 50, die neuesten zuerst)",
        "The latest system events (up to 50, newest first)",
    ),
    "when": ("Zeitpunkt", "Time"),
    "event": ("Ereignis", "Event"),
    "actor": ("Durch", "By"),
    "tse_exports": ("Exporte dieser TSE", "Exports of this TSE"),
    "tse_exports_note": (
        "Über die API oder diese Übersicht, mit „opentse archive“ ins Exportarchiv oder mit"
        " „opentse export“ gemacht; jeden Export einer TSE in Betrieb bestätigt sie mit"
        " einem signierten exportData-Log. Die TAR-Datei eines „opentse export“ liegt dort,"
        " wohin er geschrieben wurde.",
        "Made through the API or this dashboard, with 'opentse archive' into the export"
        " archive, or with 'opentse export'; a TSE in use confirms every export with a"
        " signed exportData log. The TAR file of an 'opentse export' is where it was written.",
    ),
    "src_api": ("API / Übersicht", "API / dashboard"),
    "src_archive": ("Archiv (opentse archive)", "Archive (opentse archive)"),
    "src_cli": ("Kommandozeile (opentse export)", "Command line (opentse export)"),
    "export_filter": ("Filter", "Filter"),
    "export_everything": ("alles", "everything"),
    # the parts of an export's filter (tse_exports.filter_parts)
    "flt_transactionNumber": ("Transaktionen", "Transactions"),
    # the serial number the register signs as (TR-03151 clientId), not the API's
    # client id the register table beside it lists under "Client-ID"
    "flt_clientId": ("Kasse", "Register"),
    "flt_date": ("Zeitraum", "Period"),
    "flt_signatureCounter": ("Signaturzähler", "Signature counters"),
    "records": ("Log-Nachrichten", "Log messages"),
    "export_log": ("exportData-Log", "exportData log"),
    "exp_VERIFIED": ("geprüft", "verified"),
    "exp_NOT_VERIFIED": ("Prüfung fehlgeschlagen", "verification failed"),
    "exp_SIGNED": ("signiert", "signed"),
    "show_tx": ("Transaktionen dieser TSE", "Transactions of this TSE"),
    # search
    "search_title": ("Transaktionen suchen", "Search transactions"),
    "tse": ("TSE", "TSE"),
    "all": ("alle", "all"),
    "number": ("Nummer", "Number"),
    "register": ("Kasse", "Register"),
    "date_from": ("Datum von ({zone})", "Date from ({zone})"),
    "date_to": ("Datum bis ({zone})", "Date to ({zone})"),
    "amount": ("Betrag (EUR)", "Amount (EUR)"),
    "search": ("Suchen", "Search"),
    "today": ("Heute", "Today"),
    "results": ("{n} Treffer", "{n} results"),
    "result_one": ("1 Treffer", "1 result"),
    "results_page": ("Treffer {first}–{last} von {total}", "Results {first}–{last} of {total}"),
    "result_pages": ("Trefferseiten", "Result pages"),
    "newer_results": ("← Neuere", "← Newer"),
    "older_results": ("Ältere →", "Older →"),
    "no_results": ("Keine Transaktion gefunden.", "No transaction found."),
    "unread_note": (
        "{n} abgeschlossene Transaktionen findet die Betragssuche nicht: ihr Betrag "
        "konnte nicht aus ihrem Log gelesen werden.",
        "{n} finished transactions cannot be found by amount: their amount could not "
        "be read from their log.",
    ),
    "unread_unreadable": ("Log nicht lesbar: {n}", "log cannot be decoded: {n}"),
    "unread_gone": ("Log nach einem Export gelöscht: {n}", "log deleted after an export: {n}"),
    "unread_no_amount": (
        "kein lesbarer Betrag in den Prozessdaten: {n}",
        "no readable total in the process data: {n}",
    ),
    "unread_show": ("Diese Transaktionen zeigen", "Show these transactions"),
    "unread_listing": (
        "Nur Transaktionen, deren Betrag nicht gelesen werden konnte.",
        "Only transactions whose amount could not be read.",
    ),
    "unread_all": ("Alle Transaktionen", "All transactions"),
    "read_again": (
        "Erneut lesen (nach einer Wiederherstellung)",
        "Read them again (after a restore)",
    ),
    "unread_amount": ("nicht lesbar", "could not be read"),
    "start": ("Beginn", "Start"),
    "end": ("Ende", "End"),
    "type": ("Vorgangsart", "Process type"),
    "revision": ("Revision", "Revision"),
    "open": ("öffnen", "open"),
    "bad_amount": ("Ungültiger Betrag.", "Invalid amount."),
    "unknown_register": (
        "Keine Kasse „{name}“. Kassen: {names}.",
        "No register '{name}'. Registers: {names}.",
    ),
    "search_bad_date": (
        "Ungültiges Datum: {field}: „{value}“ (JJJJ-MM-TT oder TT.MM.JJJJ, ab 1970).",
        "Invalid date: {field}: '{value}' (YYYY-MM-DD or DD.MM.YYYY, from 1970 on).",
    ),
    "bad_tss": (
        "Keine TSE „{value}“ in Ihrer Organisation: bitte eine TSE aus der Liste wählen.",
        "Your organization has no TSE '{value}': please choose a TSE from the list.",
    ),
    "bad_state": (
        "Unbekannter Zustand „{value}“. Zustände: {names}.",
        "Unknown state '{value}'. States: {names}.",
    ),
    "bad_link": (
        "Die Adresse ist verändert oder unvollständig ({value}): bitte die Suche über das"
        " Formular neu beginnen.",
        "The address was changed or is incomplete ({value}): please start the search"
        " again from the form.",
    ),
    "bad_tss_param": (
        "Keine TSE „{value}“ in Ihrer Organisation (Adresse: tss={value}).",
        "Your organization has no TSE '{value}' (address: tss={value}).",
    ),
    "export_range_reversed": (
        "Der Bereich ist leer: „von“ liegt nach „bis“.",
        "The range is empty: 'from' is after 'to'.",
    ),
    "export_client_alone": (
        "Eine Kasse wird immer ganz exportiert: bitte entweder eine Kasse oder einen"
        " Nummern- bzw. Datumsbereich wählen.",
        "A register is always exported whole: choose either a register or a number or date range.",
    ),
    "bad_number": ("Ungültige Nummer.", "Invalid number."),
    "export_bad_number": (
        "{field}: „{value}“ ist keine Transaktionsnummer (eine ganze Zahl ab 0).",
        "{field}: '{value}' is no transaction number (a whole number from 0).",
    ),
    "export_bad_date": (
        "{field}: „{value}“ ist kein Datum ab 1970 (JJJJ-MM-TT oder TT.MM.JJJJ).",
        "{field}: '{value}' is no date from 1970 on (YYYY-MM-DD or DD.MM.YYYY).",
    ),
    "export_numbers_or_dates": (
        "Nummern- und Datumsbereich schließen sich aus: bitte nur einen wählen.",
        "A number range and a date range exclude each other: choose one.",
    ),
    # transaction
    "tx_title": ("Transaktion {n}", "Transaction {n}"),
    "tx_neighbours": ("Transaktionen dieser TSE", "Transactions of this TSE"),
    "tx_previous": ("← Transaktion {n}", "← Transaction {n}"),
    "tx_next": ("Transaktion {n} →", "Transaction {n} →"),
    "unread_why_unreadable": ("Log nicht lesbar", "log cannot be decoded"),
    "unread_why_gone": ("Log nach einem Export gelöscht", "log deleted after an export"),
    "unread_why_no_amount": (
        "kein lesbarer Betrag in den Prozessdaten",
        "no readable total in the process data",
    ),
    "receipt": ("Beleg", "Receipt"),
    "receipt_note": (
        "Aus dem signierten Abschluss-Log rekonstruiert (Summen je Steuersatz, Zahlarten).",
        "Rebuilt from the signed Finish log (totals per VAT rate, payments).",
    ),
    "no_receipt": (
        "Kein Beleg: die Transaktion ist nicht abgeschlossen.",
        "No receipt: the transaction is not finished.",
    ),
    "logs_deleted": (
        "Die Log-Nachrichten dieser Transaktion wurden nach einem geprüften Export "
        "gelöscht (deleteStoredData); Beleg und Signaturen stehen im archivierten Export.",
        "The log messages of this transaction were deleted after a verified export "
        "(deleteStoredData); receipt and signatures are in the archived export.",
    ),
    "process_data": ("Vorgangsdaten", "Process data"),
    "qr_code": ("QR-Code", "QR code"),
    "open_qr": ("QR-Code öffnen", "Open QR code"),
    # as the receipts print it (register/render_text.NO_QR_TEXT): a long order's QR text
    "qr_too_long": ("Kein QR-Code: TSE-Daten zu lang", "No QR code: TSE data too long"),
    "no_qr": (
        "Für diese Transaktion gibt es keinen QR-Code.",
        "There is no QR code for this transaction.",
    ),
    "qr_text": ("Inhalt des QR-Codes", "QR code content"),
    "logs": ("Log-Nachrichten", "Log messages"),
    "file": ("Datei", "File"),
    "operation": ("Operation", "Operation"),
    "counter": ("Signaturzähler", "Signature counter"),
    "log_time": ("Log-Zeit", "Log time"),
    "signature": ("Signatur", "Signature"),
    "download_log": ("Log herunterladen", "Download log"),
    "back_tx": ("Zurück zur Transaktion", "Back to the transaction"),
    "qr_check": ("Prüfung des QR-Codes", "QR code check"),
    # exports
    "exports_title": ("Exporte", "Exports"),
    "new_export": ("Neuer Export", "New export"),
    "export_filters": (
        "Ohne Filter wird alles exportiert. Kasse, Nummern- und Datumsfilter schließen sich aus.",
        "Without filters everything is exported. Register, number and date filters exclude"
        " each other.",
    ),
    "start_tx": ("Transaktion von", "Transaction from"),
    "end_tx": ("Transaktion bis", "Transaction to"),
    "start_date": ("Von Datum ({zone})", "From date ({zone})"),
    "end_date": ("Bis Datum ({zone})", "To date ({zone})"),
    "start_export": ("Export starten", "Start export"),
    "choose_tse": ("TSE wählen", "Choose TSE"),
    "export_of_tse": ("Export der TSE {serial}", "Export of TSE {serial}"),
    "no_exports": ("Noch keine Exporte.", "No exports yet."),
    "other_exports": (
        "TSE {serial}: {n} Export(e) mit „opentse archive“ oder „opentse export“, der"
        " neueste {when} – siehe die Seite der TSE",
        "TSE {serial}: {n} export(s) made with 'opentse archive' or 'opentse export', the"
        " newest {when} – see the TSE's page",
    ),
    "requested": ("Angefordert", "Requested"),
    "finished": ("Fertig", "Finished"),
    "export_title": ("Export {id}", "Export {id}"),
    "progress": ("Fortschritt", "Progress"),
    "export_running": ("Der Export läuft.", "The export is running."),
    "export_done": (
        "Der Export ist fertig; das Prüfergebnis steht unten.",
        "The export is finished; its verification result is below.",
    ),
    "export_cancelled": ("Der Export wurde abgebrochen.", "The export was cancelled."),
    "reload": ("Neu laden", "Reload"),
    "verifying": (
        "Der Export ist fertig und wird geprüft.",
        "The export is finished and being verified.",
    ),
    "download": ("TAR herunterladen", "Download TAR"),
    "export_file_gone": (
        "Die Datei dieses Exports ist nicht mehr vorhanden (gelöscht oder verschoben)."
        " Bitte einen neuen Export starten.",
        "The file of this export is no longer there (deleted or moved). Please start a new export.",
    ),
    "verification": ("Prüfergebnis", "Verification result"),
    "verified_ok": (
        "Export geprüft: alle Signaturen gültig, keine Fehler.",
        "Export verified: all signatures valid, no errors.",
    ),
    "verified_bad": ("Export fehlerhaft.", "Export has errors."),
    "log_messages": ("Log-Nachrichten", "Log messages"),
    "valid_signatures": ("Gültige Signaturen", "Valid signatures"),
    "invalid_signatures": ("Ungültige Signaturen", "Invalid signatures"),
    "findings": ("Befunde", "Findings"),
    "size": ("Größe", "Size"),
    "no_findings": ("Keine Befunde.", "No findings."),
    "severity": ("Schwere", "Severity"),
    "sev_error": ("Fehler", "error"),
    "sev_warning": ("Warnung", "warning"),
    "sev_info": ("Hinweis", "info"),
    "code": ("Code", "Code"),
    "message": ("Meldung", "Message"),
    "server_original": ("Meldung des Servers (englisch)", "The server's own message"),
    "finding_original": ("Meldung des Prüfprogramms (englisch)", "The verifier's own message"),
    "key_own_tse": (
        "Der Schlüssel im QR-Code ist der der TSE {serial} Ihrer Organisation.",
        "The key in the QR code is that of your organization's TSE {serial}.",
    ),
    "open_tx_n": ("Transaktion {n} öffnen", "Open transaction {n}"),
    "key_other_tse": (
        "Der Schlüssel im QR-Code gehört zu keiner TSE Ihrer Organisation: die Signatur"
        " passt, aber ob dieser Beleg von Ihrer Kasse stammt, zeigt nur der Export der"
        " TSE, die ihn signiert hat.",
        "The key in the QR code belongs to none of your organization's TSEs: the"
        " signature verifies, but whether this receipt comes from your register only the"
        " export of the TSE that signed it can show.",
    ),
    "error": ("Fehler", "Error"),
    "export_error": ("Export fehlgeschlagen: {code}", "Export failed: {code}"),
    # why, for the codes a shop owner causes with the form (export_error_<code>)
    "export_error_why": ("Export fehlgeschlagen: {why} ({code})", "Export failed: {why} ({code})"),
    "export_error_E_NO_DATA_AVAILABLE": (
        "die TSE hat in diesem Bereich keine Log-Nachrichten",
        "the TSE has no log messages in this range",
    ),
    "export_error_E_TOO_MANY_RECORDS": (
        "der Bereich hat mehr Log-Nachrichten, als ein Export fassen darf; bitte enger wählen",
        "the range holds more log messages than one export may; choose a narrower one",
    ),
    # verify upload
    "verify_title": ("Export oder Beleg prüfen", "Verify an export or a receipt"),
    "verify_intro": (
        "Laden Sie einen TAR-Export (bis {tar_mb} MB) oder ein Foto eines Beleg-QR-Codes"
        " (PNG/JPEG, bis {img_mb} MB) hoch, oder fügen Sie den Text eines QR-Codes ein.",
        "Upload a TAR export (up to {tar_mb} MB) or a photo of a receipt QR code"
        " (PNG/JPEG, up to {img_mb} MB), or paste the text of a QR code.",
    ),
    "upload_file": ("Datei (TAR, PNG oder JPEG)", "File (TAR, PNG or JPEG)"),
    "or_qr_text": ("oder QR-Text", "or QR text"),
    "verify_button": ("Prüfen", "Verify"),
    "too_large": ("Die Datei ist zu groß.", "The file is too large."),
    "length_required": (
        "Das Hochladen braucht die Größe vorab (Content-Length).",
        "An upload needs its size up front (Content-Length).",
    ),
    "nothing_uploaded": (
        "Bitte eine Datei oder einen QR-Text angeben.",
        "Please give a file or QR text.",
    ),
    "unknown_file": (
        "Unbekanntes Dateiformat: erwartet TAR, PNG oder JPEG.",
        "Unknown file type: expected TAR, PNG or JPEG.",
    ),
    "receipt_ok": ("Beleg gültig: die Signatur passt.", "Receipt valid: the signature verifies."),
    "receipt_bad": ("Beleg ungültig.", "Receipt invalid."),
    "qr_not_read": (
        "Kein QR-Code gelesen: im Bild wurde keiner gefunden, oder das Bild ist nicht"
        " lesbar. Der Beleg wurde nicht geprüft; bitte ein scharfes Foto des QR-Codes"
        " hochladen oder seinen Text einfügen.",
        "No QR code read: none was found in the picture, or the picture cannot be read."
        " The receipt was not checked; please upload a sharp photo of the QR code or"
        " paste its text.",
    ),
    "qr_not_receipt": (
        "Das ist kein Beleg-QR-Code einer TSE (er beginnt nicht mit „V0;“), also wurde"
        " kein Beleg geprüft.",
        "This is not a TSE receipt QR code (it does not start with 'V0;'), so no receipt"
        " was checked.",
    ),
    "result_for": ("Ergebnis für {name}", "Result for {name}"),
    # outages, warnings
    "outages_title": ("Ausfallprotokoll", "Outage log"),
    "no_outages": (
        "Keine Ausfälle erfasst. Ausfälle der TSE oder der Kasse erscheinen hier,"
        " sobald sie protokolliert werden.",
        "No outages recorded. Outages of the TSE or the register appear here once logged.",
    ),
    "source": ("Quelle", "Source"),
    "reason": ("Grund", "Reason"),
    "ongoing": ("andauernd", "ongoing"),
    "receipts": ("Belege", "Receipts"),
    "warnings_title": ("Warnungen", "Warnings"),
    "no_warnings": ("Keine Warnungen.", "No warnings."),
    "kind": ("Art", "Kind"),
    "level": ("Stufe", "Level"),
    "level_critical": ("kritisch", "critical"),
    "level_warning": ("Warnung", "warning"),
    "kind_status": ("Zustand der TSE", "TSE state"),
    "kind_capacity": ("Signaturkapazität", "signature capacity"),
    "kind_certificate_expiry": ("Zertifikatslaufzeit", "certificate expiry"),
    "kind_export": ("Export", "export"),
    "kind_failures": ("fehlgeschlagene Aufrufe", "failed calls"),
    # errors
    "not_found": ("Nicht gefunden.", "Not found."),
    # a node older than its database (E_SCHEMA_NEWER); English pages show the API's text
    "schema_newer": (
        "Dieser Server ist älter als seine Datenbank: eine neuere opentse-Version hat sie"
        " migriert (Migrationen {migrations} kennt er nicht). Er speichert deshalb nichts"
        " mehr. Bitte an einem aktualisierten Server erneut versuchen oder diesen"
        " aktualisieren lassen. ({code})",
        "This node's opentse is older than its database (migrations {migrations} unknown"
        " to it): it no longer writes; retry at an upgraded node, or upgrade this one."
        " ({code})",
    ),
    "schema_newer_logout": (
        "Nur in diesem Browser abgemeldet: die Sitzung konnte auf dem Server nicht beendet"
        " werden (eine Kopie ihres Cookies bleibt bis zu ihrem Ablauf gültig); bitte an"
        " einem aktualisierten Server erneut abmelden.",
        "Logged out in this browser only: the session could not be ended on the server (a"
        " copy of its cookie stays valid until it expires); log out again at an upgraded"
        " node.",
    ),
    # the export form's refusals by the API (trigger_export) a shop owner can meet
    "export_refused_E_TSS_ILLEGAL_STATE_TO_PERFORM_EXPORT": (
        "Diese TSE kann noch nicht exportiert werden: sie ist {state}. Exportieren lässt"
        " sich eine initialisierte oder stillgelegte TSE. ({code})",
        "This TSE cannot be exported yet: it is {state}. An initialized or disabled TSE"
        " can be exported. ({code})",
    ),
    "export_refused_E_TOO_MANY_EXPORTS": (
        "Von dieser TSE warten oder laufen schon 10 Exporte; bitte warten, bis einer"
        " fertig ist. ({code})",
        "10 exports of this TSE are already waiting or running; please wait until one"
        " finishes. ({code})",
    ),
    "export_refused_E_CLIENT_NOT_FOUND": (
        "Diese Kasse ist keine Kasse der gewählten TSE: bitte eine aus der Liste wählen. ({code})",
        "That register is no register of the TSE chosen: please choose one from the list. ({code})",
    ),
    # any other refusal: the API's own words (English), framed and with its code
    "export_refused": (
        "Export abgelehnt ({code}), Meldung der API: {message}",
        "Export refused ({code}): {message}",
    ),
    "export_refused_E_TSS_NOT_FOUND": (
        "Diese TSE gibt es in Ihrer Organisation nicht. ({code})",
        "Your organization has no such TSE. ({code})",
    ),
    "error_title": ("Fehler {status}", "Error {status}"),
    "yes": ("ja", "yes"),
    "no": ("nein", "no"),
}


#: The states of TSEs, transactions, registers and API exports (the fiskaly API's
#: names): German for shop owners and auditors, in English the API's own name, which
#: an integrator finds in the API's answers and logs.
STATES: dict[str, tuple[str, str]] = {
    # TSE
    "CREATED": ("angelegt", "CREATED"),
    "UNINITIALIZED": ("nicht initialisiert", "UNINITIALIZED"),
    "INITIALIZED": ("initialisiert", "INITIALIZED"),
    "DISABLED": ("stillgelegt", "DISABLED"),
    "DELETED": ("gelöscht", "DELETED"),
    "DEFECTIVE": ("defekt", "DEFECTIVE"),
    "EVICTED": ("ausgelagert", "EVICTED"),
    # transaction (CANCELLED also an export's)
    "ACTIVE": ("offen", "ACTIVE"),
    "FINISHED": ("abgeschlossen", "FINISHED"),
    "CANCELLED": ("abgebrochen", "CANCELLED"),
    # register (client)
    "REGISTERED": ("angemeldet", "REGISTERED"),
    "DEREGISTERED": ("abgemeldet", "DEREGISTERED"),
    # API export
    "PENDING": ("wartet", "PENDING"),
    "WORKING": ("läuft", "WORKING"),
    "COMPLETED": ("fertig", "COMPLETED"),
    "ERROR": ("fehlgeschlagen", "ERROR"),
}


def state_namer(lang: str) -> Callable[[str], str]:
    """``state(name)``: a state's name in ``lang``; a state this table does not know
    (a newer API's) as the API names it, not a failed page."""
    index = LANGUAGES.index(lang if lang in LANGUAGES else DEFAULT)

    def state(name: str) -> str:
        names = STATES.get(name)
        return name if names is None else names[index]

    return state


def query_language(value: str | None) -> str | None:
    """The language ``?lang=`` names, as a shop owner or a link may write it: any
    letter case, with a region (``EN``, ``en-GB``, ``de_AT``); None when it names none
    the dashboard has. A display preference, no filter: a language there is none of
    shows the page anyway (``pick_language`` falls back; the page says so)."""
    tag = (value or "").strip().lower().replace("_", "-").split("-")[0]
    return tag if tag in LANGUAGES else None


def pick_language(query: str | None, cookie: str | None, accept: str | None) -> str:
    """``?lang=`` (``query_language``) beats the cookie beats the best
    ``Accept-Language`` match."""
    for explicit in (query_language(query), cookie):
        if explicit in LANGUAGES:
            return explicit
    best: tuple[float, str] | None = None
    for part in (accept or "").split(","):
        pieces = part.strip().split(";")
        tag = pieces[0].strip().lower().split("-")[0]
        if tag not in LANGUAGES:
            continue
        quality = 1.0
        for param in pieces[1:]:
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0 and (best is None or quality > best[0]):
            best = (quality, tag)
    return best[1] if best else DEFAULT


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **values)``: the text in ``lang`` with ``{name}`` placeholders filled."""
    index = LANGUAGES.index(lang if lang in LANGUAGES else DEFAULT)

    def t(key: str, **values: object) -> str:
        text = TEXTS[key][index]
        return text.format(**values) if values else text

    return t
