"""The 20 tables of a DSFinV-K 2.4 export: files, columns, types, keys (pure data).

Source: the official ``index.xml`` of DSFinV-K 2.4 (BZSt), which fixes every table's
file name, GDPdU name, column order, type (``AlphaNumeric`` with ``MaxLength``,
``Numeric`` with ``Accuracy``) and the table order. The chapters quoted per table
are those of the DSFinV-K 2.4 text: 3 Einzelaufzeichnungsmodul, 4 Stammdatenmodul,
5 Kassenabschlussmodul.

Primary and foreign keys are not in the published ``index.xml`` (it declares only
``VariableColumn``); we declare them as the GDPdU DTD allows
(``VariablePrimaryKey+`` first, then ``VariableColumn*``, then ``ForeignKey*``), so
the key columns of every table are a prefix of its column list and the column order
stays the official one. DSFinV-K 2.4, 1.2: "Jede Datei beginnt mit dem
Kassenabschluss-Schlüssel Z_KASSE_ID, Z_ERSTELLUNG, Z_NR".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum


class ColumnType(StrEnum):
    """GDPdU data types (gdpdu-01-09-2004.dtd: AlphaNumeric | Numeric | Date)."""

    ALPHANUMERIC = "AlphaNumeric"
    NUMERIC = "Numeric"
    DATE = "Date"


@dataclass(frozen=True, slots=True)
class Column:
    """One ``VariableColumn`` / ``VariablePrimaryKey``."""

    name: str
    type: ColumnType
    max_length: int | None = None  # AlphaNumeric only
    accuracy: int = 0  # Numeric only: decimal places
    description: str = ""


@dataclass(frozen=True, slots=True)
class ForeignKey:
    """``<ForeignKey><Name>..</Name>+<References>table name</References>`` (+ Alias)."""

    columns: tuple[str, ...]
    references: str  # GDPdU Name of the referenced table
    ref_columns: tuple[str, ...]  # same length; differs only where an Alias is needed


@dataclass(frozen=True, slots=True)
class Table:
    """One ``<Table>`` of index.xml; ``file`` is its URL."""

    file: str
    name: str
    section: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.file} has no column {name}")

    def index(self, name: str) -> int:
        return self.column_names.index(name)


Z_KEY = ("Z_KASSE_ID", "Z_ERSTELLUNG", "Z_NR")
BON_KEY = (*Z_KEY, "BON_ID")
POS_KEY = (*BON_KEY, "POS_ZEILE")

_CLOSING_KEY_SPEC = """
Z_KASSE_ID A50 ID der (Abschluss-) Kasse
Z_ERSTELLUNG A30 Zeitpunkt des Kassenabschlusses
Z_NR N Nr. des Kassenabschlusses
"""


def _columns(spec: str) -> tuple[Column, ...]:
    """Read our compact spec: ``NAME TYPE description``; TYPE ``A<len>`` or ``N<acc>``."""
    out: list[Column] = []
    for line in (_CLOSING_KEY_SPEC + spec).splitlines():
        if not line.strip():
            continue
        name, kind, *words = line.split()
        description = " ".join(words)
        if kind[0] == "A":
            out.append(Column(name, ColumnType.ALPHANUMERIC, int(kind[1:]), 0, description))
        else:
            out.append(Column(name, ColumnType.NUMERIC, None, int(kind[1:] or 0), description))
    return tuple(out)


def _fk_closing() -> ForeignKey:
    return ForeignKey(Z_KEY, "Stamm_Abschluss", Z_KEY)


def _fk(
    columns: tuple[str, ...], references: str, ref: tuple[str, ...] | None = None
) -> ForeignKey:
    return ForeignKey(columns, references, ref or columns)


def _vat_fk(column: str = "UST_SCHLUESSEL") -> ForeignKey:
    return _fk((*Z_KEY, column), "Stamm_USt", (*Z_KEY, "UST_SCHLUESSEL"))


# --- 4 Stammdatenmodul ---------------------------------------------------------------

CASHPOINTCLOSING = Table(
    "cashpointclosing.csv",
    "Stamm_Abschluss",
    "4.1 Stamm_Abschluss: one row per Kassenabschluss with the company's master data",
    _columns("""
