"""Real local servers that stand in for providers: an SMTP sink and a Twilio-compatible API.

Each starts in its own thread, so async tests and plain scripts use them the same way::

    with SmtpSink() as sink, FakeTwilio() as twilio:
        ...  # point the channels at sink.host/sink.port and twilio.url

Pytest fixtures for them live in ``tests.fakes.fixtures``.
"""

from tests.fakes.ports import free_port
from tests.fakes.smtp_server import ReceivedEmail, SmtpSink, Stage
from tests.fakes.twilio_server import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio, SentSms

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "FakeTwilio",
    "ReceivedEmail",
    "SentSms",
    "SmtpSink",
    "Stage",
    "free_port",
]
