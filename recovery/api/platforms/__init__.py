"""Platforms' routes: provider webhooks (Twilio) and signed platform ingest."""