Z_BUCHUNGSTAG A25 Vom Erstellungsdatum abweichender Verbuchungstag
TAXONOMIE_VERSION A10 Version der DFKA-Taxonomie-Kasse
Z_START_ID A40 Erste BON_ID im Abschluss
Z_ENDE_ID A40 Letzte BON_ID im Abschluss
NAME A60 Name des Unternehmens
STRASSE A60 Straße
PLZ A10 Postleitzahl
ORT A62 Ort
LAND A3 Land
STNR A20 Steuernummer des Unternehmens
USTID A15 USTID
Z_SE_ZAHLUNGEN N2 Summe aller Zahlungen
Z_SE_BARZAHLUNGEN N2 Summe aller Barzahlungen
"""),
    Z_KEY,
)

LOCATION = Table(
    "location.csv",
    "Stamm_Orte",
    "4.2 Stamm_Orte: the place where the register stands",
    _columns("""
LOC_NAME A60 Name des Standortes
LOC_STRASSE A60 Straße
LOC_PLZ A10 Postleitzahl
LOC_ORT A62 Ort
LOC_LAND A3 Land
LOC_USTID A15 USTID
"""),
    Z_KEY,
    (_fk_closing(),),
)

CASHREGISTER = Table(
    "cashregister.csv",
    "Stamm_Kassen",
    "4.3 Stamm_Kassen: the (closing) register; KASSE_SERIENNR is the TSE client id",
    _columns("""
KASSE_BRAND A50 Marke der Kasse
KASSE_MODELL A50 Modellbezeichnung
KASSE_SERIENNR A70 Seriennummer der Kasse
KASSE_SW_BRAND A50 Markenbezeichnung der Software
KASSE_SW_VERSION A50 Version der Software
KASSE_BASISWAEH_CODE A3 Basiswährung der Kasse
KEINE_UST_ZUORDNUNG A1 UmsatzsteuerNichtErmittelbar (bei späterem Zahlungseingang)
"""),
    Z_KEY,
    (_fk_closing(),),
)

SLAVES = Table(
    "slaves.csv",
    "Stamm_Terminals",
    "4.4 Stamm_Terminals: terminals (slaves) closed together with the register",
    _columns("""
TERMINAL_ID A50 ID des Terminals
TERMINAL_BRAND A50 Marke der Terminals
TERMINAL_MODELL A50 Modellbezeichnung des Terminals
TERMINAL_SERIENNR A70 Seriennummer des Terminals
TERMINAL_SW_BRAND A50 Markenbezeichnung der Software
TERMINAL_SW_VERSION A50 Version der Software
"""),
    (*Z_KEY, "TERMINAL_ID"),
    (_fk_closing(),),
)

PA = Table(
    "pa.csv",
    "Stamm_Agenturen",
    "4.5 Stamm_Agenturen: principals of agency sales (Agenturumsätze)",
    _columns("""
AGENTUR_ID N ID der Agentur
AGENTUR_NAME A60 Name des Auftraggebers
AGENTUR_STRASSE A60 Straße
AGENTUR_PLZ A10 Postleitzahl
AGENTUR_ORT A62 Ort
AGENTUR_LAND A3 Land
AGENTUR_STNR A20 Steuernummer des Auftraggebers
AGENTUR_USTID A15 USTID des Auftraggebers
"""),
    (*Z_KEY, "AGENTUR_ID"),
    (_fk_closing(),),
)

TSE = Table(
    "tse.csv",
    "Stamm_TSE",
    "4.7 Stamm_TSE: the TSEs used in the closing; the certificate in base64 split "
    "into pieces of 1000 characters (TSE_ZERTIFIKAT_I, _II, further columns _III ... "
    "when it is longer)",
    _columns("""
TSE_ID N ID der TSE - wird nur zur Referenzierung innerhalb eines Kassenabschlusses verwendet
TSE_SERIAL A68 Seriennummer der TSE (Hashwert des Schlüssels, hex)
TSE_SIG_ALGO A21 Der von der TSE verwendete Signaturalgorithmus
TSE_ZEITFORMAT A31 Das von der TSE verwendete Format für die Log-Time
TSE_PD_ENCODING A5 Das Text-Encoding der ProcessData (UTF-8 oder ASCII)
TSE_PUBLIC_KEY A512 Öffentlicher Schlüssel der TSE in base64-Codierung
TSE_ZERTIFIKAT_I A1000 Erste 1000 Zeichen des base64-codierten Zertifikats der TSE
TSE_ZERTIFIKAT_II A1000 Ggf. Rest des base64-codierten Zertifikats der TSE
"""),
    (*Z_KEY, "TSE_ID"),
    (_fk_closing(),),
)

VAT = Table(
    "vat.csv",
    "Stamm_USt",
    "4.6 Stamm_USt: the VAT keys used (Anlage 2) with their rate in percent",
    _columns("""
