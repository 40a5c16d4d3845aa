"""Keys per purpose: each one derived from a configured secret with HKDF (RFC 5869, SHA-256); no I/O.

A key made for one use (signing links, signing session cookies, hashing shoppers' addresses) can never
verify or reveal another: knowing a session key gives nothing about the link key, and the other way
round. The helpdesk webhook is not derived: the helpdesk verifies it with ``callbacks.webhook_secret``
itself, so that secret is its own and never defaults to the link secret.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

_HASH_LEN = 32  # SHA-256
_SALT = b"cart-recovery"


class Purpose(StrEnum):
    """What a derived key is for; the label is part of the derivation."""

    LINKS = "links"
    SESSIONS = "sessions"
    ADDRESSES = "addresses"


def hkdf_sha256(secret: bytes, *, info: bytes, salt: bytes = b"", length: int = _HASH_LEN) -> bytes:
    """HKDF-SHA256 (RFC 5869): extract with ``salt``, expand with ``info`` to ``length`` bytes."""
    if not 0 < length <= 255 * _HASH_LEN:
        raise ValueError(f"HKDF cannot make {length} bytes")
    prk = hmac.new(salt or bytes(_HASH_LEN), secret, hashlib.sha256).digest()
    block, out, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def derive_key(secret: str, purpose: Purpose) -> bytes:
    """The 32-byte key for ``purpose`` derived from a configured secret."""
    return hkdf_sha256(secret.encode(), salt=_SALT, info=f"cart-recovery {purpose.value} v1".encode())


@dataclass(frozen=True, kw_only=True)
class LinkKeys:
    """The keys derived from ``security.link_secret`` (and the previous one, during a rotation).

    The links' own key is derived inside ``LinkSigner`` from the same secret, with the ``links`` label.
    """

    sessions: bytes
    addresses: tuple[bytes, ...]  # current first; the previous one still finds older address keys


def link_keys(link_secret: str, previous_link_secret: str | None = None) -> LinkKeys:
    """Every key derived from the link secret(s)."""
    secrets = [link_secret, *([previous_link_secret] if previous_link_secret else [])]
    return LinkKeys(
        sessions=derive_key(link_secret, Purpose.SESSIONS),
        addresses=tuple(derive_key(secret, Purpose.ADDRESSES) for secret in secrets),
    )
