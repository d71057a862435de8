"""Write a DSFinV-K export (folder or ZIP): index.xml, gdpdu-01-09-2004.dtd and all 20
CSV files, one row set per closing, empty tables with their header.

The rows come from model.Closing; every table streams (one closing at a time), so a
year of receipts never sits in memory as text. The DTD is shipped byte for byte from
the package (DSFinV-K 2.4, 1.3: the export contains index.xml and the DTD it names).
"""

from __future__ import annotations

import base64
import math
import shutil
import zipfile
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import IO

from opentse.errors import FormatError
from opentse.formats.dsfinvk import tables as T
from opentse.formats.dsfinvk.csvwriter import CsvWriter, Value
from opentse.formats.dsfinvk.indexxml import DTD_NAME, INDEX_NAME, DataSupplier, build_index_xml
from opentse.formats.dsfinvk.model import (
    REGISTER_BRAND,
    REGISTER_MODEL,
    ZERO,
    Closing,
    closing_totals,
    validate_closing,
)
from opentse.formats.dsfinvk.tables import VAT_DESCRIPTIONS, Table, certificate_column

Row = dict[str, Value]
_VORGANGSDATEN_MAX = 1000
RowSource = Callable[[Closing], Iterator[Row]]


def gdpdu_dtd() -> bytes:
    """The GDPdU DTD every export ships (gdpdu-01-09-2004.dtd)."""
    return resources.files("opentse.formats.dsfinvk").joinpath(DTD_NAME).read_bytes()


def _key(c: Closing) -> Row:
    return {"Z_KASSE_ID": c.z_kasse_id, "Z_ERSTELLUNG": c.created, "Z_NR": c.z_nr}


def _cashpointclosing(c: Closing) -> Iterator[Row]:
    totals = closing_totals(c)
    co = c.company
    yield {
        **_key(c),
        "Z_BUCHUNGSTAG": c.business_day,
        "TAXONOMIE_VERSION": c.taxonomy_version,
        "Z_START_ID": c.receipts[0].bon_id if c.receipts else "",
        "Z_ENDE_ID": c.receipts[-1].bon_id if c.receipts else "",
        "NAME": co.name,
        "STRASSE": co.street,
        "PLZ": co.postal_code,
        "ORT": co.city,
        "LAND": co.country,
        "STNR": co.tax_number,
        "USTID": co.vat_id,
        "Z_SE_ZAHLUNGEN": totals.all_payments,
        "Z_SE_BARZAHLUNGEN": totals.cash_payments,
    }


def _location(c: Closing) -> Iterator[Row]:
    loc = c.location
    yield {
        **_key(c),
        "LOC_NAME": loc.name,
        "LOC_STRASSE": loc.street,
        "LOC_PLZ": loc.postal_code,
        "LOC_ORT": loc.city,
        "LOC_LAND": loc.country,
        "LOC_USTID": loc.vat_id,
    }


def _cashregister(c: Closing) -> Iterator[Row]:
    """Stamm_Kassen. Books closed before the register named itself keep an empty
    brand and model: the register that wrote them was opentse's."""
    r = c.register
    yield {
        **_key(c),
        "KASSE_BRAND": r.brand or REGISTER_BRAND,
        "KASSE_MODELL": r.model or REGISTER_MODEL,
        "KASSE_SERIENNR": r.serial_number,
        "KASSE_SW_BRAND": r.software_brand,
        "KASSE_SW_VERSION": r.software_version,
        "KASSE_BASISWAEH_CODE": r.base_currency,
        "KEINE_UST_ZUORDNUNG": r.no_vat_assignment,
    }


def _slaves(c: Closing) -> Iterator[Row]:
    for t in c.terminals:
        yield {
            **_key(c),
            "TERMINAL_ID": t.terminal_id,
            "TERMINAL_BRAND": t.brand,
            "TERMINAL_MODELL": t.model,
            "TERMINAL_SERIENNR": t.serial_number,
            "TERMINAL_SW_BRAND": t.software_brand,
            "TERMINAL_SW_VERSION": t.software_version,
        }


