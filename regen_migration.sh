#!/usr/bin/env bash
# Regenerates the initial migration from recovery/store/schema/ (only while no release exists).
set -euo pipefail
rm -f recovery/store/migrations/versions/0001_*.py /tmp/gen.db
.venv/bin/python - <<'PY'
from alembic import command
from recovery.store.migrate import alembic_config
command.revision(alembic_config("sqlite:////tmp/gen.db"), message="initial schema", autogenerate=True, rev_id="0001")
PY
.venv/bin/ruff check --fix -q recovery/store/migrations || true
.venv/bin/ruff format -q recovery/store/migrations
