"""Pytest fixtures for the fake providers; import the ones a test module uses by name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.smtp_server import SmtpSink
from tests.fakes.twilio_server import FakeTwilio


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A started recording SMTP server, stopped after the test."""
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """A started Twilio-compatible Messages API, stopped after the test."""
    with FakeTwilio() as server:
        yield server
