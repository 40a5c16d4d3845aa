"""Channel adapters: one file per channel behind the small ``Channel`` protocol in ``base``."""
