"""Where message templates live: ``templates/<locale>/<name>.<channel>.<part>``, and the error they raise."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from recovery.errors import ConfigError

Channel = Literal["email", "sms"]
# Parts each channel renders; an email's html is optional (a text-only email is valid).
CHANNEL_PARTS: dict[str, tuple[str, ...]] = {"email": ("subject", "txt", "html"), "sms": ("txt",)}
REQUIRED_PARTS: dict[str, tuple[str, ...]] = {"email": ("subject", "txt"), "sms": ("txt",)}
_FILE_NAME = re.compile(r"(?P<name>[a-z][a-z0-9_]*)\.(?P<channel>email|sms)\.(?P<part>subject|txt|html)")
LOCALE_DIR = re.compile(r"[a-z]{2,3}")


class TemplateError(ConfigError):
    """A template cannot be loaded or rendered; the message says file:line, template, locale and why."""

    def __init__(
        self,
        detail: str,
        *,
        path: str | None = None,
        line: int | None = None,
        template: str | None = None,
        locale: str | None = None,
    ) -> None:
        self.detail, self.path, self.line, self.template, self.locale = detail, path, line, template, locale
        where = f"{path}:{line}: " if path and line else f"{path}: " if path else ""
        label = " ".join(
            text for text in (template and f"template '{template}'", locale and f"locale '{locale}'") if text
        )
        super().__init__(f"{where}{label}: {detail}" if label else f"{where}{detail}")


class RenderTimedOut(TemplateError):
    """Rendering ran past its deadline and was stopped (``render.deadline``)."""


@dataclass(frozen=True, kw_only=True)
class TemplateFile:
    """One file of a template: ``fr/cart_offer.email.html`` is name, channel, part and locale."""

    name: str
    channel: Channel
    part: str
    locale: str
    path: Path

    @property
    def loader_name(self) -> str:
        return f"{self.locale}/{self.path.name}"


def file_channel(name: str) -> Channel:
    """The channel literal for ``email`` or ``sms``; ``ValueError`` for anything else."""
    if name == "email":
        return "email"
    if name == "sms":
        return "sms"
    raise ValueError(f"unknown channel {name!r}: use email or sms")


def discover(templates_dir: Path) -> list[TemplateFile]:
    """Every message template file under ``templates_dir`` (layouts and samples excluded)."""
    found = []
    for locale_dir in sorted(p for p in templates_dir.iterdir() if p.is_dir()):
        if not LOCALE_DIR.fullmatch(locale_dir.name):
            continue
        for path in sorted(locale_dir.iterdir()):
            match = _FILE_NAME.fullmatch(path.name)
            if match and path.is_file():
                channel = file_channel(match["channel"])
                found.append(
                    TemplateFile(
                        name=match["name"],
                        channel=channel,
                        part=match["part"],
                        locale=locale_dir.name,
                        path=path,
                    )
                )
    return found


def language_of(tag: str | None) -> str | None:
    """The primary language of a BCP 47 tag: ``fr-FR`` → ``fr``; ``None`` when there is none."""
    if not tag:
        return None
    language = tag.strip().replace("_", "-").split("-")[0].lower()
    return language if LOCALE_DIR.fullmatch(language) else None


def shared_parts(templates_dir: Path) -> list[Path]:
    """Layouts and partials (``<locale>/_*``) that message templates extend, import or include."""
    return sorted(
        path
        for locale_dir in templates_dir.iterdir()
        if locale_dir.is_dir() and LOCALE_DIR.fullmatch(locale_dir.name)
        for path in locale_dir.iterdir()
        if path.is_file() and path.name.startswith("_")
    )
