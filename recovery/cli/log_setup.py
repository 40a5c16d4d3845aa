"""Process logging: stdlib ``logging`` records rendered by structlog as text or JSON, with their fields.

Every module logs with ``logging.getLogger(__name__)`` and ``extra={...}``; here those fields are printed
(cart_id, journey_id, step, message_id ...) and anything that looks like an address or a secret is masked.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, WrappedLogger

LogFormat = Literal["text", "json"]

# Field names whose values are never printed, whatever they hold.
_SECRET_FIELDS = frozenset(
    {"email", "phone", "to", "from", "recipient", "password", "token", "auth_token", "secret", "api_key"}
)
_EMAIL = re.compile(r"[^\s@<>\"',;:]+@[^\s@<>\"',;:]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+[1-9](?:[ .\-]?\(?\d\)?){6,14}")  # E.164, also written with spaces
# A national-format number: 9 to 15 digits with spaces, dots, dashes or brackets between them
# ("06 12 34 56 78", "(415) 555-2671"); not inside a word or an id, and not a time ("… 00:45").
_NATIONAL_PHONE = re.compile(r"(?<![\w.+\-/])\(?\d[\d ().\-]{7,22}\d(?![\w:/])")
_MIN_DIGITS, _MAX_DIGITS = 9, 15
_MASK = "***"
_MAX_DEPTH = 8  # nested values deeper than this are masked whole rather than walked


def choose_format(configured: LogFormat | None, stream: TextIO) -> LogFormat:
    """The configured format, else JSON unless ``stream`` is a terminal."""
    if configured is not None:
        return configured
    return "text" if stream.isatty() else "json"


def _national(match: re.Match[str]) -> str:
    digits = sum(char.isdigit() for char in match.group())
    return _MASK if _MIN_DIGITS <= digits <= _MAX_DIGITS else match.group()


def redact_text(text: str) -> str:
    """``text`` with email addresses and phone numbers (E.164 or national format) masked."""
    return _NATIONAL_PHONE.sub(_national, _PHONE.sub(_MASK, _EMAIL.sub(_MASK, text)))


def redact_value(value: Any, depth: int = 0) -> Any:
    """``value`` with secrets and addresses masked, inside nested dicts, lists and tuples too."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict | list | tuple | set) and depth >= _MAX_DEPTH:
        return _MASK
    if isinstance(value, dict):
        return {
            key: _MASK if str(key).lower() in _SECRET_FIELDS else redact_value(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set):
        return [redact_value(item, depth + 1) for item in value]
    return value


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Processor: mask secret fields and any address found in a value, however deeply nested."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _MASK if key.lower() in _SECRET_FIELDS else redact_value(value)
    return event_dict


def _processors(fmt: LogFormat) -> list[Any]:
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    return [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info,  # before ``redact``: a traceback's text is masked too
        redact,
        renderer,
    ]


def configure_logging(level: str, configured: LogFormat | None, stream: TextIO | None = None) -> LogFormat:
    """Send every stdlib log record through structlog to ``stream`` (stderr); return the format used."""
    stream = stream or sys.stderr
    fmt = choose_format(configured, stream)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=_processors(fmt),
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    return fmt
