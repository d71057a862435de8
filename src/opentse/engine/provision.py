"""Making a new TSE: key pair, certificate from the local CA, PUK hashes, record.

The private key is encrypted at rest with the installation secret (``encrypt``,
crypto.keys); the PUKs are returned once in ``CreatedTSE`` and kept only as slow
hashes (crypto.secrets). fiskaly: the admin PUK comes with the create call.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from opentse.crypto import keys
from opentse.crypto import secrets as secret_hash
from opentse.crypto.ca import LocalCA
from opentse.engine import rules, users
from opentse.engine.ports import TSERecord
from opentse.engine.results import CreatedTSE
from opentse.engine.state import TSEState
from opentse.errors import ProtocolError
from opentse.tr03151.logtime import TimeFormat

_TSE_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
_PUK_ALPHABET = string.ascii_letters + string.digits


def generate_puk(length: int = 16) -> str:
    """A random PUK (about 95 bits for 16 characters)."""
    return "".join(secrets.choice(_PUK_ALPHABET) for _ in range(length))


def new_tse(
    tse_id: str,
    *,
    curve: str,
    time_format: str,
    description: str,
    owner: str,
    admin_puk: str | None,
    timeadmin_puk: str | None,
    algorithm: str | None,
    private_key: ec.EllipticCurvePrivateKey | None,
    extra: dict[str, Any] | None,
    now: int,
    ca: LocalCA | None,
    certificate_days: int,
    encrypt: Callable[[ec.EllipticCurvePrivateKey], bytes],
) -> tuple[CreatedTSE, keys.PlainSigner]:
    """Validate the parameters and build record, initial state and signer."""
    if _TSE_ID.fullmatch(tse_id) is None:
        raise ProtocolError(
            "TSE id must be 1-100 characters of A-Z a-z 0-9 . _ : -", code="E_TSS_ID_INVALID"
        )
    if curve not in keys.CURVES:
        raise ProtocolError(
            f"unsupported curve {curve!r}; use one of {', '.join(keys.CURVES)}",
            code="E_CURVE_INVALID",
        )
    try:
        fmt = TimeFormat(time_format)
    except ValueError:
        raise ProtocolError(
            f"unknown time format {time_format!r}", code="E_TIME_FORMAT_INVALID"
        ) from None
    admin_puk = admin_puk or generate_puk()
    timeadmin_puk = timeadmin_puk or generate_puk()
    for puk in (admin_puk, timeadmin_puk):
        rules.check_new_secret(puk, kind="puk", minimum=rules.MIN_PUK)
    key = private_key or keys.generate_private_key(curve)
    point = keys.public_key_point(key)
    serial = keys.serial_number(point)
    alg = algorithm or keys.default_algorithm(curve)
    chain: tuple[bytes, ...] = ()
    if ca is not None:
        cert = ca.issue_tse_certificate(key.public_key(), serial.hex(), now, certificate_days)
        chain = (cert, *ca.chain())
    record = TSERecord(
        tse_id=tse_id,
        serial_number=serial,
        curve=curve,
        signature_algorithm=alg,
        time_format=fmt.value,
        public_key_point=point,
        encrypted_private_key=encrypt(key),
        certificate_chain=chain,
        created_at=now,
        owner=owner,
        extra=dict(extra or {}),
    )
    state = TSEState(
        tse_id=tse_id,
        description=description,
        created_at=now,
        users=users.new_users(
            secret_hash.hash_secret(admin_puk), secret_hash.hash_secret(timeadmin_puk)
        ),
    )
    return CreatedTSE(record, state, admin_puk, timeadmin_puk), keys.PlainSigner(key, alg)