def _pa(c: Closing) -> Iterator[Row]:
    for a in c.agencies:
        yield {
            **_key(c),
            "AGENTUR_ID": a.agency_id,
            "AGENTUR_NAME": a.name,
            "AGENTUR_STRASSE": a.street,
            "AGENTUR_PLZ": a.postal_code,
            "AGENTUR_ORT": a.city,
            "AGENTUR_LAND": a.country,
            "AGENTUR_STNR": a.tax_number,
            "AGENTUR_USTID": a.vat_id,
        }


def certificate_pieces(certificate: bytes) -> list[str]:
    """The base64 certificate in 1000-character pieces (DSFinV-K 4.7), at least two."""
    text = base64.b64encode(certificate).decode("ascii")
    size = T.CERTIFICATE_PIECE
    pieces = [text[i : i + size] for i in range(0, len(text), size)]
    return pieces + [""] * (2 - len(pieces)) if len(pieces) < 2 else pieces


def _tse(c: Closing) -> Iterator[Row]:
    for t in c.tses:
        row: Row = {
            **_key(c),
            "TSE_ID": t.tse_id,
            "TSE_SERIAL": t.serial_hex,
            "TSE_SIG_ALGO": t.signature_algorithm,
            "TSE_ZEITFORMAT": t.time_format,
            "TSE_PD_ENCODING": t.pd_encoding,
            "TSE_PUBLIC_KEY": base64.b64encode(t.public_key).decode("ascii"),
        }
        for n, piece in enumerate(certificate_pieces(t.certificate), start=1):
            row[certificate_column(n)] = piece
        yield row


def _vat(c: Closing) -> Iterator[Row]:
    for v in sorted(c.vat_rates, key=lambda v: v.key):
        yield {
            **_key(c),
            "UST_SCHLUESSEL": v.key,
            "UST_SATZ": v.rate,
            "UST_BESCHR": v.description
            or VAT_DESCRIPTIONS.get(v.key % 10 if 10 <= v.key <= 99 else v.key, ""),
        }


def _businesscases(c: Closing) -> Iterator[Row]:
    for b in closing_totals(c).business_cases:
        yield {
            **_key(c),
            "GV_TYP": b.gv_typ,
            "GV_NAME": b.gv_name,
            "AGENTUR_ID": b.agency_id,
            "UST_SCHLUESSEL": b.key,
            "Z_UMS_BRUTTO": b.gross,
            "Z_UMS_NETTO": b.net,
            "Z_UST": b.vat,
        }


def _payment(c: Closing) -> Iterator[Row]:
    for typ, name, amount in closing_totals(c).payments:
        yield {**_key(c), "ZAHLART_TYP": typ, "ZAHLART_NAME": name, "Z_ZAHLART_BETRAG": amount}


def _cash_per_currency(c: Closing) -> Iterator[Row]:
    for currency, amount in closing_totals(c).cash_per_currency:
        yield {**_key(c), "ZAHLART_WAEH": currency, "ZAHLART_BETRAG_WAEH": amount}


def _transactions(c: Closing) -> Iterator[Row]:
    for r in c.receipts:
        cu = r.customer
        yield {
            **_key(c),
            "BON_ID": r.bon_id,
            "BON_NR": r.bon_nr,
            "BON_TYP": r.bon_typ,
            "BON_NAME": r.bon_name,
            "TERMINAL_ID": r.terminal_id,
            "BON_STORNO": r.storno,
            "BON_START": r.start,
            "BON_ENDE": r.end,
            "BEDIENER_ID": r.operator_id,
            "BEDIENER_NAME": r.operator_name,
            "UMS_BRUTTO": r.total,
            "KUNDE_NAME": cu.name,
            "KUNDE_ID": cu.customer_id,
            "KUNDE_TYP": cu.customer_type,
            "KUNDE_STRASSE": cu.street,
            "KUNDE_PLZ": cu.postal_code,
            "KUNDE_ORT": cu.city,
            "KUNDE_LAND": cu.country,
            "KUNDE_USTID": cu.vat_id,
            "BON_NOTIZ": r.note,
        }


