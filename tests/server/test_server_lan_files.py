"""The LAN session file (an API secret) and the LAN TLS key are replaced atomically,
0600: written to a temp file of their own and renamed over the old one. They were
written in place (``O_TRUNC``): a link to the old file (a backup's hard link, a
symlink someone left) got the new secret written through it, and a crash mid-write
left a half-written file."""

from __future__ import annotations

import stat
from pathlib import Path

from opentse.server import lan


def _write(data: Path) -> Path:
    return lan.write_session_file(
        data, address="192.0.2.7", port=4433, api_key="key_1", api_secret="s3cr3t",
        fingerprint="ab" * 32,
    )  # fmt: skip


def test_an_existing_session_file_is_replaced_not_written_through(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    old = data / lan.SESSION_FILE
    old.write_text("old session\n")
    old.chmod(0o644)  # restored from a backup
    kept = tmp_path / "backup-link"
    kept.hardlink_to(old)
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours\n")
    path = _write(data)
    assert path == old
    assert kept.read_text() == "old session\n"  # the old inode was not written
    assert path.stat().st_ino != kept.stat().st_ino
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "API secret:          s3cr3t" in path.read_text()
    assert sorted(p.name for p in data.iterdir()) == [lan.SESSION_FILE]  # no temp left
    # a symlink in its place is replaced by the file, its target left alone
    path.unlink()
    path.symlink_to(outside)
    _write(data)
    assert not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert outside.read_text() == "not ours\n"


def test_the_tls_key_is_replaced_not_written_through(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = lan.ensure_certificate(data, ["127.0.0.1"], secret=b"\x01" * 32)
    kept = tmp_path / "key-link"
    kept.hardlink_to(first.key)
    before = kept.read_bytes()
    first.cert.unlink()  # no certificate: a new pair is made
    second = lan.ensure_certificate(data, ["127.0.0.1"], secret=b"\x01" * 32)
    assert second.key == first.key and second.key.read_bytes() != before
    assert kept.read_bytes() == before
    assert stat.S_IMODE(second.key.stat().st_mode) == 0o600
