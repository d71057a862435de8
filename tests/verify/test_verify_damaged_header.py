"""A damaged member header inside an export (one flipped bit after the first
member) is refused (exit 2, ``E_EXPORT_UNREADABLE`` naming the octet) by
``opentse verify`` and by the DSFinV-K cross-check's reader. The stdlib ``tarfile``
takes such a header for the end of the archive and says nothing: the verifier once
verified the members before it and answered "OK: no errors" for an export whose
later logs it never read. The same for data after the end-of-archive blocks (two
exports joined with ``cat``), where every TAR reader stops."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner
from verify_data import vendor_export

from opentse.cli.main import build_app
from opentse.verify.archive import member_batches
from opentse.verify.reading import UnreadableExportError
from opentse.verify.tarscan import Damaged, scan

FISKALY = "fiskaly/TSE_Export_12f97c6a-2c23-4dfe-a04d-2d94342789d2_202109171415.tar"


def _header_offsets(data: bytes) -> list[int]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [member.offset for member in tar.getmembers()]


def _damaged_copy(tmp_path: Path, index: int, where: int) -> tuple[Path, int, int]:
    """The vendor export with octet ``where`` of member ``index``'s header changed:
    (path, the header's offset, how many members the stdlib reads of it)."""
    data = bytearray(vendor_export(FISKALY).read_bytes())
    offset = _header_offsets(bytes(data))[index]
    data[offset + where] ^= 0x01
    path = tmp_path / "damaged.tar"
    path.write_bytes(data)
    try:
        with tarfile.open(path) as tar:
            read = len(tar.getmembers())
    except tarfile.ReadError:
        read = 0  # the first header: the stdlib refuses the file itself
    return path, offset, read


@pytest.mark.parametrize("where", [0, 100, 124, 148, 156, 300])  # name, mode, size, sum, ...
def test_verify_refuses_a_damaged_header(tmp_path: Path, where: int) -> None:
    path, offset, read = _damaged_copy(tmp_path, 40, where)
    assert read == 40  # the independent reader stops there without a word
    result = CliRunner().invoke(build_app(), ["verify", str(path), "--json"])
    assert result.exit_code == 2, result.stdout
    body = json.loads(result.stdout)
    assert body["ok"] is False
    assert body["unreadable"]["code"] == "E_EXPORT_UNREADABLE"
    assert f"header at octet {offset} is damaged" in body["unreadable"]["message"]
    text = CliRunner().invoke(build_app(), ["verify", str(path)])
    assert text.exit_code == 2
    assert "Traceback" not in text.output and "OK: no errors" not in text.output


def test_crosscheck_reader_refuses_a_damaged_header(tmp_path: Path) -> None:
    path, offset, _ = _damaged_copy(tmp_path, 3, 100)
    with pytest.raises(UnreadableExportError, match=f"header at octet {offset} is damaged"):
        for _ in member_batches(path):
            pass


def test_a_damaged_first_header_is_still_tarfiles_to_judge(tmp_path: Path) -> None:
    path, _, _ = _damaged_copy(tmp_path, 0, 100)
    result = CliRunner().invoke(build_app(), ["verify", str(path), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["unreadable"]["code"] == "E_EXPORT_UNREADABLE"


def _archive(sizes: list[int]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for number, size in enumerate(sizes):
            info = tarfile.TarInfo(f"m{number}.log")
            info.size = size
            tar.addfile(info, io.BytesIO(bytes([number % 256]) * size))
    return out.getvalue()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 1300), min_size=2, max_size=6),
    st.data(),
    st.integers(0, 511),
    st.integers(1, 255),
)
def test_any_changed_octet_of_a_later_header_is_damage(
    sizes: list[int], data: st.DataObject, where: int, change: int
) -> None:
    """Outside the checksum field any change alters the header's sum; inside it, the
    stored sum: either way no sum matches and the scan refuses the archive."""
    archive = bytearray(_archive(sizes))
    index = data.draw(st.integers(1, len(sizes) - 1))
    offset = _header_offsets(bytes(archive))[index]
    field = bytes(archive[offset + 148 : offset + 156])
    archive[offset + where] ^= change
    if archive[offset + 148 : offset + 156].strip(b" \0") == field.strip(b" \0"):
        return  # a padding NUL turned space or back: the same checksum, no damage
    with pytest.raises(Damaged, match=f"octet {offset} "):
        for _ in scan(bytes(archive)):
            pass


GF = "fiskaly/TSSProtokoll_GF_2021-09-28_11_07_59.tar"
WB = "fiskaly/TSSProtokoll_WB_2021-09-27_12_09_56.tar"


def test_two_exports_joined_by_cat_are_refused(tmp_path: Path) -> None:
    """``cat a.tar b.tar > all.tar``: the stdlib (like tar without -i) reads the
    first archive only; the verifier verified its 6 logs and said "OK: no errors",
    the 10 logs of the second unread. Now exit 2 naming where the data after the
    end-of-archive blocks starts; each archive given on its own still verifies."""
    first, second = vendor_export(GF), vendor_export(WB)
    joined = tmp_path / "all.tar"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    with tarfile.open(joined) as tar, tarfile.open(first) as alone:
        assert len(tar.getmembers()) == len(alone.getmembers())
    result = CliRunner().invoke(build_app(), ["verify", str(joined), "--json"])
    assert result.exit_code == 2, result.stdout
    unreadable = json.loads(result.stdout)["unreadable"]
    assert unreadable["code"] == "E_EXPORT_UNREADABLE"
    assert f"followed by data at octet {first.stat().st_size}" in unreadable["message"]
    assert "another archive appended" in unreadable["message"]
    with pytest.raises(UnreadableExportError, match="another archive appended"):
        for _ in member_batches(joined):
            pass
    both = CliRunner().invoke(build_app(), ["verify", str(first), str(second), "--json"])
    assert json.loads(both.stdout)["log_messages"] == 16


@pytest.mark.parametrize("window", [512, 1024, 4096, 1 << 20])
def test_zeros_after_the_end_are_padding_data_is_not(tmp_path: Path, window: int) -> None:
    """Read in windows of any size: zeros after the end-of-archive blocks (padding,
    however long) are fine, one other octet anywhere in them is refused at its
    offset."""
    from opentse.verify import tarscan
    from opentse.verify.reading import ArchiveFile
    from opentse.verify.tarscan import Appended

    archive = _archive([10, 700, 0, 1300]) + bytes(9000)
    path = tmp_path / "a.tar"
    saved = tarscan.WINDOW
    try:
        tarscan.WINDOW = window
        path.write_bytes(archive)
        with ArchiveFile(path) as file:
            assert sum(len(b) for b in scan(file)) == 4
        for where in (len(archive) - 1, len(archive) - 9000, len(archive) - 5000):
            changed = bytearray(archive)
            changed[where] = 0x41
            path.write_bytes(changed)
            with ArchiveFile(path) as file, pytest.raises(Appended, match=f"octet {where} "):
                for _ in scan(file):
                    pass
            with pytest.raises(Appended, match=f"octet {where} "):
                for _ in scan(bytes(changed)):
                    pass
    finally:
        tarscan.WINDOW = saved
