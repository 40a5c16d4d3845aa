"""The composition root: settings to components, for the service and for tests."""