UST_SCHLUESSEL N ID des Umsatzsteuersatzes
UST_SATZ N2 Prozentsatz
UST_BESCHR A55 Beschreibung
"""),
    (*Z_KEY, "UST_SCHLUESSEL"),
    (_fk_closing(),),
)

# --- 5 Kassenabschlussmodul ----------------------------------------------------------

BUSINESSCASES = Table(
    "businesscases.csv",
    "Z_GV_Typ",
    "5.1 Z_GV_Typ: closing totals per business case type, agency and VAT key",
    _columns("""
GV_TYP A30 Geschäftsvorfall-Art
GV_NAME A40 Name des Geschäftsvorfalls
AGENTUR_ID N ID der Agentur
UST_SCHLUESSEL N ID des USt-Satzes
Z_UMS_BRUTTO N5 Bruttoumsatz
Z_UMS_NETTO N5 Nettoumsatz
Z_UST N5 Umsatzsteuer
"""),
    (*Z_KEY, "GV_TYP", "GV_NAME", "AGENTUR_ID", "UST_SCHLUESSEL"),
    (_fk_closing(), _vat_fk()),
)

PAYMENT = Table(
    "payment.csv",
    "Z_Zahlart",
    "5.2 Z_Zahlart: closing totals per payment type",
    _columns("""
ZAHLART_TYP A25 Typ der Zahlart
ZAHLART_NAME A60 Name der Zahlart
Z_ZAHLART_BETRAG N2 Betrag
"""),
    (*Z_KEY, "ZAHLART_TYP", "ZAHLART_NAME"),
    (_fk_closing(),),
)

CASH_PER_CURRENCY = Table(
    "cash_per_currency.csv",
    "Z_Waehrungen",
    "5.3 Z_Waehrungen: cash totals per currency",
    _columns("""
ZAHLART_WAEH A3 Währung
ZAHLART_BETRAG_WAEH N2 Betrag
"""),
    (*Z_KEY, "ZAHLART_WAEH"),
    (_fk_closing(),),
)

# --- 3 Einzelaufzeichnungsmodul ------------------------------------------------------

TRANSACTIONS = Table(
    "transactions.csv",
    "Bonkopf",
    "3.2.1 Bonkopf: one row per Vorgang (receipt) with its total",
    _columns("""
BON_ID A40 Vorgangs-ID
BON_NR N Bonnummer
BON_TYP A30 Bontyp
BON_NAME A60 Zusatz-Beschreibung zum Bontyp
TERMINAL_ID A50 ID des Erfassungsterminals
BON_STORNO A1 Storno-Kennzeichen
BON_START A30 Zeitpunkt des Vorgangsstarts
BON_ENDE A30 Zeitpunkt der Vorgangsbeendigung
BEDIENER_ID A50 Bediener-ID
BEDIENER_NAME A50 Bediener-Name
UMS_BRUTTO N2 Brutto-Gesamtumsatz
KUNDE_NAME A50 Name des Leistungsempfängers
KUNDE_ID A50 Kundennummer des Leistungsempfängers
KUNDE_TYP A50 Art des Leistungsempfängers (z. B. Mitarbeiter)
KUNDE_STRASSE A60 Straße und Hausnummer des Leistungsempfängers
KUNDE_PLZ A10 PLZ des Leistungsempfängers
KUNDE_ORT A62 Ort des Leistungsempfängers
KUNDE_LAND A3 Land des Leistungsempfängers
KUNDE_USTID A15 UStID des Leistungsempfängers
BON_NOTIZ A255 Zusätzliche Informationen zum Bonkopf
"""),
    BON_KEY,
    (_fk_closing(),),
)

DATAPAYMENT = Table(
    "datapayment.csv",
    "Bonkopf_Zahlarten",
    "3.2.4 Bonkopf_Zahlarten: the payments of a receipt",
    _columns("""
BON_ID A40 Vorgangs-ID
ZAHLART_TYP A25 Typ der Zahlart
ZAHLART_NAME A60 Name der Zahlart
ZAHLWAEH_CODE A3 Währungscode
ZAHLWAEH_BETRAG N2 Betrag in Fremdwährung
BASISWAEH_BETRAG N2 Betrag in Basiswährung (i.d.R. EUR)
"""),
    (*BON_KEY, "ZAHLART_TYP", "ZAHLART_NAME", "ZAHLWAEH_CODE"),
    (_fk_closing(), _fk(BON_KEY, "Bonkopf")),
)

LINES = Table(
    "lines.csv",
    "Bonpos",
    "3.1.1 Bonpos: the lines (items) of a receipt",
    _columns("""
