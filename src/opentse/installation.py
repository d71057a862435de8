"""One opentse installation: a data folder with the installation secret, the local CA
and the database, wired into a TSEService (the glue CLI, server and register use).

Layout of ``data_dir`` (created 0700 if missing):
- ``installation.key``: the secret that encrypts every private key (crypto/
  installation_secret.py; ``OPENTSE_SECRET_FILE`` puts it elsewhere);
- ``ca.json``: the local CA, its keys encrypted with the secret, created once;
- ``opentse.db``: the SQLite store, unless ``database_url`` names another;
- ``MOVED-AWAY.txt``: only in a folder retired by ``opentse tse move-out``, which
  then refuses to open (E_DATA_MOVED).
"""

from __future__ import annotations

import contextlib
import importlib
import os
from pathlib import Path
from types import TracebackType
from typing import Any

from opentse.crypto import installation_secret
from opentse.crypto.ca import LocalCA
from opentse.engine.keyring import Keyring
from opentse.engine.ports import Clock, TSEStore
from opentse.engine.service import TSEService
from opentse.errors import ProtocolError, StorageError
from opentse.testing.clock import SystemClock

CA_FILE = "ca.json"
DB_FILE = "opentse.db"
#: written by ``opentse tse move-out`` into a folder whose copy now runs on another host
MOVED_FILE = "MOVED-AWAY.txt"


def _load_or_create_ca(path: Path, secret: bytes, now: int) -> LocalCA:
    """Create the CA exactly once, even when two processes start together: the new
    file is written aside and hard-linked into place (fails if one exists)."""
    if path.exists():
        return LocalCA.from_bytes(path.read_bytes(), secret)
    ca = LocalCA.create(secret, now)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(ca.to_bytes())
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return LocalCA.from_bytes(path.read_bytes(), secret)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return ca


def check_sqlite_database(data_dir: Path) -> None:
    """StorageError E_DATABASE_MISSING when ``data_dir`` holds an installation (its
    CA) but not the SQLite file: its database is on PostgreSQL and the command was
    run without ``--database`` (a cron job's environment), or the file was lost. A
    new empty database there would answer every question wrongly (no TSEs, no
    warnings, no reminders)."""
    if (data_dir / CA_FILE).exists() and not (data_dir / DB_FILE).exists():
        moved = data_dir / f"{DB_FILE}.moved-to-postgresql"  # storage/pg_import.py
        if moved.exists():
            raise StorageError(
                f"{data_dir}'s database was moved to PostgreSQL ({moved.name} is the "
                "backup left behind, never to be used again): give --database "
                "postgresql://... or set OPENTSE_DATABASE",
                code="E_DATABASE_MISSING",
            )
        raise StorageError(
            f"{data_dir} holds an installation but no {DB_FILE}: for an installation on "
            "PostgreSQL give --database postgresql://... or set OPENTSE_DATABASE; "
            f"a lost {DB_FILE} must be restored from your backup",
            code="E_DATABASE_MISSING",
        )


def open_store(data_dir: Path, database_url: str | None) -> TSEStore:
    """``None`` or ``sqlite:///path`` -> SQLiteStore; ``postgresql://...`` ->
    ``opentse.storage.postgres.PostgresStore`` when that adapter is installed."""
    if database_url is None or database_url.startswith("sqlite:"):
        from opentse.storage.sqlite import SQLiteStore

        path = data_dir / DB_FILE
        if database_url is not None:
            rest = database_url.removeprefix("sqlite:").removeprefix("//")
            if not rest.startswith("/"):
                raise ProtocolError("use sqlite:///path/to/file.db", code="E_DATABASE_URL")
            path = Path(rest)
        return SQLiteStore(path)
    if database_url.startswith(("postgres://", "postgresql://")):
        try:
            module: Any = importlib.import_module("opentse.storage.postgres")
        except ImportError:
            raise ProtocolError(
                "PostgreSQL storage is not available in this build", code="E_DATABASE_URL"
            ) from None
        store: TSEStore = module.PostgresStore(database_url)
        return store
    raise ProtocolError(
        "database URL must start with sqlite:/// or postgresql://", code="E_DATABASE_URL"
    )


def refuse_option_like(data_dir: Path) -> None:
    """E_DATA_DIR for a new data folder named like an option: ``--data --help`` (the
    folder forgotten) gives "--help" as the folder, and a new installation was made in
    ./--help instead of the help shown. A folder that exists is used, and one really to
    be named so is given by its full path. Commands that make the path absolute call
    this first."""
    if str(data_dir).startswith("-") and not data_dir.exists():
        raise StorageError(
            f"{data_dir} looks like an option, not a data folder: give the folder after "
            f"--data (a new folder really named so: its full path, {data_dir.absolute()})",
            code="E_DATA_DIR",
        )


