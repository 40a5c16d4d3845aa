"""Platform payloads to native v1 events: one pure translator per format (see docs/platforms.md)."""
