"""Exceptions raised by the ARI client.

One class per status that callers actually branch on: a 404 on `answer` means the caller already
left, a 409 means the channel is not (or no longer) in our Stasis app, a 5xx means Asterisk is in
trouble. Everything derives from `AriError`, so `except AriError` is always enough.
"""

from __future__ import annotations


class AriError(Exception):
    """An ARI request failed.

    `status` is the HTTP status (None when no response came back at all), `method` and `path`
    identify the request (path relative to the ARI base URL), `message` is Asterisk's own
    explanation from its `{"message": ...}` error body, or the raw body/reason when there is none.
    """

    def __init__(self, status: int | None, method: str, path: str, message: str = "") -> None:
        self.status = status
        self.method = method
        self.path = path
        self.message = message
        super().__init__(self._describe())

    def _describe(self) -> str:
        head = f"ARI {self.method} {self.path}"
        if self.status is None:
            return f"{head}: {self.message}" if self.message else head
        return f"{head} -> {self.status}: {self.message}" if self.message else f"{head} -> {self.status}"


class AriBadRequest(AriError):
    """400: a missing or invalid parameter (a bug on our side, or an unsupported value)."""


class AriUnauthorized(AriError):
    """401/403: wrong ARI username/password, or the user lacks write access (`read_only`)."""


class AriNotFound(AriError):
    """404: the channel/bridge/playback/recording/variable does not exist (any more)."""


class AriConflict(AriError):
    """409: the resource exists but is in the wrong place, typically not in our Stasis app."""


class AriPreconditionFailed(AriError):
    """412: the channel is in a state that forbids the operation (e.g. not answered, hung up)."""


class AriUnprocessable(AriError):
    """422: a referenced resource is unusable (e.g. a channel that is already in another bridge)."""


class AriServerError(AriError):
    """5xx: Asterisk failed internally or is not ready (e.g. still loading modules)."""


class AriConnectionError(AriError):
    """Asterisk could not be reached: refused, reset, DNS or timeout. `status` is None."""

    def __init__(self, method: str, path: str, message: str = "") -> None:
        super().__init__(None, method, path, message)


_BY_STATUS: dict[int, type[AriError]] = {
    400: AriBadRequest,
    401: AriUnauthorized,
    403: AriUnauthorized,
    404: AriNotFound,
    409: AriConflict,
    412: AriPreconditionFailed,
    422: AriUnprocessable,
}


def error_for_status(status: int, method: str, path: str, message: str = "") -> AriError:
    """Build the most specific `AriError` subclass for an HTTP error status."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = AriServerError if status >= 500 else AriError
    return cls(status, method, path, message)
