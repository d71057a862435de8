"""The cross-check's matcher (verify.crosscheck.cross_check) on records built here:
errors are exactly the symmetric difference of the two sides (the TAR holding some
transaction of the TSE: otherwise its Bons are not compared, a warning), and transactions out
of scope (another client, another TSE, outside the window) are never findings."""

from __future__ import annotations

import hashlib
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.verify import crosscheck as xc
from opentse.verify.crosscheck_numbers import LISTED
from opentse.verify.crosscheck_numbers import NOT_IN_TAR as NUMBER_NOT_IN_TAR
from opentse.verify.crosscheck_numbers import OUTSIDE_TAR as NUMBER_OUTSIDE_TAR

SERIAL = "ab" * 32
OTHER_SERIAL = "cd" * 32
CLIENT = "KASSE-1"
FIRST, LAST = 1_700_000_000, 1_700_050_000


def _tx(
    number: int, *, client: str = CLIENT, serial: str = SERIAL, at: int = 0
) -> xc.TseTransaction:
    start = at or FIRST + 10 * number
    return xc.TseTransaction(
        serial,
        number,
        client,
        start=start,
        end=start + 3,
        counter=2 * number,
        signature=hashlib.sha256(b"sig%d" % number).digest() * 2,
        process_type="Kassenbeleg-V1",
        process_hash=hashlib.sha256(b"Beleg^%d" % number).digest(),
        first_time=start,
    )


def _bon(number: int) -> xc.BonTse:
    tx = _tx(number)
    return xc.BonTse(
        bon_id=f"B{number}",
        line=number + 1,
        serial=SERIAL,
        number=number,
        clients=(CLIENT,),
        start=tx.start,
        end=tx.end,
        counter=tx.counter,
        signature=tx.signature,
        process_type=tx.process_type,
        process_hash=tx.process_hash,
    )


def _expand(ranges: list[str]) -> set[int]:
    assert len(ranges) <= LISTED + 1
    out: set[int] = set()
    for text in ranges:
        if text.startswith("and "):  # more ranges than listed: the first ones
            return out
        first, _, last = text.partition("..")
        out |= set(range(int(first), int(last or first) + 1))
    return out


def _side(bons: list[xc.BonTse]) -> xc.DsfinvkSide:
    return xc.DsfinvkSide(bons=bons, clients={CLIENT}, serials={SERIAL}, first=FIRST, last=LAST)


_NUMBERS = st.sets(st.integers(1, 2000), max_size=40)


@settings(max_examples=150, deadline=None)
@given(tar=_NUMBERS.filter(bool), bons=_NUMBERS, noise=_NUMBERS)
def test_findings_are_the_symmetric_difference(
    tar: set[int], bons: set[int], noise: set[int]
) -> None:
    transactions = [_tx(n) for n in tar]
    # out of scope: another register, another TSE, before the window, after it
    for n in noise:
        kind = n % 4
        if kind == 0:
            transactions.append(_tx(n + 10_000, client="KASSE-2"))
        elif kind == 1:
            transactions.append(_tx(n, serial=OTHER_SERIAL))
        elif kind == 2:
            transactions.append(_tx(n + 10_000, at=FIRST - 1 - n))
        else:
            transactions.append(_tx(n + 10_000, at=LAST + 1 + n))
    result = xc.cross_check(transactions, _side([_bon(n) for n in sorted(bons)]))
    got: set[tuple[str, int]] = set()
    errors = [f for f in result.findings if f.severity == "error"]
    # the warnings possible: Bons later than every transaction of the TAR, and
    # numbers between Bons that neither a Bon nor the TAR has (failed starts?); info:
    # such numbers outside the TAR's own range of the TSE (it cannot hold them)
    warnings = [f for f in result.findings if f not in errors]
    assert {f.code for f in warnings} <= {xc.TAR_SHORT, NUMBER_NOT_IN_TAR, NUMBER_OUTSIDE_TAR}
    absent = set(range(min(bons), max(bons) + 1)) - bons - tar if bons else set()
    held = [t.number for t in transactions if t.serial == SERIAL]
    inside = {n for n in absent if min(held) <= n <= max(held)}
    for code, numbers in ((NUMBER_NOT_IN_TAR, inside), (NUMBER_OUTSIDE_TAR, absent - inside)):
        listed = [f for f in warnings if f.code == code]
        assert len(listed) == (1 if numbers else 0), listed
    shown = result.summary["numbers_without_bon"]
    assert isinstance(shown, dict)
    if bons & tar:
        (groups,) = shown.values()
        assert groups["other_clients"] == {}  # noise: another register, numbers > 10000
        for key, numbers in (("not_in_tar", inside), ("outside_tar", absent - inside)):
            first = _expand(groups[key])
            assert first == {n for n in numbers if n <= max(first or {0})}, key
    for f in errors:
        if f.code == xc.NOT_IN_DSFINVK:
            match = re.match(r"TSE transaction (\d+) ", f.message)
            assert match is not None
            got.add((f.code, int(match.group(1))))
        else:
            assert f.code == xc.NOT_IN_TAR, f
            got.add((f.code, int(f.message.split(":")[0].removeprefix("B"))))
    assert len(got) == len(errors)
    expected = {(xc.NOT_IN_DSFINVK, n) for n in tar - bons}
    expected |= {(xc.NOT_IN_TAR, n) for n in bons - tar}
    assert got == expected
    assert result.summary["tar_transactions_in_scope"] == len(tar)
    assert result.summary["bons_matched"] == len(tar & bons)


