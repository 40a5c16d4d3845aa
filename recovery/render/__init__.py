"""Render: message templates in a sandbox, filters, tracked links and SMS text."""