BON_ID A40 Vorgangs-ID
POS_ZEILE A50 Zeilennummer
GUTSCHEIN_NR A50 Gutschein-Nr.
ARTIKELTEXT A255 Artikeltext
POS_TERMINAL_ID A50 ID des POS-Terminals
GV_TYP A30 Geschäftsvorfall-Art
GV_NAME A40 Name des Geschäftsvorfalls
INHAUS A1 Verzehr an Ort und Stelle
P_STORNO A1 Positionsstorno-Kennzeichnung
AGENTUR_ID N ID der Agentur
ART_NR A50 Artikelnummer
GTIN A50 GTIN
WARENGR_ID A40 Warengruppen-ID
WARENGR A50 Bezeichnung Warengruppe
MENGE N3 Menge
FAKTOR N3 Faktor, z. B. Gebindegrößen
EINHEIT A50 Maßeinheit, z. B. kg, Liter oder Stück
STK_BR N5 Preis pro Einheit inkl. USt
"""),
    POS_KEY,
    (_fk_closing(), _fk(BON_KEY, "Bonkopf")),
)

ITEMAMOUNTS = Table(
    "itemamounts.csv",
    "Bonpos_Preisfindung",
    "3.1.3 Bonpos_Preisfindung: base price, discounts and surcharges of a line",
    _columns("""
BON_ID A40 Vorgangs-ID
POS_ZEILE A50 Zeilennummer
TYP A20 Basispreis, Rabatt oder Zuschlag
UST_SCHLUESSEL N ID des USt-Satzes
PF_BRUTTO N5 Bruttoumsatz
PF_NETTO N5 Nettoumsatz
PF_UST N5 Umsatzsteuer
"""),
    (*POS_KEY, "TYP", "UST_SCHLUESSEL"),
    (_fk_closing(), _fk(POS_KEY, "Bonpos"), _vat_fk()),
)

SUBITEMS = Table(
    "subitems.csv",
    "Bonpos_Zusatzinfo",
    "3.1.4 Bonpos_Zusatzinfo: sub-items of a line (e.g. the parts of a menu)",
    _columns("""
BON_ID A40 Vorgangs-ID
POS_ZEILE A50 Zeilennummer
ZI_ART_NR A50 Artikelnummer
ZI_GTIN A50 GTIN
ZI_NAME A60 Artikelbezeichnung
ZI_WARENGR_ID A40 Warengruppen-ID
ZI_WARENGR A50 Bezeichnung Warengruppe
ZI_MENGE N3 Menge
ZI_FAKTOR N3 Faktor, z. B. Gebindegrößen
ZI_EINHEIT A50 Maßeinheit, z. B. kg, Liter oder Stück
ZI_UST_SCHLUESSEL N ID USt-Satz des Basispreises
ZI_BASISPREIS_BRUTTO N5 Basispreis brutto
ZI_BASISPREIS_NETTO N5 Basispreis netto
ZI_BASISPREIS_UST N5 Basispreis USt
"""),
    (*POS_KEY, "ZI_ART_NR"),
    (_fk_closing(), _fk(POS_KEY, "Bonpos"), _vat_fk("ZI_UST_SCHLUESSEL")),
)

TRANSACTIONS_TSE = Table(
    "transactions_tse.csv",
    "TSE_Transaktionen",
    "3.2.6 TSE_Transaktionen: the TSE transaction of a receipt (Finish log's "
    "counter and signature)",
    _columns("""
BON_ID A40 Vorgangs-ID
TSE_ID N Die Id der für eine Transaktion verwendeten TSE
TSE_TANR N Die Transaktionsnummer der TSE-Transaktion
TSE_TA_START A30 Die Log-Time der StartTransaction-Operation
TSE_TA_ENDE A30 Die Log-Time der FinishTransaction-Operation
TSE_TA_VORGANGSART A30 Der processType der FinishTransaction-Operation
TSE_TA_SIGZ N Der Signaturzähler der FinishTransaction-Operation
TSE_TA_SIG A512 Die Signatur der FinishTransaction-Operation
TSE_TA_FEHLER A200 Beschreibung des TSE-Ausfalls oder Fehlers
TSE_VORGANGSDATEN A1000 An die TSE übergebene Daten des Vorgangs (optional)
"""),
    (*BON_KEY, "TSE_ID", "TSE_TANR"),
    (_fk_closing(), _fk(BON_KEY, "Bonkopf"), _fk((*Z_KEY, "TSE_ID"), "Stamm_TSE")),
)

TRANSACTIONS_VAT = Table(
    "transactions_vat.csv",
    "Bonkopf_USt",
    "3.2.2 Bonkopf_USt: receipt totals per VAT key",
    _columns("""
