"""Desk: support agents' callback tasks: calling hours, queue order, helpdesk hand-off, suggested lines."""