def refuse_moved(data_dir: Path, why: str, copied: str = " (copied after the marking)") -> None:
    """E_DATA_MOVED for a data folder ``tse move-out`` retired (its MOVED_FILE), which
    every command refuses: ``why`` says what this command does not do there."""
    moved = data_dir / MOVED_FILE
    if moved.exists():
        raise StorageError(
            f"{data_dir} is marked as moved to another host ({moved}): {why}. If this "
            f"folder is that copy{copied} or the move was undone, delete that file",
            code="E_DATA_MOVED",
        )


class Installation:
    """``Installation.open(data_dir)`` gives ``.store``, ``.service``, ``.secret``,
    ``.ca``, ``.keyring``, ``.data_dir``; close it (or use ``with``)."""

    def __init__(
        self,
        data_dir: Path,
        secret: bytes,
        ca: LocalCA,
        store: TSEStore,
        service: TSEService,
        keyring: Keyring,
    ) -> None:
        self.data_dir = data_dir
        self.secret = secret
        self.ca = ca
        self.store = store
        self.service = service
        self.keyring = keyring

    def __repr__(self) -> str:  # never show the secret
        return f"Installation({str(self.data_dir)!r})"

    @classmethod
    def open(
        cls,
        data_dir: Path | str,
        *,
        database_url: str | None = None,
        clock: Clock | None = None,
        auto_time: bool = True,
    ) -> Installation:
        data_dir = Path(data_dir).expanduser()
        refuse_option_like(data_dir)
        try:
            if data_dir.exists() and not data_dir.is_dir():
                raise NotADirectoryError(0, "it is a file, not a folder")
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:  # a typo, a file, a read-only disk: one clear line
            raise StorageError(
                f"cannot use {data_dir} as the data folder: {exc.strerror or exc}",
                code="E_DATA_DIR",
            ) from None
        # both copies would sign as the same TSEs, with counters that diverge
        refuse_moved(data_dir, "it must not sign any more, the copy on the new host does")
        clock = clock or SystemClock()
        secret_path = installation_secret.resolve_path(data_dir)
        if not secret_path.exists() and (data_dir / CA_FILE).exists():
            # a new secret would fit nothing here (the CA and every TSE key are
            # encrypted with the lost one) and would sit where the backup belongs
            raise installation_secret.SecretFileError(
                f"the installation secret {secret_path} is missing, but {data_dir} holds "
                "a CA (and keys) encrypted with it: restore the file from your backup, "
                "or set OPENTSE_SECRET_FILE to where it is",
                code="E_SECRET_MISSING",
            )
        database_url = (
            database_url
            or os.environ.get("OPENTSE_DATABASE")
            or os.environ.get("OPENTSE_DATABASE_URL")
        )
        if database_url is None:
            check_sqlite_database(data_dir)
        had_secret = secret_path.exists()
        secret = installation_secret.load_or_create(secret_path)
        # the database before the CA: a SQLite folder never holds a CA without its file
        # (check_sqlite_database), not even while another process creates both
        store = open_store(data_dir, database_url)
        had_ca = (data_dir / CA_FILE).exists()
        try:
            check = getattr(store, "check_installation", None)  # shared databases (PostgreSQL)
            if not had_ca and check is None and store.list_tses():
                # a new CA would sign every later TSE certificate under another root than
                # the one the existing TSEs (and the exports made so far) chain to
                lost = CA_FILE
                if not had_secret:  # made just now: it fits none of the stored keys either
                    secret_path.unlink(missing_ok=True)
                    lost = f"{CA_FILE} and {secret_path.name}"
                raise StorageError(
                    f"{data_dir} has no {CA_FILE}, but its database holds TSEs whose "
                    f"certificates that local CA issued (a new one would be another root): "
                    f"restore {lost} from your backup of this data folder",
                    code="E_CA_MISSING",
                )
            ca = _load_or_create_ca(data_dir / CA_FILE, secret, clock.now())
            if check is not None:
                check(secret, ca.chain())
        except ProtocolError as exc:
            store.close()
            if had_ca or exc.code != "E_INSTALLATION_MISMATCH":
                raise
            # a CA made just now for a database set up with another: not left behind
            # where the installation's ca.json (from the other nodes, a backup) belongs
            (data_dir / CA_FILE).unlink(missing_ok=True)
            if not had_secret:  # a new secret too: the message about the secret stands
                raise
            raise ProtocolError(
                f"{data_dir} has no {CA_FILE}, and this database belongs to an installation "
                f"with a CA: copy its {CA_FILE} (from another node or your backup) here",
                code="E_INSTALLATION_MISMATCH",
            ) from None
        except BaseException:
            store.close()
            raise
        keyring = Keyring(secret)
        service = TSEService(store, keyring, clock, auto_time=auto_time, ca=ca)
        return cls(data_dir, secret, ca, store, service, keyring)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Installation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