BON_ID A40 Vorgangs-ID
UST_SCHLUESSEL N ID des USt-Satzes
BON_BRUTTO N5 Bruttoumsatz
BON_NETTO N5 Nettoumsatz
BON_UST N5 Umsatzsteuer
"""),
    (*BON_KEY, "UST_SCHLUESSEL"),
    (_fk_closing(), _fk(BON_KEY, "Bonkopf"), _vat_fk()),
)

LINES_VAT = Table(
    "lines_vat.csv",
    "Bonpos_USt",
    "3.1.2 Bonpos_USt: line amounts per VAT key",
    _columns("""
BON_ID A40 Vorgangs-ID
POS_ZEILE A50 Zeilennummer
UST_SCHLUESSEL N ID des USt-Satzes
POS_BRUTTO N5 Bruttoumsatz
POS_NETTO N5 Nettoumsatz
POS_UST N5 Umsatzsteuer
"""),
    (*POS_KEY, "UST_SCHLUESSEL"),
    (_fk_closing(), _fk(POS_KEY, "Bonpos"), _vat_fk()),
)

ALLOCATION_GROUPS = Table(
    "allocation_groups.csv",
    "Bonkopf_AbrKreis",
    "3.2.3 Bonkopf_AbrKreis: allocation group of a receipt (e.g. table number)",
    _columns("""
BON_ID A40 Vorgangs-ID
ABRECHNUNGSKREIS A50 z. B. Tischnummer
"""),
    (*BON_KEY, "ABRECHNUNGSKREIS"),
    (_fk_closing(), _fk(BON_KEY, "Bonkopf")),
)

REFERENCES = Table(
    "references.csv",
    "Bon_Referenzen",
    "3.2.5 Bon_Referenzen: references to other receipts or external documents "
    "(e.g. a cancellation points at its original)",
    _columns("""
