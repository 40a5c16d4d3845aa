"""Audit of a rendered message: every link a shopper can click must be one the tracker produced."""

from __future__ import annotations

import re
from collections.abc import Iterable
from html.parser import HTMLParser

# Links that are not shop pages and so are not tracked.
_NON_WEB_PREFIXES = ("mailto:", "tel:", "sms:", "#")
_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"'()]+", re.IGNORECASE)
_TRAILING_PUNCTUATION = ".,;:!?»"
# Tags whose href is a stylesheet or base, not something a shopper clicks.
_NON_CLICKABLE = frozenset({"link", "base"})


class _LinkCollector(HTMLParser):
    """Collects clickable targets and visible text of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            clickable = (name == "href" and tag not in _NON_CLICKABLE) or name in ("action", "formaction")
            if clickable:
                self.links.append(value.strip())

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _urls_in_text(text: str) -> list[str]:
    return [match.group(0).rstrip(_TRAILING_PUNCTUATION) for match in _URL_IN_TEXT.finditer(text)]


def untracked_links(*, html: str | None, texts: Iterable[str], allowed: set[str]) -> list[str]:
    """The links in ``html`` hrefs and in visible text that are not in ``allowed``, in order, once each."""
    found: list[str] = []
    if html is not None:
        collector = _LinkCollector()
        collector.feed(html)
        collector.close()
        found.extend(link for link in collector.links if not link.lower().startswith(_NON_WEB_PREFIXES))
        texts = [*texts, *collector.text]
    for text in texts:
        found.extend(_urls_in_text(text))
    return list(dict.fromkeys(link for link in found if link not in allowed))
