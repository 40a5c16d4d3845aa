"""Message templates marketers edit: ``templates/<locale>/<name>.<channel>.<part>``, rendered in a sandbox."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, tzinfo
from pathlib import Path
from types import TracebackType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from jinja2 import TemplateNotFound, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError

from recovery.attribution.feedback import preview_feedback_url
from recovery.render.blocks_check import outside_blocks
from recovery.render.bounds import RenderTimeout, check_deadline
from recovery.render.context import build_context
from recovery.render.files import (
    CHANNEL_PARTS,
    REQUIRED_PARTS,
    Channel,
    RenderTimedOut,
    TemplateError,
    TemplateFile,
    discover,
    file_channel,
    language_of,
    shared_parts,
)
from recovery.render.filters import MESSAGE_FILTERS, RenderState, rendering
from recovery.render.link_audit import untracked_links
from recovery.render.sandbox import is_template_frame, make_environment
from recovery.render.saved_files import with_saved_files
from recovery.render.sms_text import SmsInfo, describe_sms, gsm_friendly

DEFAULT_LOCALE = "en"


@dataclass(frozen=True, kw_only=True)
class RenderedMessage:
    """One message ready for a channel: ``sms`` is set for SMS, ``subject`` and ``html`` for email."""

    subject: str | None
    text: str
    html: str | None
    locale: str
    sms: SmsInfo | None


@dataclass(frozen=True, kw_only=True)
class TemplateInfo:
    """A template name, one channel it exists for, and the locales it is written in."""

    name: str
    channel: Channel
    locales: tuple[str, ...]


def _babel_locale(language: str, requested: str | None) -> Locale:
    """The shopper's own variant (``en-GB``) for formatting when it matches the template's language."""
    for tag in (requested, language):
        if tag and language_of(tag) == language:
            try:
                return Locale.parse(tag.strip().replace("_", "-"), sep="-")
            except (ValueError, UnknownLocaleError):
                continue
    return Locale.parse(DEFAULT_LOCALE)


def _time_zone(customer: object) -> tzinfo:
    name = customer.get("timezone") if isinstance(customer, Mapping) else None
    try:
        return ZoneInfo(name) if isinstance(name, str) and name else UTC
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return UTC


def _template_line(tb: TracebackType | None) -> tuple[str | None, int | None]:
    """File and line of the innermost template frame of a traceback Jinja rewrote."""
    path, line = None, None
    while tb is not None:
        if is_template_frame(tb.tb_frame.f_globals):
            path, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
        tb = tb.tb_next
    return path, line


def _describe(exc: Exception) -> str:
    if isinstance(exc, UndefinedError):
        return exc.message or "undefined value"
    if isinstance(exc, SecurityError):
        return f"refused by the sandbox: {exc}"
    if isinstance(exc, TemplateNotFound):
        return f"included template '{exc.name}' not found"
    return f"{exc}" if isinstance(exc, ValueError | TypeError) else f"{type(exc).__name__}: {exc}"


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


MAX_RENDERED_CHARS = 200_000  # per part: a larger email is clipped by mail clients anyway
MAX_TEMPLATE_ITEMS = 50  # items a template sees: rendering time stays bounded whatever the cart holds


def _few_items(context: Mapping[str, object]) -> Mapping[str, object]:
    """The context with at most ``MAX_TEMPLATE_ITEMS`` cart items (the cart's value is unchanged)."""
    cart = context.get("cart")
    if not isinstance(cart, Mapping):
        return context
    items = cart.get("items")
    if not isinstance(items, list | tuple) or len(items) <= MAX_TEMPLATE_ITEMS:
        return context
    return {**context, "cart": {**cart, "items": list(items)[:MAX_TEMPLATE_ITEMS]}}


class Templates:
    """The templates of one directory, indexed by name, channel and locale."""

    def __init__(
        self, templates_dir: Path, files: list[TemplateFile], sources: Mapping[str, str] | None = None
    ) -> None:
        self.templates_dir = templates_dir
        # Saved versions by path ("fr/cart_offer.email.html"), read instead of the default files; a path
        # with no file (a new template or language) counts once its template has every required part.
        self.sources = dict(sources or {})
        self.files, self.pending = with_saved_files(templates_dir, files, self.sources)
        files = self.files
        self._env = make_environment(templates_dir, MESSAGE_FILTERS, self.sources)
        self._index: dict[tuple[str, str], dict[str, dict[str, TemplateFile]]] = {}
        for file in files:
            by_locale = self._index.setdefault((file.name, file.channel), {})
            by_locale.setdefault(file.locale, {})[file.part] = file

    def names(self) -> list[TemplateInfo]:
        """Every template name with, per channel, the locales it is written in."""
        return [
            TemplateInfo(name=name, channel=file_channel(channel), locales=tuple(sorted(by_locale)))
            for (name, channel), by_locale in sorted(self._index.items())
        ]

    def has(self, name: str, channel: str) -> bool:
        """True when ``name`` exists for ``channel`` in at least one locale."""
        return (name, channel) in self._index

    def missing_parts(self) -> list[TemplateError]:
        """A problem for every locale of a template that lacks a part its channel needs."""
        problems = []
        for (name, channel), by_locale in sorted(self._index.items()):
            for locale, parts in sorted(by_locale.items()):
                for part in REQUIRED_PARTS[channel]:
                    if part not in parts:
                        missing = self.templates_dir / locale / f"{name}.{channel}.{part}"
                        problems.append(
                            TemplateError("file is missing", path=str(missing), template=name, locale=locale)
                        )
        return problems

    def compile_problems(self) -> list[TemplateError]:
        """A problem for every message file, layout and partial that does not compile."""
        problems = []
        for file in self.files:
            try:
                self._env.get_template(file.loader_name)
            except Exception as exc:
                problems.append(self._error(exc, file))
        for path in shared_parts(self.templates_dir):
            try:
                self._env.get_template(f"{path.parent.name}/{path.name}")
            except TemplateSyntaxError as exc:
                detail = f"syntax error: {exc.message}"
                problems.append(TemplateError(detail, path=str(path), line=exc.lineno, locale=path.parent.name))
        return problems

    def outside_block_problems(self) -> list[TemplateError]:
        """A problem for each text of a message file outside the blocks of the layout it extends."""
        problems = []
        for file in self.files:
            source = self.sources.get(file.loader_name)
            if source is None:
                source = file.path.read_text(encoding="utf-8") if file.path.is_file() else ""
            for line, excerpt in outside_blocks(self._env, source):
                detail = f"text outside the blocks is never shown ({excerpt!r}): move it into a {{% block %}}"
                problems.append(
                    TemplateError(detail, path=str(file.path), line=line, template=file.name, locale=file.locale)
                )
        return problems

    def choose_locale(self, name: str, channel: str, locale: str | None, store_locale: str | None) -> str:
        """The shopper's language, else the store's, else English, else any the template has."""
        by_locale = self._index.get((name, channel))
        if not by_locale:
            known = sorted({n for n, _ in self._index})
            hint = difflib.get_close_matches(name, known, n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise TemplateError(f"unknown template '{name}' for channel {channel}{suggestion}")
        for candidate in (language_of(locale), language_of(store_locale), DEFAULT_LOCALE):
            if candidate in by_locale:
                return candidate
        return sorted(by_locale)[0]

    def render(
        self,
        name: str,
        *,
        channel: Channel,
        locale: str | None,
        store_locale: str | None,
        context: Mapping[str, object],
        track: Callable[[str], str],
        feedback: Callable[[str], str] | None = None,
    ) -> RenderedMessage:
        """Render ``name`` for ``channel`` in the best locale; raise ``TemplateError`` on any problem."""
        if channel not in CHANNEL_PARTS:
            raise TemplateError(f"unknown channel {channel!r}: templates exist for email and sms", template=name)
        chosen = self.choose_locale(name, channel, locale, store_locale)
        files = self._index[(name, channel)][chosen]
        for part in REQUIRED_PARTS[channel]:
            if part not in files:
                raise TemplateError(f"no {channel}.{part} file", template=name, locale=chosen)
        cart = context.get("cart")
        currency = cart.get("currency") if isinstance(cart, Mapping) else None
        state = RenderState(
            track=track,
            locale=_babel_locale(chosen, locale),
            currency=currency if isinstance(currency, str) else None,
            timezone=_time_zone(context.get("customer")),
            feedback=feedback or preview_feedback_url,
        )
        try:
            values = build_context(_few_items(context))
        except ValueError as exc:
            raise TemplateError(f"bad render context: {exc}", template=name, locale=chosen) from exc
        with rendering(state):
            parts = {part: self._render_part(file, values) for part, file in files.items()}
        # The service's own unsubscribe link and the store's terms of sale are printed as they are.
        store = values.get("store")
        untracked = {context.get("unsubscribe_url"), getattr(store, "terms_url", None)}
        return self._finish(name, channel, chosen, parts, state, untracked)

    def _render_part(self, file: TemplateFile, values: dict[str, object]) -> str:
        try:
            chunks: list[str] = []
            size = 0
            # Streamed so a runaway loop stops at the bound instead of filling memory first.
            for chunk in self._env.get_template(file.loader_name).generate(values):
                check_deadline()
                size += len(chunk)
                if size > MAX_RENDERED_CHARS:
                    raise TemplateError(
                        f"rendered {file.part} is longer than {MAX_RENDERED_CHARS} characters",
                        template=file.name,
                        locale=file.locale,
                    )
                chunks.append(chunk)
            return "".join(chunks)
        except TemplateError:
            raise
        except Exception as exc:
            raise self._error(exc, file) from exc

    def _error(self, exc: Exception, file: TemplateFile) -> TemplateError:
        where = {"template": file.name, "locale": file.locale}
        if isinstance(exc, TemplateSyntaxError):
            path = exc.filename or str(file.path)
            return TemplateError(f"syntax error: {exc.message}", path=path, line=exc.lineno, **where)
        found, line = _template_line(exc.__traceback__)
        # A render stopped at its deadline is its own kind: a check stops there, a send fails for good.
        kind = RenderTimedOut if isinstance(exc, RenderTimeout) else TemplateError
        return kind(_describe(exc), path=found or str(file.path), line=line, **where)

    def _finish(
        self,
        name: str,
        channel: str,
        locale: str,
        parts: dict[str, str],
        state: RenderState,
        untracked: set[object],
    ) -> RenderedMessage:
        # Plain whitespace only: a French subject keeps its no-break space before "?" and ":".
        subject = " ".join(re.split(r"[ \t\r\n]+", parts["subject"].strip())) if "subject" in parts else None
        text = _tidy(parts["txt"])
        html = parts["html"].strip() if "html" in parts else None
        allowed = state.tracked | {link for link in untracked if isinstance(link, str)}
        for link in untracked_links(html=html, texts=[text, subject or ""], allowed=allowed):
            path, line_number = self._find_literal(link, locale)
            raise TemplateError(
                f"link '{link[:80]}' is not tracked: write it as {{{{ 'https://…' | track }}}}",
                path=path,
                line=line_number,
                template=name,
                locale=locale,
            )
        if channel == "sms":
            text = gsm_friendly(text)
            return RenderedMessage(subject=None, text=text, html=None, locale=locale, sms=describe_sms(text))
        return RenderedMessage(subject=subject, text=text, html=html, locale=locale, sms=None)

    def _find_literal(self, link: str, locale: str) -> tuple[str | None, int | None]:
        """Where a hard-coded link is written, searching the locale's files (layouts included)."""
        for path in sorted((self.templates_dir / locale).iterdir()):
            if path.is_file():
                source = self.sources.get(f"{locale}/{path.name}") or path.read_text(encoding="utf-8")
                for number, line in enumerate(source.splitlines(), start=1):
                    if link in line:
                        return str(path), number
        return None, None


def load_templates(templates_dir: Path, sources: Mapping[str, str] | None = None) -> Templates:
    """Index and compile every template under ``templates_dir`` (``sources`` override files by path)."""
    if not templates_dir.is_dir():
        raise TemplateError(f"templates_dir '{templates_dir}' is not a directory")
    templates = Templates(templates_dir, discover(templates_dir), sources)
    problems = templates.missing_parts() + templates.compile_problems()
    if problems:
        raise problems[0]
    return templates


__all__ = [
    "Channel",
    "RenderedMessage",
    "TemplateError",
    "TemplateInfo",
    "Templates",
    "language_of",
    "load_templates",
]
