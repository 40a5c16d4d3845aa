"""The recording SMTP server lives in the package (the demo uses it too)."""

from recovery.demo.sinks.smtp import ReceivedEmail, SmtpSink, Stage

__all__ = ["ReceivedEmail", "SmtpSink", "Stage"]
