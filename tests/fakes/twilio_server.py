"""The Twilio-compatible server lives in the package (the demo uses it too)."""

from recovery.demo.sinks.twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio, SentSms

__all__ = ["DEFAULT_ACCOUNT_SID", "DEFAULT_AUTH_TOKEN", "FakeTwilio", "SentSms"]
