"""Make the upgrade fixtures: installations built by OLD opentse versions.

    .venv/bin/python tests/upgrade/make_fixtures.py [COMMIT ...]

For each commit in VERSIONS (or the ones named) the tree is exported with
``git archive`` and ITS ``opentse`` (with this venv's packages) builds an
installation through ``upgrade_support.build_installation``: a demo TSE with
receipts and its export, register books with a closing, an API key, and a TSS with
a client, signed transactions and an export made through its ``opentse serve``.
The commits in EXTRAS also get the operator's records (sites, an archived export,
a ``serve --lan`` session). The result is packed as
``fixtures/<commit>-sqlite.tar.gz``; for the commits in
POSTGRES the TSS lives in a PostgreSQL schema, dumped with pg_dump into
``fixtures/<commit>-postgresql.tar.gz`` (schema name ``SCHEMA``, renamed on restore).

Fixtures rather than building at test time: one build takes 30-40 s on this
machine (the suite's budget for the whole folder is ~60 s), the old code would run
against whatever packages the venv holds years later, and a shallow clone (CI
caches, tarballs) has no history to archive. The commits are listed here so the
fixtures can be made again. The TSE certificates in them (made 2026-11-22) run for
five years: remake the fixtures before 2031-11-21.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "src"))

import upgrade_support  # noqa: E402

# commit: why it is worth upgrading from
VERSIONS = {
    "9d77d6c": "first session, 2026-11-21 05:55: oldest with demo, serve, dashboard, pos and "
    "the final 0001 schema (migrations 0001-0003, PostgreSQL 0900)",
    "352f4d4": "2026-11-21 12:37, before migration 0007 (0001-0006)",
    "5f0adb6": "end of the eighth session, 2026-11-21 22:39, before 0008 and 0009 (0001-0007)",
}
POSTGRES = ("5f0adb6",)
EXTRAS = ("9d77d6c",)  # also sites, an archived export and a LAN session (the oldest)
SCHEMA = "opentse_upgrade_fixture"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/test"


def export_tree(commit: str, into: Path) -> Path:
    tree = into / f"old-{commit}"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def pack(root: Path, out: Path) -> None:
    with tarfile.open(out, "w:gz") as tar:
        for path in sorted(root.iterdir()):
            tar.add(path, arcname=path.name)
    print(f"{out.relative_to(REPO)}: {out.stat().st_size} bytes")


def make(commit: str, work: Path) -> None:
    tree = export_tree(commit, work)
    command = upgrade_support.old_command(tree)
    root = work / f"{commit}-sqlite"
    root.mkdir()
    upgrade_support.build_installation(command, root, extras=commit in EXTRAS)
    pack(root, HERE / "fixtures" / f"{commit}-sqlite.tar.gz")
    if commit not in POSTGRES:
        return
    import psycopg

    from opentse.storage.pg_testing import with_search_path

    root = work / f"{commit}-postgresql"
    root.mkdir()
    with psycopg.connect(PG_SERVER, autocommit=True) as pg:
        pg.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
        pg.execute(f'CREATE SCHEMA "{SCHEMA}"')
    try:
        upgrade_support.build_installation(
            command, root, database=with_search_path(PG_SERVER, SCHEMA)
        )
        dump = subprocess.run(
            ["pg_dump", "--no-owner", "--no-privileges", "--schema", SCHEMA, PG_SERVER],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        (root / "dump.sql").write_text(dump)
    finally:
        with psycopg.connect(PG_SERVER, autocommit=True) as pg:
            pg.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
    pack(root, HERE / "fixtures" / f"{commit}-postgresql.tar.gz")


def main(commits: list[str]) -> None:
    (HERE / "fixtures").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="opentse-upgrade-"))
    try:
        for commit in commits or list(VERSIONS):
            make(commit, work)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main(sys.argv[1:])
