"""Short links for SMS: ``{public_url}/s/{code}``, a random stored code standing for a long signed link.

A signed ``/r/`` link is ~190 characters: three SMS segments where two would do. A short link is a row
(code → message, target, expiry; ``short_link_rows``) that ``GET /s/{code}`` follows exactly as ``/r/`` does.
The code is random (never derived from ids), 10 characters of base 62: ~59 bits, far above the 48 needed so
that guessing a live code is hopeless. No I/O here: the renderer collects the links, the dispatcher stores
them in the transaction that marks the message ``sending``.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

CODE_ALPHABET = string.ascii_letters + string.digits
CODE_LENGTH = 10
# Short links expire with the message's signed links (``/r/`` accepts a click token this long).
LINK_MAX_AGE = timedelta(days=60)


@dataclass(frozen=True, kw_only=True)
class ShortLink:
    """One short code and the tracked link it stands for."""

    code: str
    message_id: str
    journey_id: str
    target: str


# Random bytes below this are used (byte % 62), the rest dropped: every character stays equally likely.
_UNBIASED = 256 - 256 % len(CODE_ALPHABET)


def new_code() -> str:
    """A fresh random code (``CODE_LENGTH`` characters of base 62, from the OS's CSPRNG).

    One read of the CSPRNG for the whole code, not one per character: each read is a system call that hands
    the GIL over, and the render thread then waits for the loop to give it back (issue 25).
    """
    chars: list[str] = []
    while len(chars) < CODE_LENGTH:
        drawn = secrets.token_bytes(2 * CODE_LENGTH)
        chars += [CODE_ALPHABET[byte % len(CODE_ALPHABET)] for byte in drawn if byte < _UNBIASED]
    return "".join(chars[:CODE_LENGTH])


def short_url(public_url: str, code: str) -> str:
    """The ``{public_url}/s/{code}`` link a shopper receives."""
    return f"{public_url.rstrip('/')}/s/{code}"


def is_code(text: str) -> bool:
    """True when ``text`` has the shape of a code (checked before any lookup)."""
    return len(text) == CODE_LENGTH and all(char in CODE_ALPHABET for char in text)


def length_probe(public_url: str) -> Callable[[str], str]:
    """A tracker giving every link the exact length of a real short link, to count SMS segments honestly."""
    probe = short_url(public_url, "x" * CODE_LENGTH)
    return lambda _target: probe


class ShortLinker:
    """Turns each link of one message into a new short link, remembering them for the dispatcher to store."""

    def __init__(self, public_url: str, *, message_id: str, journey_id: str) -> None:
        self._public_url = public_url
        self._message_id = message_id
        self._journey_id = journey_id
        self.links: list[ShortLink] = []

    def __call__(self, target: str) -> str:
        link = ShortLink(code=new_code(), message_id=self._message_id, journey_id=self._journey_id, target=target)
        self.links.append(link)
        return short_url(self._public_url, link.code)