def test_a_bon_of_a_tse_the_tar_does_not_hold_is_a_warning_not_a_miss() -> None:
    bon = _bon(1)
    other = xc.BonTse(**{**{s: getattr(bon, s) for s in bon.__slots__}, "serial": OTHER_SERIAL})
    result = xc.cross_check([_tx(2)], _side([_bon(2), other]))
    assert [(f.code, f.severity) for f in result.findings] == [(xc.TSE_ABSENT, "warning")]
    assert result.ok


def test_an_open_transaction_without_a_bon_is_a_warning() -> None:
    open_tx = _tx(3)
    open_tx.end = open_tx.counter = open_tx.signature = open_tx.process_hash = None
    result = xc.cross_check([open_tx], _side([]))
    assert [f.code for f in result.findings] == [xc.OPEN]
    assert result.ok


def test_a_tar_ending_before_the_last_bon_says_so() -> None:
    result = xc.cross_check([_tx(1)], _side([_bon(1), _bon(2)]))
    assert [f.code for f in result.findings] == [xc.NOT_IN_TAR, xc.TAR_SHORT]
    assert "cannot be found in it" in result.findings[1].message
    assert "the the" not in result.findings[1].message
    # the error says what the TAR holds, and that it ends before the Bon
    assert "which holds transactions 1 of this TSE: the TAR ends before it" in (
        result.findings[0].message
    )


def test_a_bon_inside_the_tars_numbers_is_missing_from_it() -> None:
    result = xc.cross_check([_tx(1), _tx(3)], _side([_bon(1), _bon(2), _bon(3)]))
    (missing,) = [f for f in result.findings if f.code == xc.NOT_IN_TAR]
    assert (
        "transaction 2 is not in TAR, which holds transactions 1..3 of this TSE but none "
        "of 2: their logs are missing from the TAR (logs removed, or the TAR exported for "
        "some client ids only" in missing.message
    ), missing.message


def test_a_bon_whose_transaction_is_another_client() -> None:
    tx = _tx(5, client="KASSE-9")
    result = xc.cross_check([tx], _side([_bon(5)]))
    assert [f.code for f in result.findings] == [xc.CLIENT]


def test_a_transaction_finished_after_the_last_closing_is_the_next_closings() -> None:
    """Found in review: a transaction started before the last closing and finished
    after it (a Bon still open at the Z-Bon) was expected in this export and reported
    as E_XC_TSE_NOT_IN_DSFINVK; its Bon is in the next closing's export."""
    spanning = _tx(7, at=LAST - 2)
    assert spanning.end is not None and spanning.end > LAST
    result = xc.cross_check([_tx(1), spanning], _side([_bon(1)]))
    assert result.findings == []
    assert result.summary["tar_transactions_in_scope"] == 1
    assert result.summary["tar_transactions_out_of_scope"] == 1