def _datapayment(c: Closing) -> Iterator[Row]:
    """One row per payment type, name and currency of a receipt (the table's key):
    several payments of the same kind are added up in first-seen order, as the
    processData payments are (DSFinV-K Anhang I: "entsprechend zu akkumulieren")."""
    for r in c.receipts:
        sums: dict[tuple[str, str, str], tuple[Decimal, Decimal | None]] = {}
        for p in r.payments:
            base, foreign = sums.get((p.type, p.name, p.currency), (ZERO, None))
            if p.foreign_amount is not None:
                foreign = (foreign or ZERO) + p.foreign_amount
            sums[(p.type, p.name, p.currency)] = (base + p.amount, foreign)
        for (typ, name, currency), (base, foreign) in sums.items():
            yield {
                **_key(c),
                "BON_ID": r.bon_id,
                "ZAHLART_TYP": typ,
                "ZAHLART_NAME": name,
                "ZAHLWAEH_CODE": currency,
                "ZAHLWAEH_BETRAG": foreign,
                "BASISWAEH_BETRAG": base,
            }


def _lines(c: Closing) -> Iterator[Row]:
    for r in c.receipts:
        for line in r.lines:
            yield {
                **_key(c),
                "BON_ID": r.bon_id,
                "POS_ZEILE": line.pos,
                "GUTSCHEIN_NR": line.voucher_nr,
                "ARTIKELTEXT": line.text,
                "POS_TERMINAL_ID": line.terminal_id,
                "GV_TYP": line.gv_typ,
                "GV_NAME": line.gv_name,
                "INHAUS": line.in_house,
                "P_STORNO": line.storno,
                "AGENTUR_ID": line.agency_id,
                "ART_NR": line.art_nr,
                "GTIN": line.gtin,
                "WARENGR_ID": line.product_group_id,
                "WARENGR": line.product_group,
                "MENGE": line.quantity,
                "FAKTOR": line.factor,
                "EINHEIT": line.unit,
                "STK_BR": line.unit_price,
            }


def _itemamounts(c: Closing) -> Iterator[Row]:
    for r in c.receipts:
        for line in r.lines:
            for a in line.item_amounts:
                yield {
                    **_key(c),
                    "BON_ID": r.bon_id,
                    "POS_ZEILE": line.pos,
                    "TYP": a.typ,
                    "UST_SCHLUESSEL": a.key,
                    "PF_BRUTTO": a.gross,
                    "PF_NETTO": a.net,
                    "PF_UST": a.vat,
                }


def _subitems(c: Closing) -> Iterator[Row]:
    for r in c.receipts:
        for line in r.lines:
            for s in line.sub_items:
                yield {
                    **_key(c),
                    "BON_ID": r.bon_id,
                    "POS_ZEILE": line.pos,
                    "ZI_ART_NR": s.art_nr,
                    "ZI_GTIN": s.gtin,
                    "ZI_NAME": s.name,
                    "ZI_WARENGR_ID": s.product_group_id,
                    "ZI_WARENGR": s.product_group,
                    "ZI_MENGE": s.quantity,
                    "ZI_FAKTOR": s.factor,
                    "ZI_EINHEIT": s.unit,
                    "ZI_UST_SCHLUESSEL": s.key,
                    "ZI_BASISPREIS_BRUTTO": s.base_gross,
                    "ZI_BASISPREIS_NETTO": s.base_net,
                    "ZI_BASISPREIS_UST": s.base_vat,
                }


def _transactions_tse(c: Closing) -> Iterator[Row]:
    for r in c.receipts:
        t = r.tse
        if t is None:
            continue
        yield {
            **_key(c),
            "BON_ID": r.bon_id,
            "TSE_ID": t.tse_id,
            "TSE_TANR": t.number,
            "TSE_TA_START": t.start,
            "TSE_TA_ENDE": t.end,
            "TSE_TA_VORGANGSART": t.process_type,
            "TSE_TA_SIGZ": t.signature_counter,
            "TSE_TA_SIG": base64.b64encode(t.signature).decode("ascii") if t.signature else "",
            "TSE_TA_FEHLER": t.error,
            # optional column of at most 1000 characters: a longer processData is left
            # out (Kassenbeleg-V1 and Bestellung-V1 are rebuilt from the rows anyway)
            "TSE_VORGANGSDATEN": t.process_data
            if len(t.process_data) <= _VORGANGSDATEN_MAX
            else "",
        }


def _transactions_vat(c: Closing) -> Iterator[Row]:
    for r in c.receipts:
        for v in r.vat_totals():
            yield {
                **_key(c),
                "BON_ID": r.bon_id,
                "UST_SCHLUESSEL": v.key,
                "BON_BRUTTO": v.gross,
                "BON_NETTO": v.net,
                "BON_UST": v.vat,
            }


