"""Local stand-ins for the providers: a recording SMTP server and a Twilio-compatible Messages API.

The demo sends to them instead of the Internet; the tests use them as real servers to talk to.
"""
