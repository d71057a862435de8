"""One exception tree for all of opentse.

Every error carries a stable ``code`` (``E_...``) and an HTTP status hint, so the
HTTP adapter maps errors without a lookup table and the CLI can print the code.
Messages never contain secrets (PINs, PUKs, API secrets, keys).

The SE API error names of TR-03151 (``ErrorTimeNotSet`` ...) are kept as ``se_error``
where one applies, so the engine can be checked against the spec's vocabulary.
"""

from __future__ import annotations


class OpenTSEError(Exception):
    """Base of every error opentse raises on purpose."""

    code: str = "E_OPENTSE"
    http_status: int = 500
    se_error: str | None = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        se_error: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status
        if se_error is not None:
            self.se_error = se_error

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ProtocolError(OpenTSEError):
    """The caller broke the rules of the API: bad parameters, wrong credentials."""

    code = "E_BAD_REQUEST"
    http_status = 400


class AuthenticationError(ProtocolError):
    """Credentials (PIN, PUK, API secret, token) were wrong, missing or expired."""

    code = "E_UNAUTHORIZED"
    http_status = 401


class NotFoundError(ProtocolError):
    """A named resource does not exist (or belongs to somebody else)."""

    code = "E_NOT_FOUND"
    http_status = 404


class ConflictError(ProtocolError):
    """The request conflicts with what is stored (duplicate id, serial number ...)."""

    code = "E_CONFLICT"
    http_status = 409


class StateError(OpenTSEError):
    """The operation is not allowed in the current state of the TSE or transaction."""

    code = "E_ILLEGAL_STATE"
    http_status = 400


class FormatError(OpenTSEError):
    """Bytes or text could not be read as the format they claim to be."""

    code = "E_FORMAT"
    http_status = 400


class StorageError(OpenTSEError):
    """The store failed; nothing was half-written, but nothing was done either."""

    code = "E_STORAGE"
    http_status = 503


class VerificationError(OpenTSEError):
    """A signature, certificate or counter check failed."""

    code = "E_VERIFICATION"
    http_status = 400