def _lines_vat(c: Closing) -> Iterator[Row]:
    for r in c.receipts:
        for line in r.lines:
            for v in line.vat:
                yield {
                    **_key(c),
                    "BON_ID": r.bon_id,
                    "POS_ZEILE": line.pos,
                    "UST_SCHLUESSEL": v.key,
                    "POS_BRUTTO": v.gross,
                    "POS_NETTO": v.net,
                    "POS_UST": v.vat,
                }


def _allocation_groups(c: Closing) -> Iterator[Row]:
    for r in c.receipts:
        for group in r.allocation_groups:
            yield {**_key(c), "BON_ID": r.bon_id, "ABRECHNUNGSKREIS": group}


def _references(c: Closing) -> Iterator[Row]:
    for r in c.receipts:
        for ref in r.references:
            yield {
                **_key(c),
                "BON_ID": r.bon_id,
                "POS_ZEILE": ref.pos,
                "REF_TYP": ref.ref_type,
                "REF_NAME": ref.name,
                "REF_DATUM": ref.ref_date,
                "REF_Z_KASSE_ID": ref.ref_z_kasse_id,
                "REF_Z_NR": ref.ref_z_nr,
                "REF_BON_ID": ref.ref_bon_id,
            }


ROW_SOURCES: dict[str, RowSource] = {
    "cashpointclosing.csv": _cashpointclosing,
    "location.csv": _location,
    "cashregister.csv": _cashregister,
    "slaves.csv": _slaves,
    "pa.csv": _pa,
    "tse.csv": _tse,
    "vat.csv": _vat,
    "businesscases.csv": _businesscases,
    "payment.csv": _payment,
    "cash_per_currency.csv": _cash_per_currency,
    "transactions.csv": _transactions,
    "datapayment.csv": _datapayment,
    "lines.csv": _lines,
    "itemamounts.csv": _itemamounts,
    "subitems.csv": _subitems,
    "transactions_tse.csv": _transactions_tse,
    "transactions_vat.csv": _transactions_vat,
    "lines_vat.csv": _lines_vat,
    "allocation_groups.csv": _allocation_groups,
    "references.csv": _references,
}


def export_tables(closings: Sequence[Closing]) -> tuple[Table, ...]:
    """The 20 tables as this export declares them (tse.csv widened for long
    certificates)."""
    pieces = max(
        (
            math.ceil(len(base64.b64encode(t.certificate)) / T.CERTIFICATE_PIECE)
            for c in closings
            for t in c.tses
        ),
        default=2,
    )
    return tuple(T.tse_table(pieces) if t.file == "tse.csv" else t for t in T.TABLES)


def write_table(stream: IO[bytes], table: Table, closings: Sequence[Closing]) -> int:
    """Stream one CSV file; returns the number of data rows."""
    writer = CsvWriter(stream, table)
    source = ROW_SOURCES[table.file]
    for closing in closings:
        for row in source(closing):
            writer.write(row)
    return writer.rows


def _prepare(
    closings: Sequence[Closing], supplier: DataSupplier | None, keys: bool
) -> tuple[tuple[Table, ...], bytes]:
    if not closings:
        raise FormatError("nothing to export: no closing", code="E_DSFINVK_EMPTY")
    for closing in closings:
        validate_closing(closing)
    tables = export_tables(closings)
    if supplier is None:
        company = closings[0].company
        supplier = DataSupplier(company.name, company.city, "DSFinV-K 2.4 export by opentse")
    return tables, build_index_xml(tables, supplier, keys=keys)


def write_zip(
    closings: Sequence[Closing],
    stream: IO[bytes],
    *,
    supplier: DataSupplier | None = None,
    keys: bool = True,
) -> None:
    """Write the export as a ZIP into ``stream`` (a file, or a response body)."""
    tables, index = _prepare(closings, supplier, keys)
    with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(INDEX_NAME, index)
        archive.writestr(DTD_NAME, gdpdu_dtd())
        for table in tables:
            with archive.open(table.file, "w") as member:
                write_table(member, table, closings)


