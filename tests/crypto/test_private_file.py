"""Files that hold a secret are 0600 whatever was there before: ``tse move`` wrote the
registers' connection file (with the new API secret) over an existing one with
O_TRUNC, keeping its old mode (0644 after a restore), and the till file of ``pos
setup`` followed a symlink and could be left half-written."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from opentse.crypto.private_file import write_private_file
from opentse.ops.moving import _write_private


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_an_existing_wider_file_becomes_0600(tmp_path: Path) -> None:
    for write in (write_private_file, _write_private):
        target = tmp_path / f"{write.__name__}.txt"
        target.write_text("old, restored from a backup\n")
        target.chmod(0o644)
        write(target, "API secret: s3cr3t\n")
        assert _mode(target) == 0o600
        assert target.read_text() == "API secret: s3cr3t\n"


def test_a_symlink_in_the_way_is_replaced_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not yours\n")
    link = tmp_path / "till.txt"
    link.symlink_to(elsewhere)
    write_private_file(link, "secret\n")
    assert not link.is_symlink() and link.read_text() == "secret\n"
    assert elsewhere.read_text() == "not yours\n"
    assert _mode(link) == 0o600


def test_no_temporary_file_is_left_and_the_umask_does_not_matter(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_private_file(tmp_path / "puks.txt", "PUK\n")
    finally:
        os.umask(old)
    assert [p.name for p in tmp_path.iterdir()] == ["puks.txt"]
    assert _mode(tmp_path / "puks.txt") == 0o600


def test_a_short_write_never_replaces_the_file_with_part_of_it(tmp_path: Path) -> None:
    """os.write may write only part of the data (a disk nearly full, a file size
    limit); the rest was dropped and the short file renamed over the good one, a
    PUK file cut in half. Here a file size limit of 64 bytes makes the first write
    short: now the second one fails (EFBIG) and the old file stays whole."""
    import subprocess
    import sys

    target = tmp_path / "puk.txt"
    target.write_text("old PUK 1234\n")
    probe = (
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "from opentse.crypto.private_file import write_private_file\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))\n"
        "try:\n"
        "    write_private_file(Path(sys.argv[1]), 'x' * 1000)\n"
        "except OSError as exc:\n"
        "    print('refused', exc.errno)\n"
        "else:\n"
        "    print('written')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(target)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "refused", out.stdout
    assert target.read_text() == "old PUK 1234\n"
    assert [p.name for p in tmp_path.iterdir()] == ["puk.txt"]  # no temporary file left