BON_ID A40 Vorgangs-ID
POS_ZEILE A50 Zeilennummer des referenzierenden Vorgangs (nicht aus einem Bonkopf heraus)
REF_TYP A20 Art der Referenz
REF_NAME A40 Beschreibung bei Art ExterneSonstige
REF_DATUM A30 Datum des Kassenabschlusses
REF_Z_KASSE_ID A50 ID der (Abschluss-) Kasse
REF_Z_NR N Nr. des Kassenabschlusses
REF_BON_ID A40 Vorgangs-ID
"""),
    (
        *BON_KEY,
        "POS_ZEILE",
        "REF_TYP",
        "REF_NAME",
        "REF_DATUM",
        "REF_Z_KASSE_ID",
        "REF_Z_NR",
        "REF_BON_ID",
    ),
    (_fk_closing(), _fk(BON_KEY, "Bonkopf")),
)

#: All tables in the order of the official index.xml.
TABLES: tuple[Table, ...] = (
    CASHPOINTCLOSING,
    LOCATION,
    CASHREGISTER,
    SLAVES,
    PA,
    TSE,
    VAT,
    BUSINESSCASES,
    PAYMENT,
    CASH_PER_CURRENCY,
    TRANSACTIONS,
    DATAPAYMENT,
    LINES,
    ITEMAMOUNTS,
    SUBITEMS,
    TRANSACTIONS_TSE,
    TRANSACTIONS_VAT,
    LINES_VAT,
    ALLOCATION_GROUPS,
    REFERENCES,
)
TABLE_BY_FILE: dict[str, Table] = {t.file: t for t in TABLES}
TABLE_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}

CERTIFICATE_PIECE = 1000
_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X")


def certificate_column(n: int) -> str:
    """Name of the n-th (1-based) certificate piece column: TSE_ZERTIFIKAT_I, _II, ..."""
    return f"TSE_ZERTIFIKAT_{_ROMAN[n - 1]}"


def tse_table(pieces: int) -> Table:
    """tse.csv with ``pieces`` certificate columns (at least the official two).

    DSFinV-K 4.7: TSE_ZERTIFIKAT_I holds the first 1000 characters, _II the rest;
    a longer certificate gets further columns _III, _IV ... (and index.xml declares
    them), never a truncated value.
    """
    if pieces <= 2:
        return TSE
    if pieces > len(_ROMAN):
        raise ValueError("certificate too long for tse.csv")
    extra = tuple(
        Column(
            certificate_column(n),
            ColumnType.ALPHANUMERIC,
            CERTIFICATE_PIECE,
            0,
            "Ggf. Rest des base64-codierten Zertifikats der TSE",
        )
        for n in range(3, pieces + 1)
    )
    return replace(TSE, columns=TSE.columns + extra)


# --- value lists (DSFinV-K 2.4 Anhang C, D, E; Anlage 2) ------------------------------

#: Anhang C / 3.2.1 BON_TYP.
BON_TYP = (
    "Beleg",
    "AVTransfer",
    "AVBestellung",
    "AVTraining",
    "AVBelegstorno",
    "AVBelegabbruch",
    "AVSachbezug",
    "AVSonstige",
    "AVRechnung",
)
#: Anhang C GV_TYP (business case types).
GV_TYP = (
    "Umsatz",
    "Pfand",
    "PfandRueckzahlung",
    "Rabatt",
    "Aufschlag",
    "ZuschussEcht",
    "ZuschussUnecht",
    "TrinkgeldAG",
    "TrinkgeldAN",
    "EinzweckgutscheinKauf",
    "EinzweckgutscheinEinloesung",
    "MehrzweckgutscheinKauf",
    "MehrzweckgutscheinEinloesung",
    "Forderungsentstehung",
    "Forderungsaufloesung",
    "Anzahlungseinstellung",
    "Anzahlungsaufloesung",
    "Anfangsbestand",
    "Privatentnahme",
    "Privateinlage",
    "Geldtransit",
    "Lohnzahlung",
    "Einzahlung",
    "Auszahlung",
    "DifferenzSollIst",
)
#: Anhang D ZAHLART_TYP; every type but Bar (and Keine) is "Unbar" in processData.
ZAHLART_TYP = (
    "Bar",
    "Unbar",
    "Keine",
    "ECKarte",
    "Kreditkarte",
    "ElZahlungsdienstleister",
    "Guthabenkarte",
)
REF_TYP = ("ExterneRechnung", "ExternerLieferschein", "Transaktion", "ExterneSonstige")
#: 3.1.3 TYP of itemamounts.csv (English and German spellings are both allowed).
PREISFINDUNG_TYP = ("base_amount", "discount", "extra_amount", "Grundpreis", "Rabatt", "Zuschlag")
TSE_ZEITFORMAT = (
    "unixTime",
    "utcTime",
    "utcTimeWithSeconds",
    "generalizedTime",
    "generalizedTimeWithMilliseconds",
)
TSE_PD_ENCODING = ("UTF-8", "ASCII")
TSE_VORGANGSART = ("Kassenbeleg-V1", "Bestellung-V1", "SonstigerVorgang")

#: Columns that hold a boolean written 0/1 (Anhang G: "Boolean-Felder ... 0 oder 1").
BOOLEAN_COLUMNS: dict[str, frozenset[str]] = {
    "cashregister.csv": frozenset({"KEINE_UST_ZUORDNUNG"}),
    "transactions.csv": frozenset({"BON_STORNO"}),
    "lines.csv": frozenset({"INHAUS", "P_STORNO"}),
}
#: Columns holding an ISO 8601 time stamp with offset.
TIMESTAMP_COLUMNS = frozenset(
    {"Z_ERSTELLUNG", "BON_START", "BON_ENDE", "TSE_TA_START", "TSE_TA_ENDE"}
)
#: Columns holding an ISO 8601 date (YYYY-MM-DD).
DATE_COLUMNS = frozenset({"Z_BUCHUNGSTAG", "REF_DATUM"})
#: Value lists checked per (file, column).
VALUE_LISTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("transactions.csv", "BON_TYP"): BON_TYP,
    ("lines.csv", "GV_TYP"): GV_TYP,
    ("businesscases.csv", "GV_TYP"): GV_TYP,
    ("payment.csv", "ZAHLART_TYP"): ZAHLART_TYP,
    ("datapayment.csv", "ZAHLART_TYP"): ZAHLART_TYP,
    ("references.csv", "REF_TYP"): REF_TYP,
    ("itemamounts.csv", "TYP"): PREISFINDUNG_TYP,
    ("tse.csv", "TSE_ZEITFORMAT"): TSE_ZEITFORMAT,
    ("tse.csv", "TSE_PD_ENCODING"): TSE_PD_ENCODING,
    ("transactions_tse.csv", "TSE_TA_VORGANGSART"): TSE_VORGANGSART,
}


# --- VAT keys (DSFinV-K 2.4 Anlage 2, UST_SCHLUESSEL) ---------------------------------


@dataclass(frozen=True, slots=True)
class VatPeriod:
    """The rate of a VAT key from ``valid_from`` (inclusive) to ``valid_to`` (inclusive)."""

    key: int
    rate: Decimal
    valid_from: date
    valid_to: date


_FAR = date(9999, 12, 31)
_EARLY = date(1900, 1, 1)
_CUT_2020 = (date(2020, 7, 1), date(2020, 12, 31))

#: Keys 1-8 carry "the rate in force when the business case was recorded"; the
#: periods are the German rates (UStG §12, §24; 2020's §28 Abs. 1-3 temporary cut).
VAT_PERIODS: tuple[VatPeriod, ...] = (
    VatPeriod(1, Decimal("19.00"), _EARLY, date(2020, 6, 30)),
    VatPeriod(1, Decimal("16.00"), *_CUT_2020),
    VatPeriod(1, Decimal("19.00"), date(2021, 1, 1), _FAR),
    VatPeriod(2, Decimal("7.00"), _EARLY, date(2020, 6, 30)),
    VatPeriod(2, Decimal("5.00"), *_CUT_2020),
    VatPeriod(2, Decimal("7.00"), date(2021, 1, 1), _FAR),
    # §24 Abs. 1 Nr. 3 UStG (average rate for farmers' other sales): 9.5 % for 2022,
    # 9 % from 2023, 8.4 % from 2024-12-06 (Jahressteuergesetz 2024, the day after its
    # promulgation) and 7.8 % from 2025-01-01; the historic keys 33/43 below start on
    # the same days
    VatPeriod(3, Decimal("10.70"), _EARLY, date(2021, 12, 31)),
    VatPeriod(3, Decimal("9.50"), date(2022, 1, 1), date(2022, 12, 31)),
    VatPeriod(3, Decimal("9.00"), date(2023, 1, 1), date(2024, 12, 5)),
    VatPeriod(3, Decimal("8.40"), date(2024, 12, 6), date(2024, 12, 31)),
    VatPeriod(3, Decimal("7.80"), date(2025, 1, 1), _FAR),
    VatPeriod(4, Decimal("5.50"), _EARLY, _FAR),
    VatPeriod(5, Decimal("0.00"), _EARLY, _FAR),
    VatPeriod(6, Decimal("0.00"), _EARLY, _FAR),
    VatPeriod(7, Decimal("0.00"), _EARLY, _FAR),
    VatPeriod(8, Decimal("0.00"), date(2023, 1, 1), _FAR),
    # Historic keys (Anlage 2): fixed rates for corrections of earlier sales,
    # usable from the day the rate stopped being the current one.
    VatPeriod(11, Decimal("19.00"), date(2020, 7, 1), _FAR),
    VatPeriod(12, Decimal("7.00"), date(2020, 7, 1), _FAR),
    VatPeriod(13, Decimal("10.70"), date(2022, 1, 1), _FAR),
    VatPeriod(21, Decimal("16.00"), date(2021, 1, 1), _FAR),
    VatPeriod(22, Decimal("5.00"), date(2021, 1, 1), _FAR),
    VatPeriod(23, Decimal("9.50"), date(2023, 1, 1), _FAR),
    VatPeriod(33, Decimal("9.00"), date(2024, 12, 6), _FAR),
    VatPeriod(43, Decimal("8.40"), date(2025, 1, 1), _FAR),
)
#: Individual keys (Anlage 2): 1000 and above, rate is the register's own.
FIRST_INDIVIDUAL_VAT_KEY = 1000

VAT_DESCRIPTIONS: dict[int, str] = {
    1: "Allgemeiner Steuersatz (§ 12 Abs. 1 UStG)",
    2: "Ermäßigter Steuersatz (§ 12 Abs. 2 UStG)",
    3: "Durchschnittssatz (§ 24 Abs. 1 Nr. 3 UStG) übrige Fälle",
    4: "Durchschnittssatz (§ 24 Abs. 1 Nr. 1 UStG)",
    5: "Nicht Steuerbar",
    6: "Umsatzsteuerfrei",
    7: "UmsatzsteuerNichtErmittelbar",
    8: "Ermäßigter Steuersatz (§ 12 Abs. 3 UStG)",
}


def vat_rate(key: int, on: date) -> Decimal | None:
    """The rate of a defined VAT key on a day; None if the key is not valid then
    (or is an individual key >= 1000, whose rate only the register knows)."""
    for period in VAT_PERIODS:
        if period.key == key and period.valid_from <= on <= period.valid_to:
            return period.rate
    return None


def vat_slot(key: int) -> int | None:
    """processData slot (1-5) of a VAT key: 1-4 as they are, 5-8 in slot 5; a
    historic two-digit key counts as its last digit (DSFinV-K 2.4, Anlage 2);
    None for individual and unknown keys."""
    base = key % 10 if 10 <= key <= 99 else key
    if 1 <= base <= 8:
        return min(base, 5)
    return None


# --- mandatory fields (DSFinV-K 2.4 Anhang G, "Pflichtfeld") --------------------------

#: Columns that must not be empty (besides the closing key, which is always needed).
#: TSE transaction fields are mandatory unless TSE_TA_FEHLER reports a failure.
MANDATORY_COLUMNS: dict[str, frozenset[str]] = {
    "cashpointclosing.csv": frozenset(
        [
            "TAXONOMIE_VERSION",
            "Z_START_ID",
            "Z_ENDE_ID",
            "NAME",
            "STRASSE",
            "PLZ",
            "ORT",
            "LAND",
            "Z_SE_ZAHLUNGEN",
            "Z_SE_BARZAHLUNGEN",
        ]
    ),
    "location.csv": frozenset(["LOC_NAME", "LOC_STRASSE", "LOC_PLZ", "LOC_ORT", "LOC_LAND"]),
    "cashregister.csv": frozenset({"KASSE_SERIENNR", "KASSE_BASISWAEH_CODE"}),
    "slaves.csv": frozenset({"TERMINAL_ID", "TERMINAL_SERIENNR"}),
    "pa.csv": frozenset(
        [
            "AGENTUR_ID",
            "AGENTUR_NAME",
            "AGENTUR_STRASSE",
            "AGENTUR_PLZ",
            "AGENTUR_ORT",
            "AGENTUR_LAND",
        ]
    ),
    "tse.csv": frozenset(
        [
            "TSE_ID",
            "TSE_SERIAL",
            "TSE_SIG_ALGO",
            "TSE_ZEITFORMAT",
            "TSE_PD_ENCODING",
            "TSE_PUBLIC_KEY",
            "TSE_ZERTIFIKAT_I",
        ]
    ),
    "vat.csv": frozenset({"UST_SCHLUESSEL", "UST_SATZ", "UST_BESCHR"}),
    "businesscases.csv": frozenset(
        {"GV_TYP", "UST_SCHLUESSEL", "Z_UMS_BRUTTO", "Z_UMS_NETTO", "Z_UST"}
    ),
    "payment.csv": frozenset({"ZAHLART_TYP", "Z_ZAHLART_BETRAG"}),
    "cash_per_currency.csv": frozenset({"ZAHLART_WAEH", "ZAHLART_BETRAG_WAEH"}),
    "transactions.csv": frozenset(
        ["BON_ID", "BON_NR", "BON_TYP", "BON_START", "BON_ENDE", "BEDIENER_ID", "UMS_BRUTTO"]
    ),
    "datapayment.csv": frozenset({"BON_ID", "ZAHLART_TYP", "ZAHLWAEH_CODE", "BASISWAEH_BETRAG"}),
    "lines.csv": frozenset({"BON_ID", "POS_ZEILE", "ARTIKELTEXT", "GV_TYP"}),
    "itemamounts.csv": frozenset({"BON_ID", "POS_ZEILE", "UST_SCHLUESSEL"}),
    "subitems.csv": frozenset(
        {"BON_ID", "POS_ZEILE", "ZI_ART_NR", "ZI_MENGE", "ZI_UST_SCHLUESSEL"}
    ),
    "transactions_tse.csv": frozenset({"BON_ID", "TSE_ID", "TSE_TA_VORGANGSART"}),
    "transactions_vat.csv": frozenset(
        {"BON_ID", "UST_SCHLUESSEL", "BON_BRUTTO", "BON_NETTO", "BON_UST"}
    ),
    "lines_vat.csv": frozenset({"BON_ID", "POS_ZEILE", "UST_SCHLUESSEL"}),
    "allocation_groups.csv": frozenset({"BON_ID"}),
    "references.csv": frozenset({"BON_ID", "REF_TYP", "REF_BON_ID"}),
}
#: transactions_tse.csv columns needed unless TSE_TA_FEHLER is filled.
TSE_TRANSACTION_COLUMNS = frozenset(
    ["TSE_TANR", "TSE_TA_START", "TSE_TA_ENDE", "TSE_TA_SIGZ", "TSE_TA_SIG"]
)
#: At least one of each group must be filled (Anhang G: Steuernummer or USt-IdNr.).
ONE_OF_COLUMNS: dict[str, tuple[str, str]] = {
    "cashpointclosing.csv": ("STNR", "USTID"),
    "pa.csv": ("AGENTUR_STNR", "AGENTUR_USTID"),
}
