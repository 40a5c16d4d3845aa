"""The HTTP side of the service: ``create_app`` builds it, ``serve_http`` serves it beside the consumer."""

from recovery.api.app import create_app
from recovery.api.auth import Principal, require_role
from recovery.api.server import serve_http

__all__ = ["Principal", "create_app", "require_role", "serve_http"]
