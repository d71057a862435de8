"""The mutable state of one TSE as plain data; the store persists it atomically with logs.

Engine functions take a state and return a new one (or mutate a copy) plus the logs
to append; storage adapters serialise it with ``to_dict``/``from_dict`` (JSON-safe).
Fields may be added; ``from_dict`` ignores unknown keys and defaults missing ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Lifecycle(str, Enum):
    """TR-03151 lifecycle plus fiskaly's CREATED (keys exist, not yet handed out)
    and DEFECTIVE (cannot sign any more)."""

    CREATED = "CREATED"
    UNINITIALIZED = "UNINITIALIZED"
    INITIALIZED = "INITIALIZED"
    DISABLED = "DISABLED"
    DEFECTIVE = "DEFECTIVE"


class Role(str, Enum):
    ADMIN = "admin"
    TIMEADMIN = "timeadmin"


@dataclass
class UserState:
    """A role holder. ``pin_hash``/``puk_hash`` are slow hashes (crypto.secrets)."""

    user_id: str
    role: Role
    pin_hash: str | None = None
    puk_hash: str | None = None
    retries_left: int = 5
    max_retries: int = 5
    blocked: bool = True  # blocked until a PIN is set with the PUK (fiskaly semantics)
    logged_in_until: int | None = None  # unix seconds; None = logged out
    puk_retries_left: int = 10  # a wrong PUK counts down too (engine/users.py)


@dataclass
class ClientState:
    client_id: str  # the register's serial number as written into transaction logs
    registered: bool = True
    registered_at: int = 0
    deregistered_at: int | None = None


@dataclass
class OpenTransaction:
    number: int
    client_id: str
    started_at: int
    last_signed_at: int
    process_type: str = ""


@dataclass
class TSEState:
    tse_id: str
    lifecycle: Lifecycle = Lifecycle.CREATED
    description: str = ""
    signature_counter: int = 0  # of the last signature; 0 before the first
    transaction_counter: int = 0  # of the last started transaction
    time_set: bool = False
    last_log_time: int = 0
    users: dict[str, UserState] = field(default_factory=dict)
    clients: dict[str, ClientState] = field(default_factory=dict)
    open_transactions: dict[int, OpenTransaction] = field(default_factory=dict)
    max_clients: int = 199
    max_open_transactions: int = 2000
    created_at: int = 0
    uninitialized_at: int | None = None
    initialized_at: int | None = None
    disabled_at: int | None = None
    exported_up_to: int = 0  # highest signature counter covered by a verified export
    deleted_up_to: int = 0  # logs up to this counter were dropped (deleteStoredData)
    version: int = 0  # bumped by every commit; lets stores cache state safely

    def to_dict(self) -> dict[str, Any]:
        # Same result as dataclasses.asdict (every nested value is a scalar), but
        # without its deep copies: stores call this on every commit (bench_engine).
        data = dict(vars(self))
        data["lifecycle"] = self.lifecycle.value
        data["users"] = {k: {**vars(u), "role": u.role.value} for k, u in self.users.items()}
        data["clients"] = {k: dict(vars(c)) for k, c in self.clients.items()}
        data["open_transactions"] = {
            str(k): dict(vars(t)) for k, t in self.open_transactions.items()
        }
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TSEState:
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["lifecycle"] = Lifecycle(data.get("lifecycle", Lifecycle.CREATED.value))
        kwargs["users"] = {
            uid: UserState(**{**_only(UserState, u), "role": Role(u["role"])})
            for uid, u in data.get("users", {}).items()
        }
        kwargs["clients"] = {
            cid: ClientState(**_only(ClientState, c)) for cid, c in data.get("clients", {}).items()
        }
        kwargs["open_transactions"] = {
            int(n): OpenTransaction(**_only(OpenTransaction, t))
            for n, t in data.get("open_transactions", {}).items()
        }
        return cls(**kwargs)


def _only(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}
