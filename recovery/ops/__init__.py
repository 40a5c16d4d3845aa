"""Operators' view of the service: its own Prometheus metrics (lag, dead letters, due steps, providers)."""
