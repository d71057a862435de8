"""Which opentse this is: the package version and, in a git checkout (the way the
README installs it), the commit. The package version alone stayed 0.1.0 through every
change, so a support question, the procedure documentation or a node list could not
name the code that ran."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from opentse import __version__

_SHA = re.compile(r"[0-9a-f]{40}")


def _git_dir(root: Path) -> tuple[Path, Path] | None:
    """(this checkout's git folder, the folder its refs live in); a linked work tree's
    ``.git`` is a file naming its folder, whose ``commondir`` names the shared one."""
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git, dot_git
    if not dot_git.is_file():
        return None
    text = dot_git.read_text(encoding="utf-8").strip()
    if not text.startswith("gitdir: "):
        return None
    own = (root / text[len("gitdir: ") :]).resolve()
    common_file = own / "commondir"
    common = (own / common_file.read_text().strip()).resolve() if common_file.is_file() else own
    return own, common


def _resolve(ref: str, common: Path) -> str | None:
    loose = common / ref
    if loose.is_file():
        return loose.read_text(encoding="utf-8").strip()
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == ref:
                return parts[0]
    return None


@functools.cache
def source_commit(root: Path | None = None) -> str | None:
    """The short commit hash of the checkout this package runs from, read from its
    ``.git`` without running git; None when installed from a wheel or unreadable."""
    root = root or Path(__file__).resolve().parents[2]
    try:
        found = _git_dir(root)
        if found is None:
            return None
        own, common = found
        head = (own / "HEAD").read_text(encoding="utf-8").strip()
        sha = _resolve(head[len("ref: ") :], common) if head.startswith("ref: ") else head
    except (OSError, UnicodeDecodeError):
        return None
    if sha is None or not _SHA.fullmatch(sha):
        return None
    return sha[:12]


def version_text() -> str:
    """``opentse 0.1.0 (git 0123456789ab)``; without a checkout ``opentse 0.1.0``."""
    commit = source_commit()
    return f"opentse {__version__}" + (f" (git {commit})" if commit else "")
