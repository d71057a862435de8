"""``opentse --version`` names the code that runs: the package version stayed 0.1.0
through every change, so a support question or the procedure documentation could not
tell one installation's code from another's. A checkout adds its commit, read from
``.git`` (loose ref, packed ref, detached HEAD, linked work tree)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from opentse import __version__
from opentse.version import source_commit

ROOT = Path(__file__).resolve().parents[2]
OPENTSE = str(Path(sys.executable).with_name("opentse"))
SHA = "0123456789abcdef0123456789abcdef01234567"


def test_version_option_prints_the_version_and_the_checkouts_commit() -> None:
    out = subprocess.run([OPENTSE, "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert line.startswith(f"opentse {__version__}")
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no commit to compare")
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert line == f"opentse {__version__} (git {head[:12]})"


def _checkout(tmp_path: Path, head: str, *, loose: str | None = None, packed: str = "") -> Path:
    git = tmp_path / "repo" / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text(head)
    if loose is not None:
        (git / "refs" / "heads" / "main").write_text(loose + "\n")
    if packed:
        (git / "packed-refs").write_text(packed)
    return tmp_path / "repo"


def test_commit_from_a_loose_ref_a_packed_ref_and_a_detached_head(tmp_path: Path) -> None:
    loose = _checkout(tmp_path / "a", "ref: refs/heads/main\n", loose=SHA)
    assert source_commit.__wrapped__(loose) == SHA[:12]
    packed = _checkout(
        tmp_path / "b",
        "ref: refs/heads/main\n",
        packed=f"# pack-refs with: peeled\n{'f' * 40} refs/heads/other\n{SHA} refs/heads/main\n",
    )
    assert source_commit.__wrapped__(packed) == SHA[:12]
    detached = _checkout(tmp_path / "c", SHA + "\n")
    assert source_commit.__wrapped__(detached) == SHA[:12]


def test_commit_of_a_linked_work_tree(tmp_path: Path) -> None:
    main = _checkout(tmp_path, "ref: refs/heads/main\n", loose="f" * 40)
    (main / ".git" / "refs" / "heads" / "topic").write_text(SHA + "\n")
    own = main / ".git" / "worktrees" / "topic"
    own.mkdir(parents=True)
    (own / "HEAD").write_text("ref: refs/heads/topic\n")
    (own / "commondir").write_text("../..\n")
    tree = tmp_path / "topic"
    tree.mkdir()
    (tree / ".git").write_text(f"gitdir: {own}\n")
    assert source_commit.__wrapped__(tree) == SHA[:12]


@pytest.mark.parametrize(
    "head",
    ["ref: refs/heads/missing\n", "not a hash\n", "ref: refs/heads/main\n"],
)
def test_no_commit_when_the_checkout_does_not_say(tmp_path: Path, head: str) -> None:
    repo = _checkout(tmp_path, head, loose="garbage")
    assert source_commit.__wrapped__(repo) is None
    assert source_commit.__wrapped__(tmp_path / "nowhere") is None
