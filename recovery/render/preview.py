"""The studio's preview: one message rendered with an unsaved source, against a sample or a real cart."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recovery.errors import ConfigError
from recovery.render.files import RenderTimedOut, TemplateError, discover, file_channel
from recovery.render.offload import off_loop
from recovery.render.samples import Sample, load_samples, preview_track
from recovery.render.short_links import length_probe
from recovery.render.sms_text import non_gsm_characters
from recovery.render.templates import RenderedMessage, Templates, language_of
from recovery.render.versions import LineError, TemplateRejected

_MESSAGE_FILE = re.compile(r"(?P<locale>[a-z]{2,3})/(?P<name>[a-z][a-z0-9_]*)\.(?P<channel>email|sms)\.\w+")


def message_of(templates: Templates, path: str) -> tuple[str, str, str]:
    """(template name, channel, locale) a path previews as; a layout previews the first message using it."""
    match = _MESSAGE_FILE.fullmatch(path)
    if match:
        return match["name"], match["channel"], match["locale"]
    locale = path.split("/", 1)[0]
    wanted = "sms" if ".sms." in path else "email"
    for info in templates.names():
        if info.channel == wanted and locale in info.locales:
            return info.name, info.channel, locale
    raise TemplateRejected([LineError(line=None, message=f"'{path}' is used by no message to preview")])


def pick_sample(samples_dir: Path, name: str | None, locale: str) -> Sample:
    """The named sample, else the first one written for ``locale``, else the first one."""
    samples = load_samples(samples_dir)
    if name is not None:
        for sample in samples:
            if sample.name == name:
                return sample
        raise TemplateRejected([LineError(line=None, message=f"unknown sample '{name}'")])
    if not samples:
        raise ConfigError(f"{samples_dir}: no sample to preview with")
    matching = [s for s in samples if language_of(s.customer_locale) == locale]
    return (matching or samples)[0]


def render_preview(
    templates_dir: Path,
    live: Mapping[str, str],
    *,
    path: str,
    source: str,
    context: Mapping[str, object],
    store_locale: str | None = None,
    public_url: str | None = None,
) -> dict[str, Any]:
    """The contract's preview answer for ``source`` at ``path``; ``TemplateRejected`` with line errors."""
    templates = Templates(templates_dir, discover(templates_dir), {**live, path: source})
    name, channel, locale = message_of(templates, path)
    try:
        compiled = [e for e in templates.compile_problems() if e.path and e.path.endswith(path)]
        if compiled:
            raise compiled[0]
        message = templates.render(
            name,
            channel=file_channel(channel),
            locale=locale,
            store_locale=store_locale,
            context=context,
            # An SMS is sent with short links: its segment count is only honest with links of that length.
            track=length_probe(public_url) if channel == "sms" and public_url else preview_track,
        )
    except TemplateError as exc:
        raise TemplateRejected([LineError(line=exc.line, message=str(exc))]) from exc
    return preview_answer(message)


async def preview_off_loop(
    templates_dir: Path,
    live: Mapping[str, str],
    *,
    path: str,
    source: str,
    context: Mapping[str, object],
    store_locale: str | None = None,
    public_url: str | None = None,
) -> dict[str, Any]:
    """``render_preview`` in a render thread within ``render.deadline``; ``TemplateRejected`` past it."""
    try:
        return await off_loop(
            None,
            render_preview,
            templates_dir,
            live,
            path=path,
            source=source,
            context=context,
            store_locale=store_locale,
            public_url=public_url,
        )
    except RenderTimedOut as exc:
        raise TemplateRejected([LineError(line=exc.line, message=str(exc))]) from exc


def preview_answer(message: RenderedMessage) -> dict[str, Any]:
    """``{"subject", "text", "html"}`` for email, ``{"text", "sms": {...}}`` for SMS."""
    answer: dict[str, Any] = {"text": message.text}
    if message.sms is not None:
        answer["sms"] = {
            "text": message.text,
            "segments": message.sms.segments,
            "encoding": str(message.sms.encoding),
            "characters": message.sms.characters,
            # Which characters force UCS-2: one emoji can double the cost of a text.
            "non_gsm": non_gsm_characters(message.text),
        }
    else:
        answer["subject"] = message.subject
        answer["html"] = message.html
    return answer
