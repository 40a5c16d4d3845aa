"""Demo: the whole pipeline in virtual time on local SMTP and Twilio-compatible sinks."""
