"""The ``recovery`` command: run, demo, check, replay, report and templates."""