def write_export(
    closings: Sequence[Closing],
    out: Path,
    *,
    as_zip: bool | None = None,
    supplier: DataSupplier | None = None,
    keys: bool = True,
    replace: bool = False,
) -> Path:
    """Write the export to ``out``: a ZIP when ``as_zip`` (default: name ends in .zip,
    written to ``<out>.part`` and renamed; its folder is created), else a folder
    (created; must be empty). FormatError E_DSFINVK_MODEL / _LENGTH / _DECIMALS ... on
    input that cannot be exported as the spec demands, E_DSFINVK_TARGET when ``out``
    cannot be written (an existing ZIP or a folder that is not empty, a folder where
    the ZIP belongs, no permission); nothing is left behind then. ``replace``: an
    existing ZIP, or a folder holding an earlier export (only an export's files), is
    replaced once the new export is whole."""
    if as_zip is None:
        as_zip = out.suffix.lower() == ".zip"
    try:
        if as_zip:
            return _write_zip_file(closings, out, supplier, keys, replace)
        return _write_folder(closings, out, supplier, keys, replace)
    except OSError as exc:
        why = "a folder" if out.is_dir() and as_zip else (exc.strerror or str(exc))
        raise FormatError(f"cannot write {out}: {why}", code="E_DSFINVK_TARGET") from None


#: what ``replace`` may remove from a folder: the names an export of ours consists of
EXPORT_FILES = frozenset({INDEX_NAME, DTD_NAME, *(t.file for t in T.TABLES)})


def _write_zip_file(
    closings: Sequence[Closing],
    out: Path,
    supplier: DataSupplier | None,
    keys: bool,
    replace: bool,
) -> Path:
    if out.is_file() and not replace:  # an earlier export, maybe the only copy
        raise FormatError(
            f"{out} exists: choose another name, or --force to replace it",
            code="E_DSFINVK_TARGET",
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    try:
        with tmp.open("wb") as stream:
            write_zip(closings, stream, supplier=supplier, keys=keys)
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def _refuse_taken_folder(out: Path, replace: bool) -> None:
    """A folder that is not empty is refused; with ``replace`` only when it holds
    anything but an export's files (never delete what is not ours)."""
    names = sorted(p.name for p in out.iterdir())
    if not names:
        return
    if not replace:
        raise FormatError(
            f"{out} is not empty: choose a new folder, or --force to replace the export in it",
            code="E_DSFINVK_TARGET",
        )
    foreign = [n for n in names if n not in EXPORT_FILES]
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise FormatError(
            f"{out} holds files that are no DSFinV-K export's ({shown}): it is not"
            " replaced; choose a new folder",
            code="E_DSFINVK_TARGET",
        )


def _write_folder(
    closings: Sequence[Closing],
    out: Path,
    supplier: DataSupplier | None,
    keys: bool,
    replace: bool,
) -> Path:
    tables, index = _prepare(closings, supplier, keys)
    if out.is_dir():
        _refuse_taken_folder(out, replace)
        if any(out.iterdir()):  # an earlier export: written beside it, then swapped
            return _replace_folder(closings, out, tables, index)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    _write_files(closings, out, tables, index, remove=created)
    return out


def _write_files(
    closings: Sequence[Closing],
    out: Path,
    tables: tuple[Table, ...],
    index: bytes,
    *,
    remove: bool,
) -> None:
    written: list[Path] = []
    try:
        for name, data in ((INDEX_NAME, index), (DTD_NAME, gdpdu_dtd())):
            written.append(out / name)
            (out / name).write_bytes(data)
        for table in tables:  # a value the spec refuses may show only while writing
            written.append(out / table.file)
            with (out / table.file).open("wb") as stream:
                write_table(stream, table, closings)
    except BaseException:
        for path in written:  # no half export an auditor could take for a whole one
            path.unlink(missing_ok=True)
        if remove:
            out.rmdir()
        raise


def _replace_folder(
    closings: Sequence[Closing], out: Path, tables: tuple[Table, ...], index: bytes
) -> Path:
    """The new export whole in ``.<name>.part`` beside ``out`` first: a refused value
    leaves the earlier export as it was."""
    part = out.with_name(f".{out.name}.part")
    old = out.with_name(f".{out.name}.old")
    for leftover in (part, old):  # of a run killed while replacing
        if leftover.is_dir():
            shutil.rmtree(leftover)
    part.mkdir()
    _write_files(closings, part, tables, index, remove=True)
    out.rename(old)
    part.rename(out)
    shutil.rmtree(old)
    return out
