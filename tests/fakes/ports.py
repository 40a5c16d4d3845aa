"""Free TCP ports for servers the tests start (the package's own helper)."""

from recovery.ingest.embedded_broker import free_port

__all__ = ["free_port"]
