"""CLI: demo, tse, client and export commands through typer's CliRunner on a temp
data folder; --json output parsed, the export read back with stdlib tarfile."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from cli_support import APP, run
from typer.testing import CliRunner

from opentse.tr03151 import codec, sysdata
from opentse.tr03151.logmessage import SystemLogData


def run_json(*args: str) -> Any:
    return json.loads(run(*args, "--json").stdout)


def test_demo_creates_then_continues(tmp_path: Path) -> None:
    data = str(tmp_path / "d")
    tar_path = tmp_path / "demo.tar"
    first = run_json("demo", "--data", data, "--transactions", "5", "--export", str(tar_path))
    assert first["created"] and len(first["admin_puk"]) >= 10 and len(first["admin_pin"]) >= 6
    kinds = [r["kind"] for r in first["receipts"]]
    assert {"cash", "card", "update", "mixed", "cancelled"} == set(kinds)
    assert [r["number"] for r in first["receipts"]] == [1, 2, 3, 4, 5]
    assert first["receipts"][4]["process_data"].startswith("AVBelegabbruch^")
    assert first["qr_code_data"].startswith("V0;DEMO-KASSE-1;Kassenbeleg-V1;")
    with tarfile.open(tar_path) as tf:
        names = tf.getnames()
        logs = [tf.extractfile(n).read() for n in names if n.endswith(".log")]  # type: ignore[union-attr]
    assert "info.csv" in names and first["export"]["records"] == len(logs)
    counters = sorted(codec.decode_log_message(m).signature_counter for m in logs)
    assert counters == list(range(1, len(logs) + 1))
    second = run_json("demo", "--data", data, "--transactions", "2")
    assert not second["created"] and "admin_puk" not in second
    assert second["tse_id"] == first["tse_id"]
    assert [r["number"] for r in second["receipts"]] == [6, 7]


def test_tse_client_export_commands(tmp_path: Path) -> None:
    data = str(tmp_path / "d")
    created = run_json("tse", "create", "kasse-1", "--curve", "brainpoolP256r1", "--data", data)
    assert created["state"] == "CREATED" and created["curve"] == "brainpoolP256r1"
    puk = created["admin_puk"]
    listed = run_json("tse", "list", "--data", data)
    assert [t["id"] for t in listed] == ["kasse-1"]
    init = run_json("tse", "initialize", "kasse-1", "--pin", "246810", "--puk", puk, "--data", data)
    assert init["state"] == "INITIALIZED"
    reg = run_json(
        "client", "register", "POS 1", "--tss", "kasse-1", "--pin", "246810", "--data", data
    )
    assert reg["state"] == "REGISTERED"
    clients = run_json("client", "list", "--tss", "kasse-1", "--data", data)
    assert [c["client_id"] for c in clients] == ["POS 1"]
    shown = run_json("tse", "show", "kasse-1", "--data", data)
    assert shown["registered_clients"] == ["POS 1"] and shown["certificates"] == 3
    out = tmp_path / "x.tar"
    summary = run_json("export", str(out), "--tss", "kasse-1", "--from-sig", "2", "--data", data)
    assert summary["first_signature_counter"] == 2 and out.exists()
    assert summary["records"] == shown["signature_counter"] - 1
    # human output with progress bar works too
    assert "Export" in run("export", str(out), "--tss", "kasse-1", "--data", data).stdout
    dereg = run_json(
        "client", "deregister", "POS 1", "--tss", "kasse-1", "--pin", "246810", "--data", data
    )
    assert dereg["state"] == "DEREGISTERED"
    disabled = run_json("tse", "disable", "kasse-1", "--pin", "246810", "--data", data)
    assert disabled["state"] == "DISABLED"


def test_errors_are_one_red_line_and_exit_1(tmp_path: Path) -> None:
    data = str(tmp_path / "d")
    result = run("tse", "show", "missing", "--data", data, ok=False)
    assert result.exit_code == 1
    assert "error E_TSE_NOT_FOUND:" in result.stderr and "Traceback" not in result.output
    run("tse", "create", "t1", "--data", data)
    result = run(
        "export",
        str(tmp_path / "x.tar"),
        "--tss",
        "t1",
        "--tx",
        "1",
        "--from-date",
        "2024-01-01",
        "--data",
        data,
        ok=False,
    )
    assert result.exit_code == 1 and "E_PARAMETER_MISMATCH" in result.stderr
    assert not (tmp_path / "x.tar").exists()
    result = run("tse", "initialize", "t1", "--pin", "123456", "--data", data, ok=False)
    assert "error E_ADMIN_PIN_BLOCKED:" in result.stderr


def test_console_script_runs_demo(tmp_path: Path) -> None:
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "opentse"
    if not exe.exists():
        pytest.skip("console script not installed in this environment")
    proc = subprocess.run(
        [str(exe), "demo", "--data", str(tmp_path / "d"), "--transactions", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["receipts"][0]["number"] == 1
    bad = subprocess.run(
        [str(exe), "tse", "show", "nope", "--data", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 1 and bad.stderr.startswith("error E_TSE_NOT_FOUND:")
    assert "Traceback" not in bad.stderr


def test_timeadmin_pin_and_update_time(tmp_path: Path) -> None:
    """The timeadmin role from the CLI: its PIN set with its PUK, then updateTime
    signed as that role; both are system logs in the export."""
    data = str(tmp_path / "d")
    created = run_json("tse", "create", "k", "--data", data)
    run_json(
        "tse", "initialize", "k", "--pin", "246810", "--puk", created["admin_puk"], "--data", data
    )
    wrong = run("tse", "update-time", "k", "--pin", "135790", "--data", data, ok=False)
    assert wrong.exit_code != 0  # no timeadmin PIN yet: blocked until set with the PUK
    pin = run_json(
        "tse",
        "set-pin",
        "k",
        "--user",
        "timeadmin",
        "--puk",
        created["timeadmin_puk"],
        "--pin",
        "135790",
        "--data",
        data,
    )
    assert pin == {"tse_id": "k", "user": "timeadmin", "ok": True}
    bad = run("tse", "update-time", "k", "--pin", "000000", "--data", data, ok=False)
    assert bad.exit_code != 0
    done = run_json("tse", "update-time", "k", "--pin", "135790", "--data", data)
    assert done["user"] == "timeadmin" and done["signature_counter"] > 1
    # without --pin: the variable of the role that signs, never the other's
    env = {"OPENTSE_TIMEADMIN_PIN": "000000", "OPENTSE_ADMIN_PIN": "246810"}
    as_admin = CliRunner().invoke(
        APP, ["tse", "update-time", "k", "--user", "admin", "--data", data, "--json"], env=env
    )
    assert as_admin.exit_code == 0, as_admin.output
    assert json.loads(as_admin.stdout)["user"] == "admin"
    env["OPENTSE_TIMEADMIN_PIN"] = "135790"
    as_timeadmin = CliRunner().invoke(
        APP, ["tse", "update-time", "k", "--data", data, "--json"], env=env
    )
    assert as_timeadmin.exit_code == 0, as_timeadmin.output
    assert json.loads(as_timeadmin.stdout)["user"] == "timeadmin"
    tar_path = tmp_path / "k.tar"
    run("export", "--tss", "k", str(tar_path), "--data", data)
    with tarfile.open(tar_path) as tf:
        names = tf.getnames()
    assert any(f"_Sig-{done['signature_counter']}_Log-Sys_updateTime" in n for n in names)
    assert any("Log-Sys_unblockUser" in n for n in names)


def _system_logs(tar_path: Path) -> list[tuple[str, str | None, int | None]]:
    """(operationType, userId, result) of every system log, in counter order; the
    result is authenticateUser's boolean or unblockUser's enum (0 = ok)."""
    with tarfile.open(tar_path) as tf:
        messages = [
            codec.decode_log_message(tf.extractfile(n).read())  # type: ignore[union-attr]
            for n in tf.getnames()
            if n.endswith(".log")
        ]
    out: list[tuple[str, str | None, int | None]] = []
    for msg in sorted(messages, key=lambda m: m.signature_counter):
        data = msg.certified
        if not isinstance(data, SystemLogData):
            continue
        user = result = None
        if data.operation_type in ("authenticateUser", "unblockUser"):
            fields = sysdata.parse_system_operation_data(data.system_operation_data)
            user = (sysdata.field(fields, 0x81) or b"").decode()
            if data.operation_type == "authenticateUser":
                result = int(sysdata.decode_bool(sysdata.field(fields, 0x83) or b""))
            else:
                result = sysdata.decode_enum(sysdata.field(fields, 0x82) or b"")
        out.append((data.operation_type, user, result))
    return out


def test_timeadmin_pin_prompted_blocked_and_unblocked(tmp_path: Path) -> None:
    """set-pin asks for the PUK and the new PIN (twice) without echoing them; five
    wrong timeadmin PINs block updateTime, the PUK unblocks it; the admin may set the
    time too. Every attempt is an authenticateUser log with its user and result."""
    data = str(tmp_path / "d")
    created = run_json("tse", "create", "k", "--data", data)
    puk = created["timeadmin_puk"]
    run("tse", "initialize", "k", "--pin", "246810", "--puk", created["admin_puk"], "--data", data)
    argv = ["tse", "set-pin", "k", "--user", "timeadmin", "--data", data, "--json"]
    typo = CliRunner().invoke(APP, argv, input=f"{puk}\n135790\n135791\n135790\n135790\n")
    assert typo.exit_code == 0, typo.output
    assert "do not match" in typo.output  # the mistyped repeat is asked again
    assert json.loads(typo.stdout[typo.stdout.index("{") :])["ok"] is True
    assert not any(secret in typo.output for secret in (puk, "135790", "135791"))
    for left in (4, 3, 2, 1):
        wrong = run("tse", "update-time", "k", "--pin", "000000", "--data", data, ok=False)
        said = f"{left} attempt{'' if left == 1 else 's'} left"  # "1 attempt left"
        assert wrong.exit_code == 1 and said in wrong.stderr
    last = run("tse", "update-time", "k", "--pin", "000000", "--data", data, ok=False)
    assert "E_TIMEADMIN_PIN_BLOCKED" in last.stderr
    right = run("tse", "update-time", "k", "--pin", "135790", "--data", data, ok=False)
    assert "E_TIMEADMIN_PIN_BLOCKED" in right.stderr  # blocked: the right PIN too
    unblocked = run_json(
        "tse", "set-pin", "k", "--user", "timeadmin", "--puk", puk, "--pin", "112233",
        "--data", data,
    )  # fmt: skip
    assert unblocked["ok"] is True
    by_timeadmin = run_json("tse", "update-time", "k", "--pin", "112233", "--data", data)
    by_admin = run_json(
        "tse", "update-time", "k", "--user", "admin", "--pin", "246810", "--data", data
    )
    assert (by_timeadmin["user"], by_admin["user"]) == ("timeadmin", "admin")
    tar_path = tmp_path / "k.tar"
    run("export", "--tss", "k", str(tar_path), "--data", data)
    logs = _system_logs(tar_path)
    # five wrong PINs, then the right one refused by the block: logged as well
    assert [(u, r) for op, u, r in logs if op == "authenticateUser"] == [
        ("admin", 1), *[("timeadmin", 0)] * 6, ("timeadmin", 1), ("admin", 1),
    ]  # fmt: skip
    assert [(u, r) for op, u, r in logs if op == "unblockUser"] == [
        ("admin", 0), ("timeadmin", 0), ("timeadmin", 0),
    ]  # fmt: skip
    operations = [op for op, _, _ in logs]
    for done in (by_timeadmin, by_admin):  # the counter each command printed is its log
        assert operations[done["signature_counter"] - 1] == "updateTime"
        assert operations[done["signature_counter"] - 2] == "authenticateUser"


def test_delete_stored_data_after_an_archived_export(tmp_path: Path) -> None:
    """Refused before an export (ErrorUnexportedStoredData, exit code 1), then the
    archived export's logs go and the newer ones stay."""
    data = str(tmp_path / "d")
    demo = run_json("demo", "--data", data, "--transactions", "2")
    tse, pin = demo["tse_id"], demo["admin_pin"]
    refused = run("tse", "delete-stored-data", tse, "--pin", pin, "--data", data, ok=False)
    assert refused.exit_code == 1 and "E_UNEXPORTED_STORED_DATA" in refused.output
    run("archive", "export", tse, "--data", data)
    deleted = run_json("tse", "delete-stored-data", tse, "--pin", pin, "--data", data)
    tar_path = tmp_path / "rest.tar"
    run("export", "--tss", tse, str(tar_path), "--data", data)
    with tarfile.open(tar_path) as tf:
        logs = [tf.extractfile(n).read() for n in tf.getnames() if n.endswith(".log")]  # type: ignore[union-attr]
    counters = sorted(codec.decode_log_message(m).signature_counter for m in logs)
    assert deleted["logs_left"] == len(logs)
    assert counters[0] > 1 and deleted["signature_counter"] in counters
    assert counters == list(range(counters[0], counters[-1] + 1))
