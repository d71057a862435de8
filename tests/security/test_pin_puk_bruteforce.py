"""PIN and PUK brute force against a real server: the block comes, and every attempt
that was checked is a signed system log in the export (TR-03151: authenticateUser and
unblockUser log success and failure alike)."""

from __future__ import annotations

from pathlib import Path

from live_server import PIN, LiveServer, download_export, new_tss, ok

from opentse.formats.tar import iter_members, parse_log_filename
from opentse.tr03151 import sysdata
from opentse.tr03151.codec import decode_log_message
from opentse.tr03151.logmessage import SystemLogData
from opentse.verify.report import verify_exports

WRONG_PINS = [f"Wrong-{i}-pin" for i in range(8)]
WRONG_PUKS = [f"Wrong-{i}-puk-xyz" for i in range(14)]


def _system_logs(path: Path, operation: str) -> list[list[sysdata.SysField]]:
    out = []
    for member in iter_members(path):
        if parse_log_filename(member.name) is None:
            continue
        msg = decode_log_message(member.data)
        certified = msg.certified
        if isinstance(certified, SystemLogData) and certified.operation_type == operation:
            out.append(sysdata.parse_system_operation_data(certified.system_operation_data))
    return out


def test_pin_then_puk_brute_force_blocks_and_every_attempt_is_logged(
    live: LiveServer, tmp_path: Path
) -> None:
    live.secrets.update(WRONG_PINS + WRONG_PUKS)
    token = live.token(live.new_key("brute"))
    with live.client(token) as c:
        tss, puk = new_tss(c, live)
        ok(c.post(f"/tss/{tss}/admin/logout", json={}))

        statuses = []
        for guess in WRONG_PINS:
            r = c.post(f"/tss/{tss}/admin/auth", json={"admin_pin": guess})
            statuses.append((r.status_code, r.json()["code"]))
            if r.status_code == 423:
                break
        # five wrong PINs (rules.PIN_RETRIES): four 401s, then the block
        assert statuses[:4] == [(401, "E_UNAUTHORIZED")] * 4, statuses
        assert statuses[4] == (423, "E_ADMIN_PIN_BLOCKED"), statuses
        # blocked means blocked: the right PIN is refused as well
        r = c.post(f"/tss/{tss}/admin/auth", json={"admin_pin": PIN})
        assert (r.status_code, r.json()["code"]) == (423, "E_ADMIN_PIN_BLOCKED")

        puk_statuses = []
        for guess in WRONG_PUKS:
            r = c.patch(f"/tss/{tss}/admin", json={"admin_puk": guess, "new_admin_pin": PIN})
            puk_statuses.append((r.status_code, r.json()["code"]))
            if r.status_code == 423:
                break
        assert len(puk_statuses) == 10, puk_statuses  # rules.PUK_RETRIES
        assert all(s == 400 for s, _ in puk_statuses[:9]), puk_statuses
        assert puk_statuses[9][0] == 423 and puk_statuses[9][1].endswith("_BLOCKED")
        # after the PUK block even the right PUK does not unblock
        r = c.patch(f"/tss/{tss}/admin", json={"admin_puk": puk, "new_admin_pin": PIN})
        assert r.status_code == 423, r.text
        r = c.post(f"/tss/{tss}/admin/auth", json={"admin_pin": PIN})
        assert r.status_code == 423, r.text

        path = download_export(c, tss, tmp_path / "brute.tar")

    report = verify_exports([path])
    assert report.ok, [f.to_json() for f in report.findings]
    auth = _system_logs(path, "authenticateUser")
    results = [sysdata.decode_bool(sysdata.field(f, 0x83) or b"") for f in auth]
    # one successful login during set-up, the five checked wrong PINs, then the two
    # attempts the block refused (the right PIN both times): TR-03151 logs every
    # authentication attempt, also one that cannot succeed
    assert results == [True] + [False] * 7, results
    unblock = _system_logs(path, "unblockUser")
    outcomes = [sysdata.decode_enum(sysdata.field(f, 0x82) or b"") for f in unblock]
    ok_, failed = sysdata.UNBLOCK_RESULTS["ok"], sysdata.UNBLOCK_RESULTS["failed"]
    # set-up, ten wrong PUKs, and the right PUK refused by the PUK block
    assert outcomes == [ok_] + [failed] * 11, outcomes