def test_an_open_transaction_started_before_the_last_closing_is_still_in_scope() -> None:
    open_tx = _tx(8, at=LAST - 2)
    open_tx.end = open_tx.counter = open_tx.signature = open_tx.process_hash = None
    result = xc.cross_check([open_tx], _side([]))
    assert [f.code for f in result.findings] == [xc.OPEN]


def test_a_client_id_other_than_the_registers_serial_stays_in_scope() -> None:
    """Found in review: when the TSE client id is not KASSE_SERIENNR (the register
    writes its own serial, the TSE knows a UUID), every Bon says E_XC_CLIENT_DIFFERS
    but the client's transactions without a Bon were out of scope: a deleted Bon went
    unreported. The client ids of the transactions Bons point to are in scope too."""
    uuid = "13ec4716-1783-4945-964d-a3069af6abcd"
    transactions = [_tx(n, client=uuid) for n in (1, 2, 3)]
    transactions.append(_tx(9, client="another-register"))
    result = xc.cross_check(transactions, _side([_bon(1), _bon(3)]))
    codes = sorted((f.code, f.line or 0) for f in result.findings)
    assert codes == [(xc.CLIENT, 2), (xc.CLIENT, 4), (xc.NOT_IN_DSFINVK, 0)]
    missing = next(f for f in result.findings if f.code == xc.NOT_IN_DSFINVK)
    assert missing.message.startswith("TSE transaction 2 ")
    assert result.summary["clients"] == sorted([CLIENT, uuid])
    assert result.summary["tar_transactions_in_scope"] == 3


def test_each_register_has_its_own_window() -> None:
    """Found in review: with several registers the window ended at the last closing
    of any of them, so register 1's transactions after its own Z-Bon (its next
    closing's, while register 2 closed later) were E_XC_TSE_NOT_IN_DSFINVK."""
    side = _side([_bon(1)])
    side.clients = {CLIENT, "KASSE-2"}
    side.windows = {CLIENT: (FIRST, FIRST + 1000), "KASSE-2": (FIRST, LAST)}
    after_own_closing = _tx(200, at=FIRST + 2000)
    before_it = _tx(50)
    other_register = _tx(300, client="KASSE-2", at=FIRST + 2000)
    result = xc.cross_check([_tx(1), after_own_closing, before_it, other_register], side)
    missing = sorted(f.message.split()[2] for f in result.findings)
    assert [f.code for f in result.findings] == [xc.NOT_IN_DSFINVK] * 2
    assert missing == ["300", "50"]
    assert result.summary["tar_transactions_out_of_scope"] == 1


def test_a_client_named_only_by_bons_takes_their_registers_window() -> None:
    uuid = "db7b4694-4be9-471e-9373-de4ce44f43e7"
    side = _side([_bon(1)])
    side.windows = {CLIENT: (FIRST, FIRST + 1000)}
    result = xc.cross_check([_tx(1, client=uuid), _tx(200, client=uuid, at=FIRST + 2000)], side)
    assert [f.code for f in result.findings] == [xc.CLIENT]


def test_a_transaction_in_the_closings_second_after_the_last_bon_says_so() -> None:
    """Whole seconds: a transaction finished in the second of the last closing
    (window end) after the client's last Bon may be the next closing's first Bon or
    one signed for the closing and left out: still an error, whose message says
    which; one before the last Bon, or a second earlier, is a Bon left out."""
    after_last = _tx(6, at=LAST - 3)  # ends at LAST, number above the Bons' 5
    before_last = _tx(4, at=LAST - 3)  # ends at LAST, but the TSE gave Bon 5 a later number
    a_second_earlier = _tx(7, at=LAST - 4)  # ends at LAST - 1
    transactions = [_tx(1), _tx(5), after_last, before_last, a_second_earlier]
    result = xc.cross_check(transactions, _side([_bon(1), _bon(5)]))
    # (numbers 2 and 3, between the Bons and not in the TAR, are W_XC_TANR_NOT_IN_TAR)
    errors = {f.message.split()[2]: f for f in result.findings if f.code == xc.NOT_IN_DSFINVK}
    assert sorted(errors) == ["4", "6", "7"], result.findings
    said = "in the same second as the client's last closing in the export"
    assert [n for n, f in sorted(errors.items()) if said in f.message] == ["6"]
    assert "signature counter 12)" in errors["6"].message
